"""Batches for CGh: distinct histories, distinct articles and per-pair time features.

Candidates and labels come from :func:`recsys24.model_inputs.candidates.frame_candidates`
(training pairs shuffled within the impression, impressions in in-view order),
so CGh trains and scores on exactly the rows the other architectures see; the
history rows and their lengths are those of :class:`PromptCollator`.
"""

from __future__ import annotations

import uuid

import numpy as np
import polars as pl
import torch

from recsys24.data import schema
from recsys24.errors import DataError
from recsys24.model_inputs.batches import HistoryBatch
from recsys24.model_inputs.candidates import frame_candidates
from recsys24.model_inputs.feature_codes import FeatureCodes
from recsys24.model_inputs.prompt_collator import PromptCollator, float_labels, tensor
from recsys24.prompts.assemble import article_prompts, history_prompts
from recsys24.prompts.templates import MISSING_TIME, age_phrase_index


def _diff(ref: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.where((ref == MISSING_TIME) | (t == MISSING_TIME), MISSING_TIME, ref - t)


class HistoryCollator(PromptCollator):
    """Frame of prepared rows -> :class:`HistoryBatch` (histories deduplicated within the frame)."""

    def __init__(self, table, prompt, seed: int = 0, features: FeatureCodes | None = None):
        if prompt.is_list:
            raise DataError("architecture cgh takes templates a-d (one candidate per decoder pass), not e")
        super().__init__(table, prompt, seed)
        self.key = uuid.uuid4().hex
        self.features = features  # CGh-f: the frames' split's feature codes

    def sort_key(self, frame: pl.DataFrame) -> np.ndarray:
        """History length, then the history itself: a user's impressions end up in the same batch."""
        hist_idx = self.history_rows(frame)
        _, which = np.unique(hist_idx, axis=0, return_inverse=True)
        return self.history_tokens(hist_idx) * (frame.height + 1) + which.reshape(-1)

    def __call__(self, frame: pl.DataFrame, rng: np.random.Generator | None = None) -> HistoryBatch:
        t = self.table
        c = frame_candidates(frame, self.rng if rng is None else rng)
        candidates, group = c.article_ids, c.group
        hist_idx = self.history_rows(frame)
        histories, history_of = np.unique(hist_idx, axis=0, return_inverse=True)
        ids, mask = history_prompts(t, self.prompt, histories)
        cand_idx = t.index(candidates)
        articles, article_of = np.unique(cand_idx, return_inverse=True)
        a_ids, a_mask = article_prompts(t, self.prompt, articles)

        codes = values = None
        if self.features is not None:
            codes, values = self.features.lookup_values(c.rows.astype(np.int64)[group], candidates)
        when = frame[schema.IMPRESSION_TIME].cast(schema.DT).dt.epoch("us").fill_null(MISSING_TIME).to_numpy()
        published = t.published_us[cand_idx]
        newest = hist_idx[:, -1] if hist_idx.shape[1] else np.full(frame.height, -1)
        newest_pub = np.where(newest >= 0, t.published_us[np.maximum(newest, 0)], MISSING_TIME)
        age = age_phrase_index(_diff(when.astype(np.int64)[group], published))
        gap = age_phrase_index(_diff(published, newest_pub[group]))

        return HistoryBatch(
            input_ids=tensor(ids),
            attention_mask=tensor(mask),
            history_row=tensor(history_of.reshape(-1)[group]),
            article_input_ids=tensor(a_ids),
            article_mask=tensor(a_mask),
            article_row=tensor(article_of.reshape(-1)),
            article_table_rows=tensor(articles),
            age=tensor(age),
            gap=tensor(gap),
            group=tensor(group),
            labels=float_labels(c.labels),
            article_ids=candidates.astype(np.int32),
            rows=c.rows,
            table_key=self.key,
            table_size=len(t.article_ids),
            feature_codes=None if codes is None else torch.from_numpy(codes),
            feature_values=None if values is None else torch.from_numpy(values),
        )
