"""Rank every in-view list at once: flat numpy arrays plus offsets, no loop per list.

A list column (one list per impression) is handled as ``values`` (all lists
concatenated) and ``offsets`` (``offsets[i]:offsets[i+1]`` is list ``i``)::

    scores  [[0.1, 0.9, 0.5], [0.3, 0.3]]
    values  [0.1, 0.9, 0.5, 0.3, 0.3]      offsets [0, 3, 5]
    order   [1, 2, 0, 3, 4]                (descending score, ties: earlier first)
    ranks   [3, 1, 2, 1, 2]                (1 = highest score)
"""

from __future__ import annotations

import numpy as np


def list_ids(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every flat element: the index of its list and its 0-based position in it."""
    lengths = np.diff(offsets)
    group = np.repeat(np.arange(lengths.size, dtype=np.int64), lengths)
    pos = np.arange(offsets[-1], dtype=np.int64) - offsets[:-1][group]
    return group, pos


def _by_length(scores: np.ndarray, offsets: np.ndarray):
    """Yield (flat index matrix, within-row stable descending argsort) per list length.

    Lists of equal length are sorted together as the rows of one 2-D array, one
    numpy call per distinct length (a few hundred at most), never one per list.
    This measured 3x faster than one ``np.sort`` over packed (list, score,
    position) uint64 keys on the synthetic test split.
    """
    if scores.dtype.kind in "ub":
        scores = scores.astype(np.float64)
    negated = -scores  # ascending stable sort of -score: descending, ties by position
    lengths = np.diff(offsets)
    rows_by_length = np.argsort(lengths, kind="stable")
    sorted_lengths = lengths[rows_by_length]
    cuts = np.flatnonzero(np.diff(sorted_lengths)) + 1
    for a, b in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [lengths.size]])):
        n = int(sorted_lengths[a]) if b > a else 0
        if n == 0:
            continue
        idx = offsets[:-1][rows_by_length[a:b]][:, None] + np.arange(n)
        yield idx, np.argsort(negated[idx], axis=1, kind="stable")


def descending_order(scores: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Flat indices sorting each list by score, highest first; ties: earlier position first.

    Lists keep their order, so position ``j`` of the result belongs to the same
    list as flat element ``j``.
    """
    order = np.empty(int(offsets[-1]), dtype=np.int64)
    for idx, within in _by_length(scores, offsets):
        order[idx] = np.take_along_axis(idx, within, axis=1)
    return order


def descending_ranks(scores: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Rank (1 = highest score; ties: earlier position first) of every flat element."""
    ranks = np.empty(int(offsets[-1]), dtype=np.int32)
    for idx, within in _by_length(scores, offsets):
        r = np.empty(within.shape, dtype=np.int32)
        np.put_along_axis(r, within, np.arange(1, idx.shape[1] + 1, dtype=np.int32)[None, :], axis=1)
        ranks[idx] = r
    return ranks


def row_chunks(lengths: np.ndarray, max_elements: int, max_rows: int) -> list[tuple[int, int]]:
    """Cut rows into (start, stop) runs of at most ``max_rows`` rows and, where
    possible, ``max_elements`` list elements (a single longer row stays whole).

    Keeps memory flat when long lists cluster, e.g. the 200,000 beyond-accuracy
    rows of 250 candidates at the end of the test split.
    """
    cum = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
    cuts, start = [], 0
    while start < lengths.size:
        stop = int(np.searchsorted(cum, cum[start] + max_elements, side="right")) - 1
        stop = min(max(stop, start + 1), start + max_rows, lengths.size)
        cuts.append((start, stop))
        start = stop
    return cuts
