"""A ranker folder on disk (the output of ``recsys24 rank train``): its ``ranker.json`` is written and read here only.

Layout (written atomically by :func:`recsys24.ranking.train.write_ranker`)::

    RANKER/model.txt | model.cbm   the model (LightGBM text, CatBoost binary), at its best round
    RANKER/ranker.json      the spec (:class:`RankerSpec`): the learner, feature names, stacked score
                            names, parameters, the features folders and their meaning options, sample,
                            hold-out and seed, the early-stopping round and its validation metrics,
                            under ``fit`` which rows and how many rounds made the saved model (train +
                            validation after ``refit``), the splits it learned from, and the model
                            file's size and hash
    RANKER/importance.csv   gain and split importance per feature, largest first
    RANKER/metrics.jsonl    one line per boosting round (``step``) of the early-stopping fit:
                            ``val_auc``, drawn by ``recsys24 report`` like a training curve
    RANKER/holdout_users.parquet   the users held out of every fit (when any are)

Every ``ranker.json`` an older recsys24 wrote is read: the keys it lacks take
the value their absence meant (learner ``lightgbm``, ``model.txt`` unhashed, no
``fit``, ``trained_on`` unknown, feature options off).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from recsys24.errors import Recsys24Error
from recsys24.evaluation.scores import SplitData
from recsys24.features.folder import MEANING_OPTIONS
from recsys24.io import known_fields

SPEC_FILE = "ranker.json"
RETRAIN = "train the ranker again with `recsys24 rank train`"


@dataclass(frozen=True)
class ModelFile:
    """The model file of a ranker folder; ``bytes`` and ``sha256`` are None for a ranker written before they
    were recorded (its model is then loaded unchecked)."""

    name: str = "model.txt"
    bytes: int | None = None
    sha256: str | None = None

    @classmethod
    def of(cls, path: Path) -> "ModelFile":
        """The record of the model file at ``path``: its name, size and hash."""
        data = path.read_bytes()
        return cls(path.name, len(data), hashlib.sha256(data).hexdigest())

    def checked(self, folder: Path) -> Path:
        """The model file's path in ``folder``; refuses one that is missing, or not the size and hash recorded."""
        path = folder / self.name
        if not path.is_file():
            raise Recsys24Error(f"{folder}: no {self.name} ({RETRAIN})")
        if self.sha256 is not None:
            data = path.read_bytes()
            if len(data) != self.bytes or hashlib.sha256(data).hexdigest() != self.sha256:
                raise Recsys24Error(f"{path}: not the model {folder / SPEC_FILE} was written with ({len(data):,} "
                                    f"bytes, {self.bytes:,} recorded; truncated or replaced?); {RETRAIN}")
        return path


@dataclass(frozen=True)
class FitRecord:
    """Which rows and how many rounds made the saved model (``fit``): the training folders, and after a refit
    the validation folder too."""

    features: list[str]  # the features folders fitted on, resolved
    refit: bool
    impressions: int
    candidates: int
    rounds: int


@dataclass(frozen=True, kw_only=True)
class RankerSpec:
    """What ``RANKER/ranker.json`` records (fields in the file's key order).

    ``feature_options`` are the meaning options of the features trained on
    (:data:`recsys24.features.folder.MEANING_OPTIONS`), top-level keys in the
    file; a features folder is scored by the ranker only when its plan shares
    them (``plan.compatible(spec.feature_options)``). ``valid_metrics`` are
    the contest metrics on the early-stopping rows at the best round, by
    name (``auc``, ``mrr``, ``ndcg@10``, ...); ``seconds`` the wall time by phase
    (``fit``, ``refit``).
    """

    learner: str = "lightgbm"  # absent before CatBoost came
    features: list[str]  # feature columns in model order, stacked scores included
    scores: list[str]  # the stacked scores files' names
    categorical: list[str]
    params: Mapping[str, object]  # the learner's own parameters, less its thread count
    train_features: list[str]  # the training features folders, resolved
    valid_features: str | None  # the early-stopping features folder (None: users held out of training)
    feature_options: Mapping[str, bool] = field(default_factory=lambda: dict.fromkeys(MEANING_OPTIONS, False))
    sample: float
    seed: int
    holdout: float | None
    best_iteration: int
    train_candidates: int
    valid_impressions: int
    valid_metrics: Mapping[str, float]
    fit: FitRecord | None = None  # None: written before it was recorded
    trained_on: tuple[SplitData, ...] | None = None  # None: not known (or written before it was recorded)
    memory_estimate_gb: float | None = None
    seconds: Mapping[str, float] = field(default_factory=dict)
    model_file: ModelFile = ModelFile()

    @classmethod
    def from_dict(cls, spec: dict) -> "RankerSpec":
        """A spec as ``ranker.json`` holds it, of this recsys24 or an older one (see the module doc)."""
        fit, trained, model_file = spec.get("fit"), spec.get("trained_on"), spec.get("model_file")
        return cls(**known_fields(cls, spec) | {
            "feature_options": {option: bool(spec.get(option, False)) for option in MEANING_OPTIONS},
            "fit": fit and FitRecord(**known_fields(FitRecord, fit)),
            "trained_on": None if trained is None else tuple(SplitData.from_dict(d) for d in trained),
            "model_file": ModelFile(**known_fields(ModelFile, model_file)) if model_file else ModelFile()})

    def to_dict(self) -> dict:
        """The JSON object of ``ranker.json``."""
        return {"learner": self.learner, "features": self.features, "scores": self.scores,
                "categorical": self.categorical, "params": dict(self.params),
                "train_features": self.train_features, "valid_features": self.valid_features,
                **self.feature_options,
                "sample": self.sample, "seed": self.seed, "holdout": self.holdout,
                "best_iteration": self.best_iteration, "train_candidates": self.train_candidates,
                "valid_impressions": self.valid_impressions, "valid_metrics": dict(self.valid_metrics),
                "fit": self.fit and {"features": self.fit.features, "refit": self.fit.refit,
                                     "impressions": self.fit.impressions, "candidates": self.fit.candidates,
                                     "rounds": self.fit.rounds},
                "trained_on": None if self.trained_on is None else [d.to_dict() for d in self.trained_on],
                "memory_estimate_gb": self.memory_estimate_gb, "seconds": dict(self.seconds),
                "model_file": {k: v for k, v in vars(self.model_file).items() if v is not None}}

    def write(self, folder: Path) -> None:
        """Write ``FOLDER/ranker.json`` (``folder`` is the ranker's temporary folder: the whole is atomic)."""
        (folder / SPEC_FILE).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def read(cls, folder: str | Path) -> "RankerSpec":
        """The spec of a ranker folder; refuses a folder without one, or one that is not readable."""
        path = Path(folder) / SPEC_FILE
        if not path.is_file():
            raise Recsys24Error(f"{folder}: not a ranker folder (no {SPEC_FILE}; make one with `recsys24 rank train`)")
        try:
            spec = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise Recsys24Error(f"{path}: not readable JSON ({err}); train the ranker again") from None
        try:
            return cls.from_dict(spec)
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            raise Recsys24Error(f"{path}: not a ranker spec recsys24 can read ({err}); {RETRAIN}") from None
