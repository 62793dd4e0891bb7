"""Prepared splits hold every impression once, in order, with aligned labels and history."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from recsys24.data import prepare as prepare_module
from recsys24.data import schema as S
from recsys24.data.prepare import prepare
from recsys24.data.prepared import open_prepared
from recsys24.errors import DataError


def test_every_impression_once_in_file_order(demo_data, prepared):
    for split in S.SPLITS:
        p = open_prepared(prepared[split])
        imps = p.impressions()
        beh = pl.read_parquet(demo_data / split / "behaviors.parquet")
        assert dict(imps.schema) == S.PREPARED_IMPRESSIONS_SCHEMA
        assert p.num_impressions == beh.height == imps.height
        assert imps[S.ROW].to_list() == list(range(beh.height))
        assert imps[S.IMPRESSION_ID].equals(beh[S.IMPRESSION_ID])
        assert imps[S.INVIEW].equals(beh[S.INVIEW])


def test_labels_are_aligned_to_the_inview_order(demo_data, prepared):
    imps = open_prepared(prepared["validation"]).impressions()
    beh = pl.read_parquet(demo_data / "validation" / "behaviors.parquet")
    for labels, inview, clicked in zip(imps[S.LABELS].head(500), beh[S.INVIEW].head(500), beh[S.CLICKED].head(500)):
        assert labels.to_list() == [int(a in set(clicked.to_list())) for a in inview.to_list()]
    assert open_prepared(prepared["test"]).impressions()[S.LABELS].null_count() == 25_000


def test_history_is_the_latest_T_in_time_order(demo_data, tmp_path):
    manifest = prepare(demo_data, "test", tmp_path / "p", history_size=3)
    imps = open_prepared(tmp_path / "p").impressions()
    hist = pl.read_parquet(demo_data / "test" / "history.parquet")
    joined = imps.join(hist, on=S.USER_ID, how="left", maintain_order="left").head(300)
    for row in joined.iter_rows(named=True):
        times = row[S.HIST_TIME]
        latest = np.argsort(times, kind="stable")[-3:]
        assert row[S.HISTORY_IDS] == [row[S.HIST_ARTICLE][i] for i in latest]
        assert row[S.HISTORY_TIMES] == sorted(row[S.HISTORY_TIMES])
    assert manifest.prepared.history_size == 3


def test_training_pairs_are_clicks_with_K_negatives_of_the_same_impression(prepared):
    p = open_prepared(prepared["train"])
    imps = p.impressions().select(S.ROW, S.INVIEW, S.LABELS)
    pairs = pl.concat(list(p.iter_pairs()))
    assert dict(pairs.schema) == S.PREPARED_PAIRS_SCHEMA
    assert p.num_pairs == pairs.height > 0
    assert (pairs[S.NEGATIVES].list.len() == 4).all()
    by_row = {r[S.ROW]: r for r in imps.iter_rows(named=True)}
    for pair in pairs.head(500).iter_rows(named=True):
        imp = by_row[pair[S.ROW]]
        clicked = {a for a, l in zip(imp[S.INVIEW], imp[S.LABELS]) if l}
        not_clicked = {a for a, l in zip(imp[S.INVIEW], imp[S.LABELS]) if not l}
        assert pair[S.POSITIVE] in clicked
        assert set(pair[S.NEGATIVES]) <= not_clicked
        if len(not_clicked) >= 4:
            assert len(set(pair[S.NEGATIVES])) == 4
    clicks = int(imps[S.LABELS].list.sum().sum())
    assert pairs.height <= clicks


def test_manifest_is_written_last_and_a_killed_run_leaves_nothing(demo_data, tmp_path, monkeypatch):
    out = tmp_path / "p"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_module, "training_pairs", killed)
    with pytest.raises(KeyboardInterrupt):
        prepare(demo_data, "train", out)
    assert not out.exists()
    monkeypatch.undo()
    # A stale temporary folder (as a SIGKILL would leave) is cleaned up and redone.
    (tmp_path / ".p.tmp-deadbeef").mkdir()
    manifest = prepare(demo_data, "train", out)
    assert not list(tmp_path.glob(".p.tmp-*"))
    assert json.loads((out / "manifest.json").read_text())["num_impressions"] == manifest.prepared.num_impressions


def test_downstream_refuses_a_folder_without_manifest(prepared, tmp_path):
    import shutil

    shutil.copytree(prepared["test"], tmp_path / "p")
    (tmp_path / "p" / "manifest.json").unlink()
    with pytest.raises(DataError, match="no manifest.json"):
        open_prepared(tmp_path / "p")


def test_rerun_on_unchanged_input_is_a_no_op_and_changed_input_redoes(data_copy, tmp_path, cli):
    out = tmp_path / "p"
    assert cli("prepare", "--data", data_copy, "--split", "validation", "--out", out).exit_code == 0
    stamp = (out / "manifest.json").stat().st_mtime_ns
    result = cli("prepare", "--data", data_copy, "--split", "validation", "--out", out)
    assert "up to date" in result.output
    assert (out / "manifest.json").stat().st_mtime_ns == stamp
    # Different parameters or different input: prepared again.
    result = cli("prepare", "--data", data_copy, "--split", "validation", "--out", out, "-T", "5")
    assert "prepared validation" in " ".join(result.output.split())
    assert open_prepared(out).history_size == 5
    beh = data_copy / "validation" / "behaviors.parquet"
    pl.read_parquet(beh).head(1000).write_parquet(beh)
    assert cli("prepare", "--data", data_copy, "--split", "validation", "--out", out, "-T", "5").exit_code == 0
    assert open_prepared(out).num_impressions == 1000


def test_pairs_are_seeded(demo_data, tmp_path):
    a = prepare(demo_data, "train", tmp_path / "a", seed=1)
    b = prepare(demo_data, "train", tmp_path / "b", seed=1)
    c = prepare(demo_data, "train", tmp_path / "c", seed=2)
    read = lambda d: pl.concat(list(open_prepared(d).iter_pairs()))
    assert read(tmp_path / "a").equals(read(tmp_path / "b"))
    assert not read(tmp_path / "a").equals(read(tmp_path / "c"))
    assert a.prepared.num_pairs == b.prepared.num_pairs == c.prepared.num_pairs
