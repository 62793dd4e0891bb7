"""The neural family's base: word embeddings, news and user encoders, scoring, model folder.

A subclass builds its layers in ``build`` and implements two encoders::

    encode_news(news, users) -> [M, D]        # news: News [M]; users: [M] hashed reader ids (NPA), else None
    encode_user(history, mask, batch, candidates) -> [B, D] or [N, D]   # [N, D]: candidate-aware (DKN)

score = ⟨news vector of the candidate, user vector⟩ (a logit).
NLL = the published softmax cross-entropy: −log softmax over an impression's
candidates at its clicked one (training pairs: 1 clicked + K = 4 negatives), via
:func:`recsys24.models.loss.listwise_nll`; an impression with several clicks
averages over them, one without a click is left out. The configs set λ = 0,
so the loss is exactly the published one; λ > 0 adds BPR through the shared
``combined_loss``.

The model folder holds ``model.safetensors`` (every weight, word embeddings
included) and ``neural.json`` (the ``NeuralSize`` hyper-parameters and the
embedding shape), besides the tokenizer and ``recsys24_model.json`` of every
family (:mod:`recsys24.models.contract`), so ``recsys24 predict --model DIR``
rebuilds the same network. Of the config's ``prompt`` section only
``history_size`` is read: the template and the answer words are not (an old
config that names them still loads).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from recsys24.config import NeuralSize
from recsys24.errors import Recsys24Error
from recsys24.model_inputs.batches import News, NewsBatch
from recsys24.models.contract import Model, ModelSpec, Output, TrainFit
from recsys24.models.loss import listwise_nll
from recsys24.models.neural.blocks import pretrained_word_embeddings

WEIGHTS_FILE = "model.safetensors"
SIZE_FILE = "neural.json"


class NeuralModel(Model):
    """Base of NRMS, NAML, LSTUR, NPA and DKN (no mT5 backbone: word embeddings only)."""

    news_fields: ClassVar[tuple[str, ...]] = ("title",)  # what the collator fetches per article
    fits = frozenset({"word_vectors"})  # backbone tiny, word_init cooccurrence
    user_dependent_news: ClassVar[bool] = False  # encode_news reads its users argument (NPA)

    def __init__(self, spec: ModelSpec, size: NeuralSize, vocab_size: int, word_dim: int, pad_id: int = 0):
        super().__init__()
        if spec.prompt.history_size < 1:
            raise Recsys24Error(f"architecture {self.name} needs prompt.history_size >= 1")
        self.spec, self.size, self.pad_id = spec, size, pad_id
        self.words = nn.Embedding(vocab_size, word_dim, padding_idx=pad_id)
        self.build()
        if size.freeze_words:
            self.words.weight.requires_grad_(False)

    def build(self) -> None:
        raise NotImplementedError

    def encode_news(self, news: News, users: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode_user(self, history: torch.Tensor, mask: torch.Tensor, batch: NewsBatch,
                    candidates: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, batch: NewsBatch, with_nll: bool = True) -> Output:
        b, h = batch.history_news.shape
        if self.user_dependent_news:  # NPA: each news vector depends on its reader, so encode per slot
            candidates = self.encode_news(batch.news.take(batch.candidate_news), batch.users[batch.group])
            history = self.encode_news(batch.news.take(batch.history_news.reshape(-1)),
                                       batch.users.repeat_interleave(h)).view(b, h, -1)
        else:  # each distinct article once
            vectors = self.encode_news(batch.news, None)
            candidates, history = vectors[batch.candidate_news], vectors[batch.history_news]
        user = self.encode_user(history, batch.history_mask, batch, candidates)
        if user.shape[0] == batch.num_impressions:  # one vector per impression (all but DKN)
            user = user[batch.group]
        scores = (candidates * user).sum(-1).float()
        nll = None
        if with_nll and batch.labels is not None:
            nll = listwise_nll(scores, batch.group, batch.labels.to(scores.device))
        return Output(scores, nll)

    def make_collator(self, articles, tokenizer, seed: int = 0, features=None):
        from recsys24.model_inputs.news_collator import NewsCollator, build_news_features

        features = build_news_features(articles, tokenizer, self.size, self.news_fields)
        return NewsCollator(features, self.spec.prompt.history_size, self.size.user_buckets, seed=seed)

    # --- building, saving, loading ------------------------------------------
    @classmethod
    def from_config(cls, config, tokenizer, fit: TrainFit = TrainFit()) -> "NeuralModel":
        """A new model for a run ``config``: word embeddings by ``model.neural.word_init`` for
        ``backbone: tiny`` (co-occurrence: ``fit.word_vectors``, fitted on the train split's articles by the
        training stage, :func:`recsys24.training.fitting.fit_for`), else the backbone's input embeddings.
        """
        spec = ModelSpec(architecture=cls.name, prompt=config.prompt, lam=config.loss.lam)
        size, backbone = config.model.neural, config.model.backbone
        pad = int(tokenizer.pad_token_id)
        if backbone == "tiny":
            model = cls(spec, size, len(tokenizer), size.word_dim, pad)
            if size.word_init == "cooccurrence":
                weight = fit.word_vectors
                if weight is None:
                    raise Recsys24Error("model.neural.word_init=cooccurrence: no word vectors given (training "
                                        "fits them on the train split's articles: recsys24.training.fitting.fit_for)")
            else:  # small random vectors (not N(0, 1)), so Adam steps reshape them quickly
                weight = torch.randn(len(tokenizer), size.word_dim) * 0.1
                weight[pad] = 0.0
        else:
            weight = pretrained_word_embeddings(backbone)
            if weight.shape[0] < len(tokenizer):
                raise Recsys24Error(f"{backbone}: {weight.shape[0]} embeddings for {len(tokenizer)} tokens")
            model = cls(spec, size, weight.shape[0], weight.shape[1], pad)
        with torch.no_grad():
            model.words.weight.copy_(weight)
        return model

    def save_weights(self, folder: Path) -> None:
        from safetensors.torch import save_file

        shape = {"vocab_size": self.words.num_embeddings, "word_dim": self.words.embedding_dim, "pad_id": self.pad_id}
        save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, str(folder / WEIGHTS_FILE))
        (folder / SIZE_FILE).write_text(json.dumps({**shape, "size": dataclasses.asdict(self.size)}, indent=2) + "\n")

    @classmethod
    def from_folder(cls, path: str | os.PathLike, spec: ModelSpec) -> "NeuralModel":
        from safetensors.torch import load_file

        path = Path(path)
        if not (path / SIZE_FILE).is_file():
            raise Recsys24Error(f"{path}: a {spec.architecture} model folder needs {SIZE_FILE}")
        meta = json.loads((path / SIZE_FILE).read_text())
        model = cls(spec, NeuralSize(**meta["size"]), meta["vocab_size"], meta["word_dim"], meta["pad_id"])
        model.load_state_dict(load_file(str(path / WEIGHTS_FILE)))
        return model
