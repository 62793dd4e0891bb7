"""Prompt batches of CG, CGc, QA and QA+: prepared rows -> token ids, through ``prompts/`` assembly.

The candidates come from :func:`recsys24.model_inputs.candidates.frame_candidates`;
the prompt token ids from :mod:`recsys24.prompts.assemble` over the run's
article token table (each article tokenised once).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

from recsys24.data import schema
from recsys24.model_inputs.batches import Batch
from recsys24.model_inputs.candidates import frame_candidates, right_aligned
from recsys24.prompts.article_tokens import TokenTable
from recsys24.prompts.assemble import Prompts, list_prompts, pair_prompts
from recsys24.prompts.templates import PromptConfig


def tensor(x: np.ndarray | None) -> torch.Tensor | None:
    """An int64 tensor of ``x`` (None stays None)."""
    return None if x is None else torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64))


def float_labels(labels: np.ndarray | None) -> torch.Tensor | None:
    return None if labels is None else torch.from_numpy(labels.astype(np.float32))


class PromptCollator:
    """Turn a frame of prepared rows into a :class:`Batch` for ``prompt``'s template.

    Candidates of training pairs are shuffled by the ``rng`` given to the call
    (training gives each micro-batch its own, so a resumed run repeats it), else
    by the collator's own generator seeded with ``seed``; impressions keep their
    in-view order.
    """

    def __init__(self, table: TokenTable, prompt: PromptConfig, seed: int = 0):
        self.table = table
        self.prompt = prompt
        self.rng = np.random.default_rng(seed)

    def __call__(self, frame: pl.DataFrame, rng: np.random.Generator | None = None) -> Batch:
        c = frame_candidates(frame, self.rng if rng is None else rng)
        t = self.table
        hist_idx = self.history_rows(frame)
        cand_idx = t.index(c.article_ids)
        if self.prompt.is_list:
            when = frame[schema.IMPRESSION_TIME].cast(schema.DT).dt.epoch("us").to_numpy().astype(np.int64)
            prompts: Prompts = list_prompts(t, self.prompt, hist_idx, cand_idx, c.counts, when)
        else:
            prompts = pair_prompts(t, self.prompt, hist_idx[c.group], cand_idx)
        return Batch(
            input_ids=tensor(prompts.input_ids),
            attention_mask=tensor(prompts.attention_mask),
            group=tensor(c.group),
            candidate_row=tensor(prompts.candidate_row),
            labels=float_labels(c.labels),
            candidate_pos=tensor(prompts.candidate_pos),
            answer_pos=tensor(prompts.answer_pos),
            article_ids=c.article_ids.astype(np.int32),
            rows=c.rows,
        )

    def history_rows(self, frame: pl.DataFrame) -> np.ndarray:
        """Token-table rows of each impression's last T history articles [B, T], right-aligned (-1 = empty)."""
        return self.table.index(right_aligned(frame[schema.HISTORY_IDS], self.prompt.history_size))

    def history_tokens(self, hist_idx: np.ndarray) -> np.ndarray:
        """Tokens in each row's history part (the first text field shown), for length bucketing."""
        field = next((f for f in self.prompt.article_fields if f in self.table.fields), None)
        if field is None:
            return np.zeros(len(hist_idx))
        lengths = self.table.fields[field][1]
        return np.where(hist_idx >= 0, lengths[np.maximum(hist_idx, 0)], 0).sum(axis=1)

    def sort_key(self, frame: pl.DataFrame) -> np.ndarray:
        """History length in tokens: predict sorts a piece by it so batches carry little padding."""
        return self.history_tokens(self.history_rows(frame))
