"""NPA (Wu et al., KDD 2019): neural news recommendation with personalised attention.

A user-id embedding makes two queries (ReLU dense layers): one for word-level
attention over the title CNN in the news encoder, one for news-level
attention over the history. Candidates are encoded with the impression's user
query too, as published. Differs: user ids are hashed into ``user_buckets``
rows (unseen test users share rows).
"""

from __future__ import annotations

import torch
from torch import nn

from recsys24.models.neural.base import NeuralModel
from recsys24.models.neural.blocks import PersonalizedAttention, TextCNN


class NPA(NeuralModel):
    name = "npa"
    news_fields = ("title",)
    user_dependent_news = True

    def build(self) -> None:
        s = self.size
        self.users = nn.Embedding(s.user_buckets, s.user_dim)
        self.word_query = nn.Linear(s.user_dim, s.attention_dim)
        self.news_query = nn.Linear(s.user_dim, s.attention_dim)
        self.cnn = TextCNN(self.words.embedding_dim, s.filters, s.window)
        self.word_attention = PersonalizedAttention(s.attention_dim, s.filters)
        self.news_attention = PersonalizedAttention(s.attention_dim, s.filters)
        self.drop = nn.Dropout(s.dropout)

    def encode_news(self, news, users):
        query = torch.relu(self.word_query(self.users(users)))
        x = self.drop(self.cnn(self.drop(self.words(news.title))))
        return self.word_attention(x, query, news.title_mask)

    def encode_user(self, history, mask, batch, candidates):
        query = torch.relu(self.news_query(self.users(batch.users)))
        return self.news_attention(history, query, mask)
