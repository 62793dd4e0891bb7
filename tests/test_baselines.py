"""Heuristic baselines write valid scores files and beat random where the data says so."""

from __future__ import annotations

import json

import pytest

from recsys24.baselines import BASELINES, run_baseline
from recsys24.data.split import open_split
from recsys24.evaluation.evaluate import evaluate_scores
from recsys24.evaluation.scores import check_scores, read_scores


@pytest.fixture(scope="module")
def validation_scores(demo_data, tmp_path_factory):
    """Scores files of every baseline on the demo validation split."""
    split = open_split(demo_data, "validation")
    d = tmp_path_factory.mktemp("baselines")
    paths = {}
    for name in BASELINES:
        paths[name] = d / f"{name}.parquet"
        run_baseline(name, split, paths[name], seed=3, batch_rows=9_000)
    return split, paths


def test_every_baseline_writes_a_valid_scores_file(validation_scores):
    split, paths = validation_scores
    for name, path in paths.items():
        assert check_scores(path, split) == split.num_rows, name


def test_random_is_seeded(validation_scores, tmp_path):
    split, paths = validation_scores
    again, other = tmp_path / "again.parquet", tmp_path / "other.parquet"
    run_baseline("random", split, again, seed=3, batch_rows=9_000)
    run_baseline("random", split, other, seed=4, batch_rows=9_000)
    assert read_scores(again).equals(read_scores(paths["random"]))
    assert not read_scores(other).equals(read_scores(paths["random"]))


def test_heuristics_beat_random_in_auc(validation_scores):
    split, paths = validation_scores
    auc = {name: evaluate_scores(path, split)["auc"] for name, path in paths.items()}
    assert abs(auc["random"] - 0.5) < 0.02
    for name in ("freshness", "popular", "category", "inview-count"):
        assert auc[name] > auc["random"] + 0.05, (name, auc)


def test_cli_baseline_evaluate_and_submit(demo_data, tmp_path, cli):
    scores, zip_path = tmp_path / "fresh.parquet", tmp_path / "sub.zip"
    assert cli("baseline", "freshness", "--data", demo_data, "--split", "test", "--out", scores).exit_code == 0
    res = cli("evaluate", "--scores", scores, "--data", demo_data, "--split", "test",
              "--labels", demo_data / "synth_truth" / "test.parquet", "--json")
    metrics = json.loads(res.output)
    assert set(metrics) == {"auc", "mrr", "ndcg@5", "ndcg@10", "hr@1", "hr@5", "impressions"}
    assert metrics["impressions"] == 25_000 - 370 and metrics["auc"] > 0.6  # beyond-accuracy rows left out
    assert cli("submission", "write", "--scores", scores, "--data", demo_data, "--out", zip_path).exit_code == 0
    assert cli("submission", "validate", zip_path, "--data", demo_data).exit_code == 0
    # the same zip is wrong for the validation split: exit 2
    res = cli("submission", "validate", zip_path, "--data", demo_data, "--split", "validation")
    assert res.exit_code == 2 and "line 1: impression_id" in res.output
