"""Contest accuracy metrics, per impression, over whole columns.

Every metric is computed per impression (one in-view list with its scores and
click labels) and then averaged over impressions, as the official EB-NeRD
toolkit (``ebrec.evaluation``) does:

- ``auc``: ROC-AUC of the impression's scores against its labels (tied scores
  count one half, as ``sklearn.metrics.roc_auc_score``);
- ``mrr``: sum over clicked articles of 1 / rank, divided by the number clicked;
- ``ndcg@k``: gains ``2**label - 1``, discount ``log2(rank + 1)``, ``k`` capped at
  the list length, divided by the ideal DCG;
- ``hr@k``: 1 when a clicked article is among the top ``k``.

Ranks: 1 = highest score; tied scores are ranked by in-view position, earlier
first (the same rule as the submission writer). ebrec breaks ties by
``np.argsort(...)[::-1]``, which depends on numpy's sort; with distinct scores
the two agree exactly.

Impressions whose labels are all 0 or all 1: the official toolkit does not
handle them. Its AUC calls ``sklearn.metrics.roc_auc_score`` per impression,
which raises ``ValueError`` ("Only one class present in y_true") in the sklearn
versions it was written for and returns NaN with a warning in recent ones; its
MRR and nDCG of an all-0 impression are 0/0 = NaN. One such impression
therefore makes the toolkit's mean NaN (or stops it). Real EB-NeRD
train/validation impressions always have at least one clicked and one
not-clicked article, so the case never arises there. Here such impressions get
null in :func:`per_impression` and are left out of every mean in
:func:`accuracy`; ``impressions`` in its result counts the impressions used.

Example::

    >>> scores = pl.Series([[0.2, 0.3, 0.5], [0.18, 0.7, 0.1], [0.18, 0.2, 0.1, 0.1]])
    >>> labels = pl.Series([[1, 0, 0], [1, 1, 0], [1, 0, 0, 0]])
    >>> round(accuracy(scores, labels)["auc"], 4)   # ebrec's MetricEvaluator: 0.5556
    0.5556
"""

from __future__ import annotations

import numpy as np
import polars as pl

from recsys24.data.columns import flat_lists
from recsys24.errors import Recsys24Error
from recsys24.evaluation.ranking import row_chunks

KS_NDCG = (5, 10)
KS_HR = (1, 5)
METRIC_NAMES = ("auc", "mrr", *(f"ndcg@{k}" for k in KS_NDCG), *(f"hr@{k}" for k in KS_HR))

# Impressions and in-view articles per chunk: bound memory (~100 bytes per article).
CHUNK_ROWS = 1_000_000
CHUNK_ELEMENTS = 12_000_000


def _check_pair(scores: np.ndarray, s_off: np.ndarray, labels: np.ndarray,
                l_off: np.ndarray, row_offset: int) -> None:
    if s_off.size != l_off.size:
        raise Recsys24Error(
            f"scores have {s_off.size - 1} rows but labels have {l_off.size - 1}"
        )
    bad = np.flatnonzero(np.diff(s_off) != np.diff(l_off))
    if bad.size:
        r = int(bad[0])
        raise Recsys24Error(
            f"row {row_offset + r}: {s_off[r + 1] - s_off[r]} scores for "
            f"{l_off[r + 1] - l_off[r]} labels"
        )
    if scores.dtype.kind == "f":
        nan = np.flatnonzero(~np.isfinite(scores))
        if nan.size:
            r = int(np.searchsorted(s_off, nan[0], side="right") - 1)
            raise Recsys24Error(f"row {row_offset + r}: score is NaN or infinite")
    odd = np.flatnonzero((labels != 0) & (labels != 1))
    if odd.size:
        r = int(np.searchsorted(l_off, odd[0], side="right") - 1)
        raise Recsys24Error(f"row {row_offset + r}: label {labels[odd[0]]} is not 0 or 1")


