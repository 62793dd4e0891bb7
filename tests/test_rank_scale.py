"""The ranker at the contest's scale: datasets built piece by piece, a memory check before reading, refit,
CatBoost, blends fitted on some users only, and resumable sharded rank predict (real LightGBM and CatBoost)."""

from __future__ import annotations

import json
import os

import numpy as np
import polars as pl
import pytest

from recsys24.data import schema as S
from recsys24.data.split import open_split
from recsys24.errors import Recsys24Error
from recsys24.evaluation.evaluate import evaluate_scores
from recsys24.features.folder import open_features


def test_dataset_built_piece_by_piece_gives_the_in_memory_model(feats):
    """LightGBM fed one features piece at a time grows the trees it grows from one matrix of the same rows.

    The demo train split has more rows (290k) than LightGBM samples for its bins, so the sampling path runs.
    """
    import lightgbm as lgb

    from recsys24.ranking import lgbm
    from recsys24.ranking.data import PieceReader, select

    fs = open_features(feats / "train")
    selection = select(fs)
    assert selection.candidates > 200_000 and len(fs.pieces()) > 2
    params = lgbm.check_params({"num_threads": 2})
    pieces, *_ = lgbm.fit([(selection, PieceReader(fs, fs.names, selection=selection))], None, fs.names, [],
                          params, 8)
    reader = PieceReader(fs, fs.names, selection=selection)
    x = np.concatenate([reader.matrix(i) for i in range(len(fs.pieces()))])
    whole = lgb.train(params, lgb.Dataset(x, selection.label.astype(np.float32), group=selection.group,
                                          feature_name=fs.names, params=params), 8)
    assert pieces.model_to_string() == whole.model_to_string()


def test_refit_trains_on_train_and_the_validation_rows_outside_the_holdout(feats, demo_data, tmp_path):
    from recsys24.ranking.predict import load_ranker
    from recsys24.ranking.train import RankTraining, train_ranker

    out = tmp_path / "refit"
    spec = train_ranker([open_features(feats / "train")], out, open_features(feats / "validation"),
                        how=RankTraining(rounds=30, early_stopping=10, holdout=0.2, refit=True,
                                         params={"learning_rate": 0.2}))
    held = set(pl.read_parquet(out / "holdout_users.parquet")[S.USER_ID].to_list())
    inview = {}
    for split in ("train", "validation"):
        frame = pl.read_parquet(open_split(demo_data, split).behaviors, columns=[S.USER_ID, S.INVIEW])
        inview[split] = frame.filter(~pl.col(S.USER_ID).is_in(list(held)) if split == "validation" else True)
    assert spec.fit.features == [str((feats / s).resolve()) for s in ("train", "validation")]
    assert spec.fit.impressions == inview["train"].height + inview["validation"].height
    assert spec.fit.candidates == sum(int(f[S.INVIEW].list.len().sum()) for f in inview.values())
    assert spec.valid_impressions == inview["validation"].height  # early stopping never saw the held users
    model, read = load_ranker(out)
    assert read == spec  # what train_ranker returns is what ranker.json reads back as
    assert spec.fit.rounds == spec.best_iteration == model.trees
    assert [d.split for d in spec.trained_on] == ["train", "validation"]


def test_scores_of_a_refit_ranker_are_refused_in_sample_wherever_copied(feats, demo_data, tmp_path):
    """The refit model learned from validation: its validation scores, copied out of their folder, can be
    neither stacked on validation features nor blended with weights fitted on validation."""
    import shutil

    from recsys24.ranking.blend import fit_blend
    from recsys24.ranking.data import StackedScores
    from recsys24.ranking.predict import merge_rank_scores, predict_ranker
    from recsys24.ranking.train import RankTraining, train_ranker

    valid = open_features(feats / "validation")
    train_ranker([open_features(feats / "train")], tmp_path / "refit", valid,
                 how=RankTraining(rounds=5, early_stopping=5, holdout=0, refit=True))
    predict_ranker(tmp_path / "refit", valid, [], tmp_path / "scored")
    copy = tmp_path / "elsewhere.parquet"
    shutil.copy(merge_rank_scores(tmp_path / "scored", valid), copy)
    with pytest.raises(Recsys24Error, match="trained on the 'validation' split"):
        StackedScores("ranker", copy).check(valid)
    with pytest.raises(Recsys24Error, match="trained on the 'validation' split"):
        fit_blend({"ranker": copy, "again": copy}, open_split(demo_data, "validation"), tmp_path / "blend")


