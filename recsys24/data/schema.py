"""Every EB-NeRD column name and dtype, in one place.

The official files (``ebnerd_{demo,small,large}`` and ``ebnerd_testset``) are
described by the ``*_SCHEMA`` dicts below; the files this project writes
(prepared splits, scores files) by the ``PREPARED_*`` and ``SCORES_SCHEMA``
dicts. Other modules import column names from here instead of spelling them.
"""

from __future__ import annotations

import polars as pl

DT = pl.Datetime("us")

# --- column names -----------------------------------------------------------
IMPRESSION_ID = "impression_id"
ARTICLE_ID = "article_id"
IMPRESSION_TIME = "impression_time"
READ_TIME = "read_time"
SCROLL_PERCENTAGE = "scroll_percentage"
DEVICE_TYPE = "device_type"
INVIEW = "article_ids_inview"
CLICKED = "article_ids_clicked"
USER_ID = "user_id"
IS_SSO_USER = "is_sso_user"
GENDER = "gender"
POSTCODE = "postcode"
AGE = "age"
IS_SUBSCRIBER = "is_subscriber"
SESSION_ID = "session_id"
NEXT_READ_TIME = "next_read_time"
NEXT_SCROLL_PERCENTAGE = "next_scroll_percentage"
IS_BEYOND_ACCURACY = "is_beyond_accuracy"

HIST_TIME = "impression_time_fixed"
HIST_SCROLL = "scroll_percentage_fixed"
HIST_ARTICLE = "article_id_fixed"
HIST_READ_TIME = "read_time_fixed"

TITLE = "title"
SUBTITLE = "subtitle"
BODY = "body"
CATEGORY = "category"
CATEGORY_STR = "category_str"
SUBCATEGORY = "subcategory"
PUBLISHED_TIME = "published_time"
TOPICS = "topics"
SENTIMENT_SCORE = "sentiment_score"
SENTIMENT_LABEL = "sentiment_label"
TOTAL_INVIEWS = "total_inviews"
TOTAL_PAGEVIEWS = "total_pageviews"
TOTAL_READ_TIME = "total_read_time"

# --- official files ---------------------------------------------------------
BEHAVIORS_SCHEMA: dict[str, pl.DataType] = {
    IMPRESSION_ID: pl.UInt32,
    ARTICLE_ID: pl.Int32,
    IMPRESSION_TIME: DT,
    READ_TIME: pl.Float32,
    SCROLL_PERCENTAGE: pl.Float32,
    DEVICE_TYPE: pl.Int8,
    INVIEW: pl.List(pl.Int32),
    CLICKED: pl.List(pl.Int32),
    USER_ID: pl.UInt32,
    IS_SSO_USER: pl.Boolean,
    GENDER: pl.Int8,
    POSTCODE: pl.Int8,
    AGE: pl.Int8,
    IS_SUBSCRIBER: pl.Boolean,
    SESSION_ID: pl.UInt32,
    NEXT_READ_TIME: pl.Float32,
    NEXT_SCROLL_PERCENTAGE: pl.Float32,
}

_TEST_DROPPED = (ARTICLE_ID, CLICKED, NEXT_READ_TIME, NEXT_SCROLL_PERCENTAGE)
BEHAVIORS_TEST_SCHEMA: dict[str, pl.DataType] = {
    **{k: v for k, v in BEHAVIORS_SCHEMA.items() if k not in _TEST_DROPPED},
    IS_BEYOND_ACCURACY: pl.Boolean,
}

HISTORY_SCHEMA: dict[str, pl.DataType] = {
    USER_ID: pl.UInt32,
    HIST_TIME: pl.List(DT),
    HIST_SCROLL: pl.List(pl.Float32),
    HIST_ARTICLE: pl.List(pl.Int32),
    HIST_READ_TIME: pl.List(pl.Float32),
}

ARTICLES_SCHEMA: dict[str, pl.DataType] = {
    ARTICLE_ID: pl.Int32,
    TITLE: pl.String,
    SUBTITLE: pl.String,
    "last_modified_time": DT,
    "premium": pl.Boolean,
    BODY: pl.String,
    PUBLISHED_TIME: DT,
    "image_ids": pl.List(pl.Int64),
    "article_type": pl.String,
    "url": pl.String,
    "ner_clusters": pl.List(pl.String),
    "entity_groups": pl.List(pl.String),
    TOPICS: pl.List(pl.String),
    CATEGORY: pl.Int16,
    SUBCATEGORY: pl.List(pl.Int16),
    CATEGORY_STR: pl.String,
    TOTAL_INVIEWS: pl.Int32,
    TOTAL_PAGEVIEWS: pl.Int32,
    TOTAL_READ_TIME: pl.Float32,
    SENTIMENT_SCORE: pl.Float32,
    SENTIMENT_LABEL: pl.String,
}

SPLITS = ("train", "validation", "test")


def behaviors_schema(split: str) -> dict[str, pl.DataType]:
    """The official behaviors schema of ``split`` (test has no click columns)."""
    return BEHAVIORS_TEST_SCHEMA if split == "test" else BEHAVIORS_SCHEMA


# --- files this project writes ----------------------------------------------
ROW = "row"  # 0-based position of the impression in its behaviors file
LABELS = "labels"  # 1/0 per in-view article, in in-view order (null in test)
HISTORY_IDS = "history_article_ids"  # the user's last T articles, oldest first
HISTORY_TIMES = "history_times"
POSITIVE = "positive"  # training pair: the clicked article
NEGATIVES = "negatives"  # training pair: K not-clicked articles of the impression
SCORES = "scores"

PREPARED_IMPRESSIONS_SCHEMA: dict[str, pl.DataType] = {
    ROW: pl.UInt64,
    IMPRESSION_ID: pl.UInt32,
    USER_ID: pl.UInt32,
    IMPRESSION_TIME: DT,
    INVIEW: pl.List(pl.Int32),
    LABELS: pl.List(pl.Int8),
    IS_BEYOND_ACCURACY: pl.Boolean,
    HISTORY_IDS: pl.List(pl.Int32),
    HISTORY_TIMES: pl.List(DT),
}

PREPARED_PAIRS_SCHEMA: dict[str, pl.DataType] = {
    ROW: pl.UInt64,
    IMPRESSION_ID: pl.UInt32,
    USER_ID: pl.UInt32,
    IMPRESSION_TIME: DT,
    POSITIVE: pl.Int32,
    NEGATIVES: pl.List(pl.Int32),
    HISTORY_IDS: pl.List(pl.Int32),
    HISTORY_TIMES: pl.List(DT),
}

# The columns of articles.parquet that prompts and baselines use.
PREPARED_ARTICLE_COLUMNS = (
    ARTICLE_ID,
    TITLE,
    SUBTITLE,
    BODY,
    CATEGORY,
    CATEGORY_STR,
    SUBCATEGORY,
    PUBLISHED_TIME,
    TOPICS,
    "ner_clusters",
    "entity_groups",
    SENTIMENT_SCORE,
    SENTIMENT_LABEL,
    TOTAL_INVIEWS,
    TOTAL_PAGEVIEWS,
    TOTAL_READ_TIME,
)

# The scores file: the contract between every scorer and everything after it.
SCORES_SCHEMA: dict[str, pl.DataType] = {
    IMPRESSION_ID: pl.UInt32,
    USER_ID: pl.UInt32,
    SCORES: pl.List(pl.Float32),
}
