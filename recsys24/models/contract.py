"""The contract every model family implements, and the model folder they share.

A family (``models/prompt/``: CG, CGc, CGh, QA, QA+ on an mT5 backbone;
``models/neural/``: NRMS, NAML, LSTUR, NPA, DKN on word embeddings) is a
subclass of :class:`Model` that says::

    model = Arch.from_config(config, tokenizer, fit)     # a new model for a run config; reads no data
    collate = model.make_collator(articles, tokenizer)   # prepared rows -> its batches (recsys24.model_inputs)
    batch = collate(frame, rng)                          # rng: shuffles training pairs (optional)
    scores = model.score(batch)    # [N] one score per (impression, candidate); higher = more likely clicked
    loss = model.loss(batch)       # scalar: (1 − λ)·NLL + λ·BPR
    model.save_pretrained(DIR, tokenizer)                # the model folder below
    model = Model.from_pretrained(DIR)   # any architecture, by the folder's spec (Arch.from_pretrained: only Arch)

and declares how ``recsys24 predict`` scores it in :attr:`Model.scoring`
(a :class:`ScoringDefaults`), so training, predict and the CLI read the same
numbers. Adding a family is one folder of subclasses and one line per name in
:mod:`recsys24.models.registry`.

Building a model reads no data, as transformers' ``from_config``: what an
architecture learns from the train split before its first step (the
:class:`TrainFit`: CGh-f's feature encoding, the neural family's co-occurrence
word vectors) is fitted by the training stage (:mod:`recsys24.training.fitting`)
and passed in; it lands in the model folder (the encoding in the spec, the
vectors as the initial word embeddings), so :meth:`Model.from_pretrained` needs
nothing else.

A model folder (``save_pretrained``) holds everything ``recsys24 predict
--model DIR`` needs to rebuild it: ``recsys24_model.json`` (architecture name,
prompt config, λ, answer token ids), the tokenizer, and the family's weight
files (:meth:`Model.save_weights`).
"""

from __future__ import annotations

import json
import os
from abc import ABCMeta, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar

import torch
from torch import nn

from recsys24.errors import Recsys24Error
from recsys24.models.loss import combined_loss
from recsys24.models.scoring import ScoringDefaults
from recsys24.prompts.templates import PromptConfig

if TYPE_CHECKING:
    from recsys24.evaluation.scores import SplitData
    from recsys24.model_inputs.feature_codes import FeatureEncoding

SPEC_FILE = "recsys24_model.json"
NO_TOKEN = -1  # answer token id of a model that reads no answer word (the neural family)


@dataclass(frozen=True)
class ModelSpec:
    """What a model folder needs besides weights: architecture, prompt, λ, answer token ids.

    The neural family reads only ``prompt.history_size`` and λ; its answer ids
    are :data:`NO_TOKEN`.
    """

    architecture: str
    prompt: PromptConfig
    lam: float
    yes_id: int = NO_TOKEN
    no_id: int = NO_TOKEN
    # CGh-f: the feature-table columns it reads, in order, and each one's quantile edges
    # (recsys24.model_inputs.feature_codes.FeatureEncoding, fitted on the train split)
    features: tuple[str, ...] = ()
    feature_buckets: int = 0
    feature_edges: tuple[tuple[float, ...], ...] = ()
    feature_values: bool = False  # CGh-f: the features also enter as rank-gauss numbers
    inview_layers: int = 0  # CGh: layers in which an impression's candidates attend to each other
    listwise: bool = False  # the NLL term is a softmax over the impression's candidates

    def to_dict(self) -> dict:
        return {
            "architecture": self.architecture,
            "prompt": self.prompt.to_dict(),
            "lambda": self.lam,
            "yes_id": self.yes_id,
            "no_id": self.no_id,
        } | ({"features": {"names": list(self.features), "buckets": self.feature_buckets,
                          "edges": [list(e) for e in self.feature_edges], "values": self.feature_values}}
             if self.features else {}) \
          | ({"inview_layers": self.inview_layers} if self.inview_layers else {}) \
          | ({"listwise": True} if self.listwise else {})

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        f = d.get("features") or {"names": [], "buckets": 0, "edges": []}
        return cls(d["architecture"], PromptConfig(**d["prompt"]), float(d["lambda"]), int(d["yes_id"]),
                   int(d["no_id"]), tuple(f["names"]), int(f["buckets"]), tuple(tuple(e) for e in f["edges"]),
                   bool(f.get("values", False)), int(d.get("inview_layers", 0)), bool(d.get("listwise", False)))

    @classmethod
    def read(cls, folder: str | os.PathLike) -> "ModelSpec":
        """The spec of a model folder; refuses a folder without one."""
        return cls.from_dict(_spec_file(folder))


