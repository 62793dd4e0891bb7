"""Heuristic baselines, chosen by name: ``recsys24 baseline NAME``.

Each writes an ordinary scores file (see ``evaluation.scores``), so it can be
evaluated and submitted like any model. Adding one: a function in
``heuristics.py`` and a line in :data:`BASELINES`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from recsys24.baselines import heuristics as H
from recsys24.data import schema as S
from recsys24.data.columns import flat_lists, list_series
from recsys24.data.split import Split, iter_batches
from recsys24.errors import Recsys24Error
from recsys24.evaluation.ranking import row_chunks
from recsys24.evaluation.scores import BATCH_ROWS, Provenance, ScoresWriter, SplitData, scores_frame

CHUNK_ELEMENTS = 4_000_000  # in-view articles scored per call

BASELINES = {
    "random": H.random_scores,
    "popular": H.popular_scores,
    "category": H.category_scores,
    "freshness": H.freshness_scores,
    "inview-count": H.inview_count_scores,
}


def run_baseline(name: str, split: Split, out: str | Path, seed: int = 0, batch_rows: int = BATCH_ROWS,
                 progress: Callable[[int, int], None] | None = None) -> int:
    """Score every behaviors row of ``split`` with baseline ``name``; write ``out``.

    Returns the number of rows written. ``progress(rows_done, rows_total)`` is
    called after each chunk, if given.
    """
    if name not in BASELINES:
        raise Recsys24Error(f"unknown baseline '{name}' (expected one of {', '.join(BASELINES)})")
    scorer = BASELINES[name]
    ctx = H.Context(split, seed)
    columns = [S.IMPRESSION_ID, S.USER_ID, S.IMPRESSION_TIME, S.INVIEW]
    # a heuristic learns nothing from labels: it is out of sample on every split
    with ScoresWriter(out, Provenance(SplitData.of_split(split), f"baseline {name}", trained_on=())) as writer:
        for first_row, rows in iter_batches(split.behaviors, columns, batch_rows):
            lengths = rows[S.INVIEW].list.len().to_numpy()
            # the 250-candidate rows cluster at the end of test: cap articles per call
            for start, stop in row_chunks(lengths, CHUNK_ELEMENTS, rows.height):
                batch = rows.slice(start, stop - start)
                values = scorer(ctx, batch, first_row + start)
                _, offsets = flat_lists(batch[S.INVIEW])
                scores = list_series(S.SCORES, values, offsets)
                writer.write(scores_frame(batch[S.IMPRESSION_ID], batch[S.USER_ID], scores))
                if progress:
                    progress(writer.rows, split.num_rows)
    return writer.rows
