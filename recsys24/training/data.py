"""Training data: a seeded, resumable, distributed stream over prepared pair shards.

The global order of an epoch is fixed by (seed, epoch): shards in a permuted
order, rows permuted within each shard. Training consumes it in global
micro-steps of ``world_size × micro_batch`` pairs; rank r takes the r-th
``micro_batch`` of each, so ranks never see the same pair. The only state is
``position`` (pairs consumed globally), saved in checkpoints: resuming at a
position reproduces exactly the batches an uninterrupted run would have seen,
and only one shard is held in memory at a time.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from recsys24.data import schema as S
from recsys24.data.prepared import Prepared
from recsys24.errors import DataError


class PairStream:
    """Pairs (or, ``kind="impressions"``, whole impressions) of a prepared train split for one rank,
    addressed by global position."""

    def __init__(self, prepared: Prepared, seed: int, rank: int = 0, world_size: int = 1, kind: str = "pairs"):
        shards = prepared.shards(kind)
        if not shards:
            raise DataError(f"{prepared.path}: no training {kind} (prepare the train split)")
        self.prepared = prepared
        self.paths = [s.path for s in shards]
        self.rows = np.array([s.rows for s in shards], dtype=np.int64)
        self.total = int(self.rows.sum())
        if self.total == 0:
            raise DataError(f"{prepared.path}: the training pairs are empty")
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self._cache: tuple[tuple[int, int], pl.DataFrame] | None = None

    def _epoch_order(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.paths))
        return order, np.concatenate([[0], np.cumsum(self.rows[order])])

    def _shard(self, epoch: int, shard: int) -> pl.DataFrame:
        key = (epoch, shard)
        if self._cache is None or self._cache[0] != key:
            df = self.prepared.read_shard(self.paths[shard])
            if S.LABELS in df.columns and df[S.LABELS].null_count():
                raise DataError(f"{self.paths[shard]}: impressions without click labels (not a train split)")
            perm = np.random.default_rng([self.seed, epoch, shard]).permutation(df.height)
            self._cache = (key, df[perm])
        return self._cache[1]

    def slice(self, position: int, n: int) -> pl.DataFrame:
        """``n`` pairs of the global order starting at ``position`` (wrapping into later epochs)."""
        parts = []
        while n > 0:
            epoch, offset = divmod(position, self.total)
            order, starts = self._epoch_order(epoch)
            i = int(np.searchsorted(starts, offset, side="right")) - 1
            shard = self._shard(epoch, int(order[i]))
            lo = offset - int(starts[i])
            take = min(n, shard.height - lo)
            parts.append(shard.slice(lo, take))
            position += take
            n -= take
        return pl.concat(parts) if len(parts) > 1 else parts[0]

    def micro_batch(self, step_position: int, micro_batch: int) -> pl.DataFrame:
        """This rank's pairs of the global micro-step that starts at ``step_position``."""
        return self.slice(step_position + self.rank * micro_batch, micro_batch)


def validation_sample(prepared: Prepared, n: int, seed: int) -> pl.DataFrame:
    """A fixed, seeded sample of ``n`` labelled impressions (the same on every rank and run)."""
    total = prepared.num_impressions
    rows = np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))
    parts = []
    wanted = pl.Series(rows.astype(np.uint64))
    for batch in prepared.iter_impressions(batch_rows=262_144):
        hit = batch.filter(pl.col(S.ROW).is_in(wanted.implode()))
        if hit.height:
            parts.append(hit)
    sample = pl.concat(parts)
    if sample[S.LABELS].null_count():
        raise DataError(f"{prepared.path}: validation impressions need click labels (not the test split)")
    return sample

