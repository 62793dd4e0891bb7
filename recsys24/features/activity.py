"""What the split's own impressions say: in-view counts over time, per-user timing, repeats.

One pass over the behaviors file (``scan_split``) keeps, per row, the user, the
time and the number of candidates, and per candidate its article; from those:

- ``inview counts``: how often each article appears in the split's in-view
  lists, per 5-minute bucket (:data:`BUCKET_S`), cumulated so that any window is
  two lookups. Beyond-accuracy rows are never counted. The *past* windows of an
  impression in bucket ``b`` cover the ``k`` whole buckets before ``b``
  (``[b - k, b)``), so they only see impressions made before this one; the
  *next* windows cover ``[b, b + k)``, the impression's own bucket included;
- ``prev_gap`` / ``next_gap``: seconds since the user's previous impression in
  the split (strictly earlier) and until the next one (strictly later);
- ``seen_before`` / ``seen_after``: how many of the user's strictly earlier
  (later) impressions in the split had the candidate in view (beyond-accuracy
  rows never count as one); ``seen_after`` only when the future may be read.

Memory: about 4 bytes per candidate of the split for the scan, one uint16 per
candidate kept for ``seen_before`` (and ``seen_after``), and the count table (in-view articles x
buckets, uint32).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from recsys24.data import schema as S
from recsys24.data.columns import flat_lists
from recsys24.data.split import Split, iter_batches
from recsys24.features.articles import ArticleTable
from recsys24.features.groups import cut_ranges

BUCKET_S = 300
WINDOWS = {"10m": 2, "1h": 12, "1d": 288}  # window name -> buckets
SORT_EVENTS = 10_000_000  # candidates sorted at once for seen_before (about 70 bytes each)
COUNT_EVENTS = 20_000_000  # candidates counted at once for the in-view table


@dataclass
class Activity:
    first_bucket: int
    slot: np.ndarray  # article row -> row of ``cum`` (-1: never in view in this split)
    cum: np.ndarray  # uint32 [slots, buckets + 1]: in-view appearances before each bucket
    seen: np.ndarray  # int64 [slots, 2]: first and last bucket with an appearance
    prev_gap: np.ndarray  # float32 per behaviors row, NaN where there is none
    next_gap: np.ndarray
    seen_before: np.ndarray  # uint16 per candidate of the split, in file order
    seen_after: np.ndarray | None  # the same, strictly later impressions (None: past only)
    row_offsets: np.ndarray  # int64 [rows + 1]: where each row's candidates start

    def inview_counts(self, article_rows: np.ndarray, times_s: np.ndarray) -> dict[str, np.ndarray]:
        """float32 in-view counts per window: ``past_<w>``, ``next_<w>`` and ``split`` (whole split)."""
        n = self.cum.shape[1] - 1
        b = np.clip(times_s // BUCKET_S - self.first_bucket, 0, n - 1)
        slot = self.slot[article_rows]
        known = slot >= 0
        flat = self.cum.ravel()
        base = np.where(known, slot, 0).astype(np.int64) * (n + 1)

        def at(bucket):
            return flat[base + np.clip(bucket, 0, n)].astype(np.int64)

        now = at(b)
        out = {}
        for name, k in WINDOWS.items():
            out[f"past_{name}"] = now - at(b - k)
            out[f"next_{name}"] = at(b + k) - now
        out["split"] = at(np.full_like(b, n))
        out = {key: np.where(known, value, 0).astype(np.float32) for key, value in out.items()}
        # appearances per hour since the article was first in view (NaN before that)
        first, last = self.seen[np.where(known, slot, 0)].T
        with np.errstate(invalid="ignore", divide="ignore"):
            past = np.where(known & (b > first), (now - at(first)) / (b - first) * (3600 / BUCKET_S), np.nan)
            whole = np.where(known, out["split"] / (last - first + 1) * (3600 / BUCKET_S), np.nan)
        out["rate_past"], out["rate_split"] = past.astype(np.float32), whole.astype(np.float32)
        return out


@dataclass
class _Scan:
    user: np.ndarray  # int64 per row
    time_s: np.ndarray  # int64 per row
    count: np.ndarray  # int64 candidates per row
    beyond: np.ndarray  # bool per row
    article: np.ndarray  # int32 article row per candidate

    @cached_property
    def offsets(self) -> np.ndarray:
        """int64 [rows + 1]: where each row's candidates start in ``article``."""
        return np.concatenate([[0], np.cumsum(self.count)])


