"""Shared fixtures: one synthetic demo dataset and its prepared splits per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from recsys24.cli import main
from recsys24.data.prepare import prepare
from recsys24.data.prepared import open_prepared
from recsys24.data.synth import synthesize


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """A synthetic EB-NeRD demo (train, validation, test). Treat as read-only."""
    out = tmp_path_factory.mktemp("ebnerd") / "demo"
    synthesize(out, "demo", seed=0)
    return out


@pytest.fixture(scope="session")
def prepared(demo_data, tmp_path_factory) -> dict[str, Path]:
    """Prepared train/validation/test of the demo data (T=20, K=4). Treat as read-only."""
    root = tmp_path_factory.mktemp("prepared")
    for split in ("train", "validation", "test"):
        prepare(demo_data, split, root / split)
    return {split: root / split for split in ("train", "validation", "test")}


@pytest.fixture(scope="session")
def feats(demo_data, tmp_path_factory) -> Path:
    """Features of the demo train and validation splits (small pieces, so there are several). Read-only."""
    from recsys24.features.build import build_features

    root = tmp_path_factory.mktemp("features")
    for split in ("train", "validation"):
        build_features(demo_data, split, root / split, piece_candidates=60_000)
    return root


@pytest.fixture
def data_copy(demo_data, tmp_path) -> Path:
    """A private copy of the demo data that a test may damage."""
    dst = tmp_path / "data"
    shutil.copytree(demo_data, dst)
    return dst


@pytest.fixture
def cli():
    """Run ``recsys24 ARGS...`` in-process; returns the click Result."""
    runner = CliRunner()

    def run(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return run


# --- prompts and models: a small fixed article set and an offline tokenizer ---

T0 = __import__("datetime").datetime(2023, 5, 18, 7, 0)
FIXED_TITLES = [
    "Regeringen vil sænke skatten",
    "Brøndby vinder derbyet",
    "Ny vejrudsigt: regn i hele landet",
    "Kongehuset holder fest",
]


@pytest.fixture(scope="session")
def tiny_articles():
    """300 articles (ids 1000..1299): the first four fixed, the rest random Danish-looking titles."""
    import datetime as dt

    import numpy as np
    import polars as pl

    from recsys24.data import schema as S

    rng = np.random.default_rng(0)
    words = ("regeringen vil sænke skatten brøndby vinder derbyet ny vejrudsigt regn hele landet "
             "kongehuset holder fest minister politi bil fodbold musik valg skole byen").split()
    n = 300
    titles = FIXED_TITLES + [" ".join(rng.choice(words, 5)).capitalize() for _ in range(n - 4)]
    subtitles = ["Skattelettelser til alle", "Stor sejr i Parken", "Tag paraplyen med", None] + [
        " ".join(rng.choice(words, 7)) for _ in range(n - 4)
    ]
    hours = [72, 5, 0, 30] + rng.integers(0, 400, n - 4).tolist()
    return pl.DataFrame(
        {
            S.ARTICLE_ID: np.arange(1000, 1000 + n, dtype=np.int32),
            S.TITLE: titles,
            S.SUBTITLE: subtitles,
            S.CATEGORY_STR: ["nyheder", "sport", "nyheder", "underholdning"] + rng.choice(["sport", "nyheder"], n - 4).tolist(),
            S.PUBLISHED_TIME: [T0 - dt.timedelta(hours=int(h)) for h in hours],
        },
        schema_overrides={S.PUBLISHED_TIME: S.DT},
    )


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_articles, tmp_path_factory):
    """A sentencepiece tokenizer trained once per session on ``tiny_articles`` and the template words."""
    from recsys24.prompts.tokenizer import offline_tokenizer

    return offline_tokenizer(tiny_articles, tmp_path_factory.mktemp("spiece"), vocab_size=600)


@pytest.fixture(scope="session")
def make_impressions():
    """Build a prepared-impressions frame: make(histories, inviews, labels=None)."""
    import polars as pl

    from recsys24.data import schema as S

    def make(histories, inviews, labels=None):
        n = len(inviews)
        return pl.DataFrame(
            {
                S.ROW: list(range(n)),
                S.IMPRESSION_ID: list(range(1, n + 1)),
                S.USER_ID: list(range(n)),
                S.IMPRESSION_TIME: [T0] * n,
                S.INVIEW: inviews,
                S.LABELS: labels if labels is not None else [None] * n,
                S.IS_BEYOND_ACCURACY: [False] * n,
                S.HISTORY_IDS: histories,
                S.HISTORY_TIMES: [[T0] * len(h) for h in histories],
            },
            schema=S.PREPARED_IMPRESSIONS_SCHEMA,
        )

    return make


@pytest.fixture(scope="session")
def make_pairs():
    """Build a prepared training-pairs frame: make(histories, positives, negatives)."""
    import polars as pl

    from recsys24.data import schema as S

    def make(histories, positives, negatives):
        n = len(positives)
        return pl.DataFrame(
            {
                S.ROW: list(range(n)),
                S.IMPRESSION_ID: list(range(1, n + 1)),
                S.USER_ID: list(range(n)),
                S.IMPRESSION_TIME: [T0] * n,
                S.POSITIVE: positives,
                S.NEGATIVES: negatives,
                S.HISTORY_IDS: histories,
                S.HISTORY_TIMES: [[T0] * len(h) for h in histories],
            },
            schema=S.PREPARED_PAIRS_SCHEMA,
        )

    return make


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A tiny synthetic dataset, its prepared test split and a randomly initialised CGc-d model folder."""
    from recsys24.config import load_config
    from recsys24.models.loading import build_recommender
    from recsys24.prompts.tokenizer import offline_tokenizer

    root = tmp_path_factory.mktemp("tiny")
    synthesize(root / "data", "tiny", seed=1, splits=("test",))
    prepare(root / "data", "test", root / "prepared" / "test")
    prepared = open_prepared(root / "prepared" / "test")
    tokenizer = offline_tokenizer(prepared.articles(), root / "tok", vocab_size=2000)
    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "tiny" / "cgc_d.yaml")
    build_recommender(config, tokenizer).save_pretrained(root / "model", tokenizer=tokenizer)
    return {"root": root, "prepared": prepared, "model": root / "model"}


@pytest.fixture(scope="session")
def cgh_model(tiny, tmp_path_factory):
    """A random CGh-d model folder for the tiny test split (tokenizer of the session's tiny model)."""
    import torch

    from recsys24.config import load_config
    from recsys24.models.loading import build_recommender
    from recsys24.prompts.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(tiny["model"])
    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "tiny" / "cgh_d.yaml")
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("cgh") / "model"
    build_recommender(config, tokenizer).save_pretrained(folder, tokenizer=tokenizer)
    return folder
