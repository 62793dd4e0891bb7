"""A features folder on disk (the output of ``recsys24 features``) and sequential row reading.

Layout::

    FEAT/features.json                 the plan: inputs (with fingerprints), options,
                                       feature names by family; written first
    FEAT/pieces/rows-LO-HI.parquet     behaviors rows LO..HI-1, one row per
                                       (row, in-view candidate): row, impression_id,
                                       user_id, then the float32 features

A piece that exists is complete (written atomically); the folder is complete
when the pieces cover every behaviors row. Whoever reads a piece reads it with
:meth:`FeatureSet.read_piece`: a piece damaged since it was written (cut short
by a bad copy, say) is then one error line naming it and the command that
builds it again, not a parquet decoder's traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import polars as pl

from recsys24.data.split import Split, iter_batches, open_split
from recsys24.errors import Recsys24Error
from recsys24.evaluation.scores import SplitData
from recsys24.io import existing_pieces, parquet_rows, read_parquet_checked

PLAN_FILE = "features.json"
PIECE_CANDIDATES = 4_000_000  # the default of `recsys24 features --piece-candidates`


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

    def iter_pieces(self, columns: Sequence[str] | None = None) -> Iterator[pl.DataFrame]:
        for _, _, path in self.pieces():
            yield self.read_piece(path, columns)

    def read_piece(self, path: str | Path, columns: Sequence[str] | None = None) -> pl.DataFrame:
        """``columns`` (default: all) of one piece of this folder.

        A piece that is truncated, damaged or lacks a column is one DataError
        line naming the file and the command that builds it again.
        """
        return read_parquet_checked(path, columns or None, self.remedy)

    def piece_rows(self, path: str | Path) -> int:
        """The row count of one piece, from its footer only (checked like :meth:`read_piece`)."""
        return parquet_rows(path, self.remedy)

    @property
    def command(self) -> str:
        """The ``recsys24 features`` command that made this folder, and finishes or repairs it."""
        plan = self.plan
        flags = [("--past-only", plan.get("past_only")), ("--split-history", plan.get("split_history")),
                 (f"--piece-candidates {plan.get('piece_candidates')}",
                  plan.get("piece_candidates", PIECE_CANDIDATES) != PIECE_CANDIDATES)]
        return (f"recsys24 features --data {plan['data']} --split {self.split_name} --out {self.path}"
                + "".join(f" {flag}" for flag, on in flags if on))

    @property
    def remedy(self) -> str:
        return f"delete it and run `{self.command}` to build it again"

    @property
    def split_data(self) -> SplitData | None:
        """The split these features describe, by its behaviors file's content fingerprint (None: not recorded)."""
        found = self.plan.get("inputs", {}).get(f"{self.split_name}/behaviors.parquet")
        return SplitData(self.split_name, found) if found else None


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
