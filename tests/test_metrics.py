"""Contest metrics against plain per-impression reference computations."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from recsys24.data.columns import flat_lists
from recsys24.errors import Recsys24Error
from recsys24.evaluation.metrics import accuracy, per_impression
from recsys24.evaluation.ranking import descending_order, descending_ranks


def _reference(scores: list[np.ndarray], labels: list[np.ndarray]) -> dict[str, float]:
    """The metrics one impression at a time, written the obvious way."""
    rows = []
    for s, y in zip(scores, labels):
        if y.min() == y.max():
            continue
        order = sorted(range(len(s)), key=lambda i: (-s[i], i))
        ranked = y[order]
        rank = np.arange(1, len(s) + 1)
        row = {"auc": roc_auc_score(y, s), "mrr": float((ranked / rank).sum() / y.sum())}
        for k in (5, 10):
            kk = min(k, len(s))
            dcg = ((2.0 ** ranked[:kk] - 1) / np.log2(np.arange(kk) + 2)).sum()
            ideal = np.sort(y)[::-1][:kk]
            idcg = ((2.0 ** ideal - 1) / np.log2(np.arange(kk) + 2)).sum()
            row[f"ndcg@{k}"] = dcg / idcg
        for k in (1, 5):
            row[f"hr@{k}"] = float(ranked[:k].max())
        rows.append(row)
    out = {m: float(np.mean([r[m] for r in rows])) for m in rows[0]}
    out["impressions"] = len(rows)
    return out


def _random_impressions(rng, n, dtype, ties=False):
    scores, labels = [], []
    for _ in range(n):
        length = int(rng.integers(2, 30))
        s = rng.random(length)
        if ties:
            s = np.round(s * 4) / 4
        scores.append(s.astype(dtype))
        labels.append((rng.random(length) < 0.2).astype(np.int8))
    return scores, labels


@pytest.mark.parametrize("dtype,ties", [(np.float32, False), (np.float64, False), (np.float32, True)])
def test_accuracy_matches_reference(dtype, ties):
    rng = np.random.default_rng(7)
    scores, labels = _random_impressions(rng, 400, dtype, ties)
    got = accuracy(
        pl.Series([s.tolist() for s in scores], dtype=pl.List(pl.Float32 if dtype == np.float32 else pl.Float64)),
        pl.Series([y.tolist() for y in labels], dtype=pl.List(pl.Int8)),
        chunk_rows=97,  # several chunks, uneven last one
    )
    want = _reference(scores, labels)
    assert got["impressions"] == want["impressions"] < 400  # some all-0 rows were dropped
    for name in want:
        assert got[name] == pytest.approx(want[name], abs=1e-9), name


def test_per_impression_auc_equals_sklearn_and_nulls_undefined_rows():
    scores = pl.Series([[0.1, 0.4, 0.35, 0.8], [0.5, 0.5, 0.2], [0.3, 0.2], [0.9, 0.1]])
    labels = pl.Series([[0, 0, 1, 1], [1, 0, 0], [0, 0], [1, 1]])
    df = per_impression(scores, labels)
    assert df["auc"][0] == pytest.approx(roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), abs=1e-12)
    assert df["auc"][1] == pytest.approx(roc_auc_score([1, 0, 0], [0.5, 0.5, 0.2]), abs=1e-12)  # tie = 1/2
    assert df["auc"][2] is None and df["mrr"][3] is None  # all 0 / all 1: left out
    assert df["n_clicked"].to_list() == [2, 1, 0, 2]


def test_hand_worked_mrr_ndcg_hr():
    # Ranks by score: article 2 (0.9) -> 1, article 0 (0.5) -> 2, article 1 (0.1) -> 3.
    # Clicked: article 0 (rank 2). MRR 1/2; nDCG = (1/log2 3) / 1; HR@1 0, HR@5 1.
    got = accuracy(pl.Series([[0.5, 0.1, 0.9]]), pl.Series([[1, 0, 0]]))
    assert got["mrr"] == pytest.approx(0.5)
    assert got["ndcg@5"] == pytest.approx(1 / math.log2(3))
    assert got["hr@1"] == 0.0 and got["hr@5"] == 1.0
    # Two clicked at ranks 1 and 3 of 6: MRR (1 + 1/3) / 2; nDCG@5 (1 + 1/2) / (1 + 1/log2 3).
    got = accuracy(pl.Series([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4]]), pl.Series([[1, 0, 1, 0, 0, 0]]))
    assert got["mrr"] == pytest.approx((1 + 1 / 3) / 2)
    assert got["ndcg@5"] == pytest.approx((1 + 0.5) / (1 + 1 / math.log2(3)))
    assert got["hr@1"] == 1.0
    # Clicked at rank 7: outside the top 5 but inside the top 10.
    got = accuracy(pl.Series([[7.0, 6, 5, 4, 3, 2, 1, 0]]), pl.Series([[0, 0, 0, 0, 0, 0, 1, 0]]))
    assert got["ndcg@5"] == 0.0 and got["hr@5"] == 0.0
    assert got["ndcg@10"] == pytest.approx(1 / math.log2(8))


def test_ties_ranked_by_inview_position():
    values, offsets = flat_lists(pl.Series([[0.5, 0.5, 0.9, -0.0, 0.0]], dtype=pl.List(pl.Float32)))
    assert descending_ranks(values, offsets).tolist() == [2, 3, 1, 4, 5]
    assert descending_order(values, offsets).tolist() == [2, 0, 1, 3, 4]


def test_mismatched_lengths_name_the_row():
    with pytest.raises(Recsys24Error, match="row 1: 2 scores for 3 labels"):
        accuracy(pl.Series([[0.1, 0.2], [0.1, 0.2]]), pl.Series([[1, 0], [1, 0, 0]]))
    with pytest.raises(Recsys24Error, match="row 0: score is NaN"):
        accuracy(pl.Series([[float("nan"), 0.2]]), pl.Series([[1, 0]]))


def test_chunking_by_elements_gives_the_same_result(monkeypatch):
    import recsys24.evaluation.metrics as M

    rng = np.random.default_rng(3)
    scores, labels = _random_impressions(rng, 300, np.float32)
    s = pl.Series([x.tolist() for x in scores], dtype=pl.List(pl.Float32))
    y = pl.Series([x.tolist() for x in labels], dtype=pl.List(pl.Int8))
    whole = accuracy(s, y)
    monkeypatch.setattr(M, "CHUNK_ELEMENTS", 50)  # ~3 impressions per chunk
    assert accuracy(s, y) == pytest.approx(whole, abs=1e-12)
