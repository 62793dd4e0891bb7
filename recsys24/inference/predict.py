"""``recsys24 predict``: score a prepared split with a trained model, shard by shard.

Within a piece, impressions are sorted by the length of their prompt's history
part (length bucketing, so padding stays small), cut into batches of about
``batch_size`` candidates, scored (bf16 on GPU, fp32 on CPU) and put back in
row order. Batch size, piece size, the fast path and the piece order are the
architecture's ``scoring`` defaults (:class:`recsys24.models.scoring.ScoringDefaults`)
unless given. See :mod:`recsys24.inference.pieces` for how pieces make a killed
run resumable and how shards are merged, and :mod:`recsys24.inference.user_order`
for pieces of whole users (CGh: one history encoding per user).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import polars as pl
import torch

from recsys24.data import schema as S
from recsys24.data.columns import list_series
from recsys24.data.cuts import cut_bounds
from recsys24.data.prepared import PREPARED_WANTED, Prepared, is_raw_folder, open_prepared, raw_folder_hint
from recsys24.errors import Recsys24Error
from recsys24.evaluation.scores import scores_frame
from recsys24.inference import pieces as P
from recsys24.inference.user_order import group_starts
from recsys24.io import read_ahead, remove_stale_temps, write_parquet
from recsys24.model_inputs.prefetch import prefetched

if TYPE_CHECKING:
    from recsys24.models.contract import Model

COLUMNS = [S.ROW, S.IMPRESSION_ID, S.USER_ID, S.IMPRESSION_TIME, S.INVIEW, S.HISTORY_IDS, S.HISTORY_TIMES]


def resolve_model_dir(path: str | Path) -> Path:
    """A model folder, or a training run folder whose exported ``model/`` is used."""
    from recsys24.models.contract import SPEC_FILE

    path = Path(path)
    wanted = "give a `recsys24 train` run folder, its model/ folder, or baseline:NAME"
    if not path.exists():
        raise Recsys24Error(f"{path}: no such model folder ({wanted})")
    for candidate in (path, path / "model"):
        if (candidate / SPEC_FILE).is_file():
            return candidate
    if path.is_dir() and (path / "checkpoints").is_dir():
        raise Recsys24Error(f"{path}: a run folder without model/ (training has not finished; rerun "
                            "`recsys24 train` with the same --output to finish it)")
    raise Recsys24Error(f"{path}: neither a model folder nor a run folder with model/ (no {SPEC_FILE}; {wanted})")


def resolve_prepared(data: str | Path, split: str) -> Prepared:
    """``--prepared`` is a prepared split, or a folder holding prepared splits as ``<split>/``."""
    data = Path(data)
    if not data.is_dir():
        raise Recsys24Error(f"{data}: no such folder ({PREPARED_WANTED}, or a folder of them as SPLIT/)")
    if is_raw_folder(data):
        raise Recsys24Error(raw_folder_hint(data, split))
    itself = (data / "manifest.json").is_file() or is_raw_folder(data.parent)  # not a folder of splits
    prepared = open_prepared(data if itself else data / split)
    if prepared.split != split:
        raise Recsys24Error(f"{prepared.path}: is the prepared '{prepared.split}' split, not '{split}'")
    return prepared


def model_features(model, model_dir: Path, prepared: Prepared, features):
    """The checked features folder a model reads (None for one that reads none); refuses a missing or wrong one.

    features: a path, or a features folder already opened with ``open_model_features``.
    """
    if not model.reads_features:
        if features is not None:
            raise Recsys24Error(f"{model_dir}: this model reads no feature table; drop --features")
        return None
    if features is None:
        raise Recsys24Error(f"{model_dir}: this model (CGh-f) reads the feature table: give --features FEAT, the "
                            f"`recsys24 features` folder of the '{prepared.split}' split")
    if not isinstance(features, (str, Path)):
        return features
    from recsys24.model_inputs.feature_codes import open_model_features

    return open_model_features(features, prepared)


def default_piece_rows(model_dir: Path) -> int:
    """The piece size the model folder's architecture declares (``scoring.piece_rows``)."""
    return _scoring(_spec(model_dir)).piece_rows


def default_order(model_dir: Path) -> str:
    """``users`` if the model folder's architecture declares ``scoring.user_order``, else ``rows``."""
    return _order(_scoring(_spec(model_dir)))


def _spec(model_dir: Path):
    from recsys24.models.contract import ModelSpec

    return ModelSpec.read(model_dir)


