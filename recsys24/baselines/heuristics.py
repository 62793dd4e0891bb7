"""Heuristic scorers: one function per baseline, each scoring a batch of impressions.

Every scorer gets a :class:`Context` (lookup tables built once per split) and
one batch of behaviors rows, and returns one float32 score per in-view article,
flat, in in-view order (higher = more likely clicked). Ties are left to the
ranking rule (earlier in-view position first).

- ``random``: uniform noise from a seeded generator.
- ``popular``: the article's ``total_pageviews``; where it is null,
  ``total_inviews`` times the median pageviews/inviews ratio; 0 if both are null.
- ``category`` (the poster's "most frequent category", RecPrompt's TopicPop):
  the share of the user's history in the candidate's category.
- ``freshness`` (the poster's "closest publish time"): minus the absolute time
  between the candidate's publication and the impression.
- ``inview-count``: how often the candidate appears in in-view lists of the same
  split within 30 minutes either side of the impression (10-minute buckets;
  beyond-accuracy rows not counted).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from recsys24.data import schema as S
from recsys24.data.columns import flat_lists
from recsys24.data.split import Split, iter_batches

BUCKET_US = 10 * 60 * 1_000_000  # inview-count: 10-minute buckets
WINDOW_BUCKETS = 3  # ... 3 buckets either side: the hour around the impression


@dataclass
class Context:
    """What a scorer may need beyond the batch; built lazily, once per split."""

    split: Split
    seed: int = 0
    cache: dict = field(default_factory=dict)

    def article_column(self, column: str, dtype=np.float64, fill=np.nan) -> np.ndarray:
        """A dense table ``t[article_id]`` of one articles.parquet column."""
        key = ("article", column)
        if key not in self.cache:
            df = pl.read_parquet(self.split.articles, columns=[S.ARTICLE_ID, column])
            ids = df[S.ARTICLE_ID].to_numpy()
            table = np.full(int(ids.max()) + 1, fill, dtype=dtype)
            values = df[column]
            if values.dtype.is_temporal():
                values = values.dt.epoch("us")
            table[ids] = values.cast(pl.Float64).fill_null(fill).to_numpy().astype(dtype)
            self.cache[key] = table
        return self.cache[key]


def _lookup(table: np.ndarray, ids: np.ndarray, fill) -> np.ndarray:
    """``table[ids]``, with ``fill`` for ids outside the table."""
    inside = (ids >= 0) & (ids < table.size)
    out = np.full(ids.size, fill, dtype=table.dtype)
    out[inside] = table[ids[inside]]
    return out


def _inview(batch: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids, offsets = flat_lists(batch[S.INVIEW])
    row = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    return ids.astype(np.int64), offsets, row


def random_scores(ctx: Context, batch: pl.DataFrame, first_row: int) -> np.ndarray:
    _, offsets, _ = _inview(batch)
    # seeded by (seed, first row): the same batch gets the same scores in any run
    rng = np.random.default_rng([ctx.seed, first_row])
    return rng.random(int(offsets[-1]), dtype=np.float32)


def popular_scores(ctx: Context, batch: pl.DataFrame, first_row: int) -> np.ndarray:
    if "popularity" not in ctx.cache:
        pv = ctx.article_column(S.TOTAL_PAGEVIEWS)
        iv = ctx.article_column(S.TOTAL_INVIEWS)
        both = np.isfinite(pv) & np.isfinite(iv) & (iv > 0)
        ratio = float(np.median(pv[both] / iv[both])) if both.any() else 0.0
        ctx.cache["popularity"] = np.nan_to_num(np.where(np.isfinite(pv), pv, iv * ratio), nan=0.0)
    ids, _, _ = _inview(batch)
    return _lookup(ctx.cache["popularity"], ids, 0.0).astype(np.float32)


def freshness_scores(ctx: Context, batch: pl.DataFrame, first_row: int) -> np.ndarray:
    published = ctx.article_column(S.PUBLISHED_TIME)
    ids, _, row = _inview(batch)
    t = batch[S.IMPRESSION_TIME].dt.epoch("us").to_numpy().astype(np.float64)
    age_hours = (t[row] - _lookup(published, ids, np.nan)) / 3.6e9
    return np.nan_to_num(-np.abs(age_hours), nan=-1e9).astype(np.float32)


def _user_category_shares(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """Sorted keys ``user_id << 16 | category`` and the share of the user's history in it."""
    if "user_category" not in ctx.cache:
        category = ctx.article_column(S.CATEGORY, np.int64, -1)
        keys, shares = [np.zeros(0, np.int64)], [np.zeros(0)]
        for _, hist in iter_batches(ctx.split.history, [S.USER_ID, S.HIST_ARTICLE], 200_000):
            art, off = flat_lists(hist[S.HIST_ARTICLE])
            n = np.diff(off)
            users = np.repeat(hist[S.USER_ID].to_numpy().astype(np.int64), n)
            cat = _lookup(category, art.astype(np.int64), -1) & 0xFFFF
            k, first, count = np.unique((users << 16) | cat, return_index=True, return_counts=True)
            keys.append(k)
            shares.append(count / np.repeat(n, n)[first])
        keys, shares = np.concatenate(keys), np.concatenate(shares)
        order = np.argsort(keys, kind="stable")  # one row per user: keys are distinct
        ctx.cache["user_category"] = (keys[order], shares[order])
    return ctx.cache["user_category"]


