"""The synthetic EB-NeRD looks like the real one to every reader of the official files."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from recsys24.data import schema as S
from recsys24.data.synth import BA_CANDIDATES, HISTORY_DAYS, PRESETS, TRUTH_DIR, WINDOWS, synthesize


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
