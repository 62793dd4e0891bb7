"""`recsys24 predict`: shards, resumable pieces, merge and the contest zip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from recsys24.data import schema as S
from recsys24.errors import Recsys24Error
from recsys24.inference import pieces as P
from recsys24.inference import predict as predict_module
from recsys24.inference.predict import merge_scores, predict_shard

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def one_shard(tiny):
    out = tiny["root"] / "one"
    predict_shard(tiny["model"], tiny["prepared"], out, piece_rows=400, batch_size=64)
    return pl.read_parquet(merge_scores(tiny["prepared"], out))


def test_one_shard_equals_the_merge_of_three(tiny, one_shard):
    out = tiny["root"] / "three"
    for shard in range(3):
        predict_shard(tiny["model"], tiny["prepared"], out, shard, 3, piece_rows=400, batch_size=64)
    merged = pl.read_parquet(merge_scores(tiny["prepared"], out))
    assert merged.equals(one_shard)
    beh = pl.read_parquet(tiny["root"] / "data" / "test" / "behaviors.parquet")
    assert merged[S.IMPRESSION_ID].equals(beh[S.IMPRESSION_ID])
    assert (merged[S.SCORES].list.len() == beh[S.INVIEW].list.len()).all()


def test_batch_size_does_not_change_scores(tiny, one_shard):
    out = tiny["root"] / "big-batches"
    predict_shard(tiny["model"], tiny["prepared"], out, 0, 4, piece_rows=400, batch_size=1024)
    other = pl.read_parquet(P.piece_path(out, 0, 400))
    np.testing.assert_allclose(other[S.SCORES].explode().to_numpy(),
                               one_shard[S.SCORES].head(400).explode().to_numpy(), rtol=1e-4, atol=1e-5)


def test_a_crash_mid_shard_is_finished_by_a_rerun(tiny, one_shard, tmp_path, monkeypatch):
    out = tmp_path / "crash"
    real_write = predict_module.write_parquet
    calls = {"n": 0}

    def crash_on_third(df, path, *metadata):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        real_write(df, path, *metadata)

    monkeypatch.setattr(predict_module, "write_parquet", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        predict_shard(tiny["model"], tiny["prepared"], out, piece_rows=400, batch_size=64)
    monkeypatch.undo()
    assert len(P.existing_pieces(out)) == 2
    with pytest.raises(Recsys24Error, match="rows 800..1499 have no scores"):
        merge_scores(tiny["prepared"], out)
    stats = predict_shard(tiny["model"], tiny["prepared"], out, piece_rows=400, batch_size=64)
    assert stats.skipped_rows == 800
    assert stats.scored_rows == tiny["prepared"].num_impressions - 800
    assert pl.read_parquet(merge_scores(tiny["prepared"], out)).equals(one_shard)


def test_merge_refuses_doubly_scored_rows(tiny, tmp_path):
    out = tmp_path / "dup"
    shutil.copytree(tiny["root"] / "one", out)
    first = pl.read_parquet(P.piece_path(out, 0, 400))
    first.slice(200).write_parquet(P.piece_path(out, 200, 400).with_name("rows-0000000200-0000000400.parquet"))
    with pytest.raises(Recsys24Error, match="rows 200..399 are scored twice"):
        merge_scores(tiny["prepared"], out)


def test_another_model_cannot_write_into_the_same_scores_folder(tiny, tmp_path):
    other = tmp_path / "other-model"
    shutil.copytree(tiny["model"], other)
    with pytest.raises(Recsys24Error, match="holds scores of another run"):
        predict_shard(other, tiny["prepared"], tiny["root"] / "one", piece_rows=400)


def test_cli_makes_a_valid_submission_with_beyond_accuracy_rows(tiny, tmp_path):
    zip_path = tmp_path / "submission" / "predictions.zip"
    cmd = [sys.executable, "-m", "recsys24", "predict", "--model", str(tiny["model"]),
           "--prepared", str(tiny["root"] / "prepared"), "--split", "test", "--out", str(tmp_path / "scores"),
           "--piece-rows", "700", "--make-submission", "--submission", str(zip_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "validated" in done.stdout
    import zipfile

    lines = zipfile.ZipFile(zip_path).read("predictions.txt").decode().splitlines()
    assert len(lines) == tiny["prepared"].num_impressions
    ba = [line for line in lines if line.startswith("0 ")]
    assert len(ba) == 20 and all(line.count(",") == 249 for line in ba)


def test_baselines_go_through_predict_too(tiny, tmp_path):
    cmd = [sys.executable, "-m", "recsys24", "predict", "--model", "baseline:freshness",
           "--prepared", str(tiny["root"] / "prepared" / "test"), "--split", "test", "--out", str(tmp_path / "b"),
           "--make-submission", "--submission", str(tmp_path / "b.zip")]
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "b.zip").is_file()


def test_length_bucketing_puts_scores_back_on_their_own_impressions(tiny):
    from recsys24.inference.predict import COLUMNS, Scorer

    scorer = Scorer.load(tiny["model"], tiny["prepared"], "cpu")
    frame = P.read_rows(tiny["prepared"], 0, 40, COLUMNS)
    together = scorer.score_frame(frame, batch_size=32)
    for i in range(frame.height):
        alone = scorer.score_frame(frame.slice(i, 1), batch_size=32)[0].to_numpy()
        np.testing.assert_allclose(together[i].to_numpy(), alone, rtol=1e-4, atol=1e-5)