@dataclass(frozen=True)
class ModelOrigin:
    """Where a model folder's weights come from, as ``recsys24 train`` records it beside the spec.

    ``trained_on``: the splits the weights learned from, by content (None: not
    recorded, as in folders exported before it was). A field an older folder
    lacks reads as None.
    """

    checkpoint: str | None = None  # the checkpoint tag the weights are (``step24``)
    step: int | None = None
    val_auc: float | None = None  # that checkpoint's validation AUC (None: no validation, or not the best)
    last_step: int | None = None  # the last step the run trained
    trained_on: tuple[SplitData, ...] | None = None

    def to_dict(self) -> dict:
        return {"checkpoint": self.checkpoint, "step": self.step, "val_auc": self.val_auc,
                "last_step": self.last_step} \
            | ({} if self.trained_on is None else {"trained_on": [t.to_dict() for t in self.trained_on]})

    @classmethod
    def from_dict(cls, d: dict) -> "ModelOrigin":
        from recsys24.evaluation.scores import SplitData  # imported here: it needs polars, the contract does not

        found = d.get("trained_on")
        return cls(d.get("checkpoint"), d.get("step"), d.get("val_auc"), d.get("last_step"),
                   None if found is None else tuple(SplitData.from_dict(t) for t in found))

    @classmethod
    def read(cls, folder: str | os.PathLike) -> "ModelOrigin | None":
        """The origin recorded in a model folder's spec file; None when it records none (a model saved
        outside training). Refuses a folder without a spec file."""
        found = _spec_file(folder).get("origin")
        return cls.from_dict(found) if found else None


def _spec_file(folder: str | os.PathLike) -> dict:
    """The JSON object of a model folder's spec file (spec and origin); refuses a folder without one."""
    path = Path(folder) / SPEC_FILE
    if not path.is_file():
        raise Recsys24Error(f"{folder}: not a recsys24 model folder (no {SPEC_FILE})")
    return json.loads(path.read_text())


@dataclass(frozen=True)
class TrainFit:
    """What a new model takes from the train split, fitted by the training stage and passed to ``from_config``.

    Which of them an architecture takes is its :attr:`Model.fits`.
    """

    encoding: FeatureEncoding | None = None  # CGh-f: the features' quantile edges (``model.features``)
    word_vectors: torch.Tensor | None = None  # neural, ``word_init: cooccurrence``: [vocab, word_dim]


# The registry's lookup, name -> class (recsys24.models.registry.architecture), handed over by the registry when
# it is imported: the registry imports every family and each family imports this module, so this module cannot
# import the registry without an import circle.
_lookup: Callable[[str], type[Model]] | None = None


def use_registry(lookup: Callable[[str], type["Model"]]) -> None:
    """Give :meth:`Model.from_pretrained` the registry's name -> class lookup (called by the registry)."""
    global _lookup
    _lookup = lookup


def _registered(name: str) -> type["Model"]:
    if _lookup is None:
        raise Recsys24Error("no architectures registered: import recsys24.models.registry (recsys24.models.loading "
                            "does) before Model.from_pretrained")
    return _lookup(name)


@dataclass
class Output:
    """scores [N]; nll: the architecture's likelihood term (scalar) when labels were given."""

    scores: torch.Tensor
    nll: torch.Tensor | None = None


