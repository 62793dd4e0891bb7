"""recsys24 features on a whole split, and recsys24 rank train / predict through the real LightGBM."""

from __future__ import annotations

import json
import shutil

import numpy as np
import polars as pl
import pytest
import yaml

from recsys24.data import schema as S
from recsys24.data.split import open_split
from recsys24.errors import Recsys24Error
from recsys24.evaluation.evaluate import evaluate_scores
from recsys24.evaluation.scores import check_scores
from recsys24.features.build import build_features
from recsys24.features.folder import open_features
from recsys24.inference import pieces as P
from recsys24.ranking.folder import RankerSpec


def _frame(path) -> pl.DataFrame:
    return pl.concat(open_features(path).iter_pieces())


def test_past_only_features_ignore_later_impressions(demo_data, tmp_path):
    """Altering every impression after time T changes no --past-only feature of the rows up to T."""
    root = tmp_path / "data"
    shutil.copytree(demo_data, root, ignore=shutil.ignore_patterns("train", "test", "synth_truth"))
    build_features(root, "validation", tmp_path / "before", past_only=True)
    behaviors = pl.read_parquet(root / "validation" / "behaviors.parquet")
    cut = behaviors[S.IMPRESSION_TIME].sort()[behaviors.height // 2]
    later = (behaviors[S.IMPRESSION_TIME] > cut).to_numpy()
    rng = np.random.default_rng(0)
    idx = np.flatnonzero(later)
    inview = behaviors[S.INVIEW].to_list()
    users = behaviors[S.USER_ID].to_numpy().copy()
    for i, j in zip(idx, rng.permutation(idx)):  # test setup only: shuffle whole lists between later rows
        inview[i] = behaviors[S.INVIEW][int(j)].to_list()
    users[idx] = rng.permutation(users[idx])
    altered = behaviors.with_columns(pl.Series(S.INVIEW, inview, dtype=pl.List(pl.Int32)),
                                     pl.Series(S.USER_ID, users, dtype=pl.UInt32),
                                     pl.Series(S.CLICKED, [v[:1] for v in inview], dtype=pl.List(pl.Int32)))
    altered.write_parquet(root / "validation" / "behaviors.parquet")
    build_features(root, "validation", tmp_path / "after", past_only=True)
    keep = pl.col(S.ROW).is_in(np.flatnonzero(~later).tolist())
    before, after = _frame(tmp_path / "before").filter(keep), _frame(tmp_path / "after").filter(keep)
    assert before.height > 100_000
    assert not {"inview_next_1h", "next_impression_gap_s", "seen_after"} & set(before.columns)
    assert before.equals(after)
    # ... while the full features do see the future
    build_features(root, "validation", tmp_path / "full_after")
    assert "inview_next_1h" in _frame(tmp_path / "full_after").columns


def test_test_split_features_equal_features_without_clicks(demo_data, tmp_path, feats):
    """The features of a split do not change when its click columns are dropped (as on test)."""
    root = tmp_path / "data"
    (root / "test").mkdir(parents=True)
    shutil.copy(demo_data / "articles.parquet", root / "articles.parquet")
    shutil.copy(demo_data / "validation" / "history.parquet", root / "test" / "history.parquet")
    # the other two history files the validation features read, under the other split names
    for ours, theirs in (("train", "train"), ("validation", "test")):
        (root / ours).mkdir()
        shutil.copy(demo_data / theirs / "history.parquet", root / ours / "history.parquet")
    behaviors = pl.read_parquet(demo_data / "validation" / "behaviors.parquet")
    behaviors.with_columns(pl.lit(False).alias(S.IS_BEYOND_ACCURACY)).select(list(S.behaviors_schema("test"))) \
        .write_parquet(root / "test" / "behaviors.parquet")
    build_features(root, "test", tmp_path / "test_features", piece_candidates=60_000)
    assert _frame(tmp_path / "test_features").equals(_frame(feats / "validation"))


def test_killed_features_run_resumes_without_duplicates(demo_data, feats, tmp_path):
    out = tmp_path / "features"

    class Killed(Exception):
        pass

    def kill_after_two(done, total):
        if done and len(P.existing_pieces(out)) >= 2:
            raise Killed

    with pytest.raises(Killed):
        build_features(demo_data, "validation", out, piece_candidates=60_000, progress=kill_after_two)
    (out / "pieces" / ".rows-0000000000-0000000001.parquet.tmp-dead").write_bytes(b"half")
    with pytest.raises(Recsys24Error, match="missing"):
        open_features(out).pieces()
    stats = build_features(demo_data, "validation", out, piece_candidates=60_000)
    assert 0 < stats.written < stats.pieces
    assert not list((out / "pieces").glob(".*tmp*"))
    resumed = _frame(out)
    assert resumed[S.ROW].n_unique() == open_split(demo_data, "validation").num_rows
    assert resumed.equals(_frame(feats / "validation"))
    # another option on the same folder is refused, not mixed in
    with pytest.raises(Recsys24Error, match="past_only"):
        build_features(demo_data, "validation", out, past_only=True, piece_candidates=60_000)


@pytest.fixture(scope="module")
def ranker(feats, tmp_path_factory):
    from recsys24.ranking.train import RankTraining, train_ranker

    out = tmp_path_factory.mktemp("rankers") / "features"
    train_ranker([open_features(feats / "train")], out, open_features(feats / "validation"),
                 how=RankTraining(rounds=40, early_stopping=20, params={"learning_rate": 0.1}))
    return out


def score(ranker, features, out, scores=()):
    """`rank predict` into the scores folder ``out``; the merged scores file's path."""
    from recsys24.ranking.predict import merge_rank_scores, predict_ranker

    predict_ranker(ranker, features, list(scores), out)
    return merge_rank_scores(out, features)


def test_ranker_beats_the_best_heuristic(ranker, feats, demo_data, tmp_path):
    """The features-only ranker, trained on train, ranks validation better than the category heuristic."""
    from recsys24.baselines import run_baseline

    split = open_split(demo_data, "validation")
    scores = score(ranker, open_features(feats / "validation"), tmp_path / "ranker")
    assert check_scores(scores, split) == split.num_rows
    run_baseline("category", split, tmp_path / "category.parquet")
    ours, category = evaluate_scores(scores, split), evaluate_scores(tmp_path / "category.parquet", split)
    assert ours["auc"] > category["auc"] + 0.05
    spec = RankerSpec.read(ranker)
    assert spec.valid_metrics["auc"] == pytest.approx(ours["auc"], abs=1e-4)
    importance = pl.read_csv(ranker / "importance.csv")
    assert set(importance["feature"]) == set(spec.features) and importance["gain"].is_sorted(descending=True)
    assert len((ranker / "metrics.jsonl").read_text().splitlines()) >= spec.best_iteration


def test_rank_predict_reads_only_the_features_the_trees_use(ranker, feats, tmp_path):
    """Scores are the booster's own on every feature, though predict leaves unused ones unread."""
    from recsys24.data.columns import flat_lists
    from recsys24.ranking.data import iter_blocks
    from recsys24.ranking.predict import load_ranker

    model, spec = load_ranker(ranker)
    booster = model.booster
    assert (booster.feature_importance("split") == 0).any()  # some feature is left unread
    fs = open_features(feats / "validation")
    written = flat_lists(pl.read_parquet(score(ranker, fs, tmp_path / "scores"))[S.SCORES])[0]
    every = np.concatenate([block.x for block in iter_blocks(fs, spec.features)])
    np.testing.assert_array_equal(written, booster.predict(every).astype(np.float32))


def test_a_ranker_json_of_the_first_recsys24_still_loads_and_scores(ranker, feats, tmp_path):
    """ranker.json reads back as written, and one in the first ranker's format (no learner, model_file, fit,
    trained_on or split_history; seconds of read and train) scores as before, with no provenance of training."""
    from recsys24.evaluation.scores import read_provenance

    text = (ranker / "ranker.json").read_text()
    assert json.dumps(RankerSpec.read(ranker).to_dict(), indent=2) + "\n" == text
    old = tmp_path / "old"
    shutil.copytree(ranker, old)
    spec = json.loads(text)
    first = {k: spec[k] for k in ("features", "scores", "categorical", "params", "train_features", "valid_features",
                                  "past_only", "sample", "seed", "holdout", "best_iteration", "train_candidates",
                                  "valid_impressions", "valid_metrics")}
    (old / "ranker.json").write_text(json.dumps({**first, "seconds": {"read": 1.0, "train": 2.0}}, indent=2))
    fs = open_features(feats / "validation")
    scored = score(old, fs, tmp_path / "old-scores")
    assert pl.read_parquet(scored).equals(pl.read_parquet(score(ranker, fs, tmp_path / "scores")))
    assert read_provenance(scored).trained_on is None
    (old / "ranker.json").write_text(json.dumps({k: v for k, v in first.items() if k != "features"}))
    with pytest.raises(Recsys24Error, match="not a ranker spec recsys24 can read"):
        score(old, fs, tmp_path / "broken")


def test_rank_predict_refuses_features_made_with_other_history_files(ranker, demo_data, tmp_path):
    """A ranker trained on features with every split's history refuses split-history-only features."""
    from recsys24.ranking.predict import predict_ranker

    own = tmp_path / "own"
    build_features(demo_data, "validation", own, split_history=True)
    with pytest.raises(Recsys24Error, match="split_history"):
        predict_ranker(ranker, open_features(own), [], tmp_path / "scores")
    assert not (tmp_path / "scores").exists()


def test_stacking_and_in_sample_refusal(feats, demo_data, prepared, tmp_path, cli):
    """A model's scores stack on a split it did not train on, and are refused on the split it trained on."""
    from recsys24.baselines import run_baseline

    split = open_split(demo_data, "validation")
    # scores as `recsys24 predict` leaves them: SCORES_DIR/predict.json names the model of a run folder
    run, scored = tmp_path / "run", tmp_path / "scores"
    (run / "model").mkdir(parents=True)
    scored.mkdir()
    run_baseline("freshness", split, scored / "scores.parquet")
    # as an older recsys24 wrote them, with no provenance in the file (tests/test_stale.py: with it)
    pl.read_parquet(scored / "scores.parquet").write_parquet(scored / "scores.parquet")
    (scored / "predict.json").write_text(json.dumps({"model": str(run / "model")}))

    def trained_on(split_name):
        (run / "config.yaml").write_text(yaml.safe_dump({"train": {"train_data": str(prepared[split_name])}}))

    args = ["rank", "train", "--features", feats / "validation", "--scores", f"model={scored / 'scores.parquet'}",
            "--rounds", 5, "--out", tmp_path / "stacked"]
    trained_on("validation")
    result = cli(*args)
    assert result.exit_code == 2 and "trained on the 'validation' split" in result.output
    assert not (tmp_path / "stacked").exists()
    trained_on("train")
    result = cli(*args)
    assert result.exit_code == 0, result.output
    spec = RankerSpec.read(tmp_path / "stacked")
    assert spec.scores == ["model"] and "score_model_rank" in spec.features
    holdout = pl.read_parquet(tmp_path / "stacked" / "holdout_users.parquet")[S.USER_ID]
    assert 0.05 < holdout.len() / pl.read_parquet(split.behaviors)[S.USER_ID].n_unique() < 0.15
    # predict needs the same score names
    folder = tmp_path / "stacked-scores"
    result = cli("rank", "predict", "--model", tmp_path / "stacked", "--features", feats / "validation", "--out",
                 folder)
    assert result.exit_code == 2 and "missing model" in result.output and not folder.exists()
    result = cli("rank", "predict", "--model", tmp_path / "stacked", "--features", feats / "validation",
                 "--scores", f"model={scored / 'scores.parquet'}", "--out", folder)
    assert result.exit_code == 0, result.output
    out = folder / "scores.parquet"
    assert check_scores(out, split) == split.num_rows
    users = evaluate_scores(out, split, users=holdout.to_numpy())
    assert 0 < users["impressions"] < evaluate_scores(out, split)["impressions"]


def test_rank_predict_makes_a_valid_submission(demo_data, ranker, tmp_path, cli):
    from recsys24.submission.validate import validate_submission

    build_features(demo_data, "test", tmp_path / "test")
    zip_path = tmp_path / "predictions.zip"
    result = cli("rank", "predict", "--model", ranker, "--features", tmp_path / "test", "--out",
                 tmp_path / "test-scores", "--make-submission", "--submission", zip_path)
    assert result.exit_code == 0, result.output
    split = open_split(demo_data, "test")
    assert validate_submission(zip_path, split) == split.num_rows


def test_per_round_auc_equals_the_contest_auc():
    """Early stopping watches the same AUC `recsys24 evaluate` reports, ties included."""
    from recsys24.ranking.metrics import group_auc, group_metrics

    rng = np.random.default_rng(0)
    group = rng.integers(2, 30, 2_000)
    scores = np.round(rng.random(group.sum()), 1)  # many ties
    labels = (rng.random(group.sum()) < 0.2).astype(np.int8)
    offsets = np.concatenate([[0], np.cumsum(group)])
    assert group_auc(scores, labels, offsets) == pytest.approx(group_metrics(scores, labels, group)["auc"], abs=1e-12)
