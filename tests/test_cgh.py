"""CGh (history in the encoder, candidate in the decoder): the fast path equals the
reference path, histories and articles are encoded once, time features reach the
decoder, and a model folder round-trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from recsys24.config import config_from_dict
from recsys24.models.loading import build_recommender, load_recommender


def build(tokenizer, articles, template="d", seed=0):
    torch.manual_seed(seed)
    cfg = config_from_dict({"model": {"architecture": "cgh"}, "prompt": {"template": template}})
    model = build_recommender(cfg, tokenizer).eval()
    return model, model.make_collator(articles, tokenizer, seed=seed)


@pytest.fixture(scope="module")
def impressions(make_impressions):
    # two impressions share a history (same user twice); one user has none; 1, 5 and 7 candidates
    shared = [1000, 1001, 1002]
    return make_impressions(
        [shared, [1003, 1004], shared, []],
        [[1010, 1011, 1012, 1013, 1014], list(range(1030, 1037)), [1040], [1041, 1042, 1010]],
        [[0, 1, 0, 0, 0], [0, 0, 1, 1, 0, 0, 0], [1], [0, 0, 1]],
    )


@pytest.mark.parametrize("template", ["a", "d"])
def test_fast_path_matches_the_reference_path(tiny_tokenizer, tiny_articles, impressions, template):
    model, collate = build(tiny_tokenizer, tiny_articles, template)
    batch = collate(impressions)
    with torch.no_grad():
        reference = model.score(batch)
        model.enable_fast_scoring()
        fast = model.score(batch)
        again = model.score(batch)  # second call: article vectors come from the cache
    assert fast.shape == (16,) and torch.isfinite(fast).all()
    torch.testing.assert_close(fast, reference, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(again, reference, atol=1e-4, rtol=1e-4)
    assert reference.std() > 1e-3  # the comparison is not between constants


def test_a_shared_history_is_encoded_once(tiny_tokenizer, tiny_articles, impressions):
    _, collate = build(tiny_tokenizer, tiny_articles)
    batch = collate(impressions)
    assert batch.input_ids.shape[0] == 3  # four impressions, three distinct histories
    assert batch.history_row.tolist()[:5] == batch.history_row.tolist()[12:13] * 5
    assert len(set(batch.history_row.tolist())) == 3
    # 1010 appears twice among 16 candidates: 15 distinct articles are encoded
    assert batch.article_input_ids.shape[0] == 15 == len(batch.article_table_rows)


def test_scores_do_not_depend_on_batch_company(tiny_tokenizer, tiny_articles, impressions):
    model, collate = build(tiny_tokenizer, tiny_articles)
    model.enable_fast_scoring()
    with torch.no_grad():
        together = model.score(collate(impressions))
        alone = torch.cat([model.score(collate(impressions[i : i + 1])) for i in range(impressions.height)])
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=1e-4)


def test_template_d_gives_the_decoder_the_candidate_age(tiny_tokenizer, tiny_articles, impressions):
    import datetime as dt

    import polars as pl

    from recsys24.data import schema as S

    model, collate = build(tiny_tokenizer, tiny_articles)
    later = impressions.with_columns(pl.col(S.IMPRESSION_TIME) + dt.timedelta(days=3))
    a, b = collate(impressions), collate(later)
    assert (a.age != b.age).all() and torch.equal(a.gap, b.gap)
    with torch.no_grad():
        assert not torch.allclose(model.score(a), model.score(b))
    no_time, collate_a = build(tiny_tokenizer, tiny_articles, template="a")
    with torch.no_grad():
        torch.testing.assert_close(no_time.score(collate_a(impressions)), no_time.score(collate_a(later)))


def test_training_steps_reduce_the_loss_and_the_folder_round_trips(tiny_tokenizer, tiny_articles, make_pairs, tmp_path):
    model, collate = build(tiny_tokenizer, tiny_articles)
    pairs = make_pairs([[1000, 1001], [1003], []], [1010, 1011, 1012], [[1020, 1021], [1022, 1023], [1024, 1025]])
    batch = collate(pairs)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss = model.loss(batch)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.loss(batch).item() < 0.7 * first
    model.eval()
    model.save_pretrained(tmp_path / "m", tokenizer=tiny_tokenizer)
    loaded, _ = load_recommender(tmp_path / "m")
    loaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.score(batch), model.score(batch))


def test_predict_uses_the_fast_path_and_agrees_with_the_reference(tiny, cgh_model, tmp_path, monkeypatch):
    import polars as pl

    from recsys24.inference.predict import merge_scores, predict_shard
    from recsys24.models.prompt import cached_decoder

    calls = []
    original = cached_decoder.cached_scores
    monkeypatch.setattr(cached_decoder, "cached_scores", lambda *a: calls.append(1) or original(*a))
    fast = predict_shard(cgh_model, tiny["prepared"], tmp_path / "fast", piece_rows=400)
    assert calls and fast.pairs > 0
    n = len(calls)
    predict_shard(cgh_model, tiny["prepared"], tmp_path / "ref", piece_rows=400, batch_size=128, fast=False)
    assert len(calls) == n  # the reference run never touched the cached decoder
    a = pl.read_parquet(merge_scores(tiny["prepared"], tmp_path / "fast"))
    b = pl.read_parquet(merge_scores(tiny["prepared"], tmp_path / "ref"))
    assert a["impression_id"].to_list() == b["impression_id"].to_list()
    x, y = a["scores"].explode().to_numpy(), b["scores"].explode().to_numpy()
    assert abs(x - y).max() < 1e-4 and x.std() > 1e-3


def test_cli_predicts_a_valid_submission_with_cgh(tiny, cgh_model, tmp_path, cli):
    zip_path = tmp_path / "sub.zip"
    result = cli("predict", "--model", cgh_model, "--prepared", tiny["prepared"].path, "--split", "test",
                 "--out", tmp_path / "scores", "--make-submission", "--submission", zip_path)
    assert result.exit_code == 0, result.output
    assert "validated" in result.output and zip_path.is_file()


def test_scoring_twice_gives_byte_identical_scores_and_predictions(tiny, cgh_model, tmp_path):
    """Two processes (each with its own hash seed and memory layout), one model, one prepared split,
    the same thread count: the same scores.parquet and predictions.txt, byte for byte."""
    import os
    import subprocess
    import sys
    import zipfile

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    env.update(PYTHONPATH=str(root), OMP_NUM_THREADS="2")
    outputs = []
    for run in ("first", "second"):
        cmd = [sys.executable, "-m", "recsys24", "predict", "--model", str(cgh_model), "--prepared",
               str(tiny["prepared"].path), "--split", "test", "--out", str(tmp_path / run), "--device", "cpu",
               "--piece-rows", "600", "--make-submission", "--submission", str(tmp_path / f"{run}.zip")]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        predictions = zipfile.ZipFile(tmp_path / f"{run}.zip").read("predictions.txt")
        outputs.append(((tmp_path / run / "scores.parquet").read_bytes(), predictions))
    assert outputs[0][0] == outputs[1][0]
    assert outputs[0][1] == outputs[1][1]