def _scoring(spec):
    from recsys24.models.registry import architecture

    return architecture(spec.architecture).scoring


def _order(scoring) -> str:
    return "users" if scoring.user_order else "rows"


@dataclass
class Scorer:
    """A loaded model, its token table and collator, on one device."""

    model: Model
    collator: object
    device: torch.device
    encodings: int = 0  # CGh: histories run through the encoder so far (distinct histories per batch)

    @classmethod
    def load(cls, model_dir: Path, prepared: Prepared, device: str | None = None, fast: bool = True,
             features=None, spec=None) -> "Scorer":
        """Load a model folder and build the token table of ``prepared``'s articles.

        features: the features folder of ``prepared``'s split (a path or an opened one), for a model that reads
        the feature table (CGh-f). spec: the folder's ``ModelSpec``, when already read.
        """
        from recsys24.models.loading import load_recommender

        model, tokenizer = load_recommender(model_dir, spec)
        prepared.require_history(model.spec.prompt.history_size, f"the model {model_dir} (prompt.history_size)")
        return cls.from_model(model, tokenizer, prepared.articles(), device, fast,
                              model_features(model, model_dir, prepared, features))

    @classmethod
    def from_model(cls, model, tokenizer, articles: pl.DataFrame, device: str | None = None,
                   fast: bool = True, features=None) -> "Scorer":
        """Wrap an in-memory model: bf16 on GPU, fp32 on CPU, in eval mode, on its fast path if it has one."""
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        model = model.to(dev, dtype=torch.bfloat16 if dev.type == "cuda" else torch.float32).eval()
        if model.scoring.fast_path:
            model.enable_fast_scoring(fast, compile=fast and dev.type == "cuda")
        return cls(model, model.make_collator(articles, tokenizer, features=features), dev)

    @torch.inference_mode()
    def score_frame(self, frame: pl.DataFrame, batch_size: int | None = None,
                    progress: Callable[[int], None] | None = None, whole_histories: bool = False) -> pl.Series:
        """Scores (list[f32] in in-view order) of every impression of ``frame``, in frame order.

        progress: called after each batch with the number of impressions of ``frame`` scored so far.
        whole_histories: cut batches only between runs of equal ``collator.sort_key`` (for CGh's
        collator, one history), so each history is encoded once in ``frame``; a history with more
        than ``batch_size`` candidates then gets a batch of its own.
        """
        batch_size = batch_size or self.model.scoring.batch_size
        if frame.height == 0:
            return list_series(S.SCORES, np.zeros(0, np.float32), np.zeros(1, np.int64))
        key = getattr(self.collator, "sort_key", None)
        keys = key(frame) if key else np.arange(frame.height)
        order = np.argsort(keys, kind="stable")
        counts = frame[S.INVIEW].list.len().to_numpy().astype(np.int64)
        sorted_counts = counts[order]
        groups = group_starts(keys[order]) if whole_histories and key else None
        bounds = cut_bounds(sorted_counts, batch_size, groups)
        flat = np.concatenate(list(self._scores(frame, order, bounds, progress)))
        # Back to frame order: impression i's scores start where it sits in the sorted run.
        start_sorted = np.cumsum(sorted_counts) - sorted_counts
        start = np.empty_like(start_sorted)
        start[order] = start_sorted
        offsets = np.concatenate([[0], np.cumsum(counts)])
        gather = np.repeat(start - offsets[:-1], counts) + np.arange(offsets[-1])
        return list_series(S.SCORES, flat[gather].astype(np.float32), offsets)

    def _scores(self, frame: pl.DataFrame, order: np.ndarray, bounds: np.ndarray, progress=None):
        """Scores of each batch; the next batch is collated on a thread while the device scores this one."""
        def collate(i):
            return self.collator(frame[order[bounds[i]:bounds[i + 1]]])

        for i, batch in enumerate(prefetched(collate, len(bounds) - 1)):
            self.encodings += batch.num_histories
            yield self.model.score(batch.to(self.device)).float().cpu().numpy()
            if progress:
                progress(int(bounds[i + 1]))


@dataclass(frozen=True)
class ShardStats:
    """What one run of :func:`predict_shard` did, and what the scores folder holds after it."""

    shard: int
    num_shards: int
    order: str  # of the pieces: rows or users
    rows: int  # impressions of the shard
    skipped_rows: int  # scored by earlier runs
    damaged: int  # pieces found cut short since they were written, scored again
    counts: P.PieceCounts  # of every piece of the folder so far (``predict.json``'s ``counts``)
    scored_rows: int = 0  # impressions this run scored
    pairs: int = 0  # (impression, candidate) pairs this run scored
    history_encodings: int = 0  # sequences this run's batches ran through the history encoder
    seconds: float = 0.0  # this run's scoring


