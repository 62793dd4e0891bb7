"""Render a few prompt batches of a prepared split as text, to see what the model reads."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np

from recsys24.data import schema
from recsys24.data.prepared import open_prepared
from recsys24.prompts.article_tokens import build_token_table
from recsys24.prompts.assemble import Prompts, render
from recsys24.prompts.templates import PromptConfig


@dataclass
class ShownPrompt:
    impression_id: int
    candidates: list[int]  # article ids shown in this prompt
    labels: list[int] | None
    num_tokens: int
    text: str


def preview_prompts(
    prepared_dir: str | os.PathLike, prompt: PromptConfig, n: int = 3, tokenizer_dir: str | None = None
) -> list[ShownPrompt]:
    """The first ``n`` prompts of the first impressions of a prepared split.

    Templates a–d: one prompt per impression, for its first in-view candidate.
    Template e: the prompt (chunks) of each impression. Without ``tokenizer_dir``
    (an mT5 hub id or folder), a sentencepiece tokenizer is trained on the
    split's articles in a temporary folder (offline, a few seconds).
    """
    # imported late: torch is slow to import
    from recsys24.model_inputs.prompt_collator import PromptCollator
    from recsys24.prompts.tokenizer import load_tokenizer, offline_tokenizer

    prep = open_prepared(prepared_dir)
    articles = prep.articles()
    if tokenizer_dir is None:
        with tempfile.TemporaryDirectory() as tmp:
            tokenizer = offline_tokenizer(articles, tmp)
    else:
        tokenizer = load_tokenizer(tokenizer_dir)
    table = build_token_table(articles, tokenizer, prompt)
    frame = next(prep.iter_impressions(batch_rows=n))
    batch = PromptCollator(table, prompt)(frame)

    prompts = Prompts(batch.input_ids.numpy(), batch.attention_mask.numpy(), batch.candidate_row.numpy())
    group = batch.group.numpy()
    labels = None if batch.labels is None else batch.labels.numpy().astype(int)
    row_of = batch.candidate_row.numpy()
    impression_ids = frame[schema.IMPRESSION_ID].to_numpy()
    shown, seen_rows = [], set()
    for c in range(len(group)):
        r = int(row_of[c])
        if r in seen_rows or (not prompt.is_list and c > 0 and group[c] == group[c - 1]):
            continue
        seen_rows.add(r)
        in_row = np.flatnonzero(row_of == r)
        shown.append(
            ShownPrompt(
                impression_id=int(impression_ids[group[c]]),
                candidates=batch.article_ids[in_row].tolist(),
                labels=None if labels is None else labels[in_row].tolist(),
                num_tokens=int(prompts.attention_mask[r].sum()),
                text=render(tokenizer, prompts, r),
            )
        )
        if len(shown) == n:
            break
    return shown
