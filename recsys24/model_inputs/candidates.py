"""The candidates of a frame of prepared rows, shared by every collator.

Two kinds of input frame (see ``recsys24/data/prepared.py``):

* training pairs (``positive``, ``negatives``): the candidates are the clicked
  article and its K not-clicked ones, shuffled within the impression so that a
  model cannot learn "the first one is clicked" (this matters for QA+);
* impressions (``article_ids_inview``, ``labels``): the in-view candidates in
  their given order; labels are taken when present (train/validation).

Every collator starts from :func:`frame_candidates`, so all architectures
train and score on exactly the same candidates::

    >>> pairs = pl.DataFrame({"row": [0, 1], "positive": [7, 8], "negatives": [[1, 2], [3]]})
    >>> c = frame_candidates(pairs, np.random.default_rng(0))
    >>> c.counts, c.group            # 1 positive + K negatives per impression
    (array([3, 2]), array([0, 0, 0, 1, 1]))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from recsys24.data import schema
from recsys24.errors import DataError


@dataclass(frozen=True)
class Candidates:
    """article_ids [N] int64; labels [N] float32 or None; counts [B]; group [N] impression index; rows [B]."""

    article_ids: np.ndarray
    labels: np.ndarray | None
    counts: np.ndarray
    group: np.ndarray
    rows: np.ndarray


def right_aligned(lists: pl.Series, width: int, fill: int = -1) -> np.ndarray:
    """The last ``width`` items of each list, right-aligned in an int64 [B, width] matrix."""
    tail = lists.list.drop_nulls().list.tail(width)
    lens = tail.list.len().fill_null(0).to_numpy().astype(np.int64)
    flat = tail.explode().drop_nulls().to_numpy().astype(np.int64)
    out = np.full((len(lists), width), fill, dtype=np.int64)
    if len(flat):
        row = np.repeat(np.arange(len(lists)), lens)
        first = np.cumsum(lens) - lens
        col = width - np.repeat(lens, lens) + (np.arange(len(flat)) - np.repeat(first, lens))
        out[row, col] = flat
    return out


def frame_candidates(frame: pl.DataFrame, rng: np.random.Generator) -> Candidates:
    """The candidates of ``frame``; ``rng`` shuffles those of training pairs (impressions keep their order)."""
    if frame.height == 0:
        raise DataError("collator: empty frame")
    if schema.POSITIVE in frame.columns:
        article_ids, labels, counts = _pair_candidates(frame, rng)
    else:
        article_ids, labels, counts = _impression_candidates(frame)
    group = np.repeat(np.arange(frame.height), counts)
    rows = frame[schema.ROW].to_numpy() if schema.ROW in frame.columns else np.arange(frame.height)
    return Candidates(article_ids, labels, counts, group, rows)


def _pair_candidates(frame: pl.DataFrame, rng: np.random.Generator):
    negatives = frame[schema.NEGATIVES]
    counts = negatives.list.len().to_numpy().astype(np.int64) + 1
    group = np.repeat(np.arange(frame.height), counts)
    first = np.cumsum(counts) - counts
    cands = np.empty(int(counts.sum()), dtype=np.int64)
    cands[first] = frame[schema.POSITIVE].to_numpy()
    is_neg = np.ones(len(cands), dtype=bool)
    is_neg[first] = False
    cands[is_neg] = negatives.explode().drop_nulls().to_numpy()
    labels = (~is_neg).astype(np.float32)
    order = np.lexsort((rng.random(len(cands)), group))
    return cands[order], labels[order], counts


def _impression_candidates(frame: pl.DataFrame):
    inview = frame[schema.INVIEW]
    counts = inview.list.len().to_numpy().astype(np.int64)
    cands = inview.explode().drop_nulls().to_numpy().astype(np.int64)
    labels = None
    if schema.LABELS in frame.columns and frame[schema.LABELS].null_count() == 0:
        labels = frame[schema.LABELS].explode().drop_nulls().to_numpy().astype(np.float32)
        if len(labels) != len(cands):
            raise DataError("prepared impressions: labels and article_ids_inview differ in length")
    return cands, labels, counts