def predict_shard(
    model: str | Path,
    prepared: Prepared,
    out: str | Path,
    shard_id: int = 0,
    num_shards: int = 1,
    batch_size: int | None = None,
    piece_rows: int | None = None,
    device: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    fast: bool = True,
    features: str | Path | None = None,
    order: str | None = None,
) -> ShardStats:
    """Score this shard's missing pieces into ``out/pieces``; return counts and throughput.

    order: ``rows`` (pieces of consecutive rows) or ``users`` (pieces of whole
    users, batches cut between histories); default: the architecture's
    ``scoring.user_order``. The returned ``history_encodings`` counts this run's
    encoder sequences; its ``counts`` (``predict.json``'s) sums those of every piece.

    progress: called with (impressions of the shard done, the shard's impressions)
    once before any work (what earlier runs left counts as done), then after every batch.

    Raises Recsys24Error when ``out`` holds pieces of another model, other
    weights or another preparation of the split (see :func:`pieces.plan`).
    Temporaries left in ``out`` by killed runs are removed first.
    """
    out = Path(out)
    model_dir = resolve_model_dir(model)
    spec = _spec(model_dir)  # read once: the scoring defaults here, the model below
    scoring = _scoring(spec)
    piece_rows = piece_rows or scoring.piece_rows
    order = order or _order(scoring)
    feature_set = None
    if features is not None:  # opened once; a wrong features folder is refused before anything is written
        from recsys24.model_inputs.feature_codes import open_model_features

        feature_set = open_model_features(features, prepared)
    P.plan(out, prepared, model_dir, piece_rows, features, order)
    for folder in (out, out / "pieces"):  # other shards' live temporaries are kept
        remove_stale_temps(folder)
    pieces = P.layout(order, prepared, piece_rows)
    mine = pieces.shard(shard_id, num_shards)
    damaged = [piece for piece in mine if P.damaged(pieces, out, piece)]
    for piece in damaged:  # cut short since it was written (a bad copy, a disk fault): scored again below
        pieces.path(out, piece).unlink()
    todo = [piece for piece in mine if not pieces.path(out, piece).is_file()]
    total = sum(map(pieces.rows, mine))
    done = skipped = total - sum(map(pieces.rows, todo))
    if progress:
        progress(done, total)
    if not todo:
        return ShardStats(shard_id, num_shards, order, total, skipped, len(damaged),
                          P.record_counts(out, pieces.existing(out)))
    scorer = Scorer.load(model_dir, prepared, device, fast, feature_set, spec)
    t0 = time.perf_counter()
    whole = order == "users" and scoring.user_order
    pairs = 0
    # the next piece is read (a user piece reads every impression file) while this one is scored
    for piece, frame in read_ahead((piece, pieces.read(piece, COLUMNS)) for piece in todo):
        within = (lambda n, before=done: progress(before + n, total)) if progress else None
        before = scorer.encodings
        scores = scorer.score_frame(frame, batch_size, within, whole_histories=whole)
        result = scores_frame(frame[S.IMPRESSION_ID], frame[S.USER_ID], scores).insert_column(0, frame[S.ROW])
        write_parquet(result, pieces.path(out, piece), {P.ENCODINGS: str(scorer.encodings - before)})
        pairs += int(frame[S.INVIEW].list.len().sum())
        done += frame.height
    seconds = time.perf_counter() - t0
    return ShardStats(shard_id, num_shards, order, total, skipped, len(damaged),
                      P.record_counts(out, pieces.existing(out)), done - skipped, pairs, scorer.encodings, seconds)


def merge_scores(prepared: Prepared, out: str | Path, scores_path: str | Path | None = None) -> Path:
    """Merge every piece of ``out`` into ``out/scores.parquet`` (or ``scores_path``).

    Refuses pieces scored on another split, before the split was prepared again,
    or by a model whose files changed since. The scores file carries the
    provenance ``predict.json`` recorded (the split scored, the splits the model trained on).
    """
    out = Path(out)
    P.check_merge_plan(out, prepared)
    scores_path = Path(scores_path) if scores_path else out / "scores.parquet"
    pieces = P.planned_layout(out, prepared)
    pieces.merge(out, scores_path, P.provenance(out))
    P.record_counts(out, pieces.existing(out))
    return scores_path
