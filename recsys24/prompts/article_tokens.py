"""Tokenise every article once per run: one flat pool of token ids and, per field, a slice per article.

A prompt is then a list of (start, length) slices of the pool, so building a
batch never re-tokenises a string (see :mod:`recsys24.prompts.assemble`). The
pool also holds the fixed template words and the time-difference phrases. With
the articles frame and a tokenizer at hand, the title tokens of one article are::

    table = build_token_table(articles, tokenizer, PromptConfig(template="c"))
    idx = table.index(np.array([9770178]))            # article id -> row
    start, length = table.fields["title"]             # per-row slices
    table.pool[start[idx[0]] : start[idx[0]] + length[idx[0]]]   # int32 token ids
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from recsys24.data import schema
from recsys24.data.columns import article_rows
from recsys24.prompts.templates import MISSING_TIME, WORDS, PromptConfig, age_phrases

_SOURCE_COLUMN = {"title": schema.TITLE, "subtitle": schema.SUBTITLE, "category": schema.CATEGORY_STR}


@dataclass
class TokenTable:
    """Token ids of every article field, template word and time phrase, in one pool.

    article_ids: sorted int32 [A]. published_us: int64 [A] (``MISSING_TIME`` if null).
    fields: field name -> (start int64 [A], length int64 [A]) into ``pool``.
    words: template word name (see ``templates.WORDS``, plus ``eos``) -> (start, length).
    phrases: (start int64 [P], length int64 [P]) of ``templates.age_phrases``.
    eos_id, pad_id: the tokenizer's special ids.
    """

    pool: np.ndarray
    article_ids: np.ndarray
    published_us: np.ndarray
    fields: dict[str, tuple[np.ndarray, np.ndarray]]
    words: dict[str, tuple[int, int]]
    phrases: tuple[np.ndarray, np.ndarray]
    eos_id: int
    pad_id: int
    language: str

    def index(self, article_ids: np.ndarray) -> np.ndarray:
        """Row of each article id (int64); -1 stays -1 (a missing history slot)."""
        return article_rows(self.article_ids, article_ids)

    def word(self, name: str) -> tuple[int, int]:
        return self.words[name]


def _encode_many(tokenizer, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def encode_piece(tokenizer, text: str) -> list[int]:
    """Token ids of a fixed template piece.

    A piece starting with a space (" Vil brugeren læse") begins a new word; one
    that does not ("," "?") is glued to the previous token, so "Titel, Titel"
    decodes without a stray space.
    """
    if text.startswith(" "):
        return tokenizer.encode(text.strip(), add_special_tokens=False)
    anchor = tokenizer.encode("x", add_special_tokens=False)
    glued = tokenizer.encode("x" + text.rstrip(), add_special_tokens=False)
    if glued[: len(anchor)] == anchor:
        return glued[len(anchor) :]
    return tokenizer.encode(text.strip(), add_special_tokens=False)


def build_token_table(articles: pl.DataFrame, tokenizer, prompt: PromptConfig) -> TokenTable:
    """Tokenise the fields ``prompt`` uses for every article, once.

    articles: a frame with ``article_id``, ``published_time`` and the text columns
    (``schema.PREPARED_ARTICLE_COLUMNS``). Titles and subtitles are cut to
    ``prompt.clip_chars`` characters first; an empty field reads " -".
    """
    articles = articles.sort(schema.ARTICLE_ID)
    words = WORDS[prompt.language]
    needed = sorted({f for f in prompt.article_fields + prompt.candidate_fields if f != "age"})

    chunks: list[np.ndarray] = []
    offset = 0

    def add(ids_list: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        nonlocal offset
        lengths = np.fromiter((len(x) for x in ids_list), dtype=np.int64, count=len(ids_list))
        flat = np.fromiter((t for x in ids_list for t in x), dtype=np.int32, count=int(lengths.sum()))
        starts = offset + np.cumsum(lengths) - lengths
        chunks.append(flat)
        offset += len(flat)
        return starts, lengths

    empty = words["empty"].strip()
    fields = {}
    for name in needed:
        col = pl.col(_SOURCE_COLUMN[name]).fill_null("").str.strip_chars()
        if name == "category":
            col = pl.when(col == "").then(pl.lit(empty)).otherwise(col + ":")
            # few distinct categories: tokenise each once, then broadcast
            texts = np.array(articles.select(col.alias("t"))["t"].to_list(), dtype=object)
            uniq, where = np.unique(texts, return_inverse=True)
            starts, lengths = add(_encode_many(tokenizer, uniq.tolist()))
            fields[name] = (starts[where], lengths[where])
            continue
        col = col.str.slice(0, prompt.clip_chars).str.strip_chars()
        texts = articles.select(pl.when(col == "").then(pl.lit(empty)).otherwise(col).alias("t"))["t"].to_list()
        fields[name] = add(_encode_many(tokenizer, texts))

    word_slices = {}
    for name, text in words.items():
        s, l = add([encode_piece(tokenizer, text)])
        word_slices[name] = (int(s[0]), int(l[0]))
    s, l = add([[int(tokenizer.eos_token_id)]])
    word_slices["eos"] = (int(s[0]), int(l[0]))
    phrases = add([encode_piece(tokenizer, p) for p in age_phrases(prompt.language)])

    published = articles[schema.PUBLISHED_TIME].cast(schema.DT).dt.epoch("us").fill_null(MISSING_TIME)
    return TokenTable(
        pool=np.concatenate(chunks) if chunks else np.zeros(0, np.int32),
        article_ids=articles[schema.ARTICLE_ID].to_numpy().astype(np.int32),
        published_us=published.to_numpy().astype(np.int64),
        fields=fields,
        words=word_slices,
        phrases=phrases,
        eos_id=int(tokenizer.eos_token_id),
        pad_id=int(tokenizer.pad_token_id),
        language=prompt.language,
    )
