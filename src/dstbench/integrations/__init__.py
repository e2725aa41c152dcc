"""DST in the tools researchers already use, each an optional extra that drives the one `DST` object.

- `dstbench.integrations.lightning.DSTCallback`: PyTorch Lightning (``pip install "dstbench[lightning]"``).
- `dstbench.integrations.transformers.DSTCallback`: the Hugging Face `Trainer` (``"dstbench[nlp]"``).
- `dstbench.trackers`: live W&B, MLflow and TensorBoard logging of runs (``"dstbench[tracking]"``).
- `dstbench.integrations.export`: a trained sparse model as values plus bit-packed masks, with a per-layer table
  (no extra needed).

Importing this package imports none of those libraries; each module imports its own when it is used.
"""
