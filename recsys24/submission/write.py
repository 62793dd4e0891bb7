"""Scores file + split -> contest zip, streamed in batches.

Ranks come from row-wise sorts over the flat scores (see
``evaluation.ranking``); the lines are built with polars string expressions
over whole columns; chunks are ranked and formatted two at a time while a
third thread compresses the finished ones in order.
"""

from __future__ import annotations

import zipfile
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from recsys24.data import schema as S
from recsys24.data.columns import flat_lists, list_series
from recsys24.data.split import Split
from recsys24.evaluation.ranking import descending_ranks, row_chunks
from recsys24.evaluation.scores import BATCH_ROWS, iter_checked
from recsys24.io import atomic_path
from recsys24.submission import PREDICTIONS

# zlib level 1 compresses this text ~4x, at several times the speed of level 6.
COMPRESSLEVEL = 1
# In-view articles per formatting chunk (two chunks in flight at once).
CHUNK_ELEMENTS = 6_000_000


def prediction_lines(impression_ids: pl.Series, scores: pl.Series) -> bytes:
    """The ``predictions.txt`` text of one batch, each line ending in a newline.

    Rank 1 = highest score; tied scores are ranked by in-view position, earlier first.

    >>> prediction_lines(pl.Series([7, 8]), pl.Series([[0.1, 0.9, 0.5], [0.2, 0.2]]))
    b'7 [3,1,2]\\n8 [1,2]\\n'
    """
    values, offsets = flat_lists(scores)
    ranks = descending_ranks(values, offsets)
    rank_lists = list_series("ranks", ranks, offsets)
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
    Two worker threads rank and format chunks (numpy and polars release the GIL)
    while a third compresses the finished text in file order.
    """
    lines = 0
    with atomic_path(out_zip) as tmp, ThreadPoolExecutor(2) as workers, ThreadPoolExecutor(1) as writer:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=COMPRESSLEVEL) as zf:
            with zf.open(PREDICTIONS, "w", force_zip64=True) as out:
                formatting: deque = deque()
                written = None

                def write_oldest():
                    nonlocal written
                    text = formatting.popleft().result()
                    if written is not None:
                        written.result()
                    written = writer.submit(out.write, text)

                for _, batch, _ in iter_checked(scores_path, split, (S.INVIEW,), batch_rows):
                    lengths = batch[S.SCORES].list.len().to_numpy()
                    for start, stop in row_chunks(lengths, CHUNK_ELEMENTS, batch.height):
                        sc = batch.slice(start, stop - start)
                        formatting.append(workers.submit(prediction_lines, sc[S.IMPRESSION_ID], sc[S.SCORES]))
                        lines += sc.height
                        if len(formatting) > 2:
                            write_oldest()
                while formatting:
                    write_oldest()
                if written is not None:
                    written.result()
    return lines
