"""Build model batches from prepared rows and the article token table.

Two kinds of input frame (see ``recsys24/data/prepared.py``):

* training pairs (``positive``, ``negatives``): the candidates are the clicked
  article and its K not-clicked ones, shuffled within the impression so that a
  model cannot learn "the first one is clicked" (this matters for QA+);
* impressions (``article_ids_inview``, ``labels``): the in-view candidates in
  their given order; labels are taken when present (train/validation).

Candidates of one impression are contiguous in the batch, in impression order,
so ``scores.split(counts)`` gives each impression's scores.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

from recsys24.data import schema
from recsys24.errors import DataError
from recsys24.models.batch import Batch
from recsys24.prompts.article_tokens import TokenTable
from recsys24.prompts.assemble import Prompts, list_prompts, pair_prompts
from recsys24.prompts.templates import PromptConfig


def right_aligned(lists: pl.Series, width: int, fill: int = -1) -> np.ndarray:
    """The last ``width`` items of each list, right-aligned in an int64 [B, width] matrix."""
    tail = lists.list.drop_nulls().list.tail(width)
    lens = tail.list.len().fill_null(0).to_numpy().astype(np.int64)
    flat = tail.explode().drop_nulls().to_numpy().astype(np.int64)
    out = np.full((len(lists), width), fill, dtype=np.int64)
    if len(flat):
        row = np.repeat(np.arange(len(lists)), lens)
        first = np.cumsum(lens) - lens
        col = width - np.repeat(lens, lens) + (np.arange(len(flat)) - np.repeat(first, lens))
        out[row, col] = flat
    return out


class Collator:
    """Turn a frame of prepared rows into a :class:`Batch` for ``prompt``'s template.

    seed: candidates of training pairs are shuffled with this seed (a fresh
    permutation per call); impressions keep their in-view order.
    """

    def __init__(self, table: TokenTable, prompt: PromptConfig, seed: int = 0):
        self.table = table
        self.prompt = prompt
        self.rng = np.random.default_rng(seed)

    def __call__(self, frame: pl.DataFrame) -> Batch:
        candidates, labels, counts, group, rows = self._impressions(frame)
        t = self.table
        hist_idx = self.history_rows(frame)
        cand_idx = t.index(candidates)
        if self.prompt.is_list:
            when = frame[schema.IMPRESSION_TIME].cast(schema.DT).dt.epoch("us").to_numpy().astype(np.int64)
            prompts: Prompts = list_prompts(t, self.prompt, hist_idx, cand_idx, counts, when)
        else:
            prompts = pair_prompts(t, self.prompt, hist_idx[group], cand_idx)

        def tensor(x):
            return None if x is None else torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64))

        return Batch(
            input_ids=tensor(prompts.input_ids),
            attention_mask=tensor(prompts.attention_mask),
            group=tensor(group),
            candidate_row=tensor(prompts.candidate_row),
            labels=None if labels is None else torch.from_numpy(labels.astype(np.float32)),
            candidate_pos=tensor(prompts.candidate_pos),
            answer_pos=tensor(prompts.answer_pos),
            article_ids=candidates.astype(np.int32),
            rows=rows,
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

    def _impressions(self, frame: pl.DataFrame):
        """What every collator starts from: (candidates, labels or None, counts, group [N], rows [B])."""
        if frame.height == 0:
            raise DataError("collator: empty frame")
        candidates, labels, counts = self._candidates(frame)
        group = np.repeat(np.arange(frame.height), counts)
        rows = frame[schema.ROW].to_numpy() if schema.ROW in frame.columns else np.arange(frame.height)
        return candidates, labels, counts, group, rows

    def _candidates(self, frame: pl.DataFrame):
        """Flat candidate ids, flat labels (or None) and per-impression counts."""
        if schema.POSITIVE in frame.columns:
            negatives = frame[schema.NEGATIVES]
            k = negatives.list.len().to_numpy().astype(np.int64)
            counts = k + 1
            group = np.repeat(np.arange(frame.height), counts)
            first = np.cumsum(counts) - counts
            cands = np.empty(int(counts.sum()), dtype=np.int64)
            cands[first] = frame[schema.POSITIVE].to_numpy()
            is_neg = np.ones(len(cands), dtype=bool)
            is_neg[first] = False
            cands[is_neg] = negatives.explode().drop_nulls().to_numpy()
            labels = (~is_neg).astype(np.float32)
            order = np.lexsort((self.rng.random(len(cands)), group))
            return cands[order], labels[order], counts
        inview = frame[schema.INVIEW]
        counts = inview.list.len().to_numpy().astype(np.int64)
        cands = inview.explode().drop_nulls().to_numpy().astype(np.int64)
        labels = None
        if schema.LABELS in frame.columns and frame[schema.LABELS].null_count() == 0:
            labels = frame[schema.LABELS].explode().drop_nulls().to_numpy().astype(np.float32)
            if len(labels) != len(cands):
                raise DataError("prepared impressions: labels and article_ids_inview differ in length")
        return cands, labels, counts
