"""LSTUR (An et al., ACL 2019), the LSTUR-ini variant: long- and short-term user representations.

news = [title CNN + attention; topic embedding; subtopic embedding].
Long-term: a user-id embedding, masked to zero for ``long_term_dropout`` of the
users in training (as published, so new users are served too). Short-term: a
GRU over the history news, started from the long-term vector; the user vector
is its last state. Differs: user ids are hashed into ``user_buckets`` rows, so
an unseen user shares a row with others instead of getting none.
"""

from __future__ import annotations

import torch
from torch import nn

from recsys24.models.neural.base import NeuralModel
from recsys24.models.neural.blocks import TextEncoder


class LSTUR(NeuralModel):
    name = "lstur"
    news_fields = ("title", "category", "subcategory")

    def build(self) -> None:
        s = self.size
        dim = s.filters + 2 * s.category_dim
        self.title = TextEncoder(self.words.embedding_dim, s.filters, s.window, s.attention_dim, s.dropout)
        self.category = nn.Embedding(s.category_buckets, s.category_dim, padding_idx=0)
        self.subcategory = nn.Embedding(s.category_buckets, s.category_dim, padding_idx=0)
        self.long_term = nn.Embedding(s.user_buckets, dim)
        nn.init.zeros_(self.long_term.weight)
        self.gru = nn.GRUCell(dim, dim)

    def encode_news(self, news, users):
        return torch.cat([self.title(self.words(news.title), news.title_mask), self.category(news.category),
                          self.subcategory(news.subcategory)], dim=-1)

    def encode_user(self, history, mask, batch, candidates):
        h = self.long_term(batch.users)
        if self.training and self.size.long_term_dropout > 0:
            keep = torch.rand(h.shape[0], 1, device=h.device) >= self.size.long_term_dropout
            h = h * keep
        for t in range(history.shape[1]):  # a loop over history slots (H), not impressions
            h = torch.where(mask[:, t:t + 1], self.gru(history[:, t], h), h)
        return h
