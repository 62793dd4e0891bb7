"""NRMS (Wu et al., EMNLP 2019): multi-head self-attention news and user encoders.

news = AdditiveAttention(MHSA(words(title))); user = AdditiveAttention(MHSA(history news)).
As published, with dropout on the word embeddings and after self-attention.
Differs: word embeddings come from the offline tokeniser or mT5 (not GloVe).
"""

from __future__ import annotations

from torch import nn

from recsys24.models.neural.base import NeuralModel
from recsys24.models.neural.blocks import AdditiveAttention, MultiHeadSelfAttention


class NRMS(NeuralModel):
    name = "nrms"
    news_fields = ("title",)

    def build(self) -> None:
        s = self.size
        dim = s.num_heads * s.head_dim
        self.news_attention = MultiHeadSelfAttention(self.words.embedding_dim, s.num_heads, s.head_dim)
        self.news_pool = AdditiveAttention(dim, s.attention_dim)
        self.user_attention = MultiHeadSelfAttention(dim, s.num_heads, s.head_dim)
        self.user_pool = AdditiveAttention(dim, s.attention_dim)
        self.drop = nn.Dropout(s.dropout)

    def encode_news(self, news, users):
        x = self.drop(self.words(news.title))
        x = self.drop(self.news_attention(x, news.title_mask))
        return self.news_pool(x, news.title_mask)

    def encode_user(self, history, mask, batch, candidates):
        return self.user_pool(self.user_attention(history, mask), mask)
