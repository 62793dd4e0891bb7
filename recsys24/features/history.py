"""Per-user tables from a split's history.parquet, and read popularity per article.

The history file is fixed before the split's window (the 21 days before it), so
nothing here depends on the split's impressions. The other splits' history files
can add their reads of the same users from before the split's first impression
(:func:`earlier_reads`): on EB-NeRD the test history covers the 21 days before
test, and the train and validation files reach 14 and 7 days further back. A
read in two files (same user, time and article) counts once. Built once per split:

- per-user tables have one row per row of the history file, plus a last
  "no history" row; ``rows(user_ids)`` finds them;
- ``length``: history articles per user; ``span_days``: the days the history covers, from
  the earliest read of every file read to the split's first impression (21 for one
  EB-NeRD file, 35 for test with the train file), so ``length / span_days`` means the
  same for every split however many files were read;
- ``shares[family]``: float16 [users + 1, V], the share of the user's history
  articles holding each item of the family (category, subcategory, topic,
  entity; see ``articles.Items``);
- ``text``: the mean of the history articles' text vectors, L2-normalised;
- ``read_keys``: sorted ``user_row << 32 | article_row`` of every (user, article)
  in the history, for the already-read flag;
- per article row: ``read_users`` (users whose history holds it) and
  ``read_seconds`` (their total read time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq
import scipy.sparse as sp

from recsys24.data import schema as S
from recsys24.data.columns import flat_lists, sorted_rows
from recsys24.data.split import iter_batches
from recsys24.errors import DataError
from recsys24.features.articles import ArticleTable

@dataclass
class Reads:
    """Reads of other history files, as flat arrays sorted by the user's row in the split's file."""

    row: np.ndarray  # int64
    time: np.ndarray  # int64 microseconds
    article: np.ndarray  # int64 article ids
    seconds: np.ndarray  # float32 read time

    def rows_between(self, lo: int, hi: int) -> slice:
        return slice(int(np.searchsorted(self.row, lo)), int(np.searchsorted(self.row, hi)))


NO_TIME = np.iinfo(np.int64).max  # a read without a time is never "before" anything


def _flat_times(series) -> np.ndarray:
    """int64 microseconds of a list-of-datetime column; a null time becomes NO_TIME."""
    values = flat_lists(series)[0].astype("datetime64[us]")
    return np.where(np.isnat(values), NO_TIME, values.view(np.int64))


def user_ids(path) -> np.ndarray:
    """The user id of each row of a history file, in file order."""
    return pq.read_table(path, columns=[S.USER_ID])[S.USER_ID].to_numpy().astype(np.int64)


def _file_rows(users: np.ndarray, order: np.ndarray, ids: np.ndarray, missing: int) -> np.ndarray:
    """int64 file row of each user id (``users`` sorted, ``users[i]`` in file row ``order[i]``);
    ``missing`` for an id the file lacks."""
    ids = np.asarray(ids, dtype=np.int64)
    if users.size == 0:
        return np.full(ids.size, missing, dtype=np.int64)
    at, found = sorted_rows(users, ids)
    return np.where(found, order[at], missing)


def earlier_reads(paths, users: np.ndarray, order: np.ndarray, before_us: int, batch_users: int = 200_000) -> Reads:
    """Reads in the history files ``paths`` made before ``before_us`` by the split's users
    (``users``: the split's file's ids, sorted; ``users[i]`` is in row ``order[i]``); other
    users' rows are skipped.

    Split history (file row = user): {7: [10 @ 08:00, 12 @ 09:00]}; an older file holds
    {7: [10 @ 08:00, 13 @ 07:00, 14 @ 10:00], 8: [11 @ 07:00]}; before 09:30 it adds to
    user 7 (row 0) the reads 10 @ 08:00 and 13 @ 07:00 (14 is too late, user 8 is not in
    the split); the 10 @ 08:00 already in the split's file is dropped when the table is built.
    """
    parts = []
    for path in paths:
        cols = [S.USER_ID, S.HIST_TIME, S.HIST_ARTICLE, S.HIST_READ_TIME]
        for _, hist in iter_batches(path, cols, batch_users):
            art, off = flat_lists(hist[S.HIST_ARTICLE])
            row = np.repeat(_file_rows(users, order, hist[S.USER_ID].to_numpy(), -1), np.diff(off))
            time = _flat_times(hist[S.HIST_TIME])
            keep = (row >= 0) & (time < before_us)
            seconds, _ = flat_lists(hist[S.HIST_READ_TIME])
            parts.append((row[keep], time[keep], art[keep].astype(np.int64), seconds[keep].astype(np.float32)))
    if not parts:
        return Reads(*(np.zeros(0, dt) for dt in (np.int64, np.int64, np.int64, np.float32)))
    row, time, article, seconds = (np.concatenate(c) for c in zip(*parts))
    by_row = np.argsort(row, kind="stable")
    return Reads(row[by_row], time[by_row], article[by_row], seconds[by_row])


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` by a sort: numpy 2.4's hash table took 16 s per 16M keys here, the sort 3 s."""
    values = np.sort(values)
    return values[np.concatenate([[True], values[1:] != values[:-1]])] if values.size else values


