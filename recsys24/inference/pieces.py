"""Scores written in pieces: the unit of work and of recovery for ``recsys24 predict``.

A prepared split of N impressions is cut into pieces of ``piece_rows`` rows
(fixed by the scores folder, not by the number of shards). Shard i of n scores
a contiguous block of pieces. Each piece is written atomically as
``SCORES_DIR/pieces/rows-<first>-<end>.parquet`` (columns ``row`` plus the
scores-file columns), so a piece that exists is complete and a rerun after a
crash only scores the pieces that are missing. Merging streams the pieces in
row order and refuses a missing or doubly scored row. That is ``--order rows``;
``--order users`` (CGh's default) cuts pieces by user instead, see
:mod:`recsys24.inference.user_order`. Both kinds of piece carry their history
encodings in their parquet metadata, summed into ``predict.json``'s ``counts``.

``SCORES_DIR/predict.json`` records which model and which prepared split the
pieces come from, by path and by fingerprint (every file of the model folder,
see :func:`recsys24.fingerprints.folder_fingerprint`; the split's manifest), so pieces of
other weights at the same path, or of a split prepared again, are never mixed
with new ones or merged into a submission; ``predict-merge`` checks the model's
files again. It also records what the merged scores file's
:class:`~recsys24.evaluation.scores.Provenance` says: the split scored and the
splits the model trained on. A piece cut short (a killed disk, a bad copy) is
scored again by the next run of its shard.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from recsys24.data import schema as S
from recsys24.data.cuts import shard_range
from recsys24.data.prepared import MANIFEST, Prepared, open_prepared
from recsys24.errors import Recsys24Error
from recsys24.evaluation.scores import Provenance, ScoresWriter, SplitData
from recsys24.features.folder import PLAN_FILE as FEATURES_PLAN
from recsys24.inference.user_order import PIECE_REMEDY, UserPieces
from recsys24.fingerprints import file_digest, folder_fingerprint
from recsys24.io import FolderPlan, existing_pieces, intact_piece, piece_path, read_parquet_checked, reading, write_json
from recsys24.training.runlog import run_train_data

PLAN_FILE = "predict.json"
ENCODINGS = "history_encodings"  # key of a piece's parquet metadata: sequences its batches ran through the encoder
ORDERS = ("rows", "users")


# How a plan field that differs is told to the user.
_CHANGED = {
    "model_files": "the model's files changed since",
    "prepared_fingerprint": "the split was prepared again since",
    "features_fingerprint": "the features were made again since",
}


def prepared_fingerprint(prepared: Prepared) -> str:
    """Identity of a prepared split: its manifest changes whenever ``prepare`` rewrites it."""
    return file_digest(prepared.path / MANIFEST)


def scores_folder(out: Path) -> FolderPlan:
    """``SCORES_DIR/predict.json``, the plan of a scores folder (written and read in this module only)."""
    return FolderPlan(out, PLAN_FILE, "scores", "scored pieces")


@dataclass(frozen=True)
class ScoresPlan:
    """What ``SCORES_DIR/predict.json`` records that other steps read."""

    model: Path  # the model folder whose weights scored the pieces
    split: str | None  # None (and the fields below): a plan written before they were recorded
    piece_rows: int | None
    order: str  # "rows" for plans older than the choice of order
    scores: SplitData | None
    trained_on: tuple[SplitData, ...] | None  # None: unknown

    @classmethod
    def read(cls, out: Path) -> "ScoresPlan | None":
        """The plan of scores folder ``out``; None when it has none."""
        folder = scores_folder(out)
        if not folder.exists():
            return None
        have = folder.read()
        found = have.get("trained_on")
        return cls(Path(have["model"]), have.get("split"), have.get("piece_rows"), have.get("order", "rows"),
                   SplitData.from_dict(have["scores"]) if "scores" in have else None,
                   None if found is None else tuple(SplitData.from_dict(t) for t in found))


def plan(out: Path, prepared: Prepared, model_dir: Path, piece_rows: int, features: str | Path | None = None,
         order: str = "rows") -> dict:
    """Create or check ``SCORES_DIR/predict.json``: which model, which split, which pieces in which order
    (and which features folder, for a model that reads one).

    Raises Recsys24Error when ``out`` holds pieces of another model or split,
    of other weights at the same model path, of the same split prepared again,
    or pieces without a ``predict.json`` to say what they are.
    """
    want = {"model": str(Path(model_dir).resolve()), "model_files": folder_fingerprint(model_dir),
            "prepared": str(prepared.path.resolve()), "prepared_fingerprint": prepared_fingerprint(prepared),
            "split": prepared.split, "num_rows": prepared.num_impressions, "piece_rows": piece_rows, "order": order}
    if features is not None:  # the feature plan changes whenever the folder is made from other inputs
        want |= {"features": str(Path(features).resolve()), "features_fingerprint": file_digest(
            Path(features) / FEATURES_PLAN)}
    folder = scores_folder(out)
    if folder.check(want, _reason, {"order": "rows"}) is None:  # older plans: rows
        folder.require(want, {"scores": SplitData.of_prepared(prepared).to_dict(), "trained_on": trained_on(model_dir)})
    return want


def trained_on(model_dir: Path) -> list[dict] | None:
    """The splits a model folder's weights learned from (:class:`SplitData` dicts); None when unknown.

    ``recsys24 train`` records them in the folder's spec file; for a folder
    exported before it did, they come from its run's config (``train.train_data``).
    """
    from recsys24.models.contract import ModelOrigin

    origin = ModelOrigin.read(model_dir)
    if origin is not None and origin.trained_on is not None:
        return [t.to_dict() for t in origin.trained_on]
    train_data = run_train_data(Path(model_dir).parent) if origin else None
    try:
        return [SplitData.of_prepared(open_prepared(train_data)).to_dict()] if train_data else None
    except Recsys24Error:
        return None  # that split is gone or damaged: unknown


def provenance(out: Path) -> Provenance:
    """The provenance of the scores merged from ``out``, as ``predict.json`` recorded it."""
    have = ScoresPlan.read(out)
    return Provenance(have.scores, f"model {have.model}", have.trained_on)


def _reason(key: str, have: dict) -> str:
    """Why a plan field that differs refuses the folder, told to the user."""
    if key not in have:
        return f"no {key} recorded (an older recsys24 scored them)"
    if key in _CHANGED:
        return f"{_CHANGED[key]} they were scored"
    if key == "order":
        return f"pieces in {have[key]} order: pass --order {have[key]} to finish them"
    return f"{key}={have[key]!r}"


def check_merge_plan(out: Path, prepared: Prepared) -> None:
    """Refuse to merge pieces that were scored on another split, or before it was prepared again."""
    folder = scores_folder(out)
    if not folder.exists():
        raise Recsys24Error(f"{out}: no {PLAN_FILE}; run `recsys24 predict` into it first")
    have = folder.read()
    want = {"prepared": str(prepared.path.resolve()), "prepared_fingerprint": prepared_fingerprint(prepared),
            "split": prepared.split, "num_rows": prepared.num_impressions}
    model = Path(have.get("model", "?"))
    if "model_files" in have and not model.is_dir():
        raise Recsys24Error(f"{out}: its pieces were scored by {model}, which is gone, so they cannot be checked "
                            "against its weights; score again into a new --out folder")
    want["model_files"] = folder_fingerprint(model) if model.is_dir() else None  # weights retrained since?
    folder.check(want, _reason)


def planned_layout(out: Path, prepared: Prepared) -> "RowPieces | UserPieces":
    """The pieces ``predict.json`` plans (by rows for plans older than the choice of order)."""
    have = ScoresPlan.read(out)
    return layout(have.order, prepared, have.piece_rows)


class RowPieces:
    """The pieces of a prepared split by row range; a piece is its ``(first, end)`` rows."""

    order = "rows"

    def __init__(self, prepared: Prepared, piece_rows: int):
        self.prepared, self.piece_rows = prepared, piece_rows

    def shard(self, shard_id: int, num_shards: int) -> list[tuple[int, int]]:
        return shard_pieces(self.prepared.num_impressions, self.piece_rows, shard_id, num_shards)

    def rows(self, piece: tuple[int, int]) -> int:
        return piece[1] - piece[0]

    def path(self, out: Path, piece: tuple[int, int]) -> Path:
        return piece_path(out, *piece)

    def read(self, piece: tuple[int, int], columns: list[str]) -> pl.DataFrame:
        return read_rows(self.prepared, *piece, columns)

    def existing(self, out: Path) -> list[Path]:
        return [path for _, _, path in existing_pieces(out)]

    def merge(self, out: Path, scores_path: Path, provenance: Provenance | None = None) -> int:
        return merge(out, self.prepared.num_impressions, scores_path, provenance)


def layout(order: str, prepared: Prepared, piece_rows: int) -> RowPieces | UserPieces:
    """How the split is cut into pieces: by row range (``rows``) or by user bucket (``users``)."""
    if order not in ORDERS:
        raise Recsys24Error(f"--order must be one of {', '.join(ORDERS)}, got {order!r}")
    return (RowPieces if order == "rows" else UserPieces)(prepared, piece_rows)


def damaged(pieces: "RowPieces | UserPieces", out: Path, piece) -> bool:
    """Whether ``piece``'s file exists but its footer is unreadable or counts other rows than it should."""
    path = pieces.path(out, piece)
    return path.is_file() and not intact_piece(path, pieces.rows(piece))


