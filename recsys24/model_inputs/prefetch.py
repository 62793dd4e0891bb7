"""Collate the next batch on a worker thread while the device works on this one."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")


def prefetched(make: Callable[[int], T], count: int) -> Iterator[T]:
    """``make(0)``, …, ``make(count - 1)``, each built on a worker thread while the caller uses the one before.

    Training and predict collate batches through it, so tokenising and
    gathering (numpy, polars) overlap the device's work on the previous batch.
    ``make`` runs on one thread only, in order; it should build its batch from
    its argument alone (training passes each batch its own seeded generator),
    not from state the caller changes meanwhile.
    """
    if count <= 0:
        return
    with ThreadPoolExecutor(1) as pool:
        upcoming = pool.submit(make, 0)
        for i in range(count):
            item = upcoming.result()
            if i + 1 < count:
                upcoming = pool.submit(make, i + 1)
            yield item
