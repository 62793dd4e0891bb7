"""CGh's fast scoring path: each candidate costs one decoder position.

The reference path (``CGh.forward``) hands the Hugging Face decoder the
encoder states repeated per candidate, so every candidate recomputes the
cross-attention keys/values of its whole history (L × d² per layer) and the
start position. Here, with the same weights and the same arithmetic:

1. the encoder runs once per distinct history of the batch (the collator
   deduplicates them); each decoder layer's cross-attention keys/values are
   projected once per history;
2. the start position (it depends on the history only) runs once per history
   and leaves its self-attention key/value per layer;
3. the candidate position runs as one flat [N, d] matrix through every layer:
   self-attention over two keys (the cached start and itself, with T5's
   relative position bias), cross-attention with the queries of each history's
   candidates side by side ([H, C_max] slots) through
   ``F.scaled_dot_product_attention``, and the layer's own feed-forward module;
4. article vectors are computed once per run (cached on the model by token-table
   key) instead of once per batch.

Layer norms, projections and feed-forwards are the backbone's own modules, so
this file holds only the attention bookkeeping. T5 does not scale q·k (scale 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _heads(x: torch.Tensor, attn) -> torch.Tensor:
    return x.view(*x.shape[:-1], attn.n_heads, attn.key_value_proj_dim)


def _article_vectors(model, batch) -> torch.Tensor:
    """Vectors of the batch's distinct articles [A, d], each computed once per run."""
    rows = batch.article_table_rows
    cache = model.article_cache
    if cache is None or cache[0] != batch.table_key:
        weight = model.head.article.weight
        cache = (batch.table_key, weight.new_zeros(batch.table_size, weight.shape[0]),
                 torch.zeros(batch.table_size, dtype=torch.bool, device=weight.device))
        model.article_cache = cache
    _, vectors, known = cache
    new = ~known[rows]
    if bool(new.any()):
        vectors[rows[new]] = model.article_vectors(batch.article_input_ids[new], batch.article_mask[new])
        known[rows[new]] = True
    return vectors[rows]


def _slots(history_row: torch.Tensor, num_histories: int) -> tuple[torch.Tensor, int]:
    """Each candidate's column among the candidates of its history, and the widest history."""
    counts = torch.bincount(history_row, minlength=num_histories)
    order = torch.argsort(history_row, stable=True)
    first = torch.cumsum(counts, 0) - counts
    slot = torch.empty_like(history_row)
    slot[order] = torch.arange(len(history_row), device=history_row.device) - first[history_row[order]]
    return slot, int(counts.max())


def decoder_position(blocks, x, cross, keep, rows, slot, width, past=None, bias=None):
    """One decoder position for every row of ``x`` [N, d]; returns (x, per-layer self-attention (k, v)).

    cross: per layer (k, v) [H, heads, L, d_kv]; keep: [H, 1, 1, L] encoder mask;
    rows/slot: each row's history and column; past: per layer (k, v) [H, heads,
    d_kv] of the previous position (None at the start position); bias: [heads, 2].
    """
    kept = []
    num_histories = cross[0][0].shape[0]
    for i, block in enumerate(blocks):
        sa = block.layer[0].SelfAttention
        h = block.layer[0].layer_norm(x)
        q, k, v = _heads(sa.q(h), sa), _heads(sa.k(h), sa), _heads(sa.v(h), sa)  # [N, heads, d_kv]
        kept.append((k, v))
        if past is None:
            out = v  # the start position attends to itself only
        else:
            keys = torch.stack([past[i][0][rows], k], dim=1)  # [N, 2, heads, d_kv]
            values = torch.stack([past[i][1][rows], v], dim=1)
            s = torch.einsum("nhd,nthd->nht", q, keys) + bias.to(q.dtype)
            out = torch.einsum("nht,nthd->nhd", torch.softmax(s.float(), dim=-1).to(q.dtype), values)
        x = x + sa.o(out.reshape(len(x), -1))

        ca = block.layer[1].EncDecAttention
        q = _heads(ca.q(block.layer[1].layer_norm(x)), ca)
        grid = q.new_zeros(num_histories, width, *q.shape[1:])
        grid[rows, slot] = q
        out = F.scaled_dot_product_attention(grid.transpose(1, 2), *cross[i], attn_mask=keep, scale=1.0)
        x = x + ca.o(out.transpose(1, 2)[rows, slot].reshape(len(x), -1))
        x = block.layer[2](x)  # layer norm, gated feed-forward, residual
    return x, kept


def cached_scores(model, batch) -> torch.Tensor:
    """Scores [N] of a :class:`~recsys24.model_inputs.batches.HistoryBatch`, equal to ``model.forward(batch).scores``."""
    backbone = model.backbone
    enc = model.encode(batch.input_ids, batch.attention_mask)
    num_histories = enc.shape[0]
    blocks = backbone.decoder.block
    cross = []
    for block in blocks:
        ca = block.layer[1].EncDecAttention
        cross.append((_heads(ca.k(enc), ca).transpose(1, 2), _heads(ca.v(enc), ca).transpose(1, 2)))
    del enc
    keep = batch.attention_mask.bool()[:, None, None, :]

    every = torch.arange(num_histories, device=keep.device)
    position = model.compiled_position or decoder_position
    _, past = position(blocks, model.start_embedding(num_histories)[:, 0], cross, keep,
                                every, torch.zeros_like(every), 1)
    slot, width = _slots(batch.history_row, num_histories)
    bias = blocks[0].layer[0].SelfAttention.compute_bias(2, 2, device=keep.device)[0, :, 1, :]
    x = model.candidate_inputs(batch, _article_vectors(model, batch))
    x, _ = position(blocks, x, cross, keep, batch.history_row, slot, width, past, bias)
    return model.candidate_scores(backbone.decoder.final_layer_norm(x), batch)