def _segment_sum(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum of ``values[offsets[i]:offsets[i+1]]`` for every list (0 for empty lists)."""
    lengths = np.diff(offsets)
    out = np.zeros(lengths.size, dtype=np.int64 if values.dtype.kind in "biu" else np.float64)
    nonempty = lengths > 0
    if nonempty.any():
        out[nonempty] = np.add.reduceat(values, offsets[:-1][nonempty], dtype=out.dtype)
    return out


def _target_stats(scores, labels, offsets, target):
    """For one clicked article per list (flat index ``target``): its rank, and
    the AUC numerator (not-clicked articles scored below it, ties count 1/2).

    No sort: the rank is 1 + the articles scored higher + the tied ones earlier
    in the list (the ranking rule of the module doc), counted with one
    comparison per article against its list's target.
    """
    lengths = np.diff(offsets)
    t_score = np.repeat(scores[target], lengths)
    t_pos = np.repeat(target, lengths)
    higher = scores > t_score
    equal = scores == t_score
    ahead = higher | (equal & (np.arange(scores.size) < t_pos))
    rank = 1 + _segment_sum(ahead, offsets)
    negative = labels == 0
    below = _segment_sum(negative & ~higher & ~equal, offsets)
    tied = _segment_sum(negative & equal, offsets)
    return rank, below + 0.5 * tied


def _sub_lists(offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat element indices and offsets of the lists ``rows`` (in order)."""
    lengths = np.diff(offsets)[rows]
    sub_offsets = np.zeros(rows.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=sub_offsets[1:])
    elements = np.repeat(offsets[:-1][rows] - sub_offsets[:-1], lengths) + np.arange(sub_offsets[-1])
    return elements, sub_offsets


def _chunk_metrics(scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray) -> dict[str, np.ndarray]:
    """Per-impression metrics of one chunk (NaN where labels are all 0 or all 1).

    One pass per k-th clicked article (k = 1 for almost every impression; later
    passes only touch the lists with more clicks).
    """
    n = offsets.size - 1
    lengths = np.diff(offsets)
    labels = labels.astype(np.int8, copy=False)
    n_pos = _segment_sum(labels, offsets)
    n_neg = lengths - n_pos
    valid = (n_pos > 0) & (n_neg > 0)
    clicked = np.flatnonzero(labels)
    first_click = np.zeros(n, dtype=np.int64)
    np.cumsum(n_pos[:-1], out=first_click[1:])

    reciprocal = np.zeros(n)
    auc_num = np.zeros(n)
    dcg = {k: np.zeros(n) for k in KS_NDCG}
    hits = {k: np.zeros(n) for k in KS_HR}
    discount = 1.0 / np.log2(np.arange(2, int(lengths.max(initial=0)) + 2))
    discount = np.concatenate([[0.0], discount])  # discount[rank]
    for k in range(int(n_pos.max(initial=0))):
        rows = np.flatnonzero(n_pos > k)
        target = clicked[first_click[rows] + k]
        if rows.size == n:
            rank, below = _target_stats(scores, labels, offsets, target)
        else:
            elements, sub_offsets = _sub_lists(offsets, rows)
            local = target - offsets[:-1][rows] + sub_offsets[:-1]
            rank, below = _target_stats(scores[elements], labels[elements], sub_offsets, local)
        reciprocal[rows] += 1.0 / rank
        auc_num[rows] += below
        for cut in KS_NDCG:
            dcg[cut][rows] += np.where(rank <= cut, discount[rank], 0.0)
        for cut in KS_HR:
            hits[cut][rows] = np.maximum(hits[cut][rows], rank <= cut)

    ideal = np.cumsum(discount)  # ideal[m]: DCG of m clicks at ranks 1..m
    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        out["auc"] = auc_num / (n_pos * n_neg)
        out["mrr"] = reciprocal / n_pos
        for cut in KS_NDCG:
            out[f"ndcg@{cut}"] = dcg[cut] / ideal[np.minimum(n_pos, np.minimum(lengths, cut))]
        for cut in KS_HR:
            out[f"hr@{cut}"] = hits[cut]
    for name in out:
        out[name][~valid] = np.nan
    out["n_inview"] = lengths
    out["n_clicked"] = n_pos
    return out


def _chunks(scores: pl.Series, labels: pl.Series, chunk_rows: int, first_row: int = 0):
    if scores.len() != labels.len():
        raise Recsys24Error(f"scores have {scores.len()} rows but labels have {labels.len()}")
    lengths = scores.list.len().fill_null(0).to_numpy()
    for start, stop in row_chunks(lengths, CHUNK_ELEMENTS, chunk_rows):
        s_vals, s_off = flat_lists(scores.slice(start, stop - start))
        l_vals, l_off = flat_lists(labels.slice(start, stop - start))
        _check_pair(s_vals, s_off, l_vals, l_off, first_row + start)
        yield _chunk_metrics(s_vals, l_vals, s_off)


def impression_auc(scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per-impression ROC-AUC of flat scores (f64, ties count one half; NaN where the labels are all 0 or all 1).

    The AUC of ``recsys24 evaluate``, for callers that hold flat arrays: the
    candidates of impression ``i`` at ``offsets[i]:offsets[i + 1]``. Computed in
    chunks of at most :data:`CHUNK_ELEMENTS` candidates, as ``evaluate`` does.

    >>> impression_auc(np.array([.9, .1, .5, .2, .2]), np.array([1, 0, 0, 1, 0]), np.array([0, 3, 5]))
    array([1. , 0.5])
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    parts = [_chunk_metrics(scores[offsets[a]:offsets[b]], labels[offsets[a]:offsets[b]], offsets[a:b + 1] - offsets[a])
             ["auc"] for a, b in row_chunks(np.diff(offsets), CHUNK_ELEMENTS, CHUNK_ROWS)]
    return np.concatenate(parts) if parts else np.zeros(0)


def per_impression(scores: pl.Series, labels: pl.Series, chunk_rows: int = CHUNK_ROWS) -> pl.DataFrame:
    """One row per impression: ``auc, mrr, ndcg@5, ndcg@10, hr@1, hr@5`` (f64; null
    where the labels are all 0 or all 1), ``n_inview`` and ``n_clicked``.

    ``scores``: list[f32] or list[f64]; ``labels``: list of 0/1 integers; one row
    per impression, lists of equal length row by row.
    """
    parts = [pl.DataFrame(c) for c in _chunks(scores, labels, chunk_rows)]
    if not parts:
        return pl.DataFrame(schema={**{m: pl.Float64 for m in METRIC_NAMES},
                                    "n_inview": pl.Int64, "n_clicked": pl.Int64})
    df = pl.concat(parts)
    return df.with_columns(pl.col(*METRIC_NAMES).fill_nan(None))


class AccuracyTotals:
    """Running sums of the per-impression metrics, for data that arrives in batches.

    >>> totals = AccuracyTotals()
    >>> for scores, labels in batches:      # doctest: +SKIP
    ...     totals.add(scores, labels)
    >>> totals.result()                     # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.sums = dict.fromkeys(METRIC_NAMES, 0.0)
        self.used = 0
        self.rows = 0

    def add(self, scores: pl.Series, labels: pl.Series, chunk_rows: int = CHUNK_ROWS) -> None:
        for chunk in _chunks(scores, labels, chunk_rows, first_row=self.rows):
            valid = ~np.isnan(chunk["auc"])
            self.used += int(valid.sum())
            for name in METRIC_NAMES:
                self.sums[name] += float(chunk[name][valid].sum())
        self.rows += scores.len()

    def result(self) -> dict[str, float]:
        out = {n: (self.sums[n] / self.used if self.used else float("nan")) for n in METRIC_NAMES}
        out["impressions"] = self.used
        return out


def accuracy(scores: pl.Series, labels: pl.Series, chunk_rows: int = CHUNK_ROWS) -> dict[str, float]:
    """The contest metrics averaged over impressions.

    ``scores``: list[f32] (or list[f64]) and ``labels``: list of 0/1 (i8 or int),
    one row per impression. Returns ``{"auc", "mrr", "ndcg@5", "ndcg@10", "hr@1",
    "hr@5", "impressions"}``, ``impressions`` being the number of rows used
    (impressions with all-0 or all-1 labels are left out, see the module doc).
    Raises :class:`Recsys24Error` naming the row on mismatched list lengths,
    NaN scores or labels other than 0/1.
    """
    totals = AccuracyTotals()
    totals.add(scores, labels, chunk_rows)
    return totals.result()
