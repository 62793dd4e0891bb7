"""Feature rows, labels and stacked scores for the ranker, read piece by piece.

A ranker's input row is one (impression, candidate) of a features folder, in
its order, plus for each stacked scores file ``NAME`` three columns:
``score_NAME`` (the raw score), ``score_NAME_rank`` (its rank in the
impression, 1 = highest) and ``score_NAME_gap`` (the impression's highest score
minus this one). NAME is letters, digits, ``_`` and ``-``. Labels come from the split's ``article_ids_clicked``, never
from the features.

Two seeded, order-free choices (a hash of the row or user id, not a random
stream, so any piece gives the same answer alone):

- ``sample``: the share of impressions kept for training (all candidates of a
  kept impression are kept);
- ``holdout``: the share of users whose impressions are held out for early
  stopping when no separate validation features are given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from recsys24.data import schema as S
from recsys24.data.columns import flat_lists, list_series
from recsys24.data.hashing import SPLITMIX64, mix64
from recsys24.data.prepare import click_labels
from recsys24.data.split import RowStream, check_columns, iter_batches
from recsys24.errors import Recsys24Error
from recsys24.evaluation.scores import Provenance, SplitData, read_provenance
from recsys24.features.groups import group_max, group_rank
from recsys24.features.folder import FeatureSet
from recsys24.inference.pieces import ScoresPlan
from recsys24.training.runlog import is_run_folder, run_train_data


def unit_hash(values: np.ndarray, seed: int) -> np.ndarray:
    """A float in [0, 1) per value, from a 64-bit mix of (value, seed) (splitmix64)."""
    x = mix64(np.asarray(values, dtype=np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15) % 2**64), SPLITMIX64)
    return (x >> np.uint64(11)).astype(np.float64) / float(2**53)


def _run_folder_of(scores_path: Path) -> Path | None:
    """The training run whose model wrote ``scores_path`` (via predict's plan beside it), if any:
    for scores files written before they carried their provenance."""
    for folder in (scores_path.parent, scores_path.parent.parent):
        plan = ScoresPlan.read(folder)
        if plan is not None:
            for run in (plan.model, plan.model.parent):
                if is_run_folder(run):
                    return run
    return None


def _older_provenance(scores_path: Path) -> Provenance | None:
    """What a scores file without provenance metadata can still tell: the split its model's run trained on,
    by the content fingerprint that run's prepared split recorded (not by path)."""
    run = _run_folder_of(scores_path)
    if run is None:
        return None  # a heuristic or a file of another tool: nothing to go by
    from recsys24.data.prepared import open_prepared

    train_data = run_train_data(run)
    try:
        trained = SplitData.of_prepared(open_prepared(train_data)) if train_data else None
    except Recsys24Error:
        return None
    return None if trained is None else Provenance(None, f"the model of {run}", (trained,))


def check_out_of_sample(scores_path: Path, features: FeatureSet) -> None:
    """Refuse scores of other data than the features' split, or made by a model that trained on that split.

    Both are decided by content fingerprints of behaviors files: the scores
    file's :class:`Provenance` (its parquet metadata) against the features'
    ``features.json``, so a copied scores file, or features of a copy of the
    data folder, are recognised as well as the originals.
    """
    here = features.split_data
    found = read_provenance(scores_path) or _older_provenance(scores_path)
    if here is None or found is None:
        return  # nothing recorded on one side: nothing to compare
    if found.scores is not None and found.scores.behaviors != here.behaviors:
        raise Recsys24Error(
            f"{scores_path}: scores the '{found.scores.split}' split of other data than {features.path} "
            f"(another {found.scores.split}/behaviors.parquet); stack scores of the features' own split")
    for trained in found.trained_on or ():
        if trained.behaviors == here.behaviors:
            other = "validation" if trained.split != "validation" else "train"
            raise Recsys24Error(
                f"{scores_path}: made by {found.scorer}, which trained on the '{trained.split}' split; "
                f"{features.path} holds features of that same split, so stacking would rank by in-sample "
                f"scores (stack it on features of a split it did not train on, e.g. {other})")


@dataclass
class StackedScores:
    """One scores file read beside a features folder, piece by piece."""

    name: str
    path: Path

    def __post_init__(self):
        if not re.fullmatch(r"[A-Za-z0-9_-]+", self.name):
            raise Recsys24Error(f"--scores {self.name}=...: a name is letters, digits, '_' and '-'")

    def check(self, features: FeatureSet) -> None:
        """Refuse a scores file of another split, or one made in sample for the features' split."""
        check_columns(self.path, S.SCORES_SCHEMA)
        rows = pq.ParquetFile(self.path).metadata.num_rows
        if rows != features.plan.num_rows:
            raise Recsys24Error(f"{self.path}: {rows} rows but the {features.split_name} split has "
                                f"{features.plan.num_rows} (a scores file of another split?)")
        check_out_of_sample(self.path, features)

    def open(self, features: FeatureSet) -> RowStream:
        """The file's rows from the first, for :meth:`columns` (checked by :meth:`check` first)."""
        return RowStream(self.path, list(S.SCORES_SCHEMA))

    def columns(self, stream: RowStream, lo: int, hi: int, keys: pl.DataFrame) -> dict[str, np.ndarray]:
        """The three stacked columns for rows lo..hi-1; ``keys`` are the features' key columns."""
        scores = stream.take(lo, hi)
        values, offsets = flat_lists(scores[S.SCORES])
        if values.size != keys.height or not np.array_equal(
                np.repeat(scores[S.IMPRESSION_ID].to_numpy(), np.diff(offsets)), keys[S.IMPRESSION_ID].to_numpy()):
            raise Recsys24Error(f"{self.path}: rows {lo}..{hi - 1} do not match the features' impressions "
                                "and candidates (a scores file of another split?)")
        values = values.astype(np.float32)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            row = lo + int(np.searchsorted(offsets, bad[0], side="right") - 1)
            raise Recsys24Error(f"{self.path}: row {row}: a score is NaN or infinite (rescore it; a ranker cannot "
                                "stack undefined scores)")
        return dict(zip(stacked_names([self]), (values, group_rank(values, offsets),
                                                group_max(values, offsets) - values)))


def stacked_names(scores: list[StackedScores]) -> list[str]:
    return [n for s in scores for n in (f"score_{s.name}", f"score_{s.name}_rank", f"score_{s.name}_gap")]


@dataclass
class Selection:
    """The impressions of one features folder a ranker reads, chosen before any feature is read.

    Built from the split's behaviors file alone (ids, in-view counts, clicks),
    so the rows and labels a run will use, and the memory it will need, are
    known before the first features piece is opened.
    """

    features: FeatureSet
    scores: list[StackedScores]
    inview: np.ndarray  # int32 candidates per behaviors row (every row)
    kept: np.ndarray  # bool per behaviors row
    impression: np.ndarray  # u32 impression id per behaviors row
    user: np.ndarray  # u32 user id per behaviors row
    label: np.ndarray | None  # int8 per kept candidate, in row order (None without clicks)

    @property
    def group(self) -> np.ndarray:
        """Candidates per kept impression, in row order (LightGBM's query sizes)."""
        return self.inview[self.kept]

    @property
    def rows(self) -> np.ndarray:
        return np.flatnonzero(self.kept)

    @property
    def candidates(self) -> int:
        return int(self.group.sum(dtype=np.int64))

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.group)]).astype(np.int64)

    def piece_candidates(self, pieces: list[tuple[int, int, Path]]) -> np.ndarray:
        """Kept candidates of each piece."""
        kept = np.concatenate([[0], np.cumsum(np.where(self.kept, self.inview, 0), dtype=np.int64)])
        return np.array([kept[hi] - kept[lo] for lo, hi, _ in pieces], dtype=np.int64)


