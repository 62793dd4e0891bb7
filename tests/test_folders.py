"""The typed folder handles the stages share: a folder's plan, a features plan, a prepared split's shards."""

from __future__ import annotations

import json
from dataclasses import replace

import polars as pl
import pytest

from recsys24.data.prepared import Prepared, Shard
from recsys24.errors import Recsys24Error
from recsys24.features.folder import PIECE_CANDIDATES, FeaturePlan
from recsys24.inference.pieces import read_rows
from recsys24.io import FolderPlan


def test_a_folder_plan_is_written_once_then_refuses_other_inputs(tmp_path):
    out = tmp_path / "scores"
    plan = FolderPlan(out, "plan.json", "scores", "scored pieces")
    written = plan.require({"model": "a", "split": "test"}, {"counts": 3})
    assert written == {"model": "a", "split": "test", "counts": 3} == plan.read()
    assert plan.require({"model": "a", "split": "test"}) == written  # the same inputs: resumed, not rewritten
    with pytest.raises(Recsys24Error) as err:
        plan.require({"model": "b", "split": "test"})
    assert str(err.value) == (f"{out}: holds scores of another run (other inputs or options: model differ); "
                              "use a new --out folder")
    with pytest.raises(Recsys24Error, match=r"\(the model changed\)"):
        plan.check({"model": "b"}, explain=lambda key, have: f"the {key} changed")
    assert plan.read() == written


def test_a_folder_plan_refuses_pieces_without_a_plan(tmp_path):
    plan = FolderPlan(tmp_path, "plan.json", "features", "feature pieces")
    (tmp_path / "pieces").mkdir()
    (tmp_path / "pieces" / "rows-0000000000-0000000010.parquet").write_bytes(b"")
    with pytest.raises(Recsys24Error, match="holds feature pieces but no plan.json .* use a new --out folder"):
        plan.require({"split": "test"})
    assert not plan.exists()


def test_feature_plans_say_whether_their_features_mean_the_same():
    plan = FeaturePlan("/data", "validation", 10, 50)
    assert plan.compatible(replace(plan, data="/copy", num_rows=11))  # other inputs, same meaning
    past = replace(plan, past_only=True)
    assert not plan.compatible(past) and plan.differing(past) == ["past_only"]
    # a ranker records the options of its features; one written before split_history existed lacks it
    assert past.compatible({"past_only": True}) and not past.compatible({})


def test_an_older_features_json_reads_with_the_defaults_of_later_options():
    older = {"data": "/d", "split": "train", "num_rows": 3, "num_candidates": 9, "past_only": True,
             "families": {"history": ["history_len"]}}
    plan = FeaturePlan.from_dict(older)
    assert (plan.split_history, plan.piece_candidates, plan.version) == (False, PIECE_CANDIDATES, None)
    assert plan.history_span_days is None  # recorded since; readers that need it ask for a rebuild
    assert FeaturePlan.from_dict(plan.to_dict()) == plan and plan.to_dict(recorded=False).keys() == \
        plan.to_dict().keys() - {"families", "history_span_days"}


def test_a_recorded_history_span_does_not_refuse_an_older_folder(tmp_path):
    """A folder whose plan predates history_span_days is resumed by a run that records it."""
    older = FeaturePlan("/d", "train", 3, 9, version=4, families={"history": ["history_per_day"]})
    older.write(tmp_path)
    plan = json.loads((tmp_path / "features.json").read_text())
    del plan["history_span_days"]
    (tmp_path / "features.json").write_text(json.dumps(plan))
    replace(older, history_span_days=21.5).check(tmp_path)
    replace(older, history_span_days=21.5).write(tmp_path)
    assert FeaturePlan.from_dict(json.loads((tmp_path / "features.json").read_text())).history_span_days is None


def test_rows_are_read_across_the_shards_a_manifest_lists(tmp_path):
    for i, (first, rows) in enumerate([(0, 3), (3, 4)]):
        (tmp_path / "impressions").mkdir(exist_ok=True)
        pl.DataFrame({"row": list(range(first, first + rows))}).write_parquet(
            tmp_path / "impressions" / f"part-{i:05d}.parquet")
    manifest = {"shards": {"impressions": [{"file": f"impressions/part-{i:05d}.parquet", "rows": rows,
                                            "first_row": first} for i, (first, rows) in enumerate([(0, 3), (3, 4)])],
                           "pairs": []},
                "split": "test", "params": {"history_size": 20}, "source": {"data_dir": "/data"}}
    prepared = Prepared(tmp_path, manifest)
    assert prepared.shards() == [Shard(tmp_path / "impressions/part-00000.parquet", 0, 3),
                                 Shard(tmp_path / "impressions/part-00001.parquet", 3, 4)]
    assert prepared.shards("pairs") == [] and prepared.shards()[1].end_row == 7
    assert read_rows(prepared, 2, 5)["row"].to_list() == [2, 3, 4]
