"""User-grouped predict (``--order users``, CGh's default): pieces of whole users give the
scores of row-range pieces, encode each history once, and a killed run resumes with every
row scored exactly once."""

from __future__ import annotations

import json
import shutil

import numpy as np
import polars as pl
import pytest

from recsys24.data import schema as S
from recsys24.errors import Recsys24Error
from recsys24.inference import predict as predict_module
from recsys24.inference.predict import merge_scores, predict_shard
from recsys24.inference.user_order import plan_encodings

PIECE_ROWS = 400


@pytest.fixture(scope="module")
def by_rows(tiny, cgh_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("rows")
    predict_shard(cgh_model, tiny["prepared"], out, piece_rows=PIECE_ROWS, order="rows")
    return pl.read_parquet(merge_scores(tiny["prepared"], out))


@pytest.fixture(scope="module")
def by_users(tiny, cgh_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("users")
    stats = predict_shard(cgh_model, tiny["prepared"], out, piece_rows=PIECE_ROWS)
    return out, stats, pl.read_parquet(merge_scores(tiny["prepared"], out))


def assert_same_scores(a: pl.DataFrame, b: pl.DataFrame) -> None:
    """Same rows in the same order; scores equal to float rounding (article vectors of another run's
    batches differ in the last bits)."""
    assert a.drop(S.SCORES).equals(b.drop(S.SCORES))
    np.testing.assert_allclose(a[S.SCORES].explode().to_numpy(), b[S.SCORES].explode().to_numpy(), atol=1e-5)


def distinct_histories(prepared) -> int:
    frame = pl.read_parquet(prepared.path / "impressions", columns=[S.HISTORY_IDS])
    return frame[S.HISTORY_IDS].n_unique()


def test_user_pieces_give_the_scores_of_row_pieces(by_rows, by_users):
    _, stats, scores = by_users
    assert stats.order == "users"  # CGh's default
    assert_same_scores(scores, by_rows)
    assert scores[S.SCORES].explode().std() > 1e-3  # the comparison is not between constants


def test_each_history_is_encoded_once(tiny, by_users):
    out, stats, _ = by_users
    users = pl.read_parquet(tiny["prepared"].path / "impressions", columns=[S.USER_ID])[S.USER_ID].n_unique()
    # a user's history is fixed for the split; two users may share one (then they share the encoding)
    assert stats.history_encodings == distinct_histories(tiny["prepared"]) <= users
    counts = json.loads((out / "predict.json").read_text())["counts"]
    assert counts["history_encodings"] == stats.history_encodings
    assert counts["rows"] == tiny["prepared"].num_impressions
    assert counts["rows_per_encoding"] == round(counts["rows"] / counts["history_encodings"], 3)


def test_small_batches_still_hold_whole_users(tiny, cgh_model, by_users, tmp_path):
    """A history with more candidates than --batch-size (the tiny split's largest user has 1,174)
    gets a batch of its own, not two encodings."""
    stats = predict_shard(cgh_model, tiny["prepared"], tmp_path, piece_rows=PIECE_ROWS, batch_size=1024)
    assert stats.history_encodings == by_users[1].history_encodings
    assert_same_scores(pl.read_parquet(merge_scores(tiny["prepared"], tmp_path)), by_users[2])


def test_a_killed_user_grouped_run_resumes_with_every_row_once(tiny, cgh_model, by_users, tmp_path, monkeypatch):
    out = tmp_path / "killed"
    real_write = predict_module.write_parquet
    written = []

    def killed_after_two(df, path, *metadata):
        if len(written) == 2:
            raise KeyboardInterrupt("killed")
        real_write(df, path, *metadata)
        written.append(df.height)

    monkeypatch.setattr(predict_module, "write_parquet", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        predict_shard(cgh_model, tiny["prepared"], out, piece_rows=PIECE_ROWS)
    monkeypatch.undo()
    with pytest.raises(Recsys24Error, match=r"user buckets 2, 3 of 4 have no scores"):
        merge_scores(tiny["prepared"], out)
    stats = predict_shard(cgh_model, tiny["prepared"], out, piece_rows=PIECE_ROWS)
    assert stats.skipped_rows == sum(written)
    assert stats.scored_rows == tiny["prepared"].num_impressions - sum(written)
    # the encodings of both runs add up to one per history
    assert stats.counts.history_encodings == by_users[1].history_encodings
    assert_same_scores(pl.read_parquet(merge_scores(tiny["prepared"], out)), by_users[2])


def test_two_shards_merge_to_one_and_a_doubled_row_is_refused(tiny, cgh_model, by_users, tmp_path):
    out = tmp_path / "shards"
    for shard in (0, 1):
        predict_shard(cgh_model, tiny["prepared"], out, shard, 2, piece_rows=PIECE_ROWS)
    assert_same_scores(pl.read_parquet(merge_scores(tiny["prepared"], out)), by_users[2])
    first, second = sorted((out / "pieces").glob("users-*.parquet"))[:2]
    a, b = pl.read_parquet(first), pl.read_parquet(second)
    pl.concat([a, b.head(1)]).sort(S.ROW).write_parquet(first)  # one of bucket 1's rows again in bucket 0
    with pytest.raises(Recsys24Error, match=f"row {b[S.ROW][0]} is scored twice"):
        merge_scores(tiny["prepared"], out)


def test_a_scores_folder_keeps_its_order(tiny, cgh_model, by_users, tmp_path):
    out = tmp_path / "switch"
    shutil.copytree(by_users[0], out)
    with pytest.raises(Recsys24Error, match="pieces in users order: pass --order users"):
        predict_shard(cgh_model, tiny["prepared"], out, piece_rows=PIECE_ROWS, order="rows")


def test_planning_counts_one_encoding_per_user():
    """The counting mode the benchmark runs on a full behaviors file: users in buckets, whole users per batch."""
    rng = np.random.default_rng(0)
    users = rng.integers(0, 300, 5000)
    candidates = np.where(rng.random(5000) < 0.02, 250, rng.integers(5, 30, 5000))
    plan = plan_encodings(users, candidates, piece_rows=1000, batch_size=64)
    assert plan["history_encodings"] == plan["users"] == len(np.unique(users))
    assert plan["pieces"] == 5 and plan["largest_batch"] >= 250
