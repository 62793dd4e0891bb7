"""Open an EB-NeRD split and check it, failing with one clear line.

Layout accepted (matches ``ebnerd_small/`` and ``ebnerd_testset/``)::

    DATA_DIR/articles.parquet
    DATA_DIR/<split>/behaviors.parquet
    DATA_DIR/<split>/history.parquet

:func:`open_split` checks that the files exist, are readable parquet and carry
every required column with its official dtype (extra columns are fine).
:func:`check_behaviors_batch` checks the content of one batch of behaviors rows;
callers stream the file through it with :func:`iter_batches`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from recsys24.data import schema as S
from recsys24.errors import DataError


@dataclass(frozen=True)
class Split:
    """Paths of one checked split and the number of behaviors rows."""

    data_dir: Path
    name: str
    articles: Path
    behaviors: Path
    history: Path
    num_rows: int

    @property
    def has_clicks(self) -> bool:
        return self.name != "test"


def _parquet_schema(path: Path) -> dict[str, pl.DataType]:
    if not path.is_file():
        raise DataError(f"{path}: missing file")
    try:
        return dict(pl.read_parquet_schema(path))
    except Exception as err:  # pyarrow/polars raise many types for bad files
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path}: unreadable or corrupted parquet ({reason})") from None


def check_columns(path: Path, expected: dict[str, pl.DataType]) -> None:
    """Raise DataError on the first missing column or wrong dtype of ``path``."""
    found = _parquet_schema(path)
    for col, dtype in expected.items():
        if col not in found:
            raise DataError(f"{path}: missing column '{col}'")
        if found[col] != dtype:
            raise DataError(
                f"{path}: column '{col}' has dtype {found[col]}, expected {dtype}"
            )


def open_split(data_dir: str | Path, split: str) -> Split:
    """Check the files of ``split`` under ``data_dir`` and return their paths."""
    if split not in S.SPLITS:
        raise DataError(f"unknown split '{split}' (expected one of {', '.join(S.SPLITS)})")
    data_dir = Path(data_dir)
    articles = data_dir / "articles.parquet"
    behaviors = data_dir / split / "behaviors.parquet"
    history = data_dir / split / "history.parquet"
    check_columns(articles, S.ARTICLES_SCHEMA)
    check_columns(behaviors, S.behaviors_schema(split))
    check_columns(history, S.HISTORY_SCHEMA)
    try:
        num_rows = pq.ParquetFile(behaviors).metadata.num_rows
    except Exception as err:
        raise DataError(f"{behaviors}: unreadable or corrupted parquet ({err})") from None
    return Split(data_dir, split, articles, behaviors, history, num_rows)


def iter_batches(
    path: Path, columns: Sequence[str], batch_rows: int = 1_000_000
) -> Iterator[tuple[int, pl.DataFrame]]:
    """Stream ``columns`` of a parquet file as (first row index, DataFrame) batches."""
    try:
        pf = pq.ParquetFile(path)
        offset = 0
        for batch in pf.iter_batches(batch_size=batch_rows, columns=list(columns)):
            df = pl.from_arrow(pa.Table.from_batches([batch]), rechunk=False)
            yield offset, df
            offset += df.height
    except DataError:
        raise
    except (OSError, pa.ArrowException) as err:
        raise DataError(f"{path}: unreadable or corrupted parquet ({err})") from None


def known_article_table(articles_path: Path) -> np.ndarray:
    """A boolean lookup table: ``table[id]`` is True for ids in articles.parquet."""
    ids = pl.read_parquet(articles_path, columns=[S.ARTICLE_ID])[S.ARTICLE_ID]
    if ids.null_count():
        raise DataError(f"{articles_path}: column '{S.ARTICLE_ID}' has null values")
    ids = ids.to_numpy()
    if ids.size and ids.min() < 0:
        raise DataError(f"{articles_path}: column '{S.ARTICLE_ID}' has negative ids")
    table = np.zeros(int(ids.max()) + 2 if ids.size else 1, dtype=bool)
    table[ids] = True
    return table


class UnknownArticles:
    """Counts article ids missing from articles.parquet over a whole file."""

    def __init__(self, known: np.ndarray):
        self.known = known
        self.count = 0
        self.examples: list[int] = []

    def add(self, ids: np.ndarray) -> None:
        ids = ids.astype(np.int64, copy=False)
        inside = (ids >= 0) & (ids < self.known.size)
        bad = ~inside
        bad[inside] = ~self.known[ids[inside]]
        n = int(bad.sum())
        if n:
            self.count += n
            if len(self.examples) < 5:
                for i in np.unique(ids[bad])[: 5 - len(self.examples)]:
                    self.examples.append(int(i))

    def raise_if_any(self, path: Path, column: str) -> None:
        if self.count:
            ex = ", ".join(str(i) for i in self.examples)
            raise DataError(
                f"{path}: column '{column}' has {self.count} article ids unknown to "
                f"articles.parquet (first: {ex})"
            )


def list_values(series: pl.Series) -> np.ndarray:
    """The flat values of a list column as a numpy array (nulls dropped)."""
    return series.explode().drop_nulls().to_numpy()


def _first_row(mask: pl.Series, row_offset: int) -> int | None:
    idx = mask.fill_null(True).arg_true()
    return None if idx.len() == 0 else row_offset + int(idx[0])


def check_behaviors_batch(
    df: pl.DataFrame,
    path: Path,
    row_offset: int,
    unknown: UnknownArticles,
    has_clicks: bool,
) -> None:
    """Check one batch of behaviors rows; rows are reported 0-based in file order."""
    row = _first_row(df[S.IMPRESSION_TIME].is_null(), row_offset)
    if row is not None:
        raise DataError(f"{path}: column '{S.IMPRESSION_TIME}' is null at row {row}")
    row = _first_row(df[S.INVIEW].list.len() == 0, row_offset)
    if row is not None:
        raise DataError(f"{path}: column '{S.INVIEW}' is empty at row {row}")
    unknown.add(list_values(df[S.INVIEW]))
    if has_clicks:
        outside = df.select(
            pl.col(S.CLICKED).list.set_difference(pl.col(S.INVIEW)).list.len() > 0
        ).to_series().fill_null(False)
        row = _first_row(outside, row_offset)
        if row is not None:
            raise DataError(
                f"{path}: column '{S.CLICKED}' at row {row} has an article not in "
                f"'{S.INVIEW}'"
            )
