"""User-grouped scoring: pieces that hold whole users, so each history is encoded once.

In EB-NeRD a user's history is fixed for the whole split, and CGh encodes a
history once per batch. Pieces of consecutive rows scatter a user's
impressions over many pieces and batches (2.17 rows per encoding on the
synthetic large test split at 1M-row pieces). Here a piece is a *bucket of
users*: user ``u`` goes to bucket ``hash(u) % num_buckets`` with
``num_buckets = ceil(rows / piece_rows)``, so a piece holds about ``piece_rows``
rows and every row of its users, beyond-accuracy rows included. Inside a piece
the scorer sorts by history and cuts batches only between histories
(:func:`recsys24.data.cuts.cut_bounds`), so one encoding serves all of a user's candidates.

Pieces are written as ``SCORES_DIR/pieces/users-<bucket>-of-<buckets>.parquet``
(columns ``row`` plus the scores-file columns, rows ascending), atomically, so a
rerun scores only the buckets that are missing. :func:`merge` puts the rows
back in behaviors order one row window at a time (a k-way merge of the
row-sorted pieces): memory holds one window, not the split.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from recsys24.data import schema as S
from recsys24.data.prepared import Shard
from recsys24.data.cuts import cut_bounds, shard_range
from recsys24.data.hashing import MURMUR3, mix64
from recsys24.errors import Recsys24Error
from recsys24.evaluation.scores import Provenance, ScoresWriter
from recsys24.io import reading

MERGE_WINDOW = 1_000_000  # rows merged and written at a time
PIECE_REMEDY = "delete it and rerun `recsys24 predict` with the same options to score it again"
_PIECE = re.compile(r"users-(\d+)-of-(\d+)\.parquet$")


def user_buckets(user_ids: np.ndarray, num_buckets: int) -> np.ndarray:
    """Bucket of each user id: a fixed 64-bit mix (murmur3's finaliser) modulo ``num_buckets``.

    The same on every machine and numpy version, so a rerun finds the same pieces.

    >>> user_buckets(np.array([10000, 10001, 10002, 10000]), 4)
    array([3, 0, 0, 3])
    """
    x = mix64(np.asarray(user_ids).astype(np.uint64), MURMUR3)
    return (x % np.uint64(num_buckets)).astype(np.int64)


def group_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """First position of each run of equal keys in a sorted key array (``[1, 1, 2, 5, 5]`` → ``[0, 2, 3]``)."""
    return np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]) if len(sorted_keys) else sorted_keys


class UserPieces:
    """The pieces of a prepared split by user bucket; a piece is its bucket number."""

    order = "users"

    def __init__(self, prepared, piece_rows: int):
        self.prepared = prepared
        self.num_buckets = max(1, -(-prepared.num_impressions // piece_rows))
        self.shards = sorted(prepared.shards("impressions"), key=lambda s: s.first_row)
        users = [self._read(s, [S.USER_ID])[S.USER_ID].to_numpy() for s in self.shards]
        self.bucket = [user_buckets(u, self.num_buckets) for u in users]  # per impression shard, per row
        self.sizes = np.bincount(np.concatenate(self.bucket), minlength=self.num_buckets) if users else []

    def shard(self, shard_id: int, num_shards: int) -> list[int]:
        """The contiguous block of buckets that shard ``shard_id`` of ``num_shards`` scores."""
        return list(shard_range(self.num_buckets, shard_id, num_shards))

    def rows(self, bucket: int) -> int:
        return int(self.sizes[bucket])

    def path(self, out: Path, bucket: int) -> Path:
        return out / "pieces" / f"users-{bucket:05d}-of-{self.num_buckets:05d}.parquet"

    def read(self, bucket: int, columns: list[str]) -> pl.DataFrame:
        """Every row of the bucket's users, in row order (one pass over the split's impression files)."""
        parts = []
        for shard, buckets in zip(self.shards, self.bucket):
            mask = buckets == bucket
            if mask.any():
                parts.append(pl.from_arrow(self._read(shard, columns).filter(mask)))
        if not parts:  # a bucket no user hashed to (tiny splits only)
            return pl.read_parquet(self.shards[0].path, columns=columns, n_rows=0)
        return pl.concat(parts)

    def _read(self, shard: Shard, columns: list[str]):
        with reading(shard.path, self.prepared.remedy):
            return pq.read_table(shard.path, columns=columns)

    def existing(self, out: Path) -> list[Path]:
        return sorted(p for p in (out / "pieces").glob("users-*.parquet") if _PIECE.match(p.name))

    def merge(self, out: Path, scores_path: Path, provenance: Provenance | None = None) -> int:
        """Stream every bucket's piece, back in row order, into one scores file; every row exactly once.

        Raises Recsys24Error naming missing buckets, or the first missing or doubly scored row.
        """
        missing = [b for b in range(self.num_buckets) if not self.path(out, b).is_file()]
        if missing:
            listed = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
            raise Recsys24Error(f"{out}: user buckets {listed} of {self.num_buckets} have no scores "
                                "(rerun the shards that own them)")
        return merge(out, [self.path(out, b) for b in range(self.num_buckets)], self.prepared.num_impressions,
                     scores_path, provenance=provenance)


class _Cursor:
    """Reads one row-sorted piece forward, handing out its rows below a bound."""

    def __init__(self, path: Path):
        self.path = path
        with reading(path, PIECE_REMEDY):
            self.batches = pq.ParquetFile(path).iter_batches(batch_size=65_536)
        self.buffer = None
        self.last = -1
        self.done = False

    def below(self, bound: int) -> pl.DataFrame | None:
        while not self.done and (self.buffer is None or self.last < bound):
            with reading(self.path, PIECE_REMEDY):
                batch = next(self.batches, None)
            if batch is None:
                self.done = True
                break
            frame = pl.from_arrow(batch)
            rows = frame[S.ROW].to_numpy()
            if rows.size and (rows[0] <= self.last or (np.diff(rows.astype(np.int64)) <= 0).any()):
                raise Recsys24Error(f"{self.path}: rows are not in ascending order (or one is there twice)")
            self.last = int(rows[-1]) if rows.size else self.last
            self.buffer = frame if self.buffer is None else pl.concat([self.buffer, frame])
        if self.buffer is None:
            return None
        cut = int(np.searchsorted(self.buffer[S.ROW].to_numpy(), bound))
        taken, self.buffer = self.buffer[:cut], self.buffer[cut:]
        return taken


def _check_window(out: Path, rows: np.ndarray, lo: int, hi: int) -> None:
    """``rows`` (sorted) must be ``lo .. hi-1``, each once; else name the first missing or doubled row."""
    expected = np.arange(lo, hi)
    n = min(len(rows), len(expected))
    bad = np.flatnonzero(rows[:n] != expected[:n])
    if not bad.size and len(rows) == len(expected):
        return
    i = int(bad[0]) if bad.size else n
    if i < len(rows) and i < len(expected) and rows[i] < expected[i]:
        raise Recsys24Error(f"{out}: row {rows[i]} is scored twice (two pieces hold it)")
    if i < len(expected):
        raise Recsys24Error(f"{out}: row {expected[i]} has no scores (rerun the shard that owns its user)")
    raise Recsys24Error(f"{out}: row {rows[i]} is scored twice (two pieces hold it)")


def merge(out: Path, paths: list[Path], num_rows: int, scores_path: Path, window: int = MERGE_WINDOW,
          provenance: Provenance | None = None) -> int:
    """k-way merge of row-sorted pieces into ``scores_path``, ``window`` rows at a time, each row exactly once."""
    cursors = [_Cursor(p) for p in paths]
    with ScoresWriter(scores_path, provenance) as writer:
        for lo in range(0, num_rows, window):
            hi = min(lo + window, num_rows)
            parts = [part for c in cursors if (part := c.below(hi)) is not None and part.height]
            part = pl.concat(parts).sort(S.ROW) if parts else None
            _check_window(out, part[S.ROW].to_numpy() if part is not None else np.zeros(0, np.int64), lo, hi)
            writer.write(part.drop(S.ROW))
        extra = [c.path.name for c in cursors if (rest := c.below(2**63 - 1)) is not None and rest.height]
        if extra:
            raise Recsys24Error(f"{out}: {extra[0]} holds rows beyond the split's {num_rows:,}")
    return num_rows


def plan_encodings(user_ids: np.ndarray, candidates: np.ndarray, piece_rows: int, batch_size: int) -> dict:
    """Count, without scoring, the history encodings of user-grouped predict on a split.

    user_ids, candidates: per behaviors row (beyond-accuracy rows included).
    Each user's rows are one group (a user's history is fixed), pieces are
    :func:`user_buckets`, batches are cut by :func:`cut_bounds` as the scorer
    cuts them; an encoding is a distinct user of a batch. Returns rows,
    users, encodings, batches and the largest batch (candidates).
    """
    user_ids, candidates = np.asarray(user_ids), np.asarray(candidates, dtype=np.int64)
    num_buckets = max(1, -(-len(user_ids) // piece_rows))
    frame = pl.DataFrame({"bucket": user_buckets(user_ids, num_buckets), "user": user_ids, "n": candidates})
    encodings = batches = largest = 0
    for (_,), piece in frame.sort("bucket", "user", maintain_order=True).group_by("bucket", maintain_order=True):
        users, n = piece["user"].to_numpy(), piece["n"].to_numpy()
        bounds = cut_bounds(n, batch_size, group_starts(users))
        batch = np.searchsorted(bounds, np.arange(len(users)), side="right") - 1
        encodings += int(np.r_[True, (np.diff(batch) != 0) | (users[1:] != users[:-1])].sum())  # (batch, user)
        batches += len(bounds) - 1
        cum = np.concatenate([[0], np.cumsum(n)])
        largest = max(largest, int(np.diff(cum[bounds]).max()))
    return {"rows": len(user_ids), "users": int(len(np.unique(user_ids))), "history_encodings": encodings,
            "batches": batches, "largest_batch": largest, "pieces": num_buckets}
