"""The contest's accuracy metrics over flat ranker scores, grouped by impression.

Scores and labels are flat, one per (impression, candidate), the candidates of
impression ``i`` at ``offsets[i]:offsets[i + 1]``.
"""

from __future__ import annotations

import numpy as np

from recsys24.data import schema as S
from recsys24.data.columns import list_series
from recsys24.evaluation.metrics import accuracy, impression_auc


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

    The labels are fixed, the scores change: early stopping calls it after every
    boosting round, the blend's weight search for every weight vector. The
    per-impression AUC is ``recsys24 evaluate``'s
    (:func:`recsys24.evaluation.metrics.impression_auc`).

    >>> GroupAUC(np.array([1, 0, 0, 1, 0]), np.array([0, 3, 5]))(np.array([.9, .1, .5, .2, .2]))
    0.75
    """

    def __init__(self, labels: np.ndarray, offsets: np.ndarray):
        self.labels, self.offsets = np.asarray(labels).astype(np.int8), np.asarray(offsets, np.int64)

    def __call__(self, scores: np.ndarray) -> float:
        auc = impression_auc(np.asarray(scores), self.labels, self.offsets)
        auc = auc[~np.isnan(auc)]
        return float(auc.mean()) if auc.size else float("nan")


def group_auc(scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray) -> float:
    """:class:`GroupAUC` of one set of scores.

    >>> group_auc(np.array([.9, .1, .5, .2, .2]), np.array([1, 0, 0, 1, 0]), np.array([0, 3, 5]))
    0.75
    """
    return GroupAUC(labels, offsets)(scores)
