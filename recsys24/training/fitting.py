"""What a new model learns from the train split before its first step, fitted here so building it reads no data.

``fit_for(config, tokenizer, prepared)`` returns the
:class:`recsys24.models.contract.TrainFit` that ``from_config`` takes, with
the fields the architecture declares in ``fits``:

- ``encoding`` (CGh-f, ``model.features``): each feature's quantile edges on a
  seeded sample of ``train.train_features``
  (:meth:`recsys24.model_inputs.feature_codes.FeatureEncoding.fit`), kept in
  the model folder's spec;
- ``word_vectors`` (neural family, ``backbone: tiny``, ``word_init:
  cooccurrence``): PPMI + SVD vectors of the train split's article tokens
  (:func:`recsys24.models.neural.word_vectors.cooccurrence_vectors`), the
  initial word embeddings, kept with the weights.

Both are seeded numpy, so fitting draws nothing from torch's generator: the
initial weights are the same whether it runs before or after ``manual_seed``.
"""

from __future__ import annotations

from recsys24.config import Config
from recsys24.errors import Recsys24Error
from recsys24.models.contract import TrainFit
from recsys24.models.registry import architecture
from recsys24.progress import log


def fit_for(config: Config, tokenizer, prepared=None) -> TrainFit:
    """The ``TrainFit`` of a new model of ``config``; ``prepared``: the train split (``train.train_data`` when
    not given), read only for the neural family's co-occurrence word vectors."""
    fits = architecture(config.model.architecture).fits
    encoding = feature_encoding(config) if "encoding" in fits and config.model.features else None
    vectors = None
    if "word_vectors" in fits and config.model.backbone == "tiny" and config.model.neural.word_init == "cooccurrence":
        vectors = word_vectors(config, tokenizer, prepared)
    return TrainFit(encoding=encoding, word_vectors=vectors)


def feature_encoding(config: Config):
    """CGh-f: the quantile encoding of ``model.features`` fitted on ``train.train_features``."""
    from recsys24.model_inputs.feature_codes import FeatureEncoding
    from recsys24.features.folder import open_features

    if not config.train.train_features:
        raise Recsys24Error("model.features needs train.train_features: the features folder of the train "
                            "split (`recsys24 features --split train`), on which the encoding is fitted")
    features = open_features(config.train.train_features)
    names = tuple(features.names) if tuple(config.model.features) == ("all",) else tuple(config.model.features)
    log(f"train: fitting {config.model.feature_buckets} quantile buckets of {len(names)} features on "
        f"{features.path}")
    return FeatureEncoding.fit(features, names, config.model.feature_buckets, config.train.seed,
                               values=config.model.feature_values)


def word_vectors(config: Config, tokenizer, prepared=None):
    """The neural family's co-occurrence word vectors of the train split's articles, [len(tokenizer), word_dim]."""
    from recsys24.models.neural.word_vectors import cooccurrence_vectors

    if prepared is None:
        from recsys24.data.prepared import open_prepared

        prepared = open_prepared(config.train.train_data)
    return cooccurrence_vectors(prepared.articles(), tokenizer, len(tokenizer), config.model.neural.word_dim)
