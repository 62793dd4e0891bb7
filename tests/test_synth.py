"""The synthetic EB-NeRD looks like the real one to every reader of the official files."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from recsys24.data import schema as S
from recsys24.data.synth import BA_CANDIDATES, HISTORY_DAYS, PRESETS, TRUTH_DIR, WINDOWS, synthesize
from recsys24.data.synth_clicks import CLICK_MODELS
from recsys24.errors import Recsys24Error


def _schema(path):
    return dict(pl.read_parquet_schema(path))


def test_every_file_has_exactly_the_official_columns_and_dtypes(demo_data):
    assert _schema(demo_data / "articles.parquet") == S.ARTICLES_SCHEMA
    for split in S.SPLITS:
        assert _schema(demo_data / split / "behaviors.parquet") == S.behaviors_schema(split)
        assert _schema(demo_data / split / "history.parquet") == S.HISTORY_SCHEMA
    assert S.CLICKED not in _schema(demo_data / "test" / "behaviors.parquet")


def test_shapes_follow_the_real_data(demo_data):
    b = pl.read_parquet(demo_data / "train" / "behaviors.parquet")
    n = b[S.INVIEW].list.len()
    assert b.height == PRESETS["demo"].impressions["train"]
    assert n.min() >= 5 and n.max() <= 100 and 10.5 < n.mean() < 12.7
    assert b[S.IMPRESSION_ID].n_unique() == b.height
    assert b[S.READ_TIME].max() <= 1800
    assert b[S.ARTICLE_ID].null_count() > 0 and b[S.GENDER].null_count() > 0
    # clicked articles come from the in-view list
    assert (b.select(pl.col(S.CLICKED).list.set_difference(pl.col(S.INVIEW)).list.len()).to_series() == 0).all()
    assert b[S.IMPRESSION_TIME].min() >= WINDOWS["train"]
    assert b[S.IMPRESSION_TIME].max() < WINDOWS["train"] + timedelta(days=7)
    a = pl.read_parquet(demo_data / "articles.parquet")
    assert a[S.CATEGORY].n_unique() == 32
    assert a[S.TOTAL_PAGEVIEWS].null_count() > 0


def test_history_covers_the_21_days_before_the_window(demo_data):
    h = pl.read_parquet(demo_data / "validation" / "history.parquet").explode(S.HIST_TIME)
    start = WINDOWS["validation"]
    assert h[S.HIST_TIME].max() < start
    assert h[S.HIST_TIME].min() >= start - timedelta(days=HISTORY_DAYS)
    users = pl.read_parquet(demo_data / "validation" / "behaviors.parquet")[S.USER_ID].unique()
    assert users.is_in(h[S.USER_ID].unique().implode()).all()


def test_test_split_has_a_beyond_accuracy_block(demo_data):
    t = pl.read_parquet(demo_data / "test" / "behaviors.parquet")
    ba = t.filter(pl.col(S.IS_BEYOND_ACCURACY))
    assert ba.height == PRESETS["demo"].beyond_accuracy
    assert (ba[S.IMPRESSION_ID] == 0).all() and (ba[S.SESSION_ID] == 0).all()
    assert ba[S.INVIEW].list.len().unique().to_list() == [BA_CANDIDATES]
    assert ba[S.INVIEW].n_unique() == 1
    assert ba[S.USER_ID].n_unique() == ba.height
    assert (t.filter(~pl.col(S.IS_BEYOND_ACCURACY))[S.IMPRESSION_ID] > 0).all()


def test_truth_side_file_is_aligned_and_carries_learnable_signal(demo_data):
    from sklearn.metrics import roc_auc_score

    truth = pl.read_parquet(demo_data / TRUTH_DIR / "validation.parquet")
    b = pl.read_parquet(demo_data / "validation" / "behaviors.parquet")
    assert truth[S.IMPRESSION_ID].equals(b[S.IMPRESSION_ID], check_names=False)
    assert (truth["propensities"].list.len() == b[S.INVIEW].list.len()).all()
    sums = truth["propensities"].list.sum().to_numpy()
    np.testing.assert_allclose(sums, 1.0, atol=1e-4)
    sample = truth.head(2000)
    aucs = [roc_auc_score(l, p) for l, p in zip(sample[S.LABELS].to_list(), sample["propensities"].to_list())
            if 0 < sum(l) < len(l)]
    assert np.mean(aucs) > 0.75  # the oracle ranks clicks far above chance


def test_seed_makes_it_reproducible(tmp_path):
    synthesize(tmp_path / "a", "demo", seed=3, splits=("test",))
    synthesize(tmp_path / "b", "demo", seed=3, splits=("test",))
    synthesize(tmp_path / "c", "demo", seed=4, splits=("test",))
    a, b, c = (pl.read_parquet(tmp_path / x / "test" / "behaviors.parquet") for x in "abc")
    assert a.equals(b)
    assert not a.equals(c)
    assert not (tmp_path / "a" / "train").exists()


def test_cli_rejects_an_unknown_split(cli, tmp_path):
    result = cli("synth", tmp_path / "x", "--splits", "tran")
    assert result.exit_code != 0
    assert "tran" in result.output


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    """Every click model on the tiny preset, with EB-NeRD-like overlapping history files."""
    root = tmp_path_factory.mktemp("panel")
    for name in CLICK_MODELS:
        synthesize(root / name, "tiny", seed=5, click_model_name=name, history="overlapping")
    return root


@pytest.mark.parametrize("name", list(CLICK_MODELS))
def test_each_click_models_truth_file_agrees_with_its_clicks(panel, name, tmp_path):
    """The truth file's clicks are the behaviors' clicks, and its probabilities rank them better than any
    heuristic does: the oracle's AUC is the highest of every scorer on the split."""
    from recsys24.baselines import BASELINES, run_baseline
    from recsys24.data.prepare import click_labels
    from recsys24.data.split import open_split
    from recsys24.evaluation.evaluate import evaluate_scores
    from recsys24.evaluation.metrics import accuracy

    data = panel / name
    assert json.loads((data / "synth.json").read_text())["click_model"] == name
    split = open_split(data, "validation")
    b = pl.read_parquet(split.behaviors)
    truth = pl.read_parquet(data / TRUTH_DIR / "validation.parquet")
    labels = click_labels(b[S.INVIEW], b[S.CLICKED])
    assert truth[S.LABELS].cast(pl.List(pl.Int8)).equals(labels.cast(pl.List(pl.Int8)), check_names=False)
    np.testing.assert_allclose(truth["propensities"].list.sum().to_numpy(), 1.0, atol=1e-4)
    oracle = accuracy(truth["propensities"], labels)["auc"]
    for baseline in BASELINES:
        run_baseline(baseline, split, tmp_path / f"{baseline}.parquet")
        auc = evaluate_scores(tmp_path / f"{baseline}.parquet", split)["auc"]
        assert oracle > auc + 0.03, (baseline, auc, oracle)


