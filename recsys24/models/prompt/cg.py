"""CG: the seq2seq recommender of PGNR. The decoder answers "ja" or "nej" to a template a–d prompt.

score = log P("ja") − log P("nej") at the first decoder step (the log-odds of
"ja" against "nej"; the softmax normaliser cancels, so scoring needs only the
two LM-head rows of "ja" and "nej", not all 250K).

NLL = −log P(answer) over the full vocabulary at that step, answer = "ja" for a
clicked candidate and "nej" otherwise (the seq2seq likelihood of a one-token
target).
"""

from __future__ import annotations

import torch
from transformers import MT5ForConditionalGeneration

from recsys24.model_inputs.batches import Batch
from recsys24.models.contract import Output
from recsys24.models.prompt.base import PromptModel, first_decoder_state


class CG(PromptModel):
    name = "cg"
    backbone_class = MT5ForConditionalGeneration

    def forward(self, batch: Batch, with_nll: bool = True) -> Output:
        h = first_decoder_state(self.backbone, batch)
        yes, no = self.spec.yes_id, self.spec.no_id
        if with_nll and batch.labels is not None:
            logp = torch.log_softmax(self.backbone.lm_head(h).float(), dim=-1)
            scores = (logp[:, yes] - logp[:, no])[batch.candidate_row]
            target = torch.where(batch.labels > 0.5, yes, no).to(h.device)
            nll = -logp[batch.candidate_row].gather(1, target[:, None]).mean()
            return Output(scores, nll)
        two = h @ self.backbone.lm_head.weight[[yes, no]].T
        return Output((two[:, 0] - two[:, 1]).float()[batch.candidate_row])
