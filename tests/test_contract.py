"""The model contract: every family declares its scoring defaults, builds its own batches, and is chosen by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys24.config import Config, LossConfig, ModelConfig
from recsys24.errors import Recsys24Error
from recsys24.inference.predict import default_piece_rows
from recsys24.models.contract import NO_TOKEN, Model
from recsys24.models.registry import ARCHITECTURES, architecture
from recsys24.models.scoring import ScoringDefaults
from recsys24.prompts.templates import PromptConfig


def test_every_architecture_implements_the_contract_and_declares_its_scoring():
    for name, cls in ARCHITECTURES.items():
        assert issubclass(cls, Model) and cls.name == name
        assert isinstance(cls.scoring, ScoringDefaults)
    assert architecture("cgh").scoring == ScoringDefaults(batch_size=4096, piece_rows=1_000_000, fast_path=True,
                                                          user_order=True)
    assert architecture("nrms").scoring == ScoringDefaults()


def test_predict_reads_the_piece_size_from_the_folders_architecture(tiny, cgh_model):
    assert default_piece_rows(tiny["model"]) == ScoringDefaults().piece_rows
    assert default_piece_rows(cgh_model) == 1_000_000


def test_the_ranker_is_named_with_where_to_use_it():
    with pytest.raises(Recsys24Error, match="recsys24 rank"):
        architecture("lgbm")


def test_a_neural_config_needs_no_template_or_answer_words(tiny_tokenizer):
    # template e and language en: a prompt model would refuse or read them; the neural family reads history_size only
    config = Config(model=ModelConfig(architecture="nrms", backbone="tiny"),
                    prompt=PromptConfig(template="e", language="en", history_size=3), loss=LossConfig(0.0))
    model = architecture("nrms").from_config(config, tiny_tokenizer)
    assert model.spec.yes_id == model.spec.no_id == NO_TOKEN
    assert model.spec.prompt.history_size == 3


@pytest.mark.parametrize("name", ["cgc", "cgh", "nrms"])
def test_a_collator_shuffles_pairs_with_the_generator_it_is_given(name, tiny_tokenizer, tiny_articles, make_pairs):
    config = Config(model=ModelConfig(architecture=name, backbone="tiny"),
                    prompt=PromptConfig(template="a" if name != "cgh" else "d", history_size=2), loss=LossConfig(0.0))
    torch.manual_seed(0)
    model = architecture(name).from_config(config, tiny_tokenizer)
    collate = model.make_collator(tiny_articles, tiny_tokenizer, seed=5)
    n = 30
    frame = make_pairs([[1000, 1001]] * n, list(range(1100, 1100 + n)), [[1200, 1201, 1202, 1203]] * n)
    first = collate(frame, np.random.default_rng([7, 1]))
    again = collate(frame, np.random.default_rng([7, 1]))
    other = collate(frame, np.random.default_rng([7, 2]))
    assert np.array_equal(first.article_ids, again.article_ids)
    assert not np.array_equal(first.article_ids, other.article_ids)
    # without one, the collator's own seeded generator: the same sequence as a fresh collator's
    fresh = model.make_collator(tiny_articles, tiny_tokenizer, seed=5)
    assert np.array_equal(collate(frame).article_ids, fresh(frame).article_ids)
