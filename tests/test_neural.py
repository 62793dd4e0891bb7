"""The neural baselines (NRMS, NAML, LSTUR, NPA, DKN) on tiny synthetic data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from recsys24.config import load_config
from recsys24.data import schema as S
from recsys24.data.prepare import prepare
from recsys24.data.prepared import open_prepared
from recsys24.data.synth import synthesize
from recsys24.models.loading import build_recommender, load_recommender
from recsys24.models.registry import architecture
from recsys24.prompts.tokenizer import offline_tokenizer

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("nrms", "naml", "lstur", "npa", "dkn")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Tiny synthetic train + validation, prepared (T=20, K=4), and an offline tokenizer."""
    root = tmp_path_factory.mktemp("neural")
    synthesize(root / "data", "tiny", seed=3, splits=("train", "validation"))
    for split in ("train", "validation"):
        prepare(root / "data", split, root / "prepared" / split)
    train = open_prepared(root / "prepared" / "train")
    valid = open_prepared(root / "prepared" / "validation")
    articles = pl.concat([train.articles(), valid.articles()]).unique(S.ARTICLE_ID, keep="first")
    tokenizer = offline_tokenizer(articles, root / "tok", vocab_size=2000)
    pairs = pl.concat(list(train.iter_pairs())).head(16)
    impressions = valid.impressions().head(6)
    # one user without any history, to check an empty history still scores
    impressions = impressions.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit([], dtype=pl.List(pl.Int32)))
        .otherwise(pl.col(S.HISTORY_IDS)).alias(S.HISTORY_IDS))
    return {"root": root, "articles": articles, "tokenizer": tokenizer, "pairs": pairs, "impressions": impressions}


def make(name: str, tokenizer, seed: int = 0):
    """A tiny model with trainable random word vectors (the co-occurrence ones are tested on their own)."""
    torch.manual_seed(seed)
    config = load_config(ROOT / "configs" / "tiny" / f"{name}.yaml",
                         ["model.neural.word_init=random", "model.neural.freeze_words=false"])
    return build_recommender(config, tokenizer)


@pytest.mark.parametrize("name", MODELS)
def test_forward_gives_one_finite_score_per_candidate(name, data):
    model = make(name, data["tokenizer"]).eval()
    collate = model.make_collator(data["articles"], data["tokenizer"])
    pairs = collate(data["pairs"])
    out = model(pairs)
    assert out.scores.shape == (16 * 5,)  # 1 clicked + 4 negatives per training pair
    assert pairs.news.title[pairs.history_news].shape == (16, 20, model.size.title_length)
    assert pairs.news.title.shape[0] == len(set(pairs.candidate_news.tolist()) | set(pairs.history_news.flatten().tolist()))
    assert torch.isfinite(out.scores).all() and torch.isfinite(out.nll)
    assert pairs.labels.reshape(16, 5).sum(1).eq(1).all()
    frame = data["impressions"]
    scores = model.score(collate(frame))
    assert scores.shape == (int(frame[S.INVIEW].list.len().sum()),)
    assert torch.isfinite(scores).all()
    assert scores.std() > 0  # not a constant


@pytest.mark.parametrize("name", MODELS)
def test_a_few_steps_reduce_the_training_loss(name, data):
    model = make(name, data["tokenizer"])
    batch = model.make_collator(data["articles"], data["tokenizer"])(data["pairs"])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def eval_loss():
        model.eval()
        with torch.no_grad():
            value = float(model.loss(batch))
        model.train()
        return value

    before = eval_loss()
    for _ in range(15):
        optimizer.zero_grad()
        model.loss(batch).backward()
        optimizer.step()
    assert eval_loss() < 0.8 * before


@pytest.mark.parametrize("name", MODELS)
def test_saved_model_folder_loads_to_identical_scores(name, data, tmp_path):
    model = make(name, data["tokenizer"], seed=1).eval()
    model.save_pretrained(tmp_path / "model", tokenizer=data["tokenizer"])
    for file in ("model.safetensors", "neural.json", "recsys24_model.json", "tokenizer_config.json"):
        assert (tmp_path / "model" / file).is_file(), file
    loaded, tokenizer = load_recommender(tmp_path / "model")
    assert type(loaded) is type(model) and loaded.size == model.size
    batch = model.make_collator(data["articles"], data["tokenizer"])(data["impressions"])
    again = loaded.eval().make_collator(data["articles"], tokenizer)(data["impressions"])
    torch.testing.assert_close(loaded.score(again), model.score(batch), rtol=0, atol=0)


def test_dkn_aligns_entities_with_the_title_tokens_they_name(tiny_tokenizer):
    from recsys24.config import NeuralSize
    from recsys24.model_inputs.news_collator import build_news_features

    articles = pl.DataFrame({
        S.ARTICLE_ID: [1, 2],
        S.TITLE: ["Brøndby vinder derbyet", "Regeringen vil sænke skatten"],
        "ner_clusters": [["Brøndby"], ["Mette Frederiksen"]],
    }, schema_overrides={S.ARTICLE_ID: pl.Int32})
    f = build_news_features(articles, tiny_tokenizer, NeuralSize(title_length=8), ("title", "entities"))
    first_word = len(tiny_tokenizer.encode("Brøndby", add_special_tokens=False))
    assert (f.entities[0, :first_word] > 0).all() and (f.entities[0, first_word:] == 0).all()
    assert (f.entities[1] == 0).all()  # its entity is not in its title
    assert (f.entities[2] == 0).all()  # the empty history row
    assert f.index(np.array([2, -1, 1])).tolist() == [1, 2, 0]


