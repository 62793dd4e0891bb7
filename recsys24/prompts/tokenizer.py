"""Tokenisers: a real mT5 one by hub id or folder, or an offline sentencepiece one.

Real path (needs the network once, or a local copy)::

    tok = load_tokenizer("google/mt5-small")      # hub id
    tok = load_tokenizer("/models/mt5-base")      # folder written by save_pretrained

Offline path (demo and tests; nothing touches the network)::

    tok = offline_tokenizer(articles, DIR)   # trained on the article texts and the template words
    train_sentencepiece(texts, DIR)          # the same on any texts: writes DIR/spiece.model
    tok = load_tokenizer(DIR)                # T5Tokenizer.from_pretrained(DIR)

The offline model uses mT5's special ids (pad 0, eos 1, unk 2, no bos), and the
answer words ("ja", "nej", "yes", "no") are forced to single pieces so that CG can
read them off the first decoder step and QA can point at them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from recsys24.errors import Recsys24Error

if TYPE_CHECKING:
    import polars as pl

SPIECE = "spiece.model"
# "▁ja" rather than "ja": a user-defined symbol is cut out wherever it occurs, so
# the word-start marker keeps it from splitting words such as "bajer".
ANSWER_SYMBOLS = ("▁ja", "▁nej", "▁yes", "▁no")


def train_sentencepiece(
    texts: Iterable[str], out_dir: str | os.PathLike, vocab_size: int = 8000
) -> Path:
    """Train a unigram sentencepiece model on ``texts``; write ``out_dir/spiece.model`` atomically.

    ``vocab_size`` is an upper bound (a small corpus yields fewer pieces). Every
    character of ``texts`` is kept (character_coverage 1.0), so include the
    template texts to keep their punctuation out of ``<unk>``. The model is
    trained in memory and written under a temporary name, so a full disk leaves
    no truncated ``spiece.model`` that a later run would trust; a corpus
    sentencepiece refuses (too few characters for ``vocab_size``) is one
    Recsys24Error line.
    """
    import io

    import sentencepiece as spm

    from recsys24.io import atomic_path

    out_dir = Path(out_dir)
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter([t for t in texts if t]),
            model_writer=model,
            vocab_size=vocab_size,
            hard_vocab_limit=False,
            model_type="unigram",
            character_coverage=1.0,
            pad_id=0,
            eos_id=1,
            unk_id=2,
            bos_id=-1,
            user_defined_symbols=list(ANSWER_SYMBOLS),
            num_threads=2,
            minloglevel=2,
        )
    except RuntimeError as err:
        raise Recsys24Error(f"{out_dir / SPIECE}: sentencepiece cannot train the tokenizer "
                            f"(vocab_size {vocab_size}): {_reason(err)}") from None
    with atomic_path(out_dir / SPIECE) as tmp:
        tmp.write_bytes(model.getvalue())
    return out_dir / SPIECE


def _reason(err: Exception) -> str:
    """sentencepiece's own words, without its source location (``Internal: src/trainer.cc(..) [...]``)."""
    text = " ".join(str(err).split())
    return text.rsplit("] ", 1)[-1] if "] " in text else text


def load_tokenizer(name_or_dir: str | os.PathLike):
    """A tokenizer from a hub id, a ``save_pretrained`` folder or a bare ``spiece.model`` folder.

    transformers 5.x: ``T5Tokenizer(vocab_file=...)`` silently ignores the file,
    so a bare sentencepiece folder is loaded with ``T5Tokenizer.from_pretrained``.
    """
    from transformers import AutoTokenizer, T5Tokenizer

    path = Path(name_or_dir)
    if path.is_dir() and (path / SPIECE).is_file() and not (path / "tokenizer_config.json").is_file():
        import sentencepiece as spm

        try:  # transformers would fall back to other formats and fail far from the cause
            spm.SentencePieceProcessor(model_file=str(path / SPIECE))
        except (RuntimeError, OSError) as err:
            raise Recsys24Error(f"{path / SPIECE}: not a readable sentencepiece model ({_reason(err)}); delete "
                                "it to train the tokenizer again") from None
        return T5Tokenizer.from_pretrained(str(path))
    if not path.exists() and str(name_or_dir).startswith((".", "/")):
        raise Recsys24Error(f"{name_or_dir}: no such tokenizer folder")
    return AutoTokenizer.from_pretrained(str(name_or_dir))


def single_token_id(tokenizer, word: str) -> int:
    """The one token id of ``word`` at a word start; refuse a word that splits."""
    ids = tokenizer.encode(word, add_special_tokens=False)
    if len(ids) != 1 or ids[0] == tokenizer.unk_token_id:
        pieces = tokenizer.convert_ids_to_tokens(ids)
        raise Recsys24Error(f"answer word {word!r} is not a single token in this tokenizer: {pieces}")
    return ids[0]


def offline_tokenizer(articles: pl.DataFrame, out_dir: str | os.PathLike, vocab_size: int = 8000):
    """Train a sentencepiece tokenizer on article titles, subtitles and categories plus the template words."""
    from recsys24.data import schema
    from recsys24.prompts.templates import LANGUAGES, template_texts

    texts = []
    for col in (schema.TITLE, schema.SUBTITLE, schema.CATEGORY_STR):
        if col in articles.columns:
            texts += articles[col].drop_nulls().to_list()
    for language in LANGUAGES:
        texts += template_texts(language) * 20
    train_sentencepiece(texts, out_dir, vocab_size=vocab_size)
    return load_tokenizer(out_dir)