@dataclass(frozen=True)
class PieceCounts:
    """What ``predict.json``'s ``counts`` sums over the pieces of a scores folder."""

    pieces: int
    rows: int
    history_encodings: int | None  # None: a piece written before pieces carried their encodings

    @property
    def rows_per_encoding(self) -> float | None:
        return round(self.rows / self.history_encodings, 3) if self.history_encodings else None

    def to_dict(self) -> dict:
        return {"pieces": self.pieces, "rows": self.rows, ENCODINGS: self.history_encodings,
                "rows_per_encoding": self.rows_per_encoding}


def record_counts(out: Path, paths: list[Path]) -> PieceCounts:
    """Sum rows and history encodings over ``paths`` (pieces) into ``predict.json``'s ``counts``; return them.

    A piece written before pieces carried their encodings leaves the encodings unknown (None).
    """
    rows, encodings = 0, 0
    for path in paths:
        try:
            meta = pq.read_metadata(path)
        except (OSError, pa.ArrowException):
            continue  # a damaged piece counts as missing: its shard's next run scores it again
        rows += meta.num_rows
        found = (meta.metadata or {}).get(ENCODINGS.encode())
        encodings = None if found is None or encodings is None else encodings + int(found)
    counts = PieceCounts(len(paths), rows, encodings)
    folder = scores_folder(out)
    write_json(folder.read() | {"counts": counts.to_dict()}, folder.path)
    return counts


