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

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from recsys24.data import schema as S
from recsys24.data.columns import flat_lists
from recsys24.data.prepare import click_labels
from recsys24.data.split import check_columns
from recsys24.errors import Recsys24Error
from recsys24.evaluation.scores import Provenance, SplitData, read_provenance
from recsys24.features.groups import group_max, group_rank
from recsys24.model_inputs.feature_table import FeatureSet, RowStream


def unit_hash(values: np.ndarray, seed: int) -> np.ndarray:
    """A float in [0, 1) per value, from a 64-bit mix of (value, seed) (splitmix64)."""
    with np.errstate(over="ignore"):
        x = np.asarray(values, dtype=np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15) % 2**64)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(2**53)


def _run_folder_of(scores_path: Path) -> Path | None:
    """The training run whose model wrote ``scores_path`` (via predict's plan beside it), if any:
    for scores files written before they carried their provenance."""
    for folder in (scores_path.parent, scores_path.parent.parent):
        plan = folder / "predict.json"
        if plan.is_file():
            model = Path(json.loads(plan.read_text())["model"])
            for run in (model, model.parent):
                if (run / "config.yaml").is_file():
                    return run
    return None


def _older_provenance(scores_path: Path) -> Provenance | None:
    """What a scores file without provenance metadata can still tell: the split its model's run trained on,
    by the content fingerprint that run's prepared split recorded (not by path)."""
    run = _run_folder_of(scores_path)
    if run is None:
        return None  # a heuristic or a file of another tool: nothing to go by
    import yaml

    from recsys24.data.prepared import open_prepared

    train_data = ((yaml.safe_load((run / "config.yaml").read_text()) or {}).get("train") or {}).get("train_data")
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

    def open(self, features: FeatureSet) -> RowStream:
        check_columns(self.path, S.SCORES_SCHEMA)
        rows = pq.ParquetFile(self.path).metadata.num_rows
        if rows != features.plan["num_rows"]:
            raise Recsys24Error(f"{self.path}: {rows} rows but the {features.split_name} split has "
                                f"{features.plan['num_rows']} (a scores file of another split?)")
        check_out_of_sample(self.path, features)
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
        return dict(zip(stacked_names([self]), (values, group_rank(values, offsets),
                                                group_max(values, offsets) - values)))


def stacked_names(scores: list[StackedScores]) -> list[str]:
    return [n for s in scores for n in (f"score_{s.name}", f"score_{s.name}_rank", f"score_{s.name}_gap")]


@dataclass
class Block:
    """Rows of one or more pieces, ready for LightGBM."""

    x: np.ndarray  # float32 [rows, features]
    label: np.ndarray | None  # int8 [rows]
    group: np.ndarray  # candidates per impression, in order
    row: np.ndarray  # behaviors row per impression
    impression: np.ndarray  # impression id per impression
    user: np.ndarray  # user id per impression
    rows_read: int = 0  # behaviors rows of the pieces read for this block, kept or not


def iter_blocks(features: FeatureSet, names: list[str], scores: list[StackedScores] = (),
                labels: bool = True, keep=None, needed: set[str] | None = None):
    """Yield a :class:`Block` per features piece, with only the impressions ``keep(rows, users)`` selects.

    ``needed``: the features to read (default: all of ``names``); the others
    are NaN columns, for a model whose trees never split on them (prediction
    then reads less and gives the same scores).
    """
    split = features.split()
    if labels and not split.has_clicks:
        raise Recsys24Error(f"{features.path}: the {split.name} split has no clicks to train on")
    stacked = set(stacked_names(scores))
    base = [n for n in names if n not in stacked]
    missing = [n for n in base if n not in features.names]
    if missing:
        raise Recsys24Error(f"{features.path}: has no feature(s) {', '.join(missing)} "
                            "(made with other options, e.g. --past-only?)")
    read = [n for n in base if needed is None or n in needed]
    streams = [s.open(features) for s in scores]
    clicks = RowStream(split.behaviors, [S.INVIEW, S.CLICKED]) if labels else None
    for lo, hi, path in features.pieces():
        frame = pl.read_parquet(path, columns=[S.ROW, S.IMPRESSION_ID, S.USER_ID, *read])
        for s, stream in zip(scores, streams):
            frame = frame.with_columns(pl.Series(n, v) for n, v in s.columns(stream, lo, hi, frame).items())
        group = np.bincount(frame[S.ROW].to_numpy().astype(np.int64) - lo, minlength=hi - lo)
        label = None
        if clicks is not None:
            behaviors = clicks.take(lo, hi)
            label = flat_lists(click_labels(behaviors[S.INVIEW], behaviors[S.CLICKED]))[0].astype(np.int8)
        rows = np.arange(lo, hi)
        first = np.cumsum(group) - group
        users = frame[S.USER_ID].to_numpy()[first]
        impressions = frame[S.IMPRESSION_ID].to_numpy()[first]
        kept = np.ones(hi - lo, bool) if keep is None else np.broadcast_to(keep(rows, users), hi - lo)
        if not kept.all():
            take = np.repeat(kept, group)
            frame = frame.filter(pl.Series(take))
            label = None if label is None else label[take]
        # one C-order float32 matrix, as LightGBM reads it without a copy
        x = frame.select(pl.col(n).cast(pl.Float32) if n in frame.columns else pl.lit(None, pl.Float32).alias(n)
                         for n in names).to_numpy(order="c")
        yield Block(x, label, group[kept], rows[kept], impressions[kept],
                    users[kept], hi - lo)


def concat_blocks(blocks) -> Block:
    blocks = list(blocks)
    if not blocks:
        raise Recsys24Error("no impressions selected")
    label = None if blocks[0].label is None else np.concatenate([b.label for b in blocks])
    return Block(np.concatenate([b.x for b in blocks]), label,
                 *(np.concatenate([getattr(b, f) for b in blocks]) for f in ("group", "row", "impression", "user")))