class Model(nn.Module, metaclass=ABCMeta):
    """One architecture of any family: batches, scores, loss, model folder, scoring defaults."""

    name: ClassVar[str]
    scoring: ClassVar[ScoringDefaults] = ScoringDefaults()
    fits: ClassVar[frozenset[str]] = frozenset()  # the TrainFit fields from_config may need
    spec: ModelSpec

    # --- what a family implements -------------------------------------------
    @classmethod
    @abstractmethod
    def from_config(cls, config, tokenizer, fit: TrainFit = TrainFit()) -> "Model":
        """A new model for a run config (a :class:`recsys24.config.Config`), with what training fitted for it;
        reads no data."""

    @abstractmethod
    def make_collator(self, articles, tokenizer, seed: int = 0, features=None):
        """The callable ``collate(frame, rng=None)`` that turns prepared rows into this model's batches.

        Training and ``recsys24 predict`` both build their batches through it.
        The result may have ``sort_key(frame)`` (a length per row) that predict
        buckets by. ``seed`` seeds the generator used when no ``rng`` is given.
        ``features``: the features folder (a ``FeatureSet``) of the frames' split,
        for a model that reads the feature table (:attr:`reads_features`).
        """

    @abstractmethod
    def forward(self, batch, with_nll: bool = True) -> Output:
        """Scores of the batch's candidates and (``with_nll`` and labels given) the NLL term."""

    @abstractmethod
    def save_weights(self, folder: Path) -> None:
        """Write the family's weight files into the (new, empty) model folder."""

    @classmethod
    @abstractmethod
    def from_folder(cls, path: str | os.PathLike, spec: ModelSpec) -> "Model":
        """Rebuild a model written by :meth:`save_pretrained`."""

    # --- the same for every family (a family overrides what it has) ---------
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, spec: ModelSpec | None = None) -> "Model":
        """Rebuild the model of a folder :meth:`save_pretrained` wrote (``spec``: its spec, when already read).

        ``Model.from_pretrained(DIR)`` loads a folder of any architecture, as the
        class the registry names for the folder's spec (a family's base class:
        any of that family); an architecture (``CGh.from_pretrained``) refuses a
        folder of another.
        """
        spec = spec or ModelSpec.read(path)
        wanted = getattr(cls, "name", None)  # None: Model or a family's base, not one architecture
        if wanted is None:
            found = _registered(spec.architecture)
            if not issubclass(found, cls):
                raise Recsys24Error(f"{path}: a {spec.architecture} model folder, not one of {cls.__name__} "
                                    "(Model.from_pretrained loads any)")
            return found.from_folder(path, spec)
        if spec.architecture != wanted:
            raise Recsys24Error(f"{path}: a {spec.architecture} model folder, not {wanted} "
                                "(Model.from_pretrained loads any)")
        return cls.from_folder(path, spec)

    @property
    def reads_features(self) -> bool:
        """Whether batches need the feature table of their split (``make_collator(..., features=)``)."""
        return bool(self.spec.features)

    def enable_fast_scoring(self, on: bool = True, compile: bool = False) -> None:
        """Switch ``score`` to the fast path (families whose ``scoring.fast_path`` is true override this)."""

    def transformer_blocks(self) -> list[nn.Module]:
        """The repeated blocks ``train.compile`` compiles one by one; none: the model is compiled whole."""
        return []

    def enable_gradient_checkpointing(self) -> None:
        """Recompute activations in the backward pass (``train.gradient_checkpointing``)."""
        raise Recsys24Error(f"train.gradient_checkpointing applies to the mT5 architectures, not {self.name}")

    def score(self, batch) -> torch.Tensor:
        """One score per (impression, candidate), in the batch's candidate order."""
        return self.forward(batch, with_nll=False).scores

    def loss(self, batch, lam: float | None = None) -> torch.Tensor:
        """(1 − λ)·NLL + λ·BPR on a labelled batch; λ defaults to the model's own."""
        if batch.labels is None:
            raise Recsys24Error("loss needs a batch with labels (train or validation rows)")
        lam = self.spec.lam if lam is None else lam
        out = self.forward(batch, with_nll=lam != 1.0)
        nll = out.nll if out.nll is not None else out.scores.sum() * 0.0
        return combined_loss(nll, out.scores, batch.group, batch.labels, lam)

    def save_pretrained(self, out_dir: str | os.PathLike, tokenizer=None, origin: ModelOrigin | None = None) -> Path:
        """Write the model folder atomically: the family's weights, the tokenizer, the spec.

        origin: where the weights came from (training writes the checkpoint, its
        step and validation AUC, the split it trained on), kept in the spec file
        beside the spec and read back by :meth:`ModelOrigin.read`.
        """
        from recsys24.io import atomic_path, umask_mode  # imported here: recsys24.io needs polars, scoring does not

        with atomic_path(out_dir) as tmp:
            tmp.mkdir()
            self.save_weights(tmp)
            if tokenizer is not None:
                tokenizer.save_pretrained(tmp)
            spec = self.spec.to_dict() | ({"origin": origin.to_dict()} if origin else {})
            (tmp / SPEC_FILE).write_text(json.dumps(spec, indent=2) + "\n")
            umask_mode(tmp)  # safetensors writes 0600
        return Path(out_dir)
