"""The synthetic history files: drawn per split (``independent``), or cut from one timeline (``overlapping``).

Each split's ``history.parquet`` holds one row per user of the split's
behaviors: their reads in the 21 days before the split's window, in time order.
Which article a read is comes from the click model
(:meth:`recsys24.data.synth_clicks.ClickModel.history_articles`).

* ``independent`` (the default, what the demo data has): each split's file is
  drawn on its own, so the train, validation and test files of a user are three
  unrelated samples of their taste (reading them all gives a model about three
  times the evidence, which real EB-NeRD does not);
* ``overlapping`` (as EB-NeRD): every user has one reading timeline over the
  five weeks from the train window − 21 days to the test window, and a split's
  file is that timeline's 21 days before its window. The behaviors' clicks are
  reads too: the train window's clicks are in the validation and test files,
  the validation window's in the test file. So the validation file repeats two
  weeks of the train file, and reading every file adds only the older reads
  (7 days for validation, 14 for test, none for train).

Reads per user: in the independent files, lognormal with ``Preset.history_mean`` reads per
21 days on average (5..1000). In the timeline, a week of a user holds their clicks (the
behaviors' clicks in the train and validation weeks; before them, the clicks of as many
impressions as a split has, made the same way but not recorded) plus other reads (articles
reached from elsewhere than the front page): Poisson(rate / 2 · 7 / 21), the rate drawn as
the independent lengths, at least 1 a week. So every week looks alike and each file holds
about as many reads as any other.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recsys24.data import schema as S
from recsys24.data.synth_articles import US_PER_DAY, list_array, nullable
from recsys24.io import atomic_path

HISTORY_DAYS = 21
WEEK_US = 7 * US_PER_DAY
READ_DELAY_US = 60_000_000  # a read is at least a minute after the article's publication
USER_ID_BASE = 10_000  # user index -> user_id
HISTORY_MODES = ("independent", "overlapping")


@dataclass
class Clicks:
    """The clicks of a split's behaviors (regular rows), as reads: user index, time, article index."""

    user: np.ndarray
    time: np.ndarray
    article: np.ndarray

    @classmethod
    def concat(cls, parts: list["Clicks"]) -> "Clicks":
        if not parts:
            return cls(*(np.zeros(0, np.int64) for _ in range(3)))
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("user", "time", "article")))


def _history_table(users: np.ndarray, offsets: np.ndarray, times: np.ndarray, articles: np.ndarray, w, rng):
    """One history.parquet batch: ``users`` [U] (indices), their reads at ``offsets`` [U + 1]."""
    n = times.size
    return pa.table(
        {
            S.USER_ID: pa.array(users.astype(np.uint32) + USER_ID_BASE, pa.uint32()),
            S.HIST_TIME: list_array(offsets, pa.array(times, pa.timestamp("us"))),
            S.HIST_SCROLL: list_array(offsets, nullable(rng.uniform(0, 100, size=n).astype(np.float32), 0.3, rng,
                                                        pa.float32())),
            S.HIST_ARTICLE: list_array(offsets, w.article_ids[articles], pa.int32()),
            S.HIST_READ_TIME: list_array(offsets, np.minimum(rng.exponential(40, size=n), 1800).round()
                                         .astype(np.float32), pa.float32()),
        }
    )


def _segment_ids(counts: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(counts.size), counts)


def _read_rates(w, preset, rng) -> np.ndarray:
    """Reads per 21 days of each user (index), as the independent files draw their lengths."""
    size = w.user_pref.shape[0]
    return np.clip(rng.lognormal(np.log(preset.history_mean) - 0.5, 1.0, size=size), 5, 1000)


def write_independent(w, preset, model, users: np.ndarray, end_us: int, path, rng) -> None:
    """One split's file drawn on its own: reads in the 21 days before ``end_us`` of ``users`` (sorted indices)."""
    start = end_us - HISTORY_DAYS * US_PER_DAY
    with atomic_path(path) as tmp:
        writer = None
        for lo in range(0, users.size, 200_000):
            u = users[lo : lo + 200_000]
            lengths = np.clip(rng.lognormal(np.log(preset.history_mean) - 0.5, 1.0, size=u.size), 5, 1000).astype(np.int64)
            seg = _segment_ids(lengths)
            offsets = np.concatenate([[0], np.cumsum(lengths)])
            # Times sorted within each user: sort by (user, time).
            t = rng.integers(0, end_us - start, size=seg.size) + (seg.astype(np.int64) << 42)
            t = np.sort(t) - (seg.astype(np.int64) << 42) + start  # sorted within each user
            art = model.history_articles(w, u[seg], t, rng)
            art_t = np.maximum(t, w.published_us[art] + READ_DELAY_US)
            table = _history_table(u, offsets, art_t, art, w, rng)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
            writer.write_table(table)
        writer.close()


def write_overlapping(w, preset, model, users: dict[str, np.ndarray], clicks: Clicks, windows: dict[str, int],
                      out, rng, block_users: int = 100_000) -> None:
    """Every split's file from one timeline per user (see the module docstring).

    users: split -> the sorted user indices of its behaviors; clicks: every click of the timeline
    (the unrecorded weeks' and the splits'); windows: split -> the start of its behaviors window
    (µs); splits are consecutive weeks.
    """
    splits = list(windows)
    t0 = windows[splits[0]] - HISTORY_DAYS * US_PER_DAY
    n_weeks = HISTORY_DAYS // 7 + len(splits) - 1  # the first file's 3 weeks, then one more per split
    other = _read_rates(w, preset, rng) / 2 / HISTORY_DAYS * 7  # reads per week besides front-page clicks
    n_users = other.size
    inside = clicks.time < t0 + n_weeks * WEEK_US  # the last split's clicks are in no file
    by_user = np.argsort(clicks.user[inside], kind="stable")
    observed = Clicks(*(getattr(clicks, f)[inside][by_user] for f in ("user", "time", "article")))
    with ExitStack() as files:
        tmp = {s: files.enter_context(atomic_path(out / s / "history.parquet")) for s in splits}
        writers = {}
        for lo in range(0, n_users, block_users):
            hi = min(lo + block_users, n_users)
            per_week = np.maximum(rng.poisson(np.repeat(other[lo:hi], n_weeks)), 1)
            cell = _segment_ids(per_week)  # (user, week) of each drawn read
            user = lo + cell // n_weeks
            t = t0 + (cell % n_weeks) * WEEK_US + (rng.random(cell.size) * WEEK_US).astype(np.int64)
            art = model.history_articles(w, user, t, rng)
            t = np.maximum(t, w.published_us[art] + READ_DELAY_US)
            c = slice(np.searchsorted(observed.user, lo), np.searchsorted(observed.user, hi))
            user = np.concatenate([user, observed.user[c]])
            t = np.concatenate([t, observed.time[c]])  # read when clicked
            art = np.concatenate([art, observed.article[c]])
            order = np.lexsort((t, user))
            user, t, art = user[order], t[order], art[order]
            for split in splits:
                start = windows[split] - HISTORY_DAYS * US_PER_DAY
                members = users[split][(users[split] >= lo) & (users[split] < hi)]
                keep = (t >= start) & (t < windows[split]) & np.isin(user, members)
                lengths = np.bincount(user[keep] - lo, minlength=hi - lo)[members - lo]
                table = _history_table(members, np.concatenate([[0], np.cumsum(lengths)]), t[keep], art[keep], w, rng)
                if split not in writers:
                    writers[split] = pq.ParquetWriter(tmp[split], table.schema, compression="zstd")
                writers[split].write_table(table)
        for writer in writers.values():
            writer.close()