def _first_reads(owner: np.ndarray, time: np.ndarray, art: np.ndarray) -> np.ndarray:
    """True for each read that no earlier read (same user, time and article) repeats.

    Sorts by (user, time) packed into one int64 (both files list a user's reads in
    time order, so the stable sort mostly merges sorted runs), then by article within
    equal (user, time); falls back to a lexsort where the times span more than 2**42 us.
    """
    first = np.ones(owner.size, bool)
    timed = np.flatnonzero(time != NO_TIME)  # a read without time repeats nothing
    if timed.size < 2:
        return first
    t = time[timed]
    span = int(t.max() - t.min())
    if span >= 1 << 42 or int(owner.max()) >= 1 << 21:
        order = timed[np.lexsort((np.arange(timed.size), art[timed], t, owner[timed]))]
    else:
        key = (owner[timed] << 42) | (t - t.min())
        by_time = np.argsort(key, kind="stable")
        rank = np.cumsum(np.concatenate([[0], key[by_time][1:] != key[by_time][:-1]]))
        bits = max(int(art.max()).bit_length(), 1)
        order = timed[by_time[np.argsort((rank << bits) | art[timed][by_time], kind="stable")]]
    same = (owner[order][1:] == owner[order][:-1]) & (time[order][1:] == time[order][:-1]) \
        & (art[order][1:] == art[order][:-1])
    first[order[1:][same]] = False
    return first


def _add_reads(owner, time, art, seconds, extra: Reads, lo: int, hi: int):
    """The block's own reads plus the extra reads of its users (rows lo..hi-1), an extra read
    equal to an earlier one (same user, time and article) left out; the split's own are all kept."""
    s = extra.rows_between(lo, hi)
    if s.start == s.stop:
        return owner, art, seconds
    n_own = owner.size
    owner = np.concatenate([owner, extra.row[s] - lo])
    time = np.concatenate([time, extra.time[s]])
    art = np.concatenate([art, extra.article[s]])
    seconds = np.concatenate([seconds, extra.seconds[s]])
    keep = _first_reads(owner, time, art)
    keep[:n_own] = True
    return owner[keep], art[keep], seconds[keep]


@dataclass
class HistoryTable:
    users: np.ndarray  # sorted user ids
    order: np.ndarray  # users[i] is in file row order[i]
    length: np.ndarray  # float32 [users + 1]
    span_days: float  # days from the earliest read to the split's first impression (at least 1)
    shares: dict[str, np.ndarray]
    text: np.ndarray
    read_keys: np.ndarray
    read_users: np.ndarray  # float32 per article row
    read_seconds: np.ndarray

    def rows(self, user_ids: np.ndarray) -> np.ndarray:
        """int64 table rows of ``user_ids``; users without history get the last row."""
        return _file_rows(self.users, self.order, user_ids, self.users.size)

    def already_read(self, user_rows: np.ndarray, article_rows: np.ndarray) -> np.ndarray:
        """1.0 where the article is in the user's history, else 0.0."""
        keys = (user_rows.astype(np.int64) << 32) | article_rows
        order = np.argsort(keys, kind="stable")  # sorted queries make searchsorted cache-friendly
        at = np.searchsorted(self.read_keys, keys[order])
        hit = np.zeros(keys.size, dtype=np.float32)
        inside = at < self.read_keys.size
        hit[order[inside]] = self.read_keys[at[inside]] == keys[order][inside]
        return hit


