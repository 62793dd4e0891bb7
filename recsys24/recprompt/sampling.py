"""RecPrompt's evaluation sets: impressions of 1 clicked + 9 not-clicked titles.

As in the paper: from impressions with at least one click and enough
not-clicked in-view articles, draw ``num_validation + num_test`` at random
(seeded); the first ``num_validation`` validate templates, the rest test them.
Each keeps one clicked and ``num_negatives`` not-clicked in-view articles,
shuffled, with their titles and the titles of the user's last
``history_size`` articles.

Output columns (one row per impression): impression_id u32, user_id u32,
article_ids_inview list[i32] (the candidates, in prompt order C1..Cn),
labels list[i8], history_article_ids list[i32], history_titles list[str],
candidate_titles list[str].
"""

from __future__ import annotations

import numpy as np
import polars as pl

from recsys24.data import schema as S
from recsys24.data.tables import NewsTables
from recsys24.errors import DataError
from recsys24.recprompt.recommender import CANDIDATE_TITLES, HISTORY_TITLES

SAMPLE_SCHEMA = {
    S.IMPRESSION_ID: pl.UInt32,
    S.USER_ID: pl.UInt32,
    S.INVIEW: pl.List(pl.Int32),
    S.LABELS: pl.List(pl.Int8),
    S.HISTORY_IDS: pl.List(pl.Int32),
    HISTORY_TITLES: pl.List(pl.String),
    CANDIDATE_TITLES: pl.List(pl.String),
}


def sample_impressions(
    tables: NewsTables,
    num_validation: int = 100,
    num_test: int = 400,
    num_negatives: int = 9,
    history_size: int = 10,
    seed: int = 42,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(validation, test) frames of sampled impressions; see the module docstring."""
    not_clicked = pl.col(S.INVIEW).list.set_difference(S.CLICKED)
    history = tables.history.select(
        S.USER_ID, pl.col(S.HIST_ARTICLE).list.tail(history_size).alias(S.HISTORY_IDS)
    )
    behaviors = tables.behaviors.select(S.IMPRESSION_ID, S.USER_ID, S.INVIEW, S.CLICKED).with_row_index("_row")
    # Pass 1 keeps only row numbers, so a 12M-row split never sits in memory whole.
    eligible = (
        behaviors.filter(
            (pl.col(S.CLICKED).list.len() >= 1) & (not_clicked.list.len() >= num_negatives)
        )
        .join(
            history.filter(pl.col(S.HISTORY_IDS).list.len() >= 1).select(S.USER_ID),
            on=S.USER_ID, how="semi",
        )
        .select("_row")
        .collect(engine="streaming")["_row"]
        .sort()
    )
    wanted = num_validation + num_test
    if eligible.len() < wanted:
        raise DataError(
            f"only {eligible.len()} impressions have a click, {num_negatives} not-clicked "
            f"articles and a history; {wanted} needed"
        )
    rows = eligible.sample(wanted, seed=seed, shuffle=True)
    picked = (
        behaviors.filter(pl.col("_row").is_in(rows.implode()))
        .join(history, on=S.USER_ID, how="left")
        .collect()
    )
    # back into the sampled (random) order
    picked = rows.to_frame().join(picked, on="_row", how="left", maintain_order="left")
    candidates = picked.select(
        pl.concat_list(
            pl.col(S.CLICKED).list.sample(n=1, seed=seed),
            not_clicked.list.sample(n=num_negatives, seed=seed + 1),
        )
    ).to_series().list.to_array(num_negatives + 1).to_numpy()
    # Shuffle each row so the clicked article's position is uniform over C1..Cn.
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random(candidates.shape), axis=1)
    candidates = np.take_along_axis(candidates, order, axis=1)
    labels = (order == 0).astype(np.int8)

    titles = tables.articles.select(S.ARTICLE_ID, pl.col(S.TITLE).fill_null("")).collect()
    to_title = pl.element().replace_strict(titles[S.ARTICLE_ID], titles[S.TITLE], default="")
    samples = pl.DataFrame(
        {
            S.IMPRESSION_ID: picked[S.IMPRESSION_ID],
            S.USER_ID: picked[S.USER_ID],
            S.INVIEW: pl.Series(candidates.tolist(), dtype=pl.List(pl.Int32)),
            S.LABELS: pl.Series(labels.tolist(), dtype=pl.List(pl.Int8)),
            S.HISTORY_IDS: picked[S.HISTORY_IDS],
        }
    ).with_columns(
        pl.col(S.HISTORY_IDS).list.eval(to_title).alias(HISTORY_TITLES),
        pl.col(S.INVIEW).list.eval(to_title).alias(CANDIDATE_TITLES),
    ).cast(SAMPLE_SCHEMA)
    return samples.head(num_validation), samples.slice(num_validation)
