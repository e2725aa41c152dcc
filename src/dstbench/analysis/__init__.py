"""Analysis of stored results: Jaccard similarity of masks, ITOP, loss gap, ranks with Friedman/Nemenyi tests.

Reads what training stored (run folders, the collected tables); never imports training code or torch.
"""

from dstbench.analysis.aggregate import (
    CONDITION_FIELDS,
    IDENTITY_FIELDS,
    curves,
    loss_gap,
    sort_criteria,
    summarize,
    varying_fields,
)
from dstbench.analysis.jaccard import (
    JaccardMatrix,
    OverTime,
    end_mask_matrix,
    first_update_matrix,
    jaccard_over_time,
    jaccard_per_layer,
    layer_jaccard,
    mean_jaccard,
    reference_jaccard,
    retained_removed_by_all,
)
from dstbench.analysis.ranks import (
    FriedmanResult,
    average_ranks,
    block_scores,
    critical_difference,
    friedman_test,
    holm,
    nemenyi_q,
    nonsignificant_groups,
    rank_table,
    wilcoxon_holm,
)
from dstbench.analysis.results import Results, load_results
from dstbench.analysis.structure import EndMasks, Study, end_mask_study, first_update_study, over_time_study

__all__ = [
    "CONDITION_FIELDS",
    "IDENTITY_FIELDS",
    "EndMasks",
    "FriedmanResult",
    "JaccardMatrix",
    "OverTime",
    "Results",
    "Study",
    "average_ranks",
    "block_scores",
    "critical_difference",
    "curves",
    "end_mask_matrix",
    "end_mask_study",
    "first_update_matrix",
    "first_update_study",
    "friedman_test",
    "holm",
    "jaccard_over_time",
    "jaccard_per_layer",
    "layer_jaccard",
    "load_results",
    "loss_gap",
    "mean_jaccard",
    "nemenyi_q",
    "nonsignificant_groups",
    "over_time_study",
    "rank_table",
    "reference_jaccard",
    "retained_removed_by_all",
    "sort_criteria",
    "summarize",
    "varying_fields",
    "wilcoxon_holm",
]
