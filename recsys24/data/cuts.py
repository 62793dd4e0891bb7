"""How long work is cut into contiguous parts: batches or pieces of about N elements, and each shard's block.

The features build cuts impressions into pieces of about N candidates, predict
cuts a piece into batches of about N candidates (whole histories only, when a
model encodes each history once), and a sharded run gives shard ``i`` of ``k``
one contiguous block of the pieces::

    >>> cut_bounds(np.array([3, 1, 4, 2]), 4)          # groups of 3, 1, 4, 2 elements; about 4 a part
    array([0, 2, 3, 4])
    >>> shard_range(5, 1, 2)                           # shard 1 of 2 scores pieces 2, 3 and 4
    range(2, 5)
"""

from __future__ import annotations

import numpy as np

from recsys24.errors import Recsys24Error


def cut_bounds(counts: np.ndarray, size: int, group_starts: np.ndarray | None = None) -> np.ndarray:
    """Where parts of about ``size`` elements start and end (int64, from 0 to ``len(counts)``).

    counts: elements per item (candidates per impression), in order. A part ends
    after the item where the running total of elements crosses a multiple of
    ``size``, so every part holds at least one item. group_starts: first item of
    each group (one history); parts are then cut only between groups, so a
    group larger than ``size`` gets a part of its own rather than being split.

    >>> cut_bounds(np.array([3, 3, 3, 3]), 5)
    array([0, 2, 4])
    >>> cut_bounds(np.array([3, 3, 3, 3]), 5, group_starts=np.array([0, 3]))
    array([0, 3, 4])
    >>> cut_bounds(np.array([1, 1, 1, 1, 1]), 3)
    array([0, 3, 5])
    """
    n = len(counts)
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(n) if group_starts is None else np.asarray(group_starts)
    ends = np.append(starts[1:], n)
    per_group = np.add.reduceat(np.asarray(counts, dtype=np.int64), starts)
    crossed = np.flatnonzero(np.diff(np.cumsum(per_group) // max(size, 1), prepend=0))
    return np.unique(np.concatenate([[0], ends[crossed], [n]]))


def shard_range(count: int, shard_id: int, num_shards: int) -> range:
    """The contiguous block of ``count`` parts (pieces, buckets) that shard ``shard_id`` of ``num_shards`` takes.

    >>> [list(shard_range(5, i, 2)) for i in range(2)]
    [[0, 1], [2, 3, 4]]
    """
    if num_shards < 1 or not 0 <= shard_id < num_shards:
        raise Recsys24Error(f"--shard-id must be in 0..{num_shards - 1} (--num-shards {num_shards}), got {shard_id}")
    return range(count * shard_id // num_shards, count * (shard_id + 1) // num_shards)
