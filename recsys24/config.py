"""Typed run configs: a YAML file under ``configs/`` loaded into dataclasses, and the one typed-YAML reader.

Sections: ``model`` (architecture and backbone), ``prompt`` (see
:class:`recsys24.prompts.templates.PromptConfig`), ``loss`` and ``train``. A later stage
adds its section as one more dataclass field on :class:`Config` (nested
dataclasses are read recursively). Unknown keys
are refused, so a typo does not silently fall back to a default::

    model:  {architecture: cgc, backbone: google/mt5-small}
    prompt: {template: d, language: da, history_size: 4, clip_chars: 60, max_length: 256}
    loss:   {lambda: 0.4}

The reader (:func:`read_config`) takes any tree of dataclasses, so other
config files (``configs/recprompt.yaml``) are read and refused the same way.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field

import yaml

from recsys24.errors import Recsys24Error
from recsys24.prompts.templates import PromptConfig
from recsys24.resources import config_file


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
    """architecture: cg, cgc, qa, qa+, or a neural model (nrms, naml, lstur, npa, dkn).

    backbone: a hub id (google/mt5-small), a local folder, or ``tiny``; the neural
    baselines take only its input embeddings as word embeddings (``neural`` sizes them).
    features (CGh only, making it CGh-f): the columns of the feature table
    (``recsys24 features``) the model reads for each candidate, ``[all]`` for
    every one; each is coded into ``feature_buckets`` quantile buckets fitted on
    ``train.train_features``. ``feature_values``: each feature also enters as a
    number (its rank-gauss value: the quantile position within the train
    split, through the normal's inverse CDF), not only as its bucket's embedding.
    ``inview_layers`` (CGh): transformer layers in which the candidates of one
    impression attend to each other before they are scored (0: each scored alone).
    """

    architecture: str = "cgc"
    backbone: str = "tiny"
    features: tuple[str, ...] = ()
    feature_buckets: int = 32
    feature_values: bool = False
    inview_layers: int = 0
    tiny: TinySize = field(default_factory=TinySize)
    neural: NeuralSize = field(default_factory=NeuralSize)


@dataclass(frozen=True)
class LossConfig:
    """lam (YAML key ``lambda``): weight of the BPR rank loss; 0 and 0.4 are the poster's settings.

    listwise (CGh): the NLL term is the softmax cross-entropy over each impression's
    candidates at its clicks, instead of each candidate's binary cross-entropy.
    """

    lam: float = 0.4
    listwise: bool = False

    def __post_init__(self):
        if not 0.0 <= self.lam <= 1.0:
            raise Recsys24Error(f"loss.lambda must be in [0, 1], got {self.lam}")


PRECISIONS = ("auto", "fp32", "bf16")
FRAMES = ("pairs", "impressions")


@dataclass(frozen=True)
class TrainConfig:
    """How to train: data, steps, optimiser, schedule, evaluation, checkpoints.

    ``micro_batch`` is pairs per rank per forward pass; one optimiser step sees
    ``micro_batch × grad_accum × world_size`` pairs. ``frames: impressions``
    trains on whole impressions (every in-view candidate, as predict scores
    them) instead of the prepared pairs; ``micro_batch`` then counts impressions. ``precision: auto`` means
    bf16 on GPU and fp32 on CPU. ``deepspeed`` names a JSON file under
    ``configs/deepspeed/`` (``zero2`` default, ``zero3``) or a path.
    ``compile`` compiles each mT5 block with ``torch.compile`` (ZeRO 0–2; on a
    GPU it fuses the many small element-wise kernels of eager T5).
    ``gradient_checkpointing`` recomputes each mT5 block's activations in the
    backward pass: about a third more compute for far less activation memory,
    so larger micro-batches fit.
    """

    train_data: str = "demo_run/prepared/train"
    valid_data: str | None = "demo_run/prepared/validation"
    train_features: str | None = None  # the features folders of both splits, for a model with model.features
    valid_features: str | None = None
    frames: str = "pairs"  # what a micro-batch holds: training pairs (1 click + K others) or whole impressions
    steps: int = 200
    micro_batch: int = 8
    grad_accum: int = 1
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 20
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    precision: str = "auto"
    deepspeed: str = "zero2"
    compile: bool = False
    gradient_checkpointing: bool = False
    eval_every: int = 50
    eval_impressions: int = 200
    eval_batch_impressions: int = 16
    save_every: int = 50
    log_every: int = 10
    seed: int = 0

    def __post_init__(self):
        if self.frames not in FRAMES:
            raise Recsys24Error(f"train.frames must be one of {', '.join(FRAMES)}, got {self.frames!r}")
        if self.precision not in PRECISIONS:
            raise Recsys24Error(f"train.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        for name in ("compile", "gradient_checkpointing"):
            if not isinstance(getattr(self, name), bool):
                raise Recsys24Error(f"train.{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("steps", "micro_batch", "grad_accum", "eval_every", "save_every", "log_every"):
            if getattr(self, name) < 1:
                raise Recsys24Error(f"train.{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["prompt"] = self.prompt.to_dict()
        d["loss"] = {"lambda": self.loss.lam} | ({"listwise": True} if self.loss.listwise else {})
        return d


_RENAMED = {"lambda": "lam"}  # YAML key -> field name
COMMAND_LINE = "command line"


def _describe(hint) -> str:
    """How an expected type reads in an error: ``an integer``, ``a list of strings or null``."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args) + (" or null" if type(None) in typing.get_args(hint) else "")
    if typing.get_origin(hint) in (tuple, list):
        return f"a list of {_describe(args[0]).split(' ', 1)[1]}s"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            dict: "a section (key: value pairs)"}.get(hint, str(hint))


