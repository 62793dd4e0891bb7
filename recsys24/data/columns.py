"""Column <-> numpy helpers shared by every layer: list columns as flat arrays, and sorted-id lookups.

A list column is read as (values, offsets) and written back from them, so
per-impression work runs over whole numpy arrays::

    >>> values, offsets = flat_lists(pl.Series([[5, 7], [], [9]]))
    >>> values, offsets
    (array([5, 7, 9]), array([0, 2, 2, 3]))
    >>> list_series("scores", values * 2, offsets).to_list()
    [[10, 14], [], [18]]
    >>> sorted_rows(np.array([3, 5, 9]), np.array([9, 4, 3]))
    (array([2, 1, 0]), array([ True, False,  True]))
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from recsys24.errors import DataError


def flat_lists(series: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The concatenated values and the int64 offsets (starting at 0) of a list column.

    Null lists count as empty. The values array is a copy only where Arrow needs one.
    """
    arr = series.rechunk().to_arrow()
    lengths = series.list.len().fill_null(0).to_numpy().astype(np.int64)
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = arr.flatten().to_numpy(zero_copy_only=False)
    return values, offsets


def list_values(series: pl.Series) -> np.ndarray:
    """The flat values of a list column as a numpy array (null lists and null items dropped)."""
    return series.explode().drop_nulls().to_numpy()


def list_series(name: str, values: np.ndarray, offsets: np.ndarray, dtype: pl.DataType | None = None) -> pl.Series:
    """A list column from flat ``values`` and ``offsets`` (the inverse of :func:`flat_lists`); ``dtype``: of the items."""
    series = pl.Series(name, pa.LargeListArray.from_arrays(pa.array(np.asarray(offsets, dtype=np.int64)),
                                                           pa.array(values)))
    return series if dtype is None else series.cast(pl.List(dtype))


def sorted_rows(keys: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, found) of each ``wanted`` value in the sorted, non-empty ``keys``; ``row`` is meaningless where not found."""
    row = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return row, keys[row] == wanted


def article_rows(table_ids: np.ndarray, article_ids: np.ndarray, empty: int = -1) -> np.ndarray:
    """int64 row of each article id in the sorted ``table_ids``; -1 (an empty history slot) becomes ``empty``.

    Raises DataError naming the first id the table lacks.
    """
    article_ids = np.asarray(article_ids)
    row, found = sorted_rows(table_ids, article_ids)
    bad = ~found & (article_ids != -1)
    if bad.any():
        raise DataError(f"articles.parquet: article_id {int(article_ids[bad][0])} is not in the article table")
    return np.where(found, row, empty).astype(np.int64)