def _scan(split: Split, articles: ArticleTable, counts: np.ndarray) -> _Scan:
    """The split's rows into arrays allocated once (``counts``: candidates per row), so the
    scan never holds a second copy of the split's candidates."""
    columns = [S.USER_ID, S.IMPRESSION_TIME, S.INVIEW]
    test = S.IS_BEYOND_ACCURACY in S.behaviors_schema(split.name)
    n_rows = counts.size
    scan = _Scan(np.empty(n_rows, np.int64), np.empty(n_rows, np.int64), counts.astype(np.int64),
                 np.zeros(n_rows, bool), np.empty(int(counts.sum()), np.int32))
    at = 0
    for lo, rows in iter_batches(split.behaviors, columns + [S.IS_BEYOND_ACCURACY] * test, 250_000):
        hi = lo + rows.height
        ids, offsets = flat_lists(rows[S.INVIEW])
        scan.user[lo:hi] = rows[S.USER_ID].to_numpy()
        scan.time_s[lo:hi] = rows[S.IMPRESSION_TIME].dt.epoch("s").to_numpy()
        if test:
            scan.beyond[lo:hi] = rows[S.IS_BEYOND_ACCURACY].to_numpy()
        scan.article[at:at + ids.size] = articles.rows(ids)
        at += ids.size
    return scan


