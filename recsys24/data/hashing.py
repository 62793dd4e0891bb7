"""Fixed 64-bit mixes of integer ids: the same on every machine, numpy version and run.

A row or user id is hashed, not drawn from a random generator, so that the same
id lands in the same place on a rerun, in another process and on another
split: the users a ranker holds out (:data:`SPLITMIX64`, with a seed), the
piece of a user-ordered predict (:data:`MURMUR3`). Both finalisers are rounds of
``x ^= x >> shift; x *= multiplier`` and a last ``x ^= x >> shift``::

    >>> mix64(np.array([10000, 10001, 10002], dtype=np.uint64), MURMUR3) % np.uint64(4)   # 4 buckets
    array([3, 0, 0], dtype=uint64)
"""

from __future__ import annotations

import numpy as np

# (shift, multiplier) rounds, then the last shift
SPLITMIX64 = ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)), 31  # splitmix64's output function
MURMUR3 = ((33, 0xFF51AFD7ED558CCD), (33, 0xC4CEB9FE1A85EC53)), 33  # murmur3's fmix64 finaliser


def mix64(x: np.ndarray, finaliser: tuple = SPLITMIX64) -> np.ndarray:
    """``x`` (uint64) through ``finaliser``'s xor-shift-multiply rounds, wrapping modulo 2**64."""
    rounds, last = finaliser
    with np.errstate(over="ignore"):
        for shift, multiplier in rounds:
            x = (x ^ (x >> np.uint64(shift))) * np.uint64(multiplier)
    return x ^ (x >> np.uint64(last))
