"""Beyond-accuracy metrics against plain per-user computations (ebrec's definitions)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics.pairwise import cosine_distances

from recsys24.baselines import run_baseline
from recsys24.data import schema as S
from recsys24.data.split import open_split
from recsys24.evaluation.beyond import ArticleVectors, beyond_accuracy, title_vectors
from recsys24.evaluation.scores import read_scores


def test_beyond_accuracy_matches_pairwise_reference(demo_data, tmp_path):
    split = open_split(demo_data, "test")
    scores_path = tmp_path / "s.parquet"
    run_baseline("random", split, scores_path, seed=5)
    ids = pl.read_parquet(split.articles, columns=[S.ARTICLE_ID])[S.ARTICLE_ID].sort().to_numpy()
    rng = np.random.default_rng(0)
    m = rng.normal(size=(ids.size, 16)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    vectors = ArticleVectors(ids.astype(np.int64), m)
    got = beyond_accuracy(scores_path, split, vectors, k=5)

    beh = pl.read_parquet(split.behaviors).with_row_index("row").filter(pl.col(S.IS_BEYOND_ACCURACY))
    scores = read_scores(scores_path)[S.SCORES].gather(beh["row"])
    hist = pl.read_parquet(split.history).select(S.USER_ID, S.HIST_ARTICLE)
    hist = dict(zip(hist[S.USER_ID].to_list(), hist[S.HIST_ARTICLE].to_list()))
    div, ser, recs = [], [], []
    for inview, s, user in zip(beh[S.INVIEW].to_list(), scores.to_list(), beh[S.USER_ID].to_list()):
        top = [inview[i] for i in sorted(range(len(s)), key=lambda i: (-s[i], i))[:5]]
        R, H = vectors.of(np.array(top)), vectors.of(np.array(hist[user]))
        div.append(cosine_distances(R, R).sum() / (5 * 4))
        ser.append(cosine_distances(R, H).mean())
        recs += top
    assert got["users"] == beh.height
    assert got["intralist_diversity"] == pytest.approx(np.mean(div), abs=1e-5)
    assert got["serendipity"] == pytest.approx(np.mean(ser), abs=1e-5)
    assert got["coverage_count"] == len(set(recs))
    assert got["coverage_fraction"] == pytest.approx(len(set(recs)) / 250)
    assert sum(got["category"].values()) == pytest.approx(1.0)


def test_title_vectors_unit_length_and_close_for_shared_words(tmp_path):
    path = tmp_path / "articles.parquet"
    pl.DataFrame(
        {S.ARTICLE_ID: [3, 1, 2], S.TITLE: ["Brand i Aarhus", "brand i AARHUS havn", None]},
        schema={S.ARTICLE_ID: pl.Int32, S.TITLE: pl.String},
    ).write_parquet(path)
    v = title_vectors(path, dim=64)
    assert v.ids.tolist() == [1, 2, 3]
    a, none, b = v.of(np.array([1, 2, 3]))
    assert np.linalg.norm(a) == pytest.approx(1.0) and not none.any()
    assert a @ b > 0.8  # three of four words shared
