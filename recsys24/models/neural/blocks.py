"""Layers shared by the neural news recommenders (NRMS, NAML, LSTUR, NPA, DKN).

Every attention here masks with a large finite negative instead of −inf, so a
row whose items are all masked (a user without history, an empty history slot)
gets uniform weights over padding instead of NaN, also in bf16.
"""

from __future__ import annotations

import math

import torch
from torch import nn


MASKED = -1e4


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the last axis, leaving out positions where ``mask`` is False."""
    if mask is not None:
        logits = logits.masked_fill(~mask, MASKED)
    return torch.softmax(logits.float(), dim=-1).to(logits.dtype)


class AdditiveAttention(nn.Module):
    """Pool [M, L, D] → [M, D] with weights softmax(qᵀ tanh(W x + b)); q is one learned query.

    The news- and user-level pooling of NRMS, NAML and LSTUR.
    """

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.proj = nn.Linear(dim, hidden)
        self.query = nn.Parameter(torch.empty(hidden).uniform_(-0.1, 0.1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        weights = masked_softmax(torch.tanh(self.proj(x)) @ self.query, mask)
        return (weights.unsqueeze(-1) * x).sum(-2)


class PersonalizedAttention(nn.Module):
    """NPA's attention: pool [M, L, D] → [M, D] with weights softmax(xᵀ tanh(W q + b)), q [M, Q] per user."""

    def __init__(self, query_dim: int, dim: int):
        super().__init__()
        self.proj = nn.Linear(query_dim, dim)

    def forward(self, x: torch.Tensor, query: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        q = torch.tanh(self.proj(query))
        weights = masked_softmax((x @ q.unsqueeze(-1)).squeeze(-1), mask)
        return (weights.unsqueeze(-1) * x).sum(-2)


class MultiHeadSelfAttention(nn.Module):
    """NRMS's multi-head self-attention: [M, L, D] → [M, L, heads·head_dim]; masked keys are ignored."""

    def __init__(self, dim: int, heads: int, head_dim: int):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.q = nn.Linear(dim, heads * head_dim)
        self.k = nn.Linear(dim, heads * head_dim)
        self.v = nn.Linear(dim, heads * head_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        m, length, _ = x.shape

        def split(t):
            return t.view(m, length, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        logits = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)
        weights = masked_softmax(logits, None if mask is None else mask[:, None, None, :])
        return (weights @ v).transpose(1, 2).reshape(m, length, self.heads * self.head_dim)


class TextCNN(nn.Module):
    """A 1-D convolution over token vectors ('same' length, odd window) + ReLU: [M, L, D] → [M, L, filters]."""

    def __init__(self, dim: int, filters: int, window: int):
        super().__init__()
        self.conv = nn.Conv1d(dim, filters, window, padding=window // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)


class TextEncoder(nn.Module):
    """Word vectors → CNN → additive attention: the title/body views of NAML and LSTUR ([M, L, D] → [M, filters])."""

    def __init__(self, dim: int, filters: int, window: int, attention_dim: int, dropout: float):
        super().__init__()
        self.cnn = TextCNN(dim, filters, window)
        self.pool = AdditiveAttention(filters, attention_dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.pool(self.drop(self.cnn(self.drop(vectors))), mask)


def pretrained_word_embeddings(backbone: str) -> torch.Tensor:
    """The input-embedding matrix [vocab, dim] of a hub id / folder (e.g. google/mt5-base)."""
    from transformers import AutoConfig, AutoModel, MT5EncoderModel

    kind = AutoConfig.from_pretrained(backbone).model_type
    cls = MT5EncoderModel if kind in ("mt5", "t5") else AutoModel
    return cls.from_pretrained(backbone).get_input_embeddings().weight.detach().float().clone()
