"""The paper's data sets from their standard on-disk formats, their official downloads, and fast batching.

    splits = dstbench.data.load("cifar10", root="~/data")
    for x, y in splits.batches("train", 128, seed=0, device="cuda"):   # one epoch, augmented, normalised
        ...
    for x, y in splits.eval_batches("test", device="cuda"):
        ...

`list()` names the data sets, `info(name)` describes one without loading it, `download(name, root)` fetches it
(`dstbench data download NAME --root DIR` on the command line).
"""

from __future__ import annotations

from dstbench.data.augment import Augmentation
from dstbench.data.batches import Batches
from dstbench.data.download import download
from dstbench.data.errors import ChecksumError, ChecksumMismatchWarning, DataFormatError, DataNotFoundError
from dstbench.data.registry import DatasetInfo, info, load, locate
from dstbench.data.registry import list_datasets as list  # the documented name (cf. models.list)
from dstbench.data.splits import ArraySplit, DataSplits
from dstbench.data.streaming import ImageFolderSplit, StreamingBatches

__all__ = [
    "ArraySplit", "Augmentation", "Batches", "ChecksumError", "ChecksumMismatchWarning", "DataFormatError",
    "DataNotFoundError", "DataSplits", "DatasetInfo", "ImageFolderSplit", "StreamingBatches", "download", "info",
    "list", "load", "locate",
]