def test_memory_estimate_refuses_before_reading_and_names_a_sample_that_fits():
    from recsys24.ranking.memory import Footprint, require_fit

    whole = Footprint("lightgbm", 140_000_000, 7_000_000, 52, 4_000_000)
    limit = 16e9
    with pytest.raises(Recsys24Error, match=r"--sample 0\.\d\d fits") as refused:
        require_fit(whole, 1.0, limit)
    sample = float(str(refused.value).split("--sample ")[1].split()[0])
    smaller = Footprint("lightgbm", int(whole.train * sample), int(whole.valid * sample), 52, 4_000_000)
    assert require_fit(smaller, sample, limit) <= limit < whole.bytes()


def test_a_full_split_over_its_memory_is_stored_dense_when_that_fits_and_refused_when_not():
    """The contest's train split (133M + 7M candidates) within 16 GB: LightGBM's bins stored dense, unless the
    user chose the storage; the defaults are kept when they fit."""
    from types import SimpleNamespace

    from recsys24.ranking import lgbm
    from recsys24.ranking.train import RankTraining, check_memory

    rows = SimpleNamespace(train_candidates=133_000_000, valid_candidates=7_000_000, names=["f"] * 52,
                           piece=4_000_000)
    params = lgbm.check_params({})
    need, fitting = check_memory(rows, RankTraining(memory=16e9), params)
    assert fitting == {**params, "is_enable_sparse": False} and need <= 16e9
    need, fitting = check_memory(rows, RankTraining(memory=24e9), params)
    assert fitting == params and 16e9 < need <= 24e9
    chosen = RankTraining(memory=16e9, params={"is_enable_sparse": True})
    with pytest.raises(Recsys24Error, match="--sample 0.9"):
        check_memory(rows, chosen, lgbm.check_params(chosen.params))


def test_by_default_a_run_takes_at_most_two_thirds_of_an_idle_machine(monkeypatch):
    """On an idle 24 GB machine the full train split (sparse: 17.3 GB) is stored dense by default, not run
    within 1 GB of what is left."""
    from types import SimpleNamespace

    import psutil

    from recsys24.ranking import lgbm
    from recsys24.ranking.train import RankTraining, check_memory

    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(total=24e9, available=23.5e9))
    rows = SimpleNamespace(train_candidates=133_000_000, valid_candidates=7_000_000, names=["f"] * 52,
                           piece=4_000_000)
    params = lgbm.check_params({})
    need, fitting = check_memory(rows, RankTraining(), params)
    assert fitting == {**params, "is_enable_sparse": False} and need <= 16e9


def test_dense_bin_storage_learns_the_model_of_sparse_storage(feats):
    from recsys24.ranking import lgbm
    from recsys24.ranking.data import PieceReader, select

    fs = open_features(feats / "train")
    selection = select(fs)
    params = lgbm.check_params({"num_threads": 2})
    models = [lgbm.fit([(selection, PieceReader(fs, fs.names, selection=selection))], None, fs.names, [],
                       {**params, **storage}, 8)[0] for storage in ({}, {"is_enable_sparse": False})]
    x = PieceReader(fs, fs.names, selection=selection).matrix(0)
    assert np.array_equal(models[0].predict(x), models[1].predict(x))


def test_rank_train_over_its_memory_is_one_line_and_writes_nothing(feats, cli, tmp_path):
    out = tmp_path / "ranker"
    result = cli("rank", "train", "--features", feats / "train", "--valid-features", feats / "validation",
                 "--memory", "0.5", "--out", out)
    assert result.exit_code == 2, result.output
    last = result.output.splitlines()[-1]  # after a progress note: the selection reads the behaviors file
    assert last.startswith("error: rank train: lightgbm needs about") and "Traceback" not in result.output
    assert not out.exists()


