"""One in-memory view of a news dataset split, whichever dataset it came from.

:class:`NewsTables` holds three lazy frames with EB-NeRD column names:

- ``articles``: article_id i32, title str, plus whatever else the source has
  (category_str, subtitle, ...);
- ``behaviors``: impression_id u32, user_id u32, impression_time datetime[us],
  article_ids_inview list[i32], article_ids_clicked list[i32] (null when the
  split has no clicks);
- ``history``: user_id u32, article_id_fixed list[i32] (oldest first).

:func:`ebnerd_tables` reads an official EB-NeRD split;
:func:`recsys24.data.mind.mind_tables` reads MIND.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from recsys24.data import schema as S
from recsys24.data.split import open_split

BEHAVIOR_COLUMNS = (S.IMPRESSION_ID, S.USER_ID, S.IMPRESSION_TIME, S.INVIEW, S.CLICKED)


@dataclass(frozen=True)
class NewsTables:
    """Articles, behaviors and history of one split as lazy frames."""

    articles: pl.LazyFrame
    behaviors: pl.LazyFrame
    history: pl.LazyFrame
    source: str  # "ebnerd" or "mind", for run records


def ebnerd_tables(data_dir: str | Path, split: str) -> NewsTables:
    """The tables of an official EB-NeRD split (checked by :func:`open_split`)."""
    sp = open_split(data_dir, split)
    behaviors = pl.scan_parquet(sp.behaviors)
    if not sp.has_clicks:
        behaviors = behaviors.with_columns(pl.lit(None, dtype=pl.List(pl.Int32)).alias(S.CLICKED))
    return NewsTables(
        articles=pl.scan_parquet(sp.articles),
        behaviors=behaviors.select(BEHAVIOR_COLUMNS),
        history=pl.scan_parquet(sp.history).select(S.USER_ID, S.HIST_ARTICLE),
        source="ebnerd",
    )
