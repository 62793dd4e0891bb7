"""The contest's accuracy metrics over flat ranker scores, grouped by impression.

Scores and labels are flat, one per (impression, candidate), the candidates of
impression ``i`` at ``offsets[i]:offsets[i + 1]``.
"""

from __future__ import annotations

import numpy as np

from recsys24.data import schema as S
from recsys24.data.columns import list_series
from recsys24.evaluation.metrics import accuracy
from recsys24.features.groups import group_index, group_rank


def offsets_of(group: np.ndarray) -> np.ndarray:
    """int64 offsets (from 0) of impressions of ``group`` candidates each."""
    return np.concatenate([[0], np.cumsum(group)]).astype(np.int64)


def group_metrics(scores: np.ndarray, labels: np.ndarray, group: np.ndarray) -> dict[str, float]:
    """Contest metrics (per impression, averaged) of flat scores, as ``recsys24 evaluate`` computes them."""
    offsets = offsets_of(group)
    return accuracy(list_series(S.SCORES, np.asarray(scores, np.float32), offsets),
                    list_series(S.LABELS, np.asarray(labels, np.int8), offsets))


def group_auc(scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray) -> float:
    """Mean per-impression ROC-AUC (ties count one half), over impressions with both labels.

    The rank-sum form of what ``group_metrics`` computes, fast enough to run
    after every boosting round:

    >>> group_auc(np.array([.9, .1, .5, .2, .2]), np.array([1, 0, 0, 1, 0]), np.array([0, 3, 5]))
    0.75
    """
    n = np.repeat(np.diff(offsets), np.diff(offsets))
    low = group_rank(scores, offsets, descending=False)  # 1-based, ties take the smallest
    high = n + 1 - group_rank(scores, offsets, descending=True)  # ... the largest
    group = group_index(offsets)
    count = np.diff(offsets)
    pos = np.bincount(group, weights=labels, minlength=count.size)
    rank_sum = np.bincount(group, weights=labels * (low + high) / 2, minlength=count.size)
    both = (pos > 0) & (pos < count)
    auc = (rank_sum[both] - pos[both] * (pos[both] + 1) / 2) / (pos[both] * (count[both] - pos[both]))
    return float(auc.mean()) if auc.size else float("nan")
