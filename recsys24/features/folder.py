"""A features folder on disk (the output of ``recsys24 features``): written and read here only.

Layout::

    FEAT/features.json                 the plan (:class:`FeaturePlan`): inputs (with
                                       fingerprints), options, feature names by family;
                                       written first
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

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import polars as pl

from recsys24.data.split import Split, open_split
from recsys24.errors import Recsys24Error
from recsys24.evaluation.scores import SplitData
from recsys24.io import FolderPlan, existing_pieces, known_fields, parquet_rows, read_parquet_checked

PLAN_FILE = "features.json"
PIECE_CANDIDATES = 4_000_000  # the default of `recsys24 features --piece-candidates`
# options of `recsys24 features` that change what the features mean: a ranker or a model trained on one
# choice is used on the same choice
MEANING_OPTIONS = ("past_only", "split_history")
# what a run records once it has built its tables: not inputs or options, so never what a folder is checked against
RECORDED = ("families", "history_span_days")


@dataclass(frozen=True)
class FeaturePlan:
    """What ``FEAT/features.json`` records: the inputs (by fingerprint), the options, the feature names.

    ``inputs`` maps ``articles.parquet``, ``SPLIT/behaviors.parquet`` and each
    ``SPLIT/history.parquet`` read to its :func:`recsys24.fingerprints.fingerprint`.
    ``families`` maps each family to its feature names, in column order.
    ``history_span_days``: the days ``history_per_day`` divides by
    (:attr:`recsys24.features.history.HistoryTable.span_days`); None in a
    folder built before it was recorded.
    """

    data: str
    split: str
    num_rows: int
    num_candidates: int
    past_only: bool = False
    piece_candidates: int = PIECE_CANDIDATES
    split_history: bool = False
    version: int | None = None
    inputs: Mapping[str, str] = field(default_factory=dict)
    families: Mapping[str, list[str]] = field(default_factory=dict)
    history_span_days: float | None = None

    @classmethod
    def from_dict(cls, plan: dict) -> "FeaturePlan":
        """A plan as ``features.json`` holds it (older files lack the later options: their defaults)."""
        return cls(**known_fields(cls, plan))

    def to_dict(self, recorded: bool = True) -> dict:
        """The JSON object of ``features.json`` (``recorded=False``: without :data:`RECORDED`, what a run is
        checked against before it has built its tables)."""
        plan = asdict(self)
        return plan if recorded else {k: v for k, v in plan.items() if k not in RECORDED}

    @property
    def options(self) -> dict[str, bool]:
        """The options that change what the features mean (:data:`MEANING_OPTIONS`), as a ranker records them."""
        return {option: getattr(self, option) for option in MEANING_OPTIONS}

    def differing(self, other: "FeaturePlan | Mapping[str, bool]") -> list[str]:
        """The meaning options whose value ``other`` (a plan, or the options a ranker recorded; absent:
        False) does not share."""
        theirs = other.options if isinstance(other, FeaturePlan) else other
        return [option for option, ours in self.options.items() if theirs.get(option, False) != ours]

    def compatible(self, other: "FeaturePlan | Mapping[str, bool]") -> bool:
        """Whether features of this plan mean what features of ``other`` mean (see :meth:`differing`)."""
        return not self.differing(other)

    def input_fingerprint(self, name: str) -> str | None:
        """The fingerprint of one input file (``validation/behaviors.parquet``); None when not recorded."""
        return self.inputs.get(name)

    def write(self, folder: Path) -> None:
        """Record this plan in ``folder``, or refuse a folder made from other inputs or options."""
        plan = self.to_dict()
        feature_folder(folder).require(self.to_dict(recorded=False), {k: plan[k] for k in RECORDED})

    def check(self, folder: Path) -> None:
        """Refuse ``folder`` when it holds features of other inputs or options, or pieces without a plan."""
        feature_folder(folder).check(self.to_dict(recorded=False))


def feature_folder(folder: Path) -> FolderPlan:
    return FolderPlan(folder, PLAN_FILE, "features", "feature pieces")


@dataclass(frozen=True)
class FeatureSet:
    """A features folder: where it is and what its plan says; its pieces are read through it, checked."""

    path: Path
    plan: FeaturePlan

    @property
    def split_name(self) -> str:
        return self.plan.split

    @property
    def families(self) -> Mapping[str, list[str]]:
        return self.plan.families

    @property
    def names(self) -> list[str]:
        return [n for names in self.families.values() for n in names]

    def split(self) -> Split:
        return open_split(self.plan.data, self.plan.split)

    def pieces(self) -> list[tuple[int, int, Path]]:
        """Every piece in row order; refuses a folder whose pieces do not cover the split."""
        found = existing_pieces(self.path)
        expected = 0
        for lo, hi, _ in found:
            if lo != expected:
                break
            expected = hi
        if expected != self.plan.num_rows:
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
        flags = [("--past-only", plan.past_only), ("--split-history", plan.split_history),
                 (f"--piece-candidates {plan.piece_candidates}", plan.piece_candidates != PIECE_CANDIDATES)]
        return (f"recsys24 features --data {plan.data} --split {self.split_name} --out {self.path}"
                + "".join(f" {flag}" for flag, on in flags if on))

    @property
    def remedy(self) -> str:
        return f"delete it and run `{self.command}` to build it again"

    @property
    def split_data(self) -> SplitData | None:
        """The split these features describe, by its behaviors file's content fingerprint (None: not recorded)."""
        found = self.plan.input_fingerprint(f"{self.split_name}/behaviors.parquet")
        return SplitData(self.split_name, found) if found else None


def features_identity(path: str | Path) -> dict | None:
    """What a features folder holds, whatever its path: its whole plan (None: not a features folder)."""
    folder = feature_folder(Path(path))
    return folder.read() if folder.exists() else None


def open_features(path: str | Path) -> FeatureSet:
    path = Path(path)
    plan = path / PLAN_FILE
    if not plan.is_file():
        raise Recsys24Error(f"{path}: not a features folder (no {PLAN_FILE}; make one with `recsys24 features`)")
    return FeatureSet(path, FeaturePlan.from_dict(feature_folder(path).read()))