def _typed(hint, value):
    """``value`` as the field type ``hint`` wants, or raise TypeError.

    Integers are numbers; a string that reads as a number is one for a number
    field (YAML reads ``3e-4`` as a string); a list is a tuple where the field is one.

    >>> _typed(float, "3e-4"), _typed(int | None, None), _typed(tuple[str, ...] | None, ["title"])
    (0.0003, None, ('title',))
    """
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        for option in (a for a in typing.get_args(hint) if a is not type(None)):
            try:
                return _typed(option, value)
            except TypeError:
                pass
        raise TypeError(hint)
    if typing.get_origin(hint) in (tuple, list) and isinstance(value, (list, tuple)):
        item = typing.get_args(hint)[0]
        return typing.get_origin(hint)(_typed(item, v) for v in value)
    if hint is dict and isinstance(value, dict):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if hint is str and isinstance(value, str):
        return value
    raise TypeError(hint)


class _Origins:
    """Where each key of a config came from: the YAML file, or a ``key=value`` on the command line."""

    def __init__(self, where: str, overridden: set[str] = frozenset()):
        self.where, self.overridden = where, overridden

    def of(self, key: str) -> str:
        parts = key.split(".")
        on_line = any(".".join(parts[:i]) in self.overridden for i in range(1, len(parts) + 1))
        return COMMAND_LINE if on_line else self.where


def _build(cls, data, prefix: str, origins: _Origins):
    """``cls`` from ``data``; an unknown key or a value of the wrong type is one line naming the key and
    where it came from (``configs/x.yaml: train.steps: expected an integer, got 'five'``)."""
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise Recsys24Error(f"{origins.of(prefix)}: {prefix}: expected a section (key: value lines), "
                            f"got {data!r}")
    known = typing.get_type_hints(cls)  # field name -> type, string annotations resolved
    kwargs = {}
    for key, value in data.items():
        name, dotted = _RENAMED.get(key, key), f"{prefix}.{key}" if prefix else str(key)
        if name not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; {key} looks like a typo of {close[0]}" if close else ""
            raise Recsys24Error(f"{origins.of(dotted)}: {dotted}: unknown key (known: {', '.join(sorted(known))}){hint}")
        if dataclasses.is_dataclass(known[name]):
            kwargs[name] = _build(known[name], value, dotted, origins)
            continue
        try:
            kwargs[name] = _typed(known[name], value)
        except TypeError:
            raise Recsys24Error(f"{origins.of(dotted)}: {dotted}: expected {_describe(known[name])}, "
                                f"got {value!r}") from None
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise Recsys24Error(f"{origins.where}: {prefix}: {err}") from None


def config_from_dict(data: dict, where: str = "config", overridden: set[str] = frozenset()) -> Config:
    """A :class:`Config` from a plain dict (as read from YAML); refuses unknown keys and wrong types.

    where: the file the dict was read from; overridden: the dotted keys that
    came from the command line instead (see :func:`override_keys`). Both name
    the origin of a refused key.
    """
    return _build(Config, data or {}, "", _Origins(where, set(overridden)))


def override_keys(overrides: list[str]) -> set[str]:
    """The dotted keys of ``section.key=value`` overrides.

    >>> sorted(override_keys(["train.steps=5", "model.tiny.d_model=32"]))
    ['model.tiny.d_model', 'train.steps']
    """
    return {item.partition("=")[0] for item in overrides}


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Set ``section.key=value`` overrides (values parsed as YAML) on a raw config dict.

    >>> apply_overrides({"train": {"steps": 10}}, ["train.steps=20"])
    {'train': {'steps': 20}}
    """
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise Recsys24Error(f"{COMMAND_LINE}: override {item!r}: expected section.key=value")
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise Recsys24Error(f"{COMMAND_LINE}: override {item!r}: {part} is not a section")
        try:
            node[leaf] = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise Recsys24Error(f"{COMMAND_LINE}: override {item!r}: not a YAML value "
                                f"({str(err).splitlines()[0]})") from None
    return data


def read_config(cls, path: str | os.PathLike, overrides: list[str] = ()):
    """A ``cls`` (a dataclass of dataclass sections) from a YAML file, with ``key=value`` overrides applied.

    path: a file, or a shipped config by name (see :func:`recsys24.resources.config_file`).
    Unknown keys and values of the wrong type are refused with one line naming
    the key and where it came from (the file or the command line).
    """
    path = config_file(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise Recsys24Error(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    sections = ", ".join(f"{f.name}:" for f in dataclasses.fields(cls))
    if not data:  # every key would silently take its default, data paths included
        raise Recsys24Error(f"{path}: empty config file (expected sections {sections})")
    if not isinstance(data, dict):
        raise Recsys24Error(f"{path}: expected sections ({sections}), got {type(data).__name__}")
    overrides = list(overrides)
    in_file = _dotted_keys(data or {})
    merged = apply_overrides(data or {}, overrides)
    # a section the file lacks came from the command line too (trian.steps=5: "trian")
    from_line = override_keys(overrides) | (_dotted_keys(merged) - in_file)
    return _build(cls, merged, "", _Origins(str(path), from_line))


def load_config(path: str | os.PathLike, overrides: list[str] = ()) -> Config:
    """Read a run config (e.g. ``configs/cgc_d.yaml``, or a shipped one by name, ``tiny/cgc_d``), then apply
    ``key=value`` overrides."""
    return read_config(Config, path, overrides)


def _dotted_keys(data: dict, prefix: str = "") -> set[str]:
    """Every key of a nested dict, dotted: ``{"train": {"steps": 5}}`` -> ``{"train", "train.steps"}``."""
    keys = set()
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        keys.add(dotted)
        if isinstance(value, dict):
            keys |= _dotted_keys(value, dotted)
    return keys
