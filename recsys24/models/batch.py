"""The model input: one :class:`Batch` of prompts and the candidates they score.

Built by :class:`recsys24.models.collate.Collator` from prepared rows. Candidates
of one impression are contiguous, in impression order, so
``scores.split(batch.counts)`` gives each impression's scores. Only torch and
numpy here, so models load where polars is not installed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Callable, Iterator, TypeVar

import numpy as np
import torch

T = TypeVar("T")


def prefetched(make: Callable[[int], T], count: int) -> Iterator[T]:
    """``make(0)``, …, ``make(count - 1)``, each built on a worker thread while the caller uses the one before.

    Training and predict collate batches through it, so tokenising and
    gathering (numpy, polars) overlap the device's work on the previous batch.
    ``make`` runs on one thread only, in order.
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


class BatchBase:
    """What training and predict use of any batch: ``group``, ``labels``, ``rows``, ``to``."""

    @property
    def num_impressions(self) -> int:
        return len(self.rows)

    @property
    def counts(self) -> list[int]:
        """Number of candidates of each impression."""
        return torch.bincount(self.group, minlength=self.num_impressions).tolist()

    def to(self, device):
        """A copy with every field that has ``.to`` (tensors, nested inputs) on ``device``; numpy and plain values stay."""
        moved = {f.name: (v.to(device) if hasattr(v := getattr(self, f.name), "to") else v) for f in fields(self)}
        return type(self)(**moved)


@dataclass
class Batch(BatchBase):
    """One model batch: R prompt rows, N candidates, B impressions.

    input_ids, attention_mask: [R, L]. group: [N] impression index (sorted).
    candidate_row: [N] the prompt row of each candidate (= arange(N) for a–d).
    labels: [N] float 1/0, or None at test time. candidate_pos: [N] position of
    each candidate's first token (template e). answer_pos: [R, 2] positions of
    "ja" and "nej" (templates a–d). article_ids: [N] numpy; rows: [B] numpy
    (the prepared ``row`` of each impression).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    group: torch.Tensor
    candidate_row: torch.Tensor
    labels: torch.Tensor | None
    candidate_pos: torch.Tensor | None
    answer_pos: torch.Tensor | None
    article_ids: np.ndarray
    rows: np.ndarray


def __getattr__(name: str):
    # Collator and right_aligned moved to collate.py (they need polars); old imports keep working.
    if name in ("Collator", "right_aligned"):
        from recsys24.models import collate

        return getattr(collate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