def select(features: FeatureSet, scores: list[StackedScores] = (), keep=None, labels: bool = True,
           batch_rows: int = 1_000_000) -> Selection:
    """The rows ``keep(rows, users)`` selects (all when None), with their click labels.

    Streams the split's behaviors file (ids, in-view lists, clicks) in batches;
    nothing of the features folder is read here.
    """
    return select_each(features, scores, [keep], labels, batch_rows)[0]


def select_each(features: FeatureSet, scores: list[StackedScores], keeps: list, labels: bool = True,
                batch_rows: int = 1_000_000) -> list[Selection]:
    """One :class:`Selection` per ``keep`` (e.g. training rows and held-out users), from one pass over the
    behaviors file; they share its per-row arrays (in-view counts, impression and user ids)."""
    split = features.split()
    if labels and not split.has_clicks:
        raise Recsys24Error(f"{features.path}: the {split.name} split has no clicks to train on")
    columns = [S.IMPRESSION_ID, S.USER_ID, S.INVIEW] + ([S.CLICKED] if labels else [])
    inview, impressions, users = [], [], []
    kept, label = [[] for _ in keeps], [[] for _ in keeps]
    for first, frame in iter_batches(split.behaviors, columns, batch_rows):
        rows = np.arange(first, first + frame.height)
        ids = frame[S.USER_ID].to_numpy()
        inview.append(frame[S.INVIEW].list.len().to_numpy().astype(np.int32))
        impressions.append(frame[S.IMPRESSION_ID].to_numpy())
        users.append(ids)
        every = click_labels(frame[S.INVIEW], frame[S.CLICKED]) if labels else None
        for k, keep in enumerate(keeps):
            take = np.ones(frame.height, bool) if keep is None else np.broadcast_to(keep(rows, ids), frame.height)
            kept[k].append(np.array(take))
            if labels:
                label[k].append(flat_lists(every.filter(pl.Series(take)))[0].astype(np.int8))
    for s in scores:
        s.check(features)
    inview, impressions, users = np.concatenate(inview), np.concatenate(impressions), np.concatenate(users)
    return [Selection(features, list(scores), inview, np.concatenate(kept[k]), impressions, users,
                      np.concatenate(label[k]) if labels else None) for k in range(len(keeps))]


