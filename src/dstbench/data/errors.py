"""The data layer's errors and warnings.

Each is a user error (`UserError`, a `ValueError`) or a `FileNotFoundError` with a full message, so
`dstbench ...` prints one clear message instead of a traceback.
"""

from __future__ import annotations

from dstbench.errors import UserError


class DataFormatError(UserError):
    """A file that exists but is not what its name promises: truncated, corrupt, or in another format."""


class DataNotFoundError(FileNotFoundError):
    """A data root that lacks the files of a data set; the message lists them and the download command."""


class ChecksumError(UserError):
    """A download whose content differs from the published checksum."""


class ChecksumMismatchWarning(UserWarning):
    """A local copy whose checksum differs from the official one: loaded anyway, but the user is told."""
