import pandas as pd

from dstbench.report.ranking import subsets


def test_density_subsets_of_the_rank_diagrams():
    runs = pd.DataFrame({"density": [0.05, 0.1, 0.2, 0.5]})
    assert [(name, len(part)) for name, part in subsets(runs, [0.2, 0.1])] == [
        ("all densities", 4), ("densities ≤ 0.2", 3), ("densities > 0.2", 1), ("densities ≤ 0.1", 2),
        ("densities > 0.1", 2)]
    assert [name for name, _ in subsets(runs[runs["density"] <= 0.2], [0.2])] == ["all densities"]
