"""The scores file: one row per behaviors row, in the same order.

Every scorer (baselines, models) writes one; evaluation and the submission
writer read it. Columns (``schema.SCORES_SCHEMA``)::

    impression_id u32   copied from behaviors (0 on beyond-accuracy rows)
    user_id       u32   copied from behaviors
    scores        list[f32]  one score per article of article_ids_inview, in
                        in-view order; higher = more likely clicked

:func:`iter_checked` streams a scores file beside its split's behaviors file
and stops at the first row that does not match, with a one-line error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from recsys24.data import schema as S
from recsys24.data.columns import flat_lists
from recsys24.data.split import Split, check_columns
from recsys24.errors import DataError
from recsys24.io import atomic_path, write_parquet

BATCH_ROWS = 1_000_000


def scores_frame(impression_ids, user_ids, scores: pl.Series) -> pl.DataFrame:
    """A scores DataFrame with the exact dtypes of ``SCORES_SCHEMA``."""
    return pl.DataFrame(
        {
            S.IMPRESSION_ID: pl.Series(impression_ids).cast(pl.UInt32),
            S.USER_ID: pl.Series(user_ids).cast(pl.UInt32),
            S.SCORES: scores.cast(pl.List(pl.Float32)),
        }
    )


def write_scores(df: pl.DataFrame, path: str | Path) -> None:
    """Write a scores DataFrame atomically after checking its columns and dtypes."""
    for col, dtype in S.SCORES_SCHEMA.items():
        if col not in df.columns:
            raise DataError(f"{path}: scores frame lacks column '{col}'")
        if df.schema[col] != dtype:
            raise DataError(f"{path}: column '{col}' has dtype {df.schema[col]}, expected {dtype}")
    write_parquet(df.select(list(S.SCORES_SCHEMA)), path)


class ScoresWriter:
    """Write a scores file batch by batch (one row group each), atomically.

    >>> with ScoresWriter(path) as w:                       # doctest: +SKIP
    ...     for batch in batches:
    ...         w.write(scores_frame(ids, users, scores))
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rows = 0

    def __enter__(self) -> "ScoresWriter":
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        arrow_schema = pl.DataFrame(schema=S.SCORES_SCHEMA).to_arrow().schema
        try:
            self._writer = pq.ParquetWriter(tmp, arrow_schema, compression="zstd")
        except Exception as err:
            self._fail(err)
        self._schema = arrow_schema
        return self

    def write(self, df: pl.DataFrame) -> None:
        for col, dtype in S.SCORES_SCHEMA.items():
            if df.schema.get(col) != dtype:
                raise DataError(f"{self.path}: column '{col}' is {df.schema.get(col)}, expected {dtype}")
        self._writer.write_table(df.select(list(S.SCORES_SCHEMA)).to_arrow().cast(self._schema))
        self.rows += df.height

    def __exit__(self, *exc) -> bool:
        try:
            self._writer.close()  # flushes the last row group: a full disk may show only here
        except Exception as err:
            if exc[0] is None:
                self._fail(err)
            # else: the body's own error is the one to report
        return self._atomic.__exit__(*exc)

    def _fail(self, err: Exception):
        """Let atomic_path remove the temporary and word a refused write; else re-raise ``err``."""
        self._atomic.__exit__(type(err), err, err.__traceback__)
        raise err


def read_scores(path: str | Path) -> pl.DataFrame:
    """Read a whole scores file (check its columns first). Prefer :func:`iter_checked` on big files."""
    check_columns(Path(path), S.SCORES_SCHEMA)
    return pl.read_parquet(path, columns=list(S.SCORES_SCHEMA))


def aligned_batches(
    left: Iterator[tuple[int, pl.DataFrame]], right: Iterator[tuple[int, pl.DataFrame]]
) -> Iterator[tuple[int, pl.DataFrame, pl.DataFrame]]:
    """Pair two streams of row batches so each pair covers the same rows.

    Parquet batches end at row-group boundaries, which differ between files;
    this re-slices them. Stops when either stream ends.
    """
    lbuf: pl.DataFrame | None = None
    rbuf: pl.DataFrame | None = None
    offset = 0
    while True:
        if lbuf is None or lbuf.height == 0:
            lbuf = next(left, (0, None))[1]
        if rbuf is None or rbuf.height == 0:
            rbuf = next(right, (0, None))[1]
        if lbuf is None or rbuf is None:
            return
        n = min(lbuf.height, rbuf.height)
        yield offset, lbuf.slice(0, n), rbuf.slice(0, n)
        offset += n
        lbuf, rbuf = lbuf.slice(n), rbuf.slice(n)