def test_cooccurrence_vectors_put_words_of_one_category_together(data):
    from recsys24.data.synth_articles import CATEGORIES
    from recsys24.models.neural.word_vectors import cooccurrence_vectors

    tok = data["tokenizer"]
    vectors = cooccurrence_vectors(data["articles"], tok, len(tok), 32)
    assert vectors.shape == (len(tok), 32) and torch.isfinite(vectors).all()
    assert (vectors[tok.pad_token_id] == 0).all()

    def unit(word):
        ids = tok.encode(word, add_special_tokens=False)
        return torch.nn.functional.normalize(vectors[ids].mean(0), dim=0)

    sport, crime = CATEGORIES[1][2], CATEGORIES[3][2]  # (fodbold, landsholdet, ...), (drab, anholdt, ...)
    same = [float(unit(a) @ unit(b)) for a in sport for b in sport if a < b]
    other = [float(unit(a) @ unit(b)) for a in sport for b in crime]
    assert np.mean(same) > np.mean(other) + 0.1


def test_every_config_loads_with_lambda_zero_and_its_architecture():
    for name in MODELS:
        for path in (ROOT / "configs" / "tiny" / f"{name}.yaml", ROOT / "configs" / f"{name}.yaml"):
            config = load_config(path)
            assert config.model.architecture == name and architecture(name).name == name
            assert config.loss.lam == 0.0, path


def test_trained_by_recsys24_train_and_scored_by_predict(data, tmp_path):
    from recsys24.data.split import open_split
    from recsys24.evaluation.evaluate import evaluate_scores
    from recsys24.inference.predict import merge_scores, predict_shard

    root, run = data["root"], tmp_path / "run"
    env = dict(os.environ, DS_ACCELERATOR="cpu", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    overrides = {"train_data": root / "prepared" / "train", "valid_data": root / "prepared" / "validation",
                 "steps": 40, "eval_every": 40, "save_every": 40, "log_every": 10, "eval_impressions": 200}
    cmd = [sys.executable, "-m", "recsys24", "train", "--config", str(ROOT / "configs" / "tiny" / "lstur.yaml"),
           "--output", str(run), *(f"train.{k}={v}" for k, v in overrides.items())]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [m for m in log if "val_loss" in m]
    assert [m["step"] for m in evals] == [0, 40]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]

    valid = open_prepared(root / "prepared" / "validation")
    predict_shard(run, valid, tmp_path / "scores", piece_rows=500, batch_size=200)
    scores = merge_scores(valid, tmp_path / "scores")
    frame = pl.read_parquet(scores)
    assert frame.schema == pl.Schema(S.SCORES_SCHEMA)
    metrics = evaluate_scores(scores, open_split(root / "data", "validation"))  # checks every row's shape
    assert metrics["impressions"] == valid.num_impressions
    assert 0.0 <= metrics["auc"] <= 1.0


def test_compare_writes_one_table_of_models_and_heuristics(data, tmp_path):
    from recsys24.experiments import HEURISTICS, compare

    root = data["root"]
    overrides = ("train.steps=6", "train.eval_every=6", "train.save_every=6", "train.eval_impressions=50")
    results = compare(root / "data", root / "prepared", tmp_path / "cmp", models=("npa",), overrides=overrides,
                      log=lambda line: None)
    assert set(results) == {"NPA", *HEURISTICS}
    table = (tmp_path / "cmp" / "table.md").read_text().splitlines()
    assert table[2] == "| model | AUC | MRR | nDCG@5 | nDCG@10 |"
    rows = [line.split(" | ")[0].lstrip("| ") for line in table[4:]]
    assert sorted(rows) == sorted(results)
    aucs = [float(line.split(" | ")[1]) for line in table[4:]]
    assert aucs == sorted(aucs, reverse=True)
    assert json.loads((tmp_path / "cmp" / "results.json").read_text())["metrics"]["NPA"] == results["NPA"]
    # a rerun reuses the finished run and scores
    mtime = (tmp_path / "cmp" / "runs" / "npa" / "summary.json").stat().st_mtime
    compare(root / "data", root / "prepared", tmp_path / "cmp", models=("npa",), overrides=overrides,
            log=lambda line: None)
    assert (tmp_path / "cmp" / "runs" / "npa" / "summary.json").stat().st_mtime == mtime


def test_cooccurrence_word_vectors_are_fitted_by_training_and_passed_in(data):
    """Building a model reads no data: the word vectors come in through ``fit_for`` (the training stage)."""
    from recsys24.errors import Recsys24Error
    from recsys24.training.fitting import fit_for

    root, tok = data["root"], data["tokenizer"]
    config = load_config(ROOT / "configs" / "tiny" / "nrms.yaml", [f"train.train_data={root / 'prepared' / 'train'}"])
    fit = fit_for(config, tok)
    assert fit.encoding is None and fit.word_vectors.shape == (len(tok), config.model.neural.word_dim)
    assert torch.equal(build_recommender(config, tok, fit).words.weight.detach(), fit.word_vectors)
    with pytest.raises(Recsys24Error, match="no word vectors given"):
        build_recommender(config, tok)
