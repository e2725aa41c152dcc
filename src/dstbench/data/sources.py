"""Where each data set officially comes from, and the checksums its publishers give.

These are facts about the outside world, kept in one place: the download command fetches these URLs (or a
mirror serving the same paths, see `dstbench.data.download`) and refuses content with other checksums; the
loaders compare local copies against the same sums and warn when they differ.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    """One file to fetch: its official URL, where it goes under the data root, and its published checksum (an md5
    or, 64 hex digits long, a sha256: `algorithm`).

    `extract` names the folder a zip archive unpacks to (None: used as is).
    """

    url: str
    filename: str
    checksum: str
    extract: str | None = None

    @property
    def algorithm(self) -> str:
        return checksum_algorithm(self.checksum)


def checksum_algorithm(checksum: str) -> str:
    """"md5" for 32 hex digits, "sha256" for 64."""
    return {32: "md5", 64: "sha256"}[len(checksum)]


FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"
FASHION_MNIST_DIR = "fashion-mnist"
# name -> (md5 of the official .gz, sha256 of its decompressed content). Repackaged copies (e.g. Debian's
# dataset-fashion-mnist) carry different gzip headers but the same content, so loaders check the content.
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train-labels-idx1-ubyte": ("25c81989df183df01b3e8a0aad5dffbe",
                                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "t10k-images-idx3-ubyte": ("bef4ecab320f06d8554ea6380940ec79",
                               "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "t10k-labels-idx1-ubyte": ("bb300cfdad3c16e7a12a480ee83cd310",
                               "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}

CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FILE_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}

CIFAR100_ARCHIVE = "cifar-100-python.tar.gz"
CIFAR100_DIR = "cifar-100-python"
CIFAR100_ARCHIVE_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
CIFAR100_FILE_MD5 = {
    "train": "16019d7e3df5f24257cddd939b257f8d",
    "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
    "meta": "7973b15100ade9c7d40fb424638fde48",
}

TINY_IMAGENET_ARCHIVE = "tiny-imagenet-200.zip"
TINY_IMAGENET_DIR = "tiny-imagenet-200"
TINY_IMAGENET_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"

# OpenML publishes a data set's file id and md5 in its description; the file endpoint serves the ARFF.
HIGGS_OPENML_ID = 44129
HIGGS_DIR = "higgs"
OPENML_DESCRIPTION_URL = "https://api.openml.org/api/v1/json/data/{id}"
OPENML_FILE_URL = "https://api.openml.org/data/v1/download/{file_id}"
HIGGS_DESCRIPTION = "description.json"
HIGGS_ARFF = f"openml-{HIGGS_OPENML_ID}.arff"

# CommonsenseQA v1.11, the official release (tau-nlp.org/commonsenseqa) on the authors' S3 bucket. The test file
# has no answers (SMC-Bench evaluates on dev), so it is not fetched. The sha256 sums are the ones ParlAI's
# CommonsenseQA build script (facebookresearch/ParlAI, parlai/tasks/commonsenseqa/build.py) records for these
# URLs; the publishers give none, and they were not recomputed here (this machine cannot reach S3).
COMMONSENSE_QA_URL = "https://s3.amazonaws.com/commensenseqa"
COMMONSENSE_QA_DIR = "commonsense_qa"
COMMONSENSE_QA_FILES = {
    "train_rand_split.jsonl": "58ffa3c8472410e24b8c43f423d89c8a003d8284698a6ed7874355dedd09a2fb",
    "dev_rand_split.jsonl": "3210497fdaae614ac085d9eb873dd7f4d49b6f965a93adadc803e1229fd8a02a",
}

RESOURCES: dict[str, list[Resource]] = {
    "fashionmnist": [
        Resource(f"{FASHION_MNIST_URL}/{name}.gz", f"{FASHION_MNIST_DIR}/{name}.gz", gz_md5)
        for name, (gz_md5, _) in FASHION_MNIST_FILES.items()
    ],
    "cifar10": [
        Resource(f"https://www.cs.toronto.edu/~kriz/{CIFAR10_ARCHIVE}", CIFAR10_ARCHIVE, CIFAR10_ARCHIVE_MD5)
    ],
    "cifar100": [
        Resource(f"https://www.cs.toronto.edu/~kriz/{CIFAR100_ARCHIVE}", CIFAR100_ARCHIVE, CIFAR100_ARCHIVE_MD5)
    ],
    "commonsense_qa": [
        Resource(f"{COMMONSENSE_QA_URL}/{name}", f"{COMMONSENSE_QA_DIR}/{name}", sha256)
        for name, sha256 in COMMONSENSE_QA_FILES.items()
    ],
    "tinyimagenet": [
        Resource(f"http://cs231n.stanford.edu/{TINY_IMAGENET_ARCHIVE}", TINY_IMAGENET_ARCHIVE, TINY_IMAGENET_MD5,
                 extract=TINY_IMAGENET_DIR)
    ],
}

IMAGENET_INSTRUCTIONS = """\
ImageNet (ILSVRC 2012) cannot be downloaded without an account. To use it:
  1. Register at https://image-net.org, accept the terms, and download ILSVRC2012_img_train.tar and
     ILSVRC2012_img_val.tar (and the devkit, which holds the validation labels).
  2. Unpack the training archive into ROOT/imagenet/train/<wnid>/*.JPEG (it holds one tar per class).
  3. Unpack the validation images and sort them into ROOT/imagenet/val/<wnid>/*.JPEG using the devkit's
     ground truth (the usual "valprep" layout).
Then `dstbench.data.load("imagenet", root="ROOT")` streams them."""
