"""A features folder on disk (the output of ``recsys24 features``) and sequential row reading.

Layout::

    FEAT/features.json                 the plan: inputs (with fingerprints), options,
                                       feature names by family; written first
    FEAT/pieces/rows-LO-HI.parquet     behaviors rows LO..HI-1, one row per
                                       (row, in-view candidate): row, impression_id,
                                       user_id, then the float32 features

A piece that exists is complete (written atomically); the folder is complete
when the pieces cover every behaviors row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import polars as pl

from recsys24.data.split import Split, iter_batches, open_split
from recsys24.errors import Recsys24Error
from recsys24.io import existing_pieces

PLAN_FILE = "features.json"


@dataclass(frozen=True)
class FeatureSet:
    path: Path
    plan: dict

    @property
    def split_name(self) -> str:
        return self.plan["split"]

    @property
    def families(self) -> dict[str, list[str]]:
        return self.plan["families"]

    @property
    def names(self) -> list[str]:
        return [n for names in self.families.values() for n in names]

    def split(self) -> Split:
        return open_split(self.plan["data"], self.plan["split"])

    def pieces(self) -> list[tuple[int, int, Path]]:
        """Every piece in row order; refuses a folder whose pieces do not cover the split."""
        found = existing_pieces(self.path)
        expected = 0
        for lo, hi, _ in found:
            if lo != expected:
                break
            expected = hi
        if expected != self.plan["num_rows"]:
            raise Recsys24Error(f"{self.path}: features of rows {expected}.. are missing "
                                "(rerun `recsys24 features` with the same options to finish)")
        return found

    def read_piece(self, path: Path, columns: Sequence[str] | None = None) -> pl.DataFrame:
        """One piece's ``columns``; a truncated or unreadable piece is one error naming it and the fix."""
        try:
            return pl.read_parquet(path, columns=list(columns) if columns else None)
        except (OSError, pl.exceptions.PolarsError) as err:
            raise Recsys24Error(f"{path}: unreadable features piece ({str(err).splitlines()[0]}); delete it and "
                                f"rerun `recsys24 features` with the same options to rebuild it") from None

    def iter_pieces(self, columns: Sequence[str] | None = None) -> Iterator[pl.DataFrame]:
        for _, _, path in self.pieces():
            yield self.read_piece(path, columns)


def open_features(path: str | Path) -> FeatureSet:
    path = Path(path)
    plan = path / PLAN_FILE
    if not plan.is_file():
        raise Recsys24Error(f"{path}: not a features folder (no {PLAN_FILE}; make one with `recsys24 features`)")
    return FeatureSet(path, json.loads(plan.read_text()))


class RowStream:
    """Read a parquet file front to back in arbitrary row ranges (each range after the last)."""

    def __init__(self, path: Path, columns: Sequence[str], batch_rows: int = 1_000_000):
        self._batches = iter_batches(path, columns, batch_rows)
        self._buffer = pl.DataFrame()
        self.position = 0

    def take(self, lo: int, hi: int) -> pl.DataFrame:
        """Rows ``lo`` to ``hi - 1`` (rows before ``lo`` not yet read are skipped)."""
        if lo < self.position:
            raise ValueError(f"rows {lo}.. already read")
        parts = []
        while self.position < hi:
            if self._buffer.height == 0:
                self._buffer = next(self._batches)[1]
            n = min((lo if self.position < lo else hi) - self.position, self._buffer.height)
            if self.position >= lo:
                parts.append(self._buffer.slice(0, n))
            self._buffer = self._buffer.slice(n)
            self.position += n
        return pl.concat(parts) if parts else pl.DataFrame()
