"""The feature families, computed for one piece of behaviors rows over whole columns.

Each family function gets a :class:`Piece` (the rows, their candidates, the
split-level tables) and returns ``{feature name: float32 array}``, one value
per (row, in-view candidate) in behaviors and in-view order. The exact
definitions are in docs/features.md ("The feature table"); the names are in :data:`FAMILIES`.
No family reads ``article_ids_clicked``, ``next_*`` or any other column the test
split lacks.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import polars as pl

from recsys24.data import schema as S
from recsys24.data.columns import flat_lists
from recsys24.features.activity import WINDOWS, Activity
from recsys24.features.articles import STATIC, ArticleTable
from recsys24.features.groups import gap_to_min, group_rank, share_of_max
from recsys24.features.history import HistoryTable

DOT_CHUNK = 2_000_000  # candidates per block when gathering text vectors


@dataclass
class Piece:
    rows: pl.DataFrame  # behaviors rows (no click columns)
    first_row: int  # their position in the behaviors file
    articles: ArticleTable
    history: HistoryTable
    activity: Activity
    past_only: bool

    def __post_init__(self):
        ids, self.offsets = flat_lists(self.rows[S.INVIEW])
        self.article = self.articles.rows(ids)
        self.count = np.diff(self.offsets)
        self.time_s = np.repeat(self.rows[S.IMPRESSION_TIME].dt.epoch("us").to_numpy() / 1e6, self.count)
        self.user = np.repeat(self.history.rows(self.rows[S.USER_ID].to_numpy()), self.count)

    def per_candidate(self, column: str) -> np.ndarray:
        """A behaviors column repeated for each candidate of its row, as float32 (null: NaN)."""
        return np.repeat(self.rows[column].cast(pl.Float32).fill_null(np.nan).to_numpy(), self.count)


def candidate_time(p: Piece) -> dict[str, np.ndarray]:
    """Age of each candidate at the impression, its rank (1 = newest) and gap to the newest.

    An impression at 07:00:30 with candidates published 48 h, 2 h and 1 h before 07:00::

        article  age_hours  age_rank  age_gap_hours
        10       48.008     3         47.0
        11        2.008     2          1.0
        12        1.008     1          0.0
    """
    age = ((p.time_s - p.articles.published_s[p.article]) / 3600).astype(np.float32)
    return {"age_hours": age, "age_rank": group_rank(age, p.offsets, descending=False),
            "age_gap_hours": gap_to_min(age, p.offsets)}


def inview_popularity(p: Piece) -> dict[str, np.ndarray]:
    """In-view counts of the candidate around the impression (see ``activity``), normalised in the impression.

    Impressions at 07:00:30 [10, 11, 12] and 07:07 [11, 12, 13]; then one at
    07:20 [12, 11, 14] (bucket 4) sees, in the hour before (buckets 0..3)::

        article  inview_past_1h  inview_past_1h_share  inview_past_1h_rank  inview_rate_past
        12       2               1.0                   1                    6.0  (2 in 4 buckets)
        11       2               1.0                   1                    6.0
        14       0               0.0                   3                    NaN  (not in view yet)
    """
    counts = p.activity.inview_counts(p.article, p.time_s.astype(np.int64))
    directions = ("past",) if p.past_only else ("past", "next")
    out = {}
    for d in directions:
        for w in WINDOWS:
            name = f"inview_{d}_{w}"
            out[name] = counts[f"{d}_{w}"]
            if w != "10m":  # the 10-minute counts are small and noisy: raw only
                out[f"{name}_share"] = share_of_max(out[name], p.offsets)
                out[f"{name}_rank"] = group_rank(out[name], p.offsets)
    rates = ("past",) if p.past_only else ("past", "split")
    for r in rates:
        out[f"inview_rate_{r}"] = counts[f"rate_{r}"]
        out[f"inview_rate_{r}_rank"] = group_rank(counts[f"rate_{r}"], p.offsets)
    if not p.past_only:
        out["inview_split"] = counts["split"]
        out["inview_split_rank"] = group_rank(counts["split"], p.offsets)
    return out


def read_popularity(p: Piece) -> dict[str, np.ndarray]:
    """Readers of the candidate in the split's history file and their total read time.

    Histories {user 1: [10, 12, 14, 13] read 10, 20, 30, 40 s; user 2: [11, 13] read 5, 6 s}::

        article  read_users  read_seconds
        13       2           46.0
        11       1            5.0
    """
    users = p.history.read_users[p.article]
    return {"read_users": users, "read_users_share": share_of_max(users, p.offsets),
            "read_seconds": p.history.read_seconds[p.article]}


def article(p: Piece) -> dict[str, np.ndarray]:
    """The candidate's own columns of articles.parquet (``articles.STATIC``); nulls stay NaN::

        article  total_inviews  premium  article_type  title_len
        10       100            0        0             18
        11       NaN            1        0             22
    """
    return {name: p.articles.static[name][p.article] for name in STATIC}


def _share(p: Piece, family: str) -> np.ndarray:
    """Sum over the candidate's items of the share of the user's history holding that item."""
    which, code = p.articles.items[family].expand(p.article)
    values = p.history.shares[family][p.user[which], code].astype(np.float32)
    return np.bincount(which, weights=values, minlength=p.article.size).astype(np.float32)


def user_candidate(p: Piece) -> dict[str, np.ndarray]:
    """How the candidate matches the user's history, and the user's earlier encounters with it.

    User 1 read 10 (category 1), 12 (2), 14 (2), 13 (3); article 11 has
    subcategories [100, 101], and 100 is in 1 of the 4 history articles::

        article  category_share  subcategory_share  already_read
        10       0.25            0.25               1
        11       0.25            0.25               0
        12       0.50            0.50               1

    ``seen_before``: in user 1's next impression [12, 11, 14], 12 and 11 get 1, 14 gets 0;
    ``seen_after`` (not with ``--past-only``) counts forward: if user 1's impressions are
    [10, 11, 12], then [12, 11, 14], then [10, 11], the first one's 10, 11, 12 get 1, 2, 1.

    ``text_similarity`` is the cosine of the candidate's text vector and the
    history's mean vector (NaN without history).
    """
    out = {f"{family}_share": _share(p, family) for family in p.articles.items}
    sim = np.empty(p.article.size, dtype=np.float32)
    for lo in range(0, sim.size, DOT_CHUNK):
        hi = lo + DOT_CHUNK
        sim[lo:hi] = np.einsum("ij,ij->i", p.history.text[p.user[lo:hi]], p.articles.text[p.article[lo:hi]])
    sim[p.history.length[p.user] == 0] = np.nan  # no history: no similarity
    out["text_similarity"] = sim
    out["text_similarity_rank"] = group_rank(sim, p.offsets)
    out["already_read"] = p.history.already_read(p.user, p.article)
    lo, hi = p.activity.row_offsets[p.first_row], p.activity.row_offsets[p.first_row + p.rows.height]
    out["seen_before"] = p.activity.seen_before[lo:hi].astype(np.float32)
    if not p.past_only:
        out["seen_after"] = p.activity.seen_after[lo:hi].astype(np.float32)
    return out


def context(p: Piece) -> dict[str, np.ndarray]:
    """The impression's own facts, repeated for each of its candidates.

    User 1's impressions at 07:00:30 and 07:20 (3 candidates each), 4 history reads over the
    2 days the history files cover::

        row  num_candidates  history_per_day  prev_impression_gap_s  next_impression_gap_s  hour
        0    3               2.0              NaN                    1170                   7
        2    3               2.0              1170                   88800                  7

    ``history_per_day`` is the user's history reads per day of history (``HistoryTable.span_days``), not
    their count: reading the other splits' history files lengthens test's history by 14 days and
    validation's by 7 (train's by none), and a count would differ between the splits for the same reader.
    """
    rows = slice(p.first_row, p.first_row + p.rows.height)
    out = {
        "num_candidates": np.repeat(p.count, p.count).astype(np.float32),
        "history_per_day": p.history.length[p.user] / np.float32(p.history.span_days),
        "prev_impression_gap_s": np.repeat(p.activity.prev_gap[rows], p.count),
        "device_type": p.per_candidate(S.DEVICE_TYPE),
        "is_subscriber": p.per_candidate(S.IS_SUBSCRIBER),
        "is_sso_user": p.per_candidate(S.IS_SSO_USER),
        "hour": np.repeat(p.rows[S.IMPRESSION_TIME].dt.hour().to_numpy(), p.count).astype(np.float32),
    }
    if not p.past_only:
        out["next_impression_gap_s"] = np.repeat(p.activity.next_gap[rows], p.count)
    return out


FAMILIES = {
    "time": candidate_time,
    "popularity": inview_popularity,
    "read": read_popularity,
    "article": article,
    "user": user_candidate,
    "context": context,
}
# LightGBM treats these as categories, not as ordered numbers
CATEGORICAL = ("article_type", "device_type")
# the columns every features piece has before the features
KEYS = {S.ROW: pl.UInt32, S.IMPRESSION_ID: pl.UInt32, S.USER_ID: pl.UInt32}


def piece_features(p: Piece, pool: ThreadPoolExecutor | None = None) -> pl.DataFrame:
    """The key columns and every family's features of one piece, one row per candidate.

    ``pool``: threads to compute families side by side (numpy releases the GIL
    in its sorts, gathers and arithmetic, so two families use both cores).
    """
    columns = {
        S.ROW: np.repeat(np.arange(p.first_row, p.first_row + p.rows.height, dtype=np.uint32), p.count),
        S.IMPRESSION_ID: np.repeat(p.rows[S.IMPRESSION_ID].to_numpy(), p.count),
        S.USER_ID: np.repeat(p.rows[S.USER_ID].to_numpy(), p.count),
    }
    outputs = pool.map(lambda family: family(p), FAMILIES.values()) if pool else map(lambda f: f(p), FAMILIES.values())
    for out in outputs:
        columns.update(out)
    return pl.DataFrame(columns)


def family_names(p: Piece) -> dict[str, list[str]]:
    """The feature names of each family (they depend on ``past_only``)."""
    return {name: list(family(p)) for name, family in FAMILIES.items()}
