"""The model inputs: one batch class per input kind, all with the same few members.

* :class:`Batch`: prompt rows of CG, CGc, QA, QA+ (built by
  :class:`recsys24.model_inputs.prompt_collator.PromptCollator`);
* :class:`HistoryBatch`: CGh's distinct histories and articles (built by
  :class:`recsys24.model_inputs.history_collator.HistoryCollator`);
* :class:`NewsBatch`: the neural models' distinct news (built by
  :class:`recsys24.model_inputs.news_collator.NewsCollator`).

Candidates of one impression are contiguous, in impression order
(``group`` [N] = impression index), so ``scores.split(batch.counts)`` gives
each impression's scores, and training and predict use every batch through
``to``, ``num_impressions``, ``counts``, ``num_histories``, ``labels`` and ``group``. Only torch
and numpy here, so models load where polars is not installed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch


class BatchBase:
    """What training and predict use of any batch: ``group``, ``labels``, ``rows``, ``to``."""

    @property
    def num_impressions(self) -> int:
        return len(self.rows)

    @property
    def counts(self) -> list[int]:
        """Number of candidates of each impression."""
        return torch.bincount(self.group, minlength=self.num_impressions).tolist()

    @property
    def num_histories(self) -> int:
        """Histories the batch runs through an encoder of their own (predict's ``history_encodings``): none
        where the history is part of each prompt (CG, CGc, QA, QA+) or pooled from news vectors (neural)."""
        return 0

    def to(self, device):
        """A copy with every field that has ``.to`` (tensors, nested inputs) on ``device``; numpy and plain values stay."""
        moved = {f.name: (v.to(device) if hasattr(v := getattr(self, f.name), "to") else v) for f in fields(self)}
        return type(self)(**moved)


@dataclass
class Batch(BatchBase):
    """One prompt batch: R prompt rows, N candidates, B impressions.

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


@dataclass
class HistoryBatch(BatchBase):
    """A CGh batch: H distinct histories, A distinct articles, N candidates, B impressions.

    input_ids, attention_mask: [H, L] history prompts. history_row: [N] the
    history of each candidate. article_input_ids, article_mask: [A, La];
    article_row: [N] into them; article_table_rows: [A] the articles' rows in
    the run's token table (keys of the fast path's article cache). age, gap:
    [N] time-feature buckets. group, labels, article_ids, rows: as in
    :class:`Batch`. table_key: identifies the token table. feature_codes:
    uint8 [N, F], each candidate's quantile-coded feature-table row (CGh-f only);
    feature_values: float32 [N, F], the same row's rank-gauss values (a CGh-f
    with ``model.feature_values`` only).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    history_row: torch.Tensor
    article_input_ids: torch.Tensor
    article_mask: torch.Tensor
    article_row: torch.Tensor
    article_table_rows: torch.Tensor
    age: torch.Tensor
    gap: torch.Tensor
    group: torch.Tensor
    labels: torch.Tensor | None
    article_ids: np.ndarray
    rows: np.ndarray
    table_key: str = ""
    table_size: int = 0
    feature_codes: torch.Tensor | None = None
    feature_values: torch.Tensor | None = None

    @property
    def num_histories(self) -> int:
        """The H distinct histories, each encoded once however many candidates share it."""
        return len(self.input_ids)


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
