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


class GroupAUC:
    """Mean per-impression ROC-AUC (ties count one half) of flat scores, over impressions with both labels.

    The rank-sum form of what ``group_metrics`` computes, with everything that
    does not depend on the scores computed once: early stopping calls it after
    every boosting round.

    >>> GroupAUC(np.array([1, 0, 0, 1, 0]), np.array([0, 3, 5]))(np.array([.9, .1, .5, .2, .2]))
    0.75
    """

    def __init__(self, labels: np.ndarray, offsets: np.ndarray):
        self.labels, self.offsets = np.asarray(labels, np.float32), offsets
        count = np.diff(offsets)
        self.n = np.repeat(count, count).astype(np.float32)
        self.group = group_index(offsets)
        self.pos = np.bincount(self.group, weights=self.labels, minlength=count.size)
        self.both = (self.pos > 0) & (self.pos < count)
        self.neg = count - self.pos

    def __call__(self, scores: np.ndarray) -> float:
        low = group_rank(scores, self.offsets, descending=False)  # 1-based, ties take the smallest
        high = self.n + 1 - group_rank(scores, self.offsets, descending=True)  # ... the largest
        rank_sum = np.bincount(self.group, weights=self.labels * (low + high) / 2, minlength=self.pos.size)
        pos = self.pos[self.both]
        auc = (rank_sum[self.both] - pos * (pos + 1) / 2) / (pos * self.neg[self.both])
        return float(auc.mean()) if auc.size else float("nan")


def group_auc(scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray) -> float:
    """:class:`GroupAUC` of one set of scores.

    >>> group_auc(np.array([.9, .1, .5, .2, .2]), np.array([1, 0, 0, 1, 0]), np.array([0, 3, 5]))
    0.75
    """
    return GroupAUC(labels, offsets)(scores)