def piece_ranges(num_rows: int, piece_rows: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + piece_rows, num_rows)) for lo in range(0, num_rows, piece_rows)]


def shard_pieces(num_rows: int, piece_rows: int, shard_id: int, num_shards: int) -> list[tuple[int, int]]:
    """The contiguous block of pieces that shard ``shard_id`` of ``num_shards`` scores."""
    pieces = piece_ranges(num_rows, piece_rows)
    mine = shard_range(len(pieces), shard_id, num_shards)
    return pieces[mine.start:mine.stop]


def read_rows(prepared: Prepared, lo: int, hi: int, columns: list[str] | None = None) -> pl.DataFrame:
    """Impressions ``lo`` (inclusive) to ``hi`` (exclusive) of a prepared split, reading only their shards."""
    parts = []
    for shard in prepared.shards("impressions"):
        if shard.end_row <= lo or shard.first_row >= hi:
            continue
        with reading(shard.path, prepared.remedy):
            table = pq.ParquetFile(shard.path).read(columns=columns)
        start = max(lo - shard.first_row, 0)
        parts.append(pl.from_arrow(table.slice(start, min(hi, shard.end_row) - shard.first_row - start)))
    return pl.concat(parts) if len(parts) > 1 else parts[0]


def merge(out: Path, num_rows: int, scores_path: Path, provenance: Provenance | None = None) -> int:
    """Stream all pieces, in row order, into one scores file; every row exactly once.

    Raises Recsys24Error naming the first missing or doubly scored row, or a damaged piece.
    """
    expected = 0
    with ScoresWriter(scores_path, provenance) as writer:
        for lo, hi, path in existing_pieces(out):
            if lo < expected:
                raise Recsys24Error(f"{out}: rows {lo}..{min(hi, expected) - 1} are scored twice ({path.name} "
                                    "overlaps an earlier piece)")
            if lo > expected:
                raise Recsys24Error(f"{out}: rows {expected}..{lo - 1} have no scores (rerun the shard that owns them)")
            piece = read_parquet_checked(path, remedy=PIECE_REMEDY)
            rows = piece[S.ROW].to_numpy()
            if rows.size != hi - lo or not np.array_equal(rows, np.arange(lo, hi)):
                raise Recsys24Error(f"{path}: does not hold rows {lo}..{hi - 1} exactly once")
            writer.write(piece.drop(S.ROW))
            expected = hi
        if expected != num_rows:
            raise Recsys24Error(f"{out}: rows {expected}..{num_rows - 1} have no scores (rerun the shard that owns them)")
    return expected