def test_overlapping_history_files_are_cut_from_one_timeline(panel):
    """As EB-NeRD's: each file the 21 days before its window; the weeks two files share hold the same
    reads; the train window's clicks are reads of the validation file."""
    data = panel / "fatigue"

    def reads(split):
        h = pl.read_parquet(data / split / "history.parquet").explode([S.HIST_TIME, S.HIST_ARTICLE])
        return h.select(S.USER_ID, S.HIST_TIME, S.HIST_ARTICLE)

    files = {split: reads(split) for split in S.SPLITS}
    for split, h in files.items():
        assert h[S.HIST_TIME].min() >= WINDOWS[split] - timedelta(days=HISTORY_DAYS)
        assert h[S.HIST_TIME].max() < WINDOWS[split]
    train, valid = files["train"], files["validation"]
    both = set(train[S.USER_ID]) & set(valid[S.USER_ID])
    shared = (WINDOWS["validation"] - timedelta(days=HISTORY_DAYS), WINDOWS["train"])

    def weeks(h):
        return h.filter(pl.col(S.HIST_TIME).is_between(*shared, closed="left")
                        & pl.col(S.USER_ID).is_in(list(both))).sort(pl.all())

    assert weeks(train).height > 1000 and weeks(train).equals(weeks(valid))
    clicks = pl.read_parquet(data / "train" / "behaviors.parquet").explode(S.CLICKED)
    clicks = clicks.filter(pl.col(S.USER_ID).is_in(list(set(valid[S.USER_ID]))))
    found = clicks.join(valid, left_on=[S.USER_ID, S.CLICKED], right_on=[S.USER_ID, S.HIST_ARTICLE], how="semi")
    assert found.height == clicks.height
    # every week looks alike: no file is much longer than another
    lengths = [pl.read_parquet(data / s / "history.parquet")[S.HIST_ARTICLE].list.len().mean() for s in S.SPLITS]
    assert max(lengths) < 1.15 * min(lengths)


def test_overlapping_history_needs_every_split(tmp_path):
    with pytest.raises(Recsys24Error, match="every split"):
        synthesize(tmp_path, "tiny", splits=("test",), history="overlapping")
