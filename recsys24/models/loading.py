"""Build a recommender from a config, and save/load model folders.

Real path: ``model.backbone`` is a hub id (``google/mt5-small|base|large``) or
a local folder; weights and tokenizer come from ``from_pretrained`` (the network
is needed once unless the folder is local). Offline path: ``backbone: tiny``
builds a small randomly initialised MT5Config sized by ``model.tiny``, with a
sentencepiece tokenizer trained on the articles. Tests use only the offline path.

    tok = offline_tokenizer(articles, DIR)                   # or load_tokenizer("google/mt5-small")
    model = build_recommender(load_config("configs/cgc_d.yaml"), tok)
    model.save_pretrained("runs/x/model", tokenizer=tok)
    model, tok = load_recommender("runs/x/model")
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl

from recsys24.config import Config, TinySize
from recsys24.data import schema
from recsys24.errors import Recsys24Error
from recsys24.models.base import SPEC_FILE, ModelSpec, Recommender
from recsys24.models.registry import architecture
from recsys24.models.tokenizer import load_tokenizer, single_token_id, train_sentencepiece
from recsys24.prompts.templates import LANGUAGES, WORDS, template_texts


def tiny_config(vocab_size: int, size: TinySize = TinySize()):
    """A small randomly initialisable MT5Config with mT5's special ids (pad 0 = decoder start, eos 1).

    transformers 5.x: MT5Config always sets ``tie_word_embeddings=True``, so a
    randomly initialised CG shares its LM head with the input embedding. A
    checkpoint that stores both matrices (google/mt5-*) stays untied on load and
    on ``save_pretrained`` (tested).
    """
    from transformers import MT5Config

    return MT5Config(
        vocab_size=vocab_size,
        d_model=size.d_model,
        d_ff=size.d_ff,
        d_kv=size.d_kv,
        num_heads=size.num_heads,
        num_layers=size.num_layers,
        num_decoder_layers=size.num_decoder_layers,
        dropout_rate=size.dropout_rate,
        feed_forward_proj="gated-gelu",
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )


def offline_tokenizer(articles: pl.DataFrame, out_dir: str | os.PathLike, vocab_size: int = 8000):
    """Train a sentencepiece tokenizer on article titles, subtitles and categories plus the template words."""
    texts = []
    for col in (schema.TITLE, schema.SUBTITLE, schema.CATEGORY_STR):
        if col in articles.columns:
            texts += articles[col].drop_nulls().to_list()
    for language in LANGUAGES:
        texts += template_texts(language) * 20
    train_sentencepiece(texts, out_dir, vocab_size=vocab_size)
    return load_tokenizer(out_dir)


def build_recommender(config: Config, tokenizer) -> Recommender:
    """A new model for ``config``: pretrained backbone by name/folder, or a random tiny one."""
    cls = architecture(config.model.architecture)
    words = WORDS[config.prompt.language]
    spec = ModelSpec(
        architecture=cls.name,
        prompt=config.prompt,
        lam=config.loss.lam,
        yes_id=single_token_id(tokenizer, words["yes"].strip()),
        no_id=single_token_id(tokenizer, words["no"].strip()),
    )
    if hasattr(cls, "from_config"):  # the neural baselines: word embeddings only (see models/neural/base.py)
        return cls.from_config(spec, config, tokenizer)
    if config.model.backbone == "tiny":
        return cls.create(spec, tiny_config(len(tokenizer), config.model.tiny))
    return cls.create(spec, config.model.backbone)


def load_recommender(path: str | os.PathLike) -> tuple[Recommender, object]:
    """Rebuild a saved model and its tokenizer from a model folder."""
    path = Path(path)
    spec_file = path / SPEC_FILE
    if not spec_file.is_file():
        raise Recsys24Error(f"{path}: not a recsys24 model folder (no {SPEC_FILE})")
    spec = ModelSpec.from_dict(json.loads(spec_file.read_text()))
    model = architecture(spec.architecture).from_folder(path, spec)
    return model, load_tokenizer(path)
