"""QA: extractive. The prompt ends with "ja / nej"; the model points at the answer span.

The mT5 encoder (``MT5EncoderModel``; the decoder is not needed to point at a
span, which halves the compute of HF's encoder-decoder ``MT5ForQuestionAnswering``)
reads the prompt, and a d_model → 2 head gives start and end logits per token.
"ja" and "nej" are single tokens, so each answer span starts and ends on it.

score = (start + end logit at "ja") − (start + end logit at "nej"), the
log-odds of the span "ja" against the span "nej".
NLL = ½ (−log P_start(answer) − log P_end(answer)), softmax over the prompt's
tokens, answer = the "ja" token for a clicked candidate, else "nej".
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import MT5EncoderModel

from recsys24.model_inputs.batches import Batch
from recsys24.models.contract import Output
from recsys24.models.prompt.base import PromptModel


class QA(PromptModel):
    name = "qa"
    backbone_class = MT5EncoderModel

    def make_head(self, d_model: int) -> nn.Module:
        return nn.Linear(d_model, 2)

    def forward(self, batch: Batch, with_nll: bool = True) -> Output:
        hidden = self.backbone(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        logits = self.head(hidden).float()  # [R, L, 2]
        rows = torch.arange(len(logits), device=logits.device)
        at_yes = logits[rows, batch.answer_pos[:, 0]].sum(-1)
        at_no = logits[rows, batch.answer_pos[:, 1]].sum(-1)
        scores = (at_yes - at_no)[batch.candidate_row]
        nll = None
        if with_nll and batch.labels is not None:
            masked = logits.masked_fill(batch.attention_mask[..., None] == 0, float("-inf"))
            logp = torch.log_softmax(masked, dim=1)[batch.candidate_row]  # over positions
            r = batch.candidate_row
            target = torch.where(batch.labels.to(logp.device) > 0.5, batch.answer_pos[r, 0], batch.answer_pos[r, 1])
            picked = logp[torch.arange(len(r), device=logp.device), target]  # [N, 2]
            nll = -picked.mean()
        return Output(scores, nll)
