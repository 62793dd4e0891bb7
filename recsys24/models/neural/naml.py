"""NAML (Wu et al., IJCAI 2019): attentive multi-view news encoder.

Views: title (CNN + attention), body (CNN + attention), category and
subcategory (embedding + dense ReLU), pooled by view-level attention; user =
additive attention over the history news. Differs: EB-NeRD's subcategory is a
list, the first one is used; categories are hashed into a fixed table.
"""

from __future__ import annotations

import torch
from torch import nn

from recsys24.models.neural.base import NeuralModel
from recsys24.models.neural.blocks import AdditiveAttention, TextEncoder


class NAML(NeuralModel):
    name = "naml"
    news_fields = ("title", "body", "category", "subcategory")

    def build(self) -> None:
        s = self.size
        self.title = TextEncoder(self.words.embedding_dim, s.filters, s.window, s.attention_dim, s.dropout)
        self.body = TextEncoder(self.words.embedding_dim, s.filters, s.window, s.attention_dim, s.dropout)
        self.category = nn.Embedding(s.category_buckets, s.category_dim, padding_idx=0)
        self.subcategory = nn.Embedding(s.category_buckets, s.category_dim, padding_idx=0)
        self.category_dense = nn.Linear(s.category_dim, s.filters)
        self.subcategory_dense = nn.Linear(s.category_dim, s.filters)
        self.view_pool = AdditiveAttention(s.filters, s.attention_dim)
        self.user_pool = AdditiveAttention(s.filters, s.attention_dim)

    def encode_news(self, news, users):
        views = [
            self.title(self.words(news.title), news.title_mask),
            self.body(self.words(news.body), news.body_mask),
            torch.relu(self.category_dense(self.category(news.category))),
            torch.relu(self.subcategory_dense(self.subcategory(news.subcategory))),
        ]
        return self.view_pool(torch.stack(views, dim=-2))

    def encode_user(self, history, mask, batch, candidates):
        return self.user_pool(history, mask)
