"""The input of the neural news recommenders: a :class:`NewsBatch`.

Built by :class:`recsys24.models.neural.features.NewsCollator`. Like
:class:`recsys24.models.batch.Batch`, candidates of one impression are
contiguous (``group`` [N] = impression index), so training and predict use it
through the same few members: ``to``, ``num_impressions``, ``counts``,
``labels``, ``group``. Only torch and numpy here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from recsys24.models.batch import BatchBase


@dataclass
class News:
    """The per-article inputs of M news.

    title: [M, Lt] token ids (pad = the tokenizer's pad id); title_mask: [M, Lt]
    bool. body, body_mask: [M, Lb] (NAML only, else None). category,
    subcategory: [M] hashed ids, 0 = none. entities: [M, Lt] hashed id of the
    entity each title token belongs to, 0 = none (DKN only, else None).
    """

    title: torch.Tensor
    title_mask: torch.Tensor
    category: torch.Tensor
    subcategory: torch.Tensor
    body: torch.Tensor | None = None
    body_mask: torch.Tensor | None = None
    entities: torch.Tensor | None = None

    def to(self, device) -> "News":
        return News(**{f.name: None if (v := getattr(self, f.name)) is None else v.to(device) for f in fields(self)})

    def take(self, index: torch.Tensor) -> "News":
        """The news at ``index`` [M] (rows of every field)."""
        return News(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[index]
                       for f in fields(self)})


@dataclass
class NewsBatch(BatchBase):
    """B impressions and their N candidates.

    news: :class:`News` [U], each distinct article of the batch once (so a
    model encodes it once). candidate_news: [N] index into ``news`` of each
    candidate; history_news: [B, H] of each history slot, right-aligned (the
    newest article last); history_mask [B, H] bool, False on empty slots.
    users: [B] hashed user ids. group: [N] impression index (sorted). labels:
    [N] float 1/0, or None at test time. article_ids: [N] numpy; rows: [B]
    numpy (the prepared ``row`` of each impression).
    """

    news: News
    candidate_news: torch.Tensor
    history_news: torch.Tensor
    history_mask: torch.Tensor
    users: torch.Tensor
    group: torch.Tensor
    labels: torch.Tensor | None
    article_ids: np.ndarray
    rows: np.ndarray
