"""How ``recsys24 predict`` scores a model family unless told otherwise.

Each family declares one :class:`ScoringDefaults` as its ``scoring`` class
field (:class:`recsys24.models.contract.Model`). Only the standard library
here, so the CLI's help reads the same numbers without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScoringDefaults:
    """How ``recsys24 predict`` scores a family unless told otherwise.

    batch_size: candidates per forward pass. piece_rows: impressions per
    resumable piece (scores written per piece). fast_path: the model has a
    faster scoring path than ``forward`` (:meth:`Model.enable_fast_scoring`),
    which ``--reference`` turns off. user_order: the model encodes each distinct
    history of a batch once and its collator's ``sort_key`` is the history, so
    predict cuts pieces by user and batches between histories (``--order users``,
    :mod:`recsys24.inference.user_order`): one encoding per user.
    """

    batch_size: int = 256
    piece_rows: int = 50_000
    fast_path: bool = False
    user_order: bool = False
