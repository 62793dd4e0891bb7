"""Typed run configs: a YAML file under ``configs/`` loaded into dataclasses.

Sections: ``model`` (architecture and backbone), ``prompt`` (see
:class:`recsys24.prompts.templates.PromptConfig`) and ``loss``. A later stage
adds its section as one more dataclass field on :class:`Config` (nested
dataclasses are read recursively). Unknown keys
are refused, so a typo does not silently fall back to a default::

    model:  {architecture: cgc, backbone: google/mt5-small}
    prompt: {template: d, language: da, history_size: 4, clip_chars: 60, max_length: 256}
    loss:   {lambda: 0.4}
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from recsys24.errors import Recsys24Error
from recsys24.prompts.templates import PromptConfig
from recsys24.training.config import TrainConfig


@dataclass(frozen=True)
class TinySize:
    """The randomly initialised mT5 used offline (``backbone: tiny``); vocab comes from the tokenizer."""

    d_model: int = 64
    d_ff: int = 128
    d_kv: int = 16
    num_heads: int = 4
    num_layers: int = 2
    num_decoder_layers: int = 2
    dropout_rate: float = 0.0
    tokenizer_vocab: int = 8000  # upper bound for the sentencepiece model trained on the articles


@dataclass(frozen=True)
class NeuralSize:
    """Hyper-parameters of the neural news recommenders (nrms, naml, lstur, npa, dkn).

    The defaults are small (offline tests and the demo); ``configs/<model>.yaml``
    sets the published sizes. ``word_dim`` is used with ``backbone: tiny`` only:
    a pretrained backbone brings its own input-embedding width. Users, categories
    and entities are hashed into fixed tables (``*_buckets``), so users and
    entities never seen in training still get a (shared) row.
    """

    word_dim: int = 64
    title_length: int = 20  # title tokens per article
    body_length: int = 40  # body tokens per article (NAML)
    num_heads: int = 4  # NRMS self-attention heads
    head_dim: int = 16
    attention_dim: int = 32  # additive / personalised attention query size
    filters: int = 64  # CNN filters (NAML, LSTUR, NPA; DKN: per window size)
    window: int = 3
    category_dim: int = 32  # category / subcategory embeddings (NAML, LSTUR)
    user_dim: int = 32  # user-id embedding (NPA)
    entity_dim: int = 32  # entity embedding (DKN)
    dropout: float = 0.2
    long_term_dropout: float = 0.5  # LSTUR: share of users whose long-term vector is masked in training
    user_buckets: int = 4096
    category_buckets: int = 1024
    entity_buckets: int = 4096
    freeze_words: bool = False  # keep the initial word embeddings fixed
    # backbone tiny only: "random" (N(0, 0.1)) or "cooccurrence" (PPMI-SVD vectors of the train
    # split's article text, a GloVe stand-in; see recsys24/models/neural/word_vectors.py)
    word_init: str = "random"

    def __post_init__(self):
        if self.word_init not in ("random", "cooccurrence"):
            raise Recsys24Error(f"model.neural.word_init must be random or cooccurrence, got {self.word_init!r}")


@dataclass(frozen=True)
class ModelConfig:
    """architecture: cg, cgc, qa, qa+, or a neural baseline (nrms, naml, lstur, npa, dkn).

    backbone: a hub id (google/mt5-small), a local folder, or ``tiny``; the neural
    baselines take only its input embeddings as word embeddings (``neural`` sizes them).
    """

    architecture: str = "cgc"
    backbone: str = "tiny"
    tiny: TinySize = field(default_factory=TinySize)
    neural: NeuralSize = field(default_factory=NeuralSize)


@dataclass(frozen=True)
class LossConfig:
    """lam (YAML key ``lambda``): weight of the BPR rank loss; 0 and 0.4 are the poster's settings."""

    lam: float = 0.4

    def __post_init__(self):
        if not 0.0 <= self.lam <= 1.0:
            raise Recsys24Error(f"loss.lambda must be in [0, 1], got {self.lam}")


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["prompt"] = self.prompt.to_dict()
        d["loss"] = {"lambda": self.loss.lam}
        return d


_RENAMED = {"lambda": "lam"}  # YAML key -> field name


def _build(cls, data, where: str):
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise Recsys24Error(f"{where}: expected a mapping, got {type(data).__name__}")
    known = typing.get_type_hints(cls)  # field name -> type, string annotations resolved
    kwargs = {}
    for key, value in data.items():
        name = _RENAMED.get(key, key)
        if name not in known:
            raise Recsys24Error(f"{where}.{key}: unknown key (known: {', '.join(sorted(known))})")
        if dataclasses.is_dataclass(known[name]):
            value = _build(known[name], value, f"{where}.{key}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise Recsys24Error(f"{where}: {err}") from None


def config_from_dict(data: dict, where: str = "config") -> Config:
    """A :class:`Config` from a plain dict (as read from YAML); refuses unknown keys."""
    return _build(Config, data or {}, where)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Set ``section.key=value`` overrides (values parsed as YAML) on a raw config dict.

    >>> apply_overrides({"train": {"steps": 10}}, ["train.steps=20"])
    {'train': {'steps': 20}}
    """
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise Recsys24Error(f"override {item!r}: expected section.key=value")
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise Recsys24Error(f"override {item!r}: {part} is not a section")
        node[leaf] = yaml.safe_load(raw)
    return data


def load_config(path: str | os.PathLike, overrides: list[str] = ()) -> Config:
    """Read a YAML config file (e.g. ``configs/cgc_d.yaml``), then apply ``key=value`` overrides."""
    path = Path(path)
    if not path.is_file():
        raise Recsys24Error(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise Recsys24Error(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    return config_from_dict(apply_overrides(data or {}, list(overrides)), where=str(path))