def test_rank_train_and_predict_log_lines_stay_within_120_characters(feats, cli, tmp_path, monkeypatch):
    """As in the demo's log (folders under demo_run/): a refit's summary and the scoring speed once ran past 120."""
    monkeypatch.setattr("recsys24.progress.QUIET_S", 0.0)  # the progress lines too, however fast the step
    monkeypatch.chdir(tmp_path)
    out = "demo_run/rankers/refit"
    lines = []
    for args in (["rank", "train", "--features", feats / "train", "--valid-features", feats / "validation",
                  "--refit", "--rounds", 10, "--early-stopping", 5, "--out", out],
                 ["rank", "predict", "--model", out, "--features", feats / "validation", "--out",
                  "demo_run/scores/refit"]):
        result = cli(*args)
        assert result.exit_code == 0, result.output
        lines += result.output.splitlines()
    assert any(line.startswith("refit on ") for line in lines) and f"wrote {out}" in lines
    assert [line for line in lines if len(line) > 120] == []


@pytest.mark.parametrize("param, says", [("num_leaves=abc", "num_leaves"), ("nm_leaves=3", "not a LightGBM"),
                                         ("num_leaves=1", "num_leaves")])
def test_bad_lightgbm_parameters_are_refused_before_reading(feats, cli, tmp_path, param, says):
    result = cli("rank", "train", "--features", feats / "train", "--param", param, "--out", tmp_path / "r")
    assert result.exit_code == 2 and result.output.count("\n") == 1 and says in result.output, result.output


def test_catboost_ranker_records_its_rounds_and_scores_what_it_validated(feats, demo_data, cli, tmp_path):
    from recsys24.ranking.data import iter_blocks
    from recsys24.ranking.folder import RankerSpec
    from recsys24.ranking.predict import load_ranker

    out = tmp_path / "catboost"
    result = cli("rank", "train", "--learner", "catboost", "--loss", "PairLogit", "--features",
                 feats / "train", "--valid-features", feats / "validation", "--rounds", 40, "--out", out)
    assert result.exit_code == 0, result.output
    spec = RankerSpec.read(out)
    assert spec.learner == "catboost" and spec.params["loss_function"] == "PairLogit"
    rounds = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    best = max(rounds, key=lambda r: r["val_auc"])
    # CatBoost's per-round QueryAUC is the contest AUC of the scores we compute ourselves
    assert best["step"] == spec.best_iteration
    assert best["val_auc"] == pytest.approx(spec.valid_metrics["auc"], abs=1e-6)
    result = cli("rank", "predict", "--model", out, "--features", feats / "validation", "--out", tmp_path / "s")
    assert result.exit_code == 0, result.output
    split = open_split(demo_data, "validation")
    assert evaluate_scores(tmp_path / "s" / "scores.parquet", split)["auc"] == pytest.approx(
        spec.valid_metrics["auc"], abs=1e-4)
    model, _ = load_ranker(out)
    first = next(iter_blocks(open_features(feats / "validation"), spec.features))
    written = pl.read_parquet(tmp_path / "s" / "pieces").sort(S.ROW)[S.SCORES].explode().to_numpy()
    np.testing.assert_allclose(written[:first.x.shape[0]], model.predict(first.x), rtol=1e-6)


def test_blend_weights_come_from_the_fitting_users_only(demo_data, tmp_path):
    from recsys24.baselines import run_baseline
    from recsys24.ranking.blend import fit_blend
    from recsys24.ranking.data import unit_hash

    split = open_split(demo_data, "validation")
    for name in ("category", "freshness"):
        run_baseline(name, split, tmp_path / f"{name}.parquet")
    behaviors = pl.read_parquet(split.behaviors, columns=[S.USER_ID, S.INVIEW, S.CLICKED])
    held = unit_hash(behaviors[S.USER_ID].to_numpy(), 1) < 0.3
    truth = [[float(a in clicked) for a in inview] for inview, clicked in
             zip(behaviors[S.INVIEW].to_list(), behaviors[S.CLICKED].to_list())]

    def with_truth_where(mask, path):  # freshness, but the true clicks on the rows of ``mask``
        frame = pl.read_parquet(tmp_path / "freshness.parquet")
        scores = [t if m else s for t, s, m in zip(truth, frame[S.SCORES].to_list(), mask)]
        frame.with_columns(pl.Series(S.SCORES, scores, pl.List(pl.Float32))).write_parquet(path)
        return path

    def weights(freshness):
        blend = fit_blend({"category": tmp_path / "category.parquet", "freshness": freshness}, split,
                          tmp_path / "blend", holdout=0.3)
        return blend.weights

    plain = weights(tmp_path / "freshness.parquet")
    assert weights(with_truth_where(held, tmp_path / "held.parquet")) == plain  # held-out rows never fitted
    assert weights(with_truth_where(~held, tmp_path / "fit.parquet")) != plain  # fitting rows are
    users = set(pl.read_parquet(tmp_path / "blend" / "holdout_users.parquet")[S.USER_ID].to_list())
    assert users == set(behaviors[S.USER_ID].filter(pl.Series(held)).to_list())