def feature_columns(features: FeatureSet, names: list[str], scores: list[StackedScores]) -> list[str]:
    """The features folder's own columns among ``names`` (the rest are stacked scores); refuses missing ones."""
    stacked = set(stacked_names(scores))
    base = [n for n in names if n not in stacked]
    missing = [n for n in base if n not in features.names]
    if missing:
        raise Recsys24Error(f"{features.path}: has no feature(s) {', '.join(missing)} "
                            "(made with other options, e.g. --past-only?)")
    return base


class PieceReader:
    """The feature matrix of one features piece at a time, stacked scores added, the last one kept.

    ``matrix(i)`` is a C-order float32 array, one row per candidate of the
    selected impressions of piece ``i`` (all of them without a selection), one
    column per name; features in ``names`` but not in ``needed`` are NaN columns
    (for a model whose trees never split on them). Pieces may be asked in any
    order; a stacked scores file is re-read from its start when asked for rows
    before the ones it last gave.
    """

    def __init__(self, features: FeatureSet, names: list[str], scores: list[StackedScores] = (),
                 selection: Selection | None = None, needed: set[str] | None = None):
        self.features, self.names, self.scores, self.selection = features, names, list(scores), selection
        base = feature_columns(features, names, self.scores)
        self.read = [n for n in base if needed is None or n in needed]
        self.pieces = features.pieces()
        self._streams: list[RowStream | None] = [None] * len(self.scores)
        self._cached: tuple[int, np.ndarray] | None = None

    def frame(self, i: int) -> pl.DataFrame:
        """Piece ``i``: key columns, the read features and the stacked score columns, every row of it."""
        lo, hi, path = self.pieces[i]
        frame = self.features.read_piece(path, [S.ROW, S.IMPRESSION_ID, S.USER_ID, *self.read])
        rows = frame[S.ROW].to_numpy()
        if rows.size and (rows[0] != lo or rows[-1] != hi - 1):
            raise Recsys24Error(f"{path}: holds rows {rows[0]}..{rows[-1]}, not {lo}..{hi - 1} "
                                f"(rebuild {self.features.path} with `recsys24 features`)")
        for k, s in enumerate(self.scores):
            stream = self._streams[k]
            if stream is None or stream.position > lo:
                stream = self._streams[k] = s.open(self.features)
            frame = frame.with_columns(pl.Series(n, v) for n, v in s.columns(stream, lo, hi, frame).items())
        return frame

    def matrix(self, i: int) -> np.ndarray:
        if self._cached is not None and self._cached[0] == i:
            return self._cached[1]
        self._cached = None  # free the last piece before reading the next
        frame = self.frame(i)
        if self.selection is not None:
            lo, hi, path = self.pieces[i]
            inview = self.selection.inview[lo:hi]
            if frame.height != inview.sum(dtype=np.int64):
                raise Recsys24Error(f"{path}: {frame.height:,} candidates, but rows {lo}..{hi - 1} of the "
                                    f"behaviors file have {int(inview.sum(dtype=np.int64)):,} "
                                    f"(rebuild {self.features.path})")
            kept = self.selection.kept[lo:hi]
            if not kept.all():
                frame = frame.filter(pl.Series(np.repeat(kept, inview)))
        x = to_matrix(frame, self.names)
        self._cached = (i, x)
        return x

    def clear(self) -> None:
        self._cached, self._streams = None, [None] * len(self.scores)


def to_matrix(frame: pl.DataFrame, names: list[str]) -> np.ndarray:
    """One C-order float32 matrix of ``names`` (a name the frame lacks is a NaN column), as LightGBM reads it."""
    return frame.select(pl.col(n).cast(pl.Float32) if n in frame.columns else pl.lit(None, pl.Float32).alias(n)
                        for n in names).to_numpy(order="c")


@dataclass
class Block:
    """The candidates of one features piece, ready for a model to score."""

    x: np.ndarray  # float32 [candidates, features]
    group: np.ndarray  # candidates per impression, in order
    row: np.ndarray  # behaviors row per impression
    impression: np.ndarray  # impression id per impression
    user: np.ndarray  # user id per impression


def iter_blocks(features: FeatureSet, names: list[str], scores: list[StackedScores] = (),
                needed: set[str] | None = None, pieces: list[int] | None = None):
    """Yield a :class:`Block` per features piece (``pieces``: their indices; default all), every row of it."""
    reader = PieceReader(features, names, scores, needed=needed)
    for i in range(len(reader.pieces)) if pieces is None else pieces:
        lo, hi, _ = reader.pieces[i]
        frame = reader.frame(i)
        group = np.bincount(frame[S.ROW].to_numpy().astype(np.int64) - lo, minlength=hi - lo)
        first = np.cumsum(group) - group
        yield Block(to_matrix(frame, names), group, np.arange(lo, hi),
                    frame[S.IMPRESSION_ID].to_numpy()[first], frame[S.USER_ID].to_numpy()[first])


def list_of(values: np.ndarray, group: np.ndarray, name: str) -> pl.Series:
    """A list column of flat ``values`` cut into lists of ``group`` items (one list per impression)."""
    return list_series(name, values, np.concatenate([[0], np.cumsum(group)]))
