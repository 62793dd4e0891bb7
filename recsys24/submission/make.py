"""The contest zip of a scores file, written then validated: what every command that makes one calls."""

from __future__ import annotations

from pathlib import Path

from recsys24.data.split import Split
from recsys24.submission.validate import validate_submission
from recsys24.submission.write import write_submission


def make(scores: str | Path, split: Split, zip_path: str | Path) -> int:
    """Write ``zip_path`` from the scores file ``scores`` of ``split``, then validate it; return its line count.

    Raises DataError (one line, naming the file and the line) when the scores
    do not cover the split or the written zip does not pass the validator.
    """
    write_submission(scores, split, zip_path)
    return validate_submission(zip_path, split)
