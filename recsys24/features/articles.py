"""Per-article lookup tables for the features, built once per split from articles.parquet.

Every per-article array has one row per article plus a last "unknown" row
(NaN / empty), so ``table[rows(ids)]`` works for any id.

- static columns (the *article* family): ``total_inviews``, ``total_pageviews``,
  ``total_read_time`` (nulls stay NaN), ``sentiment_score``, ``premium``,
  ``article_type`` (an integer code, categorical), title/subtitle/body lengths in
  characters;
- ``published_s``: publication time in seconds since the epoch;
- item lists for the share features: category, subcategory, topics and entities
  (``ner_clusters``), each coded 0..V-1 over its :data:`TOP_ITEMS` most frequent
  values (rarer values are dropped: they say little about a reader's habits);
- ``text``: an L2-normalised TF-IDF → truncated-SVD vector of title, subtitle
  and the start of the body (scikit-learn), for the history similarity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from recsys24.data import schema as S

TOP_ITEMS = 256  # distinct values kept per item family
TEXT_DIM = 32  # SVD components of the TF-IDF text vectors
BODY_CHARS = 1000  # body characters that go into the text vectors
ITEM_COLUMNS = {"category": S.CATEGORY, "subcategory": S.SUBCATEGORY, "topic": S.TOPICS, "entity": "ner_clusters"}
STATIC = ("total_inviews", "total_pageviews", "total_read_time", "sentiment_score", "premium", "article_type",
          "title_len", "subtitle_len", "body_len")


@dataclass
class Items:
    """Items (codes 0..size-1) of each article row as CSR: ``codes[offsets[r]:offsets[r + 1]]``."""

    offsets: np.ndarray
    codes: np.ndarray
    size: int

    def expand(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index into ``rows``, item code) for every item of every row."""
        counts = self.offsets[rows + 1] - self.offsets[rows]
        which = np.repeat(np.arange(rows.size, dtype=np.int64), counts)
        starts = np.repeat(self.offsets[rows] - np.cumsum(counts) + counts, counts)
        return which, self.codes[starts + np.arange(which.size)]


@dataclass
class ArticleTable:
    index: np.ndarray  # article_id -> row; unknown ids -> the last row
    published_s: np.ndarray  # float64 seconds since the epoch (NaN: unknown)
    static: dict[str, np.ndarray]  # STATIC name -> float32 per row
    items: dict[str, Items]
    text: np.ndarray  # float32 [rows, TEXT_DIM], L2-normalised

    @property
    def unknown(self) -> int:
        return self.published_s.size - 1

    def rows(self, article_ids: np.ndarray) -> np.ndarray:
        """int64 table rows of ``article_ids`` (the unknown row where an id is not in articles.parquet)."""
        ids = np.asarray(article_ids, dtype=np.int64)
        inside = (ids >= 0) & (ids < self.index.size)
        out = np.full(ids.size, self.unknown, dtype=np.int64)
        out[inside] = self.index[ids[inside]]
        return out


def _with_unknown(values: np.ndarray, fill) -> np.ndarray:
    return np.concatenate([values, np.array([fill], dtype=values.dtype)])


def _items(column: pl.Series) -> Items:
    """Code the most frequent :data:`TOP_ITEMS` values of a (list) column per article row."""
    lists = column if column.dtype == pl.List else column.to_frame().select(pl.concat_list(pl.all())).to_series()
    pairs = pl.DataFrame({"row": np.arange(column.len()), "v": lists}).explode("v").drop_nulls("v")
    top = (pairs.group_by("v").len().sort(["len", "v"], descending=[True, False]).head(TOP_ITEMS)
           .with_columns(code=pl.int_range(pl.len(), dtype=pl.Int64)))
    coded = pairs.join(top.select("v", "code"), on="v", how="inner", maintain_order="left")
    counts = np.bincount(coded["row"].to_numpy(), minlength=column.len() + 1)  # + the unknown row, empty
    return Items(np.concatenate([[0], np.cumsum(counts)]), coded["code"].to_numpy(), max(top.height, 1))


def _text_vectors(articles: pl.DataFrame) -> np.ndarray:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    text = articles.select(pl.concat_str([pl.col(S.TITLE).fill_null(""), pl.col(S.SUBTITLE).fill_null(""),
                                          pl.col(S.BODY).fill_null("").str.slice(0, BODY_CHARS)],
                                         separator=" "))[:, 0].to_list()
    tfidf = TfidfVectorizer(min_df=2, max_features=200_000, sublinear_tf=True, dtype=np.float32).fit_transform(text)
    dim = min(TEXT_DIM, max(tfidf.shape[1] - 1, 1))
    vectors = TruncatedSVD(dim, algorithm="randomized", n_iter=4, random_state=0).fit_transform(tfidf)
    vectors = vectors.astype(np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    return np.vstack([vectors, np.zeros((1, dim), np.float32)])


def build_article_table(articles_path) -> ArticleTable:
    """Read articles.parquet once and build every per-article table."""
    columns = [S.ARTICLE_ID, S.TITLE, S.SUBTITLE, S.BODY, S.PUBLISHED_TIME, "premium", "article_type",
               S.TOTAL_INVIEWS, S.TOTAL_PAGEVIEWS, S.TOTAL_READ_TIME, S.SENTIMENT_SCORE, *ITEM_COLUMNS.values()]
    articles = pl.read_parquet(articles_path, columns=list(dict.fromkeys(columns)))
    ids = articles[S.ARTICLE_ID].to_numpy().astype(np.int64)
    index = np.full(int(ids.max()) + 1 if ids.size else 1, ids.size, dtype=np.int64)
    index[ids] = np.arange(ids.size)

    def f32(expr: pl.Expr) -> np.ndarray:
        return _with_unknown(articles.select(expr.cast(pl.Float32)).to_series().to_numpy().astype(np.float32), np.nan)

    types = articles["article_type"].fill_null("").unique().sort()
    static = {
        S.TOTAL_INVIEWS: f32(pl.col(S.TOTAL_INVIEWS)),
        S.TOTAL_PAGEVIEWS: f32(pl.col(S.TOTAL_PAGEVIEWS)),
        S.TOTAL_READ_TIME: f32(pl.col(S.TOTAL_READ_TIME)),
        S.SENTIMENT_SCORE: f32(pl.col(S.SENTIMENT_SCORE)),
        "premium": f32(pl.col("premium")),
        # codes of the sorted distinct types: the same split gives the same codes
        "article_type": f32(pl.col("article_type").fill_null("").replace_strict(types, np.arange(types.len()))),
        "title_len": f32(pl.col(S.TITLE).str.len_chars()),
        "subtitle_len": f32(pl.col(S.SUBTITLE).str.len_chars()),
        "body_len": f32(pl.col(S.BODY).str.len_chars()),
    }
    published = articles[S.PUBLISHED_TIME].dt.epoch("us").cast(pl.Float64).to_numpy() / 1e6
    items = {name: _items(articles[col]) for name, col in ITEM_COLUMNS.items()}
    return ArticleTable(index, _with_unknown(published, np.nan), static, items, _text_vectors(articles))
