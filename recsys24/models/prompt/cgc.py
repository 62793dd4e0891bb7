"""CGc: CG's encoder-decoder with a d_model → 1 score head instead of the LM head.

The backbone is ``MT5Model`` (encoder + decoder, no LM head), so the 250K-row
vocabulary projection is neither in memory nor in ``state_dict``/checkpoints;
loading it from a full mT5 checkpoint just skips ``lm_head.weight``.

score = head(decoder state at the first step), a logit.
NLL = binary cross-entropy of σ(score) against the click label, i.e.
−log P(label) under a Bernoulli with P(click) = σ(score).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn
from transformers import MT5Model

from recsys24.model_inputs.batches import Batch
from recsys24.models.contract import Output
from recsys24.models.prompt.base import PromptModel, first_decoder_state


class CGc(PromptModel):
    name = "cgc"
    backbone_class = MT5Model

    def make_head(self, d_model: int) -> nn.Module:
        return nn.Linear(d_model, 1)

    def forward(self, batch: Batch, with_nll: bool = True) -> Output:
        h = first_decoder_state(self.backbone, batch)
        scores = self.head(h).squeeze(-1).float()[batch.candidate_row]
        nll = None
        if with_nll and batch.labels is not None:
            nll = F.binary_cross_entropy_with_logits(scores, batch.labels.to(scores.device))
        return Output(scores, nll)