def build_history_table(path, articles: ArticleTable, others=(), before_us: int = 0,
                        batch_users: int = 200_000) -> HistoryTable:
    """Read history.parquet once, a block of users at a time, and build every per-user table.

    Tables are indexed by the user's row in the file (plus the "no history" row);
    ``users`` (sorted) and ``order`` map user ids to those rows. ``others``: other
    history files whose reads made before ``before_us`` (:func:`earlier_reads`) are
    added to their users' own.
    """
    ids = user_ids(path)
    order = np.argsort(ids, kind="stable")
    if ids.size > 1 and np.any(ids[order][1:] == ids[order][:-1]):
        dup = ids[order][1:][ids[order][1:] == ids[order][:-1]][0]
        raise DataError(f"{path}: column '{S.USER_ID}' has more than one row for user {dup}")
    extra = earlier_reads(others, ids[order], order, before_us) if others else None
    n_rows = ids.size
    n_art = articles.unknown + 1
    length = np.zeros(n_rows + 1, dtype=np.float32)
    shares = {name: np.zeros((n_rows + 1, items.size), dtype=np.float16) for name, items in articles.items.items()}
    text = np.zeros((n_rows + 1, articles.text.shape[1]), dtype=np.float32)
    read_seconds = np.zeros(n_art, dtype=np.float64)
    keys = []
    earliest = int(extra.time.min()) if extra is not None and extra.time.size else NO_TIME
    for lo, hist in iter_batches(path, [S.HIST_ARTICLE, S.HIST_READ_TIME, S.HIST_TIME], batch_users):
        hi = lo + hist.height
        art, off = flat_lists(hist[S.HIST_ARTICLE])
        seconds, _ = flat_lists(hist[S.HIST_READ_TIME])
        owner = np.repeat(np.arange(hist.height, dtype=np.int64), np.diff(off))  # user row within the block
        times = _flat_times(hist[S.HIST_TIME])
        earliest = min(earliest, int(times.min(initial=NO_TIME)))
        if extra is not None:
            owner, art, seconds = _add_reads(owner, times, art.astype(np.int64), seconds, extra, lo, hi)
        art = articles.rows(art)
        n = np.bincount(owner, minlength=hist.height)
        length[lo:hi] = n
        read_seconds += np.bincount(art, weights=np.nan_to_num(seconds.astype(np.float64)), minlength=n_art)
        keys.append(_sorted_unique(((owner + lo) << 32) | art))
        for name, items in articles.items.items():
            entry, code = items.expand(art)
            counts = np.bincount(owner[entry] * items.size + code, minlength=hist.height * items.size)
            shares[name][lo:hi] = (counts.reshape(hist.height, items.size) / np.maximum(n, 1)[:, None])
        weights = 1.0 / np.maximum(n[owner], 1)
        text[lo:hi] = sp.csr_matrix((weights, (owner, art)), shape=(hist.height, n_art)) @ articles.text
    text /= np.maximum(np.linalg.norm(text, axis=1, keepdims=True), 1e-9)
    keys = np.concatenate(keys) if keys else np.zeros(0, np.int64)  # sorted: blocks come in row order
    read_users = np.bincount(keys & 0xFFFFFFFF, minlength=n_art).astype(np.float32)
    span = (before_us - earliest) / 86_400e6 if earliest < before_us else 0.0
    return HistoryTable(ids[order], order, length, max(span, 1.0), shares, text, keys, read_users,
                        read_seconds.astype(np.float32))
