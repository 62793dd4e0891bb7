"""DKN (Wang et al., WWW 2018): knowledge-aware CNN news encoder, candidate-aware user attention.

KCNN: each title token's word embedding is stacked with the transformed
embedding g(e) = tanh(M e + b) of its aligned entity (zero when none), convolved
with windows 1, 2 and 3 (``filters`` each), max-pooled over time and
concatenated. User = Σ softmax_i(DNN([h_i; c])) h_i over the history, for each
candidate c. Differs from the paper: EB-NeRD has no knowledge-graph (TransE)
entity embeddings, so the ``ner_clusters`` entities get learned hashed
embeddings, aligned to title tokens by token match (see
``features._aligned_entities``), and there are no context embeddings; the
click score is ⟨user, candidate⟩ like the other baselines, not a DNN over both.
"""

from __future__ import annotations

import torch
from torch import nn

from recsys24.models.neural.base import NeuralModel
from recsys24.models.neural.blocks import masked_softmax

WINDOWS = (1, 2, 3)


class DKN(NeuralModel):
    name = "dkn"
    news_fields = ("title", "entities")

    def build(self) -> None:
        s = self.size
        dim = self.words.embedding_dim
        self.entities = nn.Embedding(s.entity_buckets, s.entity_dim, padding_idx=0)
        self.transform = nn.Linear(s.entity_dim, dim)
        self.convs = nn.ModuleList(nn.Conv1d(2 * dim, s.filters, w) for w in WINDOWS)
        news_dim = s.filters * len(WINDOWS)
        self.attention = nn.Sequential(nn.Linear(2 * news_dim, s.attention_dim), nn.ReLU(),
                                       nn.Linear(s.attention_dim, 1))
        self.drop = nn.Dropout(s.dropout)

    def encode_news(self, news, users):
        words = self.words(news.title)
        has = (news.entities > 0).unsqueeze(-1)
        entities = torch.tanh(self.transform(self.entities(news.entities))) * has
        x = self.drop(torch.cat([words, entities], dim=-1)).transpose(1, 2)
        return torch.cat([torch.relu(conv(x)).amax(dim=-1) for conv in self.convs], dim=-1)

    def encode_user(self, history, mask, batch, candidates):
        h = history[batch.group]  # [N, H, D]: every candidate attends over its user's history
        c = candidates.unsqueeze(1).expand(-1, h.shape[1], -1)
        weights = masked_softmax(self.attention(torch.cat([h, c], dim=-1)).squeeze(-1), mask[batch.group])
        return (weights.unsqueeze(-1) * h).sum(1)
