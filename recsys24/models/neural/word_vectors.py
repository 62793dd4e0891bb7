"""Offline word vectors for the neural models: PPMI + SVD over the articles' own text.

The papers start from pretrained GloVe vectors; offline (``backbone: tiny``)
there are none. Count-based vectors from the article corpus (the classic
GloVe stand-in: each article's title, subtitle and body start is one context)
put words of one topic close together before training starts. Seconds for ~10K
articles and an 8K-token vocabulary.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

from recsys24.data import schema

BODY_CHARS = 400


def cooccurrence_vectors(articles: pl.DataFrame, tokenizer, vocab_size: int, dim: int, seed: int = 0) -> torch.Tensor:
    """[vocab_size, dim] word vectors (std 0.1) from positive PMI of token co-occurrence within an article.

    Tokens that never occur get small random vectors; the pad row is zero.
    """
    from scipy import sparse
    from scipy.sparse.linalg import svds

    text = pl.lit("")
    for col in (schema.TITLE, schema.SUBTITLE, schema.BODY):
        if col in articles.columns:
            text = text + " " + pl.col(col).fill_null("").str.slice(0, BODY_CHARS)
    ids = tokenizer(articles.select(text.alias("t"))["t"].to_list(), add_special_tokens=False)["input_ids"]
    lens = np.array([len(x) for x in ids], dtype=np.int64)
    tokens = np.fromiter((t for x in ids for t in x), dtype=np.int64, count=int(lens.sum()))
    rows = np.repeat(np.arange(len(ids)), lens)
    x = sparse.csr_matrix((np.ones(len(tokens)), (rows, tokens)), shape=(len(ids), vocab_size))
    x.data[:] = 1.0  # an article counts a token once
    counts = (x.T @ x).tocoo()
    keep = counts.row != counts.col
    r, c, v = counts.row[keep], counts.col[keep], counts.data[keep]
    marginal = np.bincount(r, weights=v, minlength=vocab_size)
    pmi = np.log(v * v.sum() / (marginal[r] * marginal[c]))
    pos = pmi > 0
    ppmi = sparse.csr_matrix((pmi[pos], (r[pos], c[pos])), shape=(vocab_size, vocab_size))
    k = min(dim, vocab_size - 2)
    u, s, _ = svds(ppmi, k=k, v0=np.random.default_rng(seed).random(vocab_size))
    vectors = u * np.sqrt(s)
    seen = marginal > 0
    rng = np.random.default_rng(seed)
    vectors[~seen] = rng.normal(0.0, vectors[seen].std() if seen.any() else 1.0, size=(int((~seen).sum()), k))
    vectors = vectors / max(float(vectors.std()), 1e-9) * 0.1
    out = torch.zeros(vocab_size, dim)
    out[:, :k] = torch.from_numpy(vectors).float()
    out[int(tokenizer.pad_token_id)] = 0.0
    return out