def read_batches(
    path: Path, columns: Sequence[str], batch_rows: int = BATCH_ROWS
) -> Iterator[tuple[int, pl.DataFrame]]:
    """Like ``split.iter_batches`` (``(first row, DataFrame)``), but reads whole
    row groups of up to ``2 * batch_rows`` rows at once: pyarrow decodes those
    about twice as fast as through ``iter_batches``. Larger row groups are still
    streamed in ``batch_rows`` pieces, so memory stays bounded.
    """
    try:
        pf = pq.ParquetFile(path)
        offset = 0
        for i in range(pf.metadata.num_row_groups):
            if pf.metadata.row_group(i).num_rows <= 2 * batch_rows:
                tables = [pf.read_row_group(i, columns=list(columns))]
            else:
                tables = (pa.Table.from_batches([b]) for b in
                          pf.iter_batches(batch_size=batch_rows, row_groups=[i], columns=list(columns)))
            for table in tables:
                df = pl.from_arrow(table, rechunk=False)
                yield offset, df
                offset += df.height
    except (OSError, pa.ArrowException) as err:
        raise DataError(f"{path}: unreadable or corrupted parquet ({err})") from None


def _first(mask: np.ndarray) -> int | None:
    idx = np.flatnonzero(mask)
    return None if idx.size == 0 else int(idx[0])


def check_batch(scores: pl.DataFrame, behaviors: pl.DataFrame, path: Path, row_offset: int) -> None:
    """Raise DataError at the first row whose ids, list length or values are wrong."""
    for col in (S.IMPRESSION_ID, S.USER_ID):
        got = scores[col].to_numpy()
        want = behaviors[col].to_numpy()
        r = _first(got != want)
        if r is not None:
            raise DataError(
                f"{path}: row {row_offset + r}: {col} {got[r]} but the behaviors file has "
                f"{want[r]} (scores rows must follow the behaviors order)"
            )
    n_scores = scores[S.SCORES].list.len().fill_null(-1).to_numpy()
    n_inview = behaviors[S.INVIEW].list.len().to_numpy()
    r = _first(n_scores != n_inview)
    if r is not None:
        got = "null" if n_scores[r] < 0 else n_scores[r]
        raise DataError(
            f"{path}: row {row_offset + r}: {got} scores for {n_inview[r]} in-view articles"
        )
    values, offsets = flat_lists(scores[S.SCORES])  # null scores come out as NaN
    i = _first(~np.isfinite(values))
    if i is not None:
        r = int(np.searchsorted(offsets, i, side="right") - 1)
        raise DataError(f"{path}: row {row_offset + r}: a score is NaN, infinite or null")


def iter_checked(
    scores_path: str | Path,
    split: Split,
    behaviors_columns: Sequence[str] = (S.INVIEW,),
    batch_rows: int = BATCH_ROWS,
    extra: tuple[Path, Sequence[str]] | None = None,
) -> Iterator[tuple[int, pl.DataFrame, pl.DataFrame]]:
    """Stream (row offset, scores batch, behaviors batch), checking each batch.

    ``extra`` = (path, columns): a parquet file with one row per behaviors row
    (e.g. a truth-labels file) whose columns are appended to the behaviors batch.

    Raises DataError with one line on a wrong row count, a row whose
    impression_id/user_id differ from the behaviors file (order), or a score
    list whose length differs from the in-view list (row numbers are 0-based).
    """
    scores_path = Path(scores_path)
    check_columns(scores_path, S.SCORES_SCHEMA)
    n = pq.ParquetFile(scores_path).metadata.num_rows
    if n != split.num_rows:
        raise DataError(
            f"{scores_path}: {n} rows but {split.behaviors} has {split.num_rows} "
            f"(one scores row per behaviors row, same order)"
        )
    cols = list(dict.fromkeys([S.IMPRESSION_ID, S.USER_ID, S.INVIEW, *behaviors_columns]))
    behaviors = read_batches(split.behaviors, cols, batch_rows)
    if extra is not None:
        extra_path, extra_cols = Path(extra[0]), list(extra[1])
        n_extra = pq.ParquetFile(extra_path).metadata.num_rows
        if n_extra != split.num_rows:
            raise DataError(f"{extra_path}: {n_extra} rows but {split.behaviors} has {split.num_rows}")
        behaviors = (
            (o, b.hstack(e))
            for o, b, e in aligned_batches(behaviors, read_batches(extra_path, extra_cols, batch_rows))
        )
    pairs = aligned_batches(read_batches(scores_path, list(S.SCORES_SCHEMA), batch_rows), behaviors)
    for offset, sc, beh in pairs:
        check_batch(sc, beh, scores_path, offset)
        yield offset, sc, beh


def check_scores(scores_path: str | Path, split: Split) -> int:
    """Check a whole scores file against ``split``; return its number of rows."""
    rows = 0
    for _, sc, _ in iter_checked(scores_path, split, behaviors_columns=()):
        rows += sc.height
    return rows
