"""The error a user can fix: bad input, a folder in use, damaged records. Its own module, so that every layer can
raise it without importing the command line.

`dstbench ...` prints a `UserError` as one line (exit code 2); any other exception is a bug and is printed with its
traceback. It subclasses `ValueError`, so library callers that catch `ValueError` for bad arguments still do.
"""

from __future__ import annotations


class UserError(ValueError):
    """A problem with the user's input or files: printed as one clear message, exit code 2, no traceback."""
