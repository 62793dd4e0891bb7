"""Scores file + split -> contest zip, streamed in batches.

Ranks come from one sort per batch over the flat scores (see
``evaluation.ranking``); the lines are built with polars string expressions
over whole columns; a background thread compresses batch ``i`` while batch
``i + 1`` is ranked and formatted.
"""

from __future__ import annotations

import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from recsys24.data import schema as S
from recsys24.data.split import Split
from recsys24.evaluation.metrics import CHUNK_ELEMENTS
from recsys24.evaluation.ranking import descending_ranks, flat_lists, row_chunks
from recsys24.evaluation.scores import BATCH_ROWS, iter_checked
from recsys24.io import atomic_path
from recsys24.submission import PREDICTIONS

# zlib level 1 compresses this text ~4x, at several times the speed of level 6.
COMPRESSLEVEL = 1


def prediction_lines(impression_ids: pl.Series, scores: pl.Series) -> bytes:
    """The ``predictions.txt`` text of one batch, each line ending in a newline.

    Rank 1 = highest score; tied scores are ranked by in-view position, earlier first.

    >>> prediction_lines(pl.Series([7, 8]), pl.Series([[0.1, 0.9, 0.5], [0.2, 0.2]]))
    b'7 [3,1,2]\\n8 [1,2]\\n'
    """
    values, offsets = flat_lists(scores)
    ranks = descending_ranks(values, offsets)
    rank_lists = pl.Series("ranks", pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(ranks)))
    text = (
        pl.DataFrame({"id": impression_ids, "ranks": rank_lists})
        .select(pl.format("{} [{}]", "id", pl.col("ranks").cast(pl.List(pl.String)).list.join(",")))
        .to_series()
        .str.join("\n")
        .item()
    )
    return (text + "\n").encode("ascii") if text else b""


def write_submission(
    scores_path: str | Path, split: Split, out_zip: str | Path, batch_rows: int = BATCH_ROWS
) -> int:
    """Write the contest zip for ``split`` from a scores file; return the number of lines.

    The scores file is checked against the behaviors file (row count, order,
    list lengths) as it streams; the zip appears at ``out_zip`` only when complete.
    """
    lines = 0
    with atomic_path(out_zip) as tmp, ThreadPoolExecutor(max_workers=1) as pool:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=COMPRESSLEVEL) as zf:
            with zf.open(PREDICTIONS, "w", force_zip64=True) as out:
                pending = None
                for _, batch, _ in iter_checked(scores_path, split, (S.INVIEW,), batch_rows):
                    lengths = batch[S.SCORES].list.len().to_numpy()
                    for start, stop in row_chunks(lengths, CHUNK_ELEMENTS, batch.height):
                        sc = batch.slice(start, stop - start)
                        chunk = prediction_lines(sc[S.IMPRESSION_ID], sc[S.SCORES])
                        if pending is not None:
                            pending.result()
                        pending = pool.submit(out.write, chunk)
                        lines += sc.height
                if pending is not None:
                    pending.result()
    return lines
