"""The training loss L = (1 − λ)·NLL + λ·BPR.

NLL is each architecture's own likelihood term (see its ``forward``). BPR is
−log σ(r_pos − r_neg) averaged over every (clicked, not-clicked) pair of
candidates of the same impression; the poster sums, we average so that λ means
the same for any number of negatives and any batch size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def padded(values: torch.Tensor, group: torch.Tensor, num_groups: int, fill: float = 0.0):
    """Scatter per-candidate ``values`` [N] into [num_groups, C_max]; returns (matrix, mask).

    ``group`` [N] must be sorted (candidates of one impression are contiguous).
    """
    counts = torch.bincount(group, minlength=num_groups)
    starts = torch.cumsum(counts, 0) - counts
    col = torch.arange(len(group), device=group.device) - starts[group]
    width = int(counts.max()) if len(group) else 0
    out = values.new_full((num_groups, width), fill)
    mask = torch.zeros((num_groups, width), dtype=torch.bool, device=values.device)
    out[group, col] = values
    mask[group, col] = True
    return out, mask


def bpr_loss(scores: torch.Tensor, group: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean of −log σ(r_pos − r_neg) over (clicked, not-clicked) pairs of the same impression.

    Zero (with a gradient path) when the batch holds no such pair. Computed over
    all N × N candidate pairs of the batch, masked, so that no value has to be
    read back from the GPU (N is a training or validation batch's candidates).
    """
    clicked = labels.to(scores.device) > 0.5
    pairs = (group[:, None] == group[None, :]) & clicked[:, None] & ~clicked[None, :]
    terms = F.softplus(scores[None, :] - scores[:, None])  # −log σ(r_i − r_j) at [i, j]
    return torch.where(pairs, terms, 0.0).sum() / pairs.sum().clamp(min=1)


def listwise_nll(scores: torch.Tensor, group: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """−log softmax over an impression's candidates at its clicked ones; mean over clicks, then impressions.

    Impressions without a click are left out.
    """
    num_groups = int(group.max()) + 1 if len(group) else 0
    s, mask = padded(scores, group, num_groups, fill=float("-inf"))
    y, _ = padded(labels.to(scores.dtype), group, num_groups)
    logp = torch.log_softmax(s, dim=1)
    pos = mask & (y > 0.5)
    per_impression = -(torch.where(pos, logp, 0.0)).sum(1) / pos.sum(1).clamp(min=1)
    has = pos.any(1)
    if not bool(has.any()):
        return scores.sum() * 0.0
    return per_impression[has].mean()


def combined_loss(nll: torch.Tensor, scores: torch.Tensor, group: torch.Tensor, labels: torch.Tensor, lam: float):
    """(1 − λ)·nll + λ·BPR(scores)."""
    if lam == 0.0:
        return nll
    bpr = bpr_loss(scores, group, labels)
    if lam == 1.0:
        return bpr
    return (1.0 - lam) * nll + lam * bpr
