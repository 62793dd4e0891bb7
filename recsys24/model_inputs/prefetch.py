"""Collate the next batch on a worker thread while the device works on this one."""

from __future__ import annotations

from typing import Callable, Iterator, TypeVar

from recsys24.io import read_ahead

T = TypeVar("T")


def prefetched(make: Callable[[int], T], count: int) -> Iterator[T]:
    """``make(0)``, …, ``make(count - 1)``, each built on a worker thread while the caller uses the one before.

    Training and predict collate batches through it, so tokenising and
    gathering (numpy, polars) overlap the device's work on the previous batch.
    ``make`` runs on one thread only, in order; it should build its batch from
    its argument alone (training passes each batch its own seeded generator),
    not from state the caller changes meanwhile.
    """
    return read_ahead(make(i) for i in range(count))
