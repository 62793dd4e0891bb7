"""Per-user tables from a split's history.parquet, and read popularity per article.

The history file is fixed before the split's window (the 21 days before it), so
nothing here depends on the split's impressions. Built once per split:

- per-user tables have one row per row of the history file, plus a last
  "no history" row; ``rows(user_ids)`` finds them;
- ``length``: history articles per user;
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
from recsys24.data.columns import flat_lists
from recsys24.data.split import iter_batches
from recsys24.errors import DataError
from recsys24.features.articles import ArticleTable

@dataclass
class HistoryTable:
    users: np.ndarray  # sorted user ids
    order: np.ndarray  # users[i] is in file row order[i]
    length: np.ndarray  # float32 [users + 1]
    shares: dict[str, np.ndarray]
    text: np.ndarray
    read_keys: np.ndarray
    read_users: np.ndarray  # float32 per article row
    read_seconds: np.ndarray

    def rows(self, user_ids: np.ndarray) -> np.ndarray:
        """int64 table rows of ``user_ids``; users without history get the last row."""
        ids = np.asarray(user_ids, dtype=np.int64)
        if self.users.size == 0:
            return np.zeros(ids.size, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.users, ids), self.users.size - 1)
        return np.where(self.users[at] == ids, self.order[at], self.users.size)

    def already_read(self, user_rows: np.ndarray, article_rows: np.ndarray) -> np.ndarray:
        """1.0 where the article is in the user's history, else 0.0."""
        keys = (user_rows.astype(np.int64) << 32) | article_rows
        order = np.argsort(keys, kind="stable")  # sorted queries make searchsorted cache-friendly
        at = np.searchsorted(self.read_keys, keys[order])
        hit = np.zeros(keys.size, dtype=np.float32)
        inside = at < self.read_keys.size
        hit[order[inside]] = self.read_keys[at[inside]] == keys[order][inside]
        return hit


def build_history_table(path, articles: ArticleTable, batch_users: int = 200_000) -> HistoryTable:
    """Read history.parquet once, a block of users at a time, and build every per-user table.

    Tables are indexed by the user's row in the file (plus the "no history" row);
    ``users`` (sorted) and ``order`` map user ids to those rows.
    """
    n_rows = pq.ParquetFile(path).metadata.num_rows
    n_art = articles.unknown + 1
    ids = np.zeros(n_rows, dtype=np.int64)
    length = np.zeros(n_rows + 1, dtype=np.float32)
    shares = {name: np.zeros((n_rows + 1, items.size), dtype=np.float16) for name, items in articles.items.items()}
    text = np.zeros((n_rows + 1, articles.text.shape[1]), dtype=np.float32)
    read_seconds = np.zeros(n_art, dtype=np.float64)
    keys = []
    for lo, hist in iter_batches(path, [S.USER_ID, S.HIST_ARTICLE, S.HIST_READ_TIME], batch_users):
        hi = lo + hist.height
        art, off = flat_lists(hist[S.HIST_ARTICLE])
        seconds, _ = flat_lists(hist[S.HIST_READ_TIME])
        art = articles.rows(art)
        n = np.diff(off)
        ids[lo:hi] = hist[S.USER_ID].to_numpy()
        length[lo:hi] = n
        owner = np.repeat(np.arange(hist.height, dtype=np.int64), n)  # user row within the block
        read_seconds += np.bincount(art, weights=np.nan_to_num(seconds.astype(np.float64)), minlength=n_art)
        keys.append(np.unique(((owner + lo) << 32) | art))
        for name, items in articles.items.items():
            entry, code = items.expand(art)
            counts = np.bincount(owner[entry] * items.size + code, minlength=hist.height * items.size)
            shares[name][lo:hi] = (counts.reshape(hist.height, items.size) / np.maximum(n, 1)[:, None])
        weights = 1.0 / np.maximum(n[owner], 1)
        block = sp.csr_matrix((weights, (owner, art)), shape=(hist.height, n_art)) @ articles.text
        text[lo:hi] = block
    text /= np.maximum(np.linalg.norm(text, axis=1, keepdims=True), 1e-9)
    keys = np.concatenate(keys) if keys else np.zeros(0, np.int64)  # sorted: blocks come in row order
    read_users = np.bincount(keys & 0xFFFFFFFF, minlength=n_art).astype(np.float32)
    order = np.argsort(ids, kind="stable")
    if ids.size > 1 and np.any(ids[order][1:] == ids[order][:-1]):
        dup = ids[order][1:][ids[order][1:] == ids[order][:-1]][0]
        raise DataError(f"{path}: column '{S.USER_ID}' has more than one row for user {dup}")
    return HistoryTable(ids[order], order, length, shares, text, keys, read_users, read_seconds.astype(np.float32))
