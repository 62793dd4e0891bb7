"""The one exception type users see: a one-line message, no traceback."""

from __future__ import annotations


class Recsys24Error(Exception):
    """Bad input or a refused operation; ``str(err)`` is one line for the user."""


class DataError(Recsys24Error):
    """A data file is missing, unreadable or does not match the EB-NeRD schema."""
