"""Score a scores file against a split's click labels: ``recsys24 evaluate``.

Labels come from the behaviors file (``article_ids_clicked``) for train and
validation. The test split has no clicks; pass ``labels_path``, a parquet file
with one row per behaviors row and a ``labels`` column (list of 0/1 in in-view
order), such as the truth file written by ``recsys24 synth``. On test, the
beyond-accuracy rows are left out, as in the contest's accuracy scoring.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from recsys24.data import schema as S
from recsys24.data.prepare import click_labels
from recsys24.data.split import Split
from recsys24.errors import DataError, Recsys24Error
from recsys24.evaluation.metrics import AccuracyTotals
from recsys24.evaluation.scores import BATCH_ROWS, iter_checked


def evaluate_scores(
    scores_path: str | Path,
    split: Split,
    labels_path: str | Path | None = None,
    batch_rows: int = BATCH_ROWS,
    users: np.ndarray | None = None,
) -> dict[str, float]:
    """The contest metrics of a scores file on ``split`` (see ``metrics.accuracy``).

    The scores file is checked against the behaviors file row by row while it
    streams; memory stays bounded by ``batch_rows``. ``users``: only the
    impressions of these user ids count (e.g. a ranker's held-out users).
    Raises Recsys24Error when no impression can be scored (a mean over none is
    no result).
    """
    totals = AccuracyTotals()
    wanted = None if users is None else np.unique(np.asarray(users, dtype=np.uint32))

    def add(scores: pl.DataFrame, labels: pl.Series) -> None:
        if wanted is not None:
            keep = pl.Series(np.isin(scores[S.USER_ID].to_numpy(), wanted))
            scores, labels = scores.filter(keep), labels.filter(keep)
        totals.add(scores[S.SCORES], labels)

    if labels_path is None:
        if not split.has_clicks:
            raise DataError(
                f"{split.behaviors}: the {split.name} split has no clicks; "
                "give a truth labels file (--labels), e.g. the synth_truth file of `recsys24 synth`"
            )
        for _, sc, beh in iter_checked(scores_path, split, (S.CLICKED,), batch_rows):
            add(sc, click_labels(beh[S.INVIEW], beh[S.CLICKED]))
        return _result(totals, scores_path, split, wanted)

    extra = (Path(labels_path), [S.LABELS])
    ba_cols = (S.IS_BEYOND_ACCURACY,) if S.IS_BEYOND_ACCURACY in S.behaviors_schema(split.name) else ()
    for _, sc, beh in iter_checked(scores_path, split, ba_cols, batch_rows, extra=extra):
        if ba_cols:  # the contest scores accuracy on the normal rows only
            normal = ~beh[S.IS_BEYOND_ACCURACY]
            sc, beh = sc.filter(normal), beh.filter(normal)
        add(sc, beh[S.LABELS])
    return _result(totals, scores_path, split, wanted)


def _result(totals: AccuracyTotals, scores_path, split: Split, users) -> dict[str, float]:
    if totals.used == 0:
        among = " among the given users" if users is not None else ""
        raise Recsys24Error(
            f"{scores_path}: no impression of {split.behaviors} can be scored{among}: none of the "
            f"{totals.rows:,} considered has both a clicked and a not-clicked article"
        )
    return totals.result()
