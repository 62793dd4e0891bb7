"""Within-impression statistics over flat arrays plus offsets, no loop per impression.

Feature columns are flat: one value per (impression, in-view candidate), the
candidates of impression ``i`` at ``offsets[i]:offsets[i + 1]`` (see
``evaluation.ranking``). The helpers here normalise a column inside each
impression, because a ranker compares candidates of one impression with each
other: the contest's 2nd place found the rank of an hourly count inside its
impression more telling than the count itself.

    values   [3., 9., 9., 1.]     offsets [0, 3, 4]
    rank     [3., 1., 1., 1.]     (descending, ties share the smaller rank)
    share    [0.33, 1., 1., 1.]   (value / impression maximum)
    gap      [0., 6., 6., 0.]     (value - impression minimum)
"""

from __future__ import annotations

import numpy as np

from recsys24.data.cuts import cut_bounds


def group_index(offsets: np.ndarray) -> np.ndarray:
    """For every flat element, the index of its impression."""
    return np.repeat(np.arange(offsets.size - 1, dtype=np.int64), np.diff(offsets))


def _sortable(values: np.ndarray, descending: bool) -> np.ndarray:
    """uint32 keys whose order is the float order (NaN sorts last either way)."""
    v = np.asarray(values, dtype=np.float32)
    v = -v if descending else v.copy()
    v[np.isnan(v)] = np.inf
    v[v == 0] = 0.0  # -0.0 and 0.0 are one value
    bits = v.view(np.uint32)
    return np.where(bits & 0x80000000, ~bits, bits | 0x80000000).astype(np.uint32)


def group_rank(values: np.ndarray, offsets: np.ndarray, descending: bool = True) -> np.ndarray:
    """float32 rank of each value inside its impression: 1 = largest (or smallest
    with ``descending=False``); equal values share the smaller rank; NaN ranks last.

    >>> group_rank(np.array([3., 9., 9., 1.]), np.array([0, 3, 4]))
    array([3., 1., 1., 1.], dtype=float32)
    """
    group = group_index(offsets)
    key = (group << 32) | _sortable(values, descending).astype(np.int64)
    order = np.argsort(key, kind="stable")  # runs of one impression are already in order: timsort is fast
    ordered = key[order]
    first_equal = np.searchsorted(ordered, ordered, side="left")
    rank = np.empty(key.size, dtype=np.float32)
    rank[order] = first_equal - offsets[:-1][group[order]] + 1
    return rank


def group_max(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The impression maximum (NaN ignored), repeated for each candidate."""
    return np.repeat(np.fmax.reduceat(np.asarray(values, np.float32), offsets[:-1]), np.diff(offsets))


def group_min(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The impression minimum (NaN ignored), repeated for each candidate."""
    return np.repeat(np.fmin.reduceat(np.asarray(values, np.float32), offsets[:-1]), np.diff(offsets))


def share_of_max(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``value / impression maximum`` (0 where the maximum is 0).

    >>> share_of_max(np.array([1., 4., 0., 0.]), np.array([0, 2, 4]))
    array([0.25, 1.  , 0.  , 0.  ], dtype=float32)
    """
    top = group_max(values, offsets)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(top > 0, values / top, 0.0)
    return share.astype(np.float32)


def gap_to_min(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``value - impression minimum`` (e.g. hours younger the newest candidate is)."""
    return (np.asarray(values, np.float32) - group_min(values, offsets)).astype(np.float32)


def cut_ranges(counts: np.ndarray, size: int) -> list[tuple[int, int]]:
    """Contiguous ranges of groups holding about ``size`` elements each (at least one group): the
    (start, end) pairs of :func:`recsys24.data.cuts.cut_bounds`.

    >>> cut_ranges(np.array([3, 1, 4, 2]), 4)
    [(0, 2), (2, 3), (3, 4)]
    >>> cut_ranges(np.array([1, 1, 1, 1, 1]), 3)
    [(0, 3), (3, 5)]
    """
    bounds = cut_bounds(counts, size)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