def _inview_table(scan: _Scan, n_articles: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    bucket = scan.time_s // BUCKET_S
    first = int(bucket.min())
    n_buckets = int(bucket.max()) - first + 1
    rows_per_chunk = max(1, int(COUNT_EVENTS / max(scan.count.mean(), 1)))
    chunks = [(lo, min(lo + rows_per_chunk, scan.count.size)) for lo in range(0, scan.count.size, rows_per_chunk)]

    def real_articles(lo, hi):  # by rows, so there is no per-candidate copy of the whole split
        return scan.article[scan.offsets[lo]:scan.offsets[hi]][np.repeat(~scan.beyond[lo:hi], scan.count[lo:hi])]

    present = np.zeros(n_articles, dtype=bool)
    for lo, hi in chunks:
        present[real_articles(lo, hi)] = True
    slot = np.where(present, np.cumsum(present) - 1, -1).astype(np.int64)
    counts = np.zeros(int(present.sum()) * n_buckets, dtype=np.int64)
    for lo, hi in chunks:
        real = np.repeat(~scan.beyond[lo:hi], scan.count[lo:hi])
        keys = slot[real_articles(lo, hi)] * n_buckets + np.repeat(bucket[lo:hi] - first, scan.count[lo:hi])[real]
        counts += np.bincount(keys, minlength=counts.size)
    cum = np.zeros((counts.size // max(n_buckets, 1), n_buckets + 1), dtype=np.uint32)
    np.cumsum(counts.reshape(-1, n_buckets), axis=1, out=cum[:, 1:])
    del counts
    # first and last bucket with an appearance
    seen = np.column_stack([(cum[:, 1:] == 0).sum(axis=1), n_buckets - (cum[:, 1:] == cum[:, -1:]).sum(axis=1)])
    return first, slot, cum, seen


def _gaps(user: np.ndarray, time_s: np.ndarray, beyond: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Seconds since the user's previous and until their next real impression (NaN: none)."""
    rel = time_s - time_s.min()
    key = (user << 40) | rel
    real = np.sort(key[~beyond])
    order = np.argsort(key, kind="stable")
    q = key[order]
    prev_gap = np.full(key.size, np.nan, np.float32)
    next_gap = np.full(key.size, np.nan, np.float32)
    if real.size:
        mask = (1 << 40) - 1
        p = np.searchsorted(real, q, side="left") - 1
        ok = (p >= 0) & ((real[np.maximum(p, 0)] >> 40) == (q >> 40))
        prev_gap[order[ok]] = (q[ok] & mask) - (real[p[ok]] & mask)
        nx = np.searchsorted(real, q, side="right")
        ok = (nx < real.size) & ((real[np.minimum(nx, real.size - 1)] >> 40) == (q >> 40))
        next_gap[order[ok]] = (real[nx[ok]] & mask) - (q[ok] & mask)
    return prev_gap, next_gap


def _run_starts(keys: np.ndarray) -> np.ndarray:
    """For each element of a sorted array, the index where its run of equal keys starts."""
    new = np.ones(keys.size, dtype=bool)
    new[1:] = keys[1:] != keys[:-1]
    return np.maximum.accumulate(np.where(new, np.arange(keys.size), 0))


def _run_ends(keys: np.ndarray) -> np.ndarray:
    """For each element of a sorted array, the index just past its run of equal keys."""
    last = np.ones(keys.size, dtype=bool)
    last[:-1] = keys[:-1] != keys[1:]
    return np.minimum.accumulate(np.where(last, np.arange(1, keys.size + 1), keys.size)[::-1])[::-1]


def _seen(scan: _Scan, user_index: np.ndarray, n_articles: int,
          later: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Per candidate: the user's strictly earlier (and, with ``later``, strictly later) real
    impressions that had it in view.

    Sorts (user, article, time, beyond) keys one block of whole users at a time (about
    :data:`SORT_EVENTS` candidates), so memory stays bounded whatever the split's size.
    """
    rel = scan.time_s - scan.time_s.min()
    pair_bits = int(user_index.max(initial=0) + 1).bit_length() + int(n_articles).bit_length()
    shift = max(0, int(rel.max(initial=0)).bit_length() + 1 + pair_bits - 63)
    rel >>= shift  # coarser than a second only when the split spans years
    t_bits = int(rel.max(initial=0)).bit_length() + 1
    cap = np.iinfo(np.uint16).max
    out = np.zeros(scan.article.size, dtype=np.uint16)
    after = np.zeros(scan.article.size, dtype=np.uint16) if later else None
    by_user = np.argsort(user_index, kind="stable")  # rows of user 0, then of user 1, ...
    user_rows = np.concatenate([[0], np.cumsum(np.bincount(user_index))])
    user_events = np.bincount(user_index, weights=scan.count).astype(np.int64)
    for u0, u1 in cut_ranges(user_events, SORT_EVENTS):
        rows = by_user[user_rows[u0]:user_rows[u1]]
        n = scan.count[rows]
        events = np.repeat(scan.offsets[rows] - (np.cumsum(n) - n), n) + np.arange(int(n.sum()))
        pair = np.repeat(user_index[rows], n) * n_articles + scan.article[events]
        key = (pair << t_bits) | (np.repeat(rel[rows], n) << 1) | np.repeat(scan.beyond[rows], n)
        del pair
        order = np.argsort(key)
        key = key[order]
        real = np.concatenate([[0], np.cumsum((key & 1) == 0)])
        earlier = real[_run_starts(key >> 1)] - real[_run_starts(key >> t_bits)]
        out[events[order]] = np.minimum(earlier, cap)
        del earlier
        if later:  # real events after this time's run, up to the end of the (user, article) run
            after[events[order]] = np.minimum(real[_run_ends(key >> t_bits)] - real[_run_ends(key >> 1)], cap)
    return out, after


def scan_split(split: Split, articles: ArticleTable, counts: np.ndarray, past_only: bool = False) -> Activity:
    """One pass over ``split``'s behaviors (``counts``: candidates per row); every split-level
    table the features need (``past_only``: none that reads later impressions of the user)."""
    scan = _scan(split, articles, counts)
    n_articles = articles.unknown + 1
    first, slot, cum, seen_buckets = _inview_table(scan, n_articles)
    _, user_index = np.unique(scan.user, return_inverse=True)
    prev_gap, next_gap = _gaps(user_index.astype(np.int64), scan.time_s, scan.beyond)
    before, after = _seen(scan, user_index.astype(np.int64), n_articles, later=not past_only)
    return Activity(first, slot, cum, seen_buckets, prev_gap, next_gap, before, after, scan.offsets)
