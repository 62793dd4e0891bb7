"""The one exception type users see: a one-line message, no traceback."""

from __future__ import annotations


class Recsys24Error(Exception):
    """Bad input or a refused operation; ``str(err)`` is one line for the user."""


class DataError(Recsys24Error):
    """A data file is missing, unreadable or does not match the EB-NeRD schema."""


def os_error_message(err: OSError) -> str:
    """One line for an operating-system failure: the path(s) it names, then the cause.

    >>> os_error_message(PermissionError(13, "Permission denied", "/data/out"))
    '/data/out: Permission denied'
    """
    cause = err.strerror or str(err) or type(err).__name__
    if err.filename is None:
        return cause
    where = str(err.filename) + (f" -> {err.filename2}" if err.filename2 is not None else "")
    return f"{where}: {cause}"
