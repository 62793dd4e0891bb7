"""Article features of the neural models, computed once per run, and their collator.

Every article is tokenised once (title; body for NAML) into fixed-width token
matrices; categories, subcategories and NER entities are hashed into fixed
tables, so a model trained on one article set scores another (the test split's
new articles, categories or entities get a hashed row, never an error)::

    features = build_news_features(articles, tokenizer, size, ("title", "category"))
    collate = NewsCollator(features, history_size=20, user_buckets=50_000)
    batch = collate(frame)       # a NewsBatch; frame: prepared pairs or impressions

The candidates of a frame (training pairs: the clicked article and its K = 4
negatives, shuffled within the impression; impressions: the in-view list in its
order) come from :func:`recsys24.model_inputs.candidates.frame_candidates`,
the same code the mT5 models use.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch

from recsys24.data import schema
from recsys24.data.columns import article_rows
from recsys24.model_inputs.batches import News, NewsBatch
from recsys24.model_inputs.candidates import frame_candidates, right_aligned
from recsys24.model_inputs.prompt_collator import float_labels

NEWS_FIELDS = ("title", "body", "category", "subcategory", "entities")
NER = "ner_clusters"


def hashed(strings: list[str], buckets: int) -> np.ndarray:
    """A stable id in 1..buckets-1 per string (crc32, the same in every process and run)."""
    return np.array([zlib.crc32(s.encode()) % (buckets - 1) + 1 for s in strings], dtype=np.int64)


def hashed_ids(values: np.ndarray, buckets: int) -> np.ndarray:
    """Integer ids into 1..buckets-1; a negative value (missing) becomes 0."""
    values = np.asarray(values, dtype=np.int64)
    return np.where(values < 0, 0, values % (buckets - 1) + 1)


def token_matrix(token_lists: list[list[int]], width: int, pad: int) -> np.ndarray:
    """The first ``width`` tokens of each list, left-aligned in an int64 [A, width] matrix."""
    lens = np.fromiter((min(len(t), width) for t in token_lists), dtype=np.int64, count=len(token_lists))
    flat = np.fromiter((x for t in token_lists for x in t[:width]), dtype=np.int64, count=int(lens.sum()))
    out = np.full((len(token_lists), width), pad, dtype=np.int64)
    row = np.repeat(np.arange(len(token_lists)), lens)
    col = np.arange(len(flat)) - np.repeat(np.cumsum(lens) - lens, lens)
    out[row, col] = flat
    return out


def _tokenize(tokenizer, texts: list[str], width: int) -> list[list[int]]:
    if not texts:
        return []
    return tokenizer(texts, add_special_tokens=False, truncation=True, max_length=width)["input_ids"]


def _column(articles: pl.DataFrame, name: str, dtype, default):
    if name in articles.columns:
        return articles[name]
    return pl.Series(name, [default] * articles.height, dtype=dtype)


@dataclass
class NewsFeatures:
    """Per-article model inputs; row A (one past the last article) is the empty history slot.

    article_ids: sorted int32 [A]. title: int64 [A+1, Lt]; body: [A+1, Lb] or
    None; category, subcategory: [A+1] hashed ids; entities: [A+1, Lt] hashed id
    of the entity each title token is part of, or None. pad_id: the tokenizer's.
    """

    article_ids: np.ndarray
    title: np.ndarray
    category: np.ndarray
    subcategory: np.ndarray
    body: np.ndarray | None
    entities: np.ndarray | None
    pad_id: int

    def index(self, article_ids: np.ndarray) -> np.ndarray:
        """Row of each article id; -1 (an empty history slot) maps to the empty row A."""
        return article_rows(self.article_ids, article_ids, empty=len(self.article_ids))

    def news(self, rows: np.ndarray) -> News:
        """The :class:`News` tensors of article rows of any shape."""
        def take(m):
            return None if m is None else torch.from_numpy(np.ascontiguousarray(m[rows]))

        title = take(self.title)
        body = take(self.body)
        return News(title=title, title_mask=title != self.pad_id, category=take(self.category),
                    subcategory=take(self.subcategory), body=body,
                    body_mask=None if body is None else body != self.pad_id, entities=take(self.entities))


def build_news_features(articles: pl.DataFrame, tokenizer, size, fields=NEWS_FIELDS) -> NewsFeatures:
    """Tokenise and hash what ``fields`` need of every article (``size`` is a ``NeuralSize``).

    Missing columns (a reduced article table) read as empty, so only ``article_id``
    and ``title`` are required.
    """
    articles = articles.sort(schema.ARTICLE_ID)
    pad = int(tokenizer.pad_token_id)
    empty = np.full((1, size.title_length), pad, dtype=np.int64)
    titles = _tokenize(tokenizer, articles[schema.TITLE].fill_null("").to_list(), size.title_length)
    title = np.concatenate([token_matrix(titles, size.title_length, pad), empty])
    body = None
    if "body" in fields:
        texts = _column(articles, schema.BODY, pl.String, "").fill_null("").str.slice(0, 12 * size.body_length)
        tokens = _tokenize(tokenizer, texts.to_list(), size.body_length)
        body = np.concatenate([token_matrix(tokens, size.body_length, pad),
                               np.full((1, size.body_length), pad, dtype=np.int64)])
    category = _column(articles, schema.CATEGORY, pl.Int64, None).cast(pl.Int64).fill_null(-1).to_numpy()
    sub = _column(articles, schema.SUBCATEGORY, pl.List(pl.Int64), None).list.first().cast(pl.Int64)
    entities = _aligned_entities(articles, tokenizer, titles, size) if "entities" in fields else None
    return NewsFeatures(
        article_ids=articles[schema.ARTICLE_ID].to_numpy().astype(np.int32),
        title=title,
        category=np.append(hashed_ids(category, size.category_buckets), 0),
        subcategory=np.append(hashed_ids(sub.fill_null(-1).to_numpy(), size.category_buckets), 0),
        body=body,
        entities=entities,
        pad_id=pad,
    )


def _aligned_entities(articles: pl.DataFrame, tokenizer, titles: list[list[int]], size) -> np.ndarray:
    """DKN's word-entity alignment: per title token, the hashed id of an article entity containing it.

    EB-NeRD links entities to articles (``ner_clusters``), not to title words, so
    a title token is aligned with an entity of its own article whose tokenised
    name holds the same token id; tokens matching none get 0.
    """
    width = size.title_length
    out = np.zeros((len(titles) + 1, width), dtype=np.int64)
    ent = pl.DataFrame({"row": np.arange(articles.height),
                        "name": _column(articles, NER, pl.List(pl.String), None)}).explode("name").drop_nulls()
    if ent.height == 0:
        return out
    names = ent["name"].unique().sort().to_list()
    bare = {tokenizer.convert_tokens_to_ids("▁"), tokenizer.pad_token_id, tokenizer.unk_token_id}
    tokens = [[t for t in ids if t not in bare] for ids in _tokenize(tokenizer, names, width)]
    vocab = pl.DataFrame({"name": names, "token": tokens, "entity": hashed(names, size.entity_buckets)},
                         schema_overrides={"token": pl.List(pl.Int64)}).explode("token").drop_nulls()
    pairs = ent.join(vocab, on="name").unique(["row", "token"], keep="first")
    lens = np.array([min(len(t), width) for t in titles], dtype=np.int64)
    flat = pl.DataFrame({
        "row": np.repeat(np.arange(len(titles)), lens),
        "pos": np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens),
        "token": np.fromiter((x for t in titles for x in t[:width]), dtype=np.int64, count=int(lens.sum())),
    })
    hit = flat.join(pairs.select("row", "token", "entity"), on=["row", "token"], how="inner")
    out[hit["row"].to_numpy(), hit["pos"].to_numpy()] = hit["entity"].to_numpy()
    return out


class NewsCollator:
    """Prepared rows -> :class:`NewsBatch`; ``rng`` and ``seed`` as in :class:`PromptCollator`."""

    def __init__(self, features: NewsFeatures, history_size: int, user_buckets: int, seed: int = 0):
        self.features = features
        self.history_size = history_size
        self.user_buckets = user_buckets
        self.rng = np.random.default_rng(seed)

    def __call__(self, frame: pl.DataFrame, rng: np.random.Generator | None = None) -> NewsBatch:
        c = frame_candidates(frame, self.rng if rng is None else rng)
        candidates = c.article_ids
        f = self.features
        hist = right_aligned(frame[schema.HISTORY_IDS], self.history_size)
        users = frame[schema.USER_ID].cast(pl.Int64).to_numpy() % self.user_buckets
        # every distinct article once: models encode U news instead of N + B·H
        rows_needed = np.concatenate([f.index(candidates), f.index(hist).ravel()])
        unique, inverse = np.unique(rows_needed, return_inverse=True)
        inverse = torch.from_numpy(inverse.astype(np.int64))
        return NewsBatch(
            news=f.news(unique),
            candidate_news=inverse[: len(candidates)],
            history_news=inverse[len(candidates):].reshape(hist.shape),
            history_mask=torch.from_numpy(hist >= 0),
            users=torch.from_numpy(users.astype(np.int64)),
            group=torch.from_numpy(c.group.astype(np.int64)),
            labels=float_labels(c.labels),
            article_ids=candidates.astype(np.int32),
            rows=c.rows,
        )

    def sort_key(self, frame: pl.DataFrame) -> np.ndarray:
        """All zeros: every row has the same fixed-width inputs, so predict keeps the row order."""
        return np.zeros(frame.height)
