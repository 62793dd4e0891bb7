"""QA+: one template-e prompt lists all in-view candidates; one encoder pass scores them all.

The mT5 encoder reads the prompt (chunked by the collator when the candidates
do not fit ``max_length``; every chunk repeats the history), and a d_model → 1
head gives a span-start logit per token.

score = the start logit at the candidate's first token.
NLL = the extractive start-position NLL restricted to the candidates' first
tokens: −log softmax over the impression's candidates (across its chunks) at
the clicked one(s).
"""

from __future__ import annotations

from torch import nn
from transformers import MT5EncoderModel

from recsys24.model_inputs.batches import Batch
from recsys24.models.contract import Output
from recsys24.models.loss import listwise_nll
from recsys24.models.prompt.base import PromptModel


class QAPlus(PromptModel):
    name = "qa+"
    templates = ("e",)
    backbone_class = MT5EncoderModel

    def make_head(self, d_model: int) -> nn.Module:
        return nn.Linear(d_model, 1)

    def forward(self, batch: Batch, with_nll: bool = True) -> Output:
        hidden = self.backbone(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        at_candidates = hidden[batch.candidate_row, batch.candidate_pos]  # [N, d]
        scores = self.head(at_candidates).squeeze(-1).float()
        nll = None
        if with_nll and batch.labels is not None:
            nll = listwise_nll(scores, batch.group, batch.labels.to(scores.device))
        return Output(scores, nll)
