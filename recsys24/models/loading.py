"""Build a model from a config, and load a model folder, whatever its family.

Real path: ``model.backbone`` is a hub id (``google/mt5-small|base|large``) or
a local folder; weights and tokenizer come from ``from_pretrained`` (the network
is needed once unless the folder is local). Offline path: ``backbone: tiny``
builds a small randomly initialised model sized by ``model.tiny`` (prompt
family) or ``model.neural`` (neural family), with a sentencepiece tokenizer
trained on the articles. Tests use only the offline path.

    tok = offline_tokenizer(articles, DIR)                   # or load_tokenizer("google/mt5-small")
    config = load_config("configs/cgc_d.yaml")
    model = build_recommender(config, tok, fit_for(config, tok))   # fit_for: recsys24.training.fitting
    model.save_pretrained("runs/x/model", tokenizer=tok)
    model, tok = load_recommender("runs/x/model")
"""

from __future__ import annotations

import os
from pathlib import Path

from recsys24.config import Config
from recsys24.errors import Recsys24Error
from recsys24.models.contract import Model, ModelSpec, TrainFit
from recsys24.models.registry import architecture
from recsys24.prompts.tokenizer import load_tokenizer


def build_recommender(config: Config, tokenizer, fit: TrainFit = TrainFit()) -> Model:
    """A new model for ``config``, of the architecture it names (see :mod:`recsys24.models.registry`), with what
    training fitted for it (:func:`recsys24.training.fitting.fit_for`); reads no data."""
    model = architecture(config.model.architecture).from_config(config, tokenizer, fit)
    if config.model.features and not model.reads_features:
        raise Recsys24Error(f"model.features: architecture {config.model.architecture} reads no feature table "
                            "(CGh does: architecture cgh)")
    asked = {"model.feature_values": (config.model.feature_values, model.spec.feature_values),
             "model.inview_layers": (config.model.inview_layers, model.spec.inview_layers),
             "loss.listwise": (config.loss.listwise, model.spec.listwise)}
    for key, (wanted, built) in asked.items():
        if wanted != built:
            raise Recsys24Error(f"{key}: architecture {config.model.architecture} does not take it "
                                "(CGh does: architecture cgh; model.feature_values also needs model.features)")
    return model


def load_recommender(path: str | os.PathLike, spec: ModelSpec | None = None) -> tuple[Model, object]:
    """Rebuild a saved model and its tokenizer from a model folder, through the class the registry names for the
    folder's spec (:meth:`Model.from_pretrained`; ``spec``: that spec, when the caller has read it already)."""
    path = Path(path)
    return Model.from_pretrained(path, spec), load_tokenizer(path)