def category_scores(ctx: Context, batch: pl.DataFrame, first_row: int) -> np.ndarray:
    keys, shares = _user_category_shares(ctx)
    category = ctx.article_column(S.CATEGORY, np.int64, -1)
    ids, _, row = _inview(batch)
    users = batch[S.USER_ID].to_numpy().astype(np.int64)[row]
    want = (users << 16) | (_lookup(category, ids, -1) & 0xFFFF)
    if keys.size == 0:
        return np.zeros(want.size, dtype=np.float32)
    at = np.minimum(np.searchsorted(keys, want), keys.size - 1)
    return np.where(keys[at] == want, shares[at], 0.0).astype(np.float32)


def _bucket(times_us: np.ndarray) -> np.ndarray:
    return times_us // BUCKET_US


def _inview_counts(ctx: Context) -> tuple[np.ndarray, int, np.ndarray]:
    """(distinct in-view article ids, first bucket, cumulative counts matrix).

    ``cum[a, b]`` = in-view appearances of article ``ids[a]`` in buckets before
    ``first + b``: a window sum is two lookups. Dense over the split's in-view
    articles and its week of 10-minute buckets (~40k x 1,000 on a full split).
    """
    if "inview_counts" not in ctx.cache:
        columns = [S.IMPRESSION_TIME, S.INVIEW]
        ids, lo, hi = [np.zeros(0, np.int64)], None, None
        for _, batch in iter_batches(ctx.split.behaviors, columns, 500_000):
            ids.append(np.unique(flat_lists(batch[S.INVIEW])[0]))
            b = _bucket(batch[S.IMPRESSION_TIME].dt.epoch("us").to_numpy())
            lo = b.min() if lo is None else min(lo, b.min())
            hi = b.max() if hi is None else max(hi, b.max())
        ids = np.unique(np.concatenate(ids)).astype(np.int64)
        n_buckets = int(hi - lo + 1) if lo is not None else 1
        counts = np.zeros(ids.size * n_buckets, dtype=np.int64)
        test = S.IS_BEYOND_ACCURACY in S.behaviors_schema(ctx.split.name)
        for _, batch in iter_batches(ctx.split.behaviors, columns + [S.IS_BEYOND_ACCURACY] * test, 500_000):
            if test:  # the 250-candidate rows are not real in-views: leave them out
                batch = batch.filter(~pl.col(S.IS_BEYOND_ACCURACY))
            article, _, row = _inview(batch)
            b = _bucket(batch[S.IMPRESSION_TIME].dt.epoch("us").to_numpy())[row] - lo
            counts += np.bincount(np.searchsorted(ids, article) * n_buckets + b, minlength=counts.size)
        cum = np.zeros((ids.size, n_buckets + 1), dtype=np.int64)
        np.cumsum(counts.reshape(ids.size, n_buckets), axis=1, out=cum[:, 1:])
        ctx.cache["inview_counts"] = (ids, int(lo) if lo is not None else 0, cum)
    return ctx.cache["inview_counts"]


def inview_count_scores(ctx: Context, batch: pl.DataFrame, first_row: int) -> np.ndarray:
    ids, first, cum = _inview_counts(ctx)
    article, _, row = _inview(batch)
    a = np.searchsorted(ids, article)
    n = cum.shape[1] - 1
    b = _bucket(batch[S.IMPRESSION_TIME].dt.epoch("us").to_numpy())[row] - first
    flat = cum.ravel()
    base = a * (n + 1)
    window = flat[base + np.clip(b + WINDOW_BUCKETS + 1, 0, n)] - flat[base + np.clip(b - WINDOW_BUCKETS, 0, n)]
    return window.astype(np.float32)