@pytest.fixture(scope="module")
def small_ranker(feats, tmp_path_factory):
    from recsys24.ranking.train import RankTraining, train_ranker

    out = tmp_path_factory.mktemp("ranker") / "r"
    train_ranker([open_features(feats / "train")], out, how=RankTraining(rounds=5, holdout=0.1))
    return out


def test_killed_sharded_rank_predict_resumes_with_every_row_exactly_once(small_ranker, feats, tmp_path):
    from recsys24.ranking.predict import merge_rank_scores, predict_ranker

    fs = open_features(feats / "validation")
    assert len(fs.pieces()) >= 4
    out = tmp_path / "scores"

    def killed(done, total):
        raise KeyboardInterrupt  # killed right after the first piece was written

    with pytest.raises(KeyboardInterrupt):
        predict_ranker(small_ranker, fs, [], out, 0, 2, progress=killed)
    first = sorted((out / "pieces").glob("rows-*.parquet"))
    assert len(first) == 1
    written = os.stat(first[0]).st_mtime_ns
    with pytest.raises(Recsys24Error, match="have no scores"):
        merge_rank_scores(out, fs)
    stats = predict_ranker(small_ranker, fs, [], out, 0, 2)
    assert stats.skipped_pieces == 1 and os.stat(first[0]).st_mtime_ns == written
    predict_ranker(small_ranker, fs, [], out, 1, 2)
    sharded = merge_rank_scores(out, fs)
    predict_ranker(small_ranker, fs, [], tmp_path / "whole")
    whole = merge_rank_scores(tmp_path / "whole", fs)
    assert pl.read_parquet(sharded).equals(pl.read_parquet(whole))
    assert pl.read_parquet(sharded).height == fs.plan.num_rows


def test_rank_predict_refuses_a_folder_of_other_inputs_and_a_damaged_model(small_ranker, feats, tmp_path, cli):
    import shutil

    out = tmp_path / "scores"
    assert cli("rank", "predict", "--model", small_ranker, "--features", feats / "validation",
               "--out", out).exit_code == 0
    other = tmp_path / "other"
    shutil.copytree(small_ranker, other)
    model = other / "model.txt"
    model.write_text(model.read_text()[: model.stat().st_size // 2])  # truncated: LightGBM would abort
    for folder in (out, tmp_path / "fresh"):
        result = cli("rank", "predict", "--model", other, "--features", feats / "validation", "--out", folder)
        assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
        assert "truncated or replaced" in result.output
    shutil.copyfile(small_ranker / "model.txt", model)
    (other / "ranker.json").write_text((small_ranker / "ranker.json").read_text().replace('"seed": 0', '"seed": 1'))
    result = cli("rank", "predict", "--model", other, "--features", feats / "validation", "--out", out)
    assert result.exit_code == 2 and "other inputs" in result.output, result.output


def test_stacked_scores_with_nan_are_refused_naming_the_row(feats, demo_data, cli, tmp_path):
    from recsys24.baselines import run_baseline

    path = tmp_path / "freshness.parquet"
    run_baseline("freshness", open_split(demo_data, "validation"), path)
    frame = pl.read_parquet(path)
    scores = frame[S.SCORES].to_list()
    scores[7][0] = float("nan")
    frame.with_columns(pl.Series(S.SCORES, scores, pl.List(pl.Float32))).write_parquet(path)
    result = cli("rank", "train", "--features", feats / "validation", "--scores", f"fresh={path}", "--rounds", 2,
                 "--out", tmp_path / "r")
    assert result.exit_code == 2 and "row 7: a score is NaN" in result.output.splitlines()[-1], result.output
    assert not (tmp_path / "r").exists()
