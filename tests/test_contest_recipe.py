"""`scripts/contest.sh DATA TESTSET OUT`: the whole entry on the official two-folder download, then resumed.

Tiny synthetic data and the smallest settings (4 CGh-f steps, 20 boosting rounds): this checks that the
steps fit together and resume, not what they score.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import polars as pl
from click.testing import CliRunner

from recsys24.cli import main
from tests.test_training import ROOT, train_env

SMALLEST = {"CGHF_OVERRIDES": "train.steps=4 train.eval_every=4 train.save_every=4 train.eval_impressions=50 "
                              "train.warmup_steps=1 train.log_every=2 train.micro_batch=8",
            "RANK_ARGS": "--rounds 20 --early-stopping 5"}


def contest(*args) -> subprocess.CompletedProcess:
    env = dict(train_env(), RECSYS24_PYTHON=sys.executable, **SMALLEST)
    return subprocess.run(["bash", str(ROOT / "scripts" / "contest.sh"), *map(str, args)], env=env,
                           capture_output=True, text=True, timeout=1200)


def test_the_contest_recipe_runs_on_the_official_downloads_and_resumes_without_training_again(tmp_path):
    done = CliRunner().invoke(main, ["synth", str(tmp_path), "--preset", "tiny", "--layout", "official"])
    assert done.exit_code == 0, done.output
    data, testset, out = tmp_path / "ebnerd_tiny", tmp_path / "ebnerd_testset", tmp_path / "entry"

    first = contest(data, testset, out)
    assert first.returncode == 0, (first.stdout + first.stderr)[-4000:]
    zip_path = out / "submission" / "predictions.zip"
    lines = zipfile.ZipFile(zip_path).read("predictions.txt").decode().splitlines()
    ids = pl.read_parquet(testset / "test" / "behaviors.parquet", columns=["impression_id"])["impression_id"]
    assert [int(line.split(" ")[0]) for line in lines] == ids.to_list()  # one line per test impression, in order
    assert f"valid: {zip_path} ({len(lines):,} lines)" in first.stdout + first.stderr
    # the test split's features read the train download's history files too, through the layout's links
    inputs = json.loads((out / "features" / "test" / "features.json").read_text())["inputs"]
    assert {"train/history.parquet", "validation/history.parquet", "test/history.parquet"} <= set(inputs)

    made = [out / "runs" / "cgh_f" / "summary.json", out / "rankers" / "features" / "ranker.json",
            out / "rankers" / "stacked" / "ranker.json", out / "prepared" / "train" / "manifest.json",
            out / "data" / "articles.parquet", zip_path]
    stamps = [p.stat().st_mtime_ns for p in made]
    again = contest(data, testset, out)
    assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
    assert [p.stat().st_mtime_ns for p in made] == stamps  # nothing trained, prepared or written again
    assert "train: starting" not in again.stdout + again.stderr
    assert f"{out / 'runs' / 'cgh_f' / 'summary.json'}: already there, step skipped" in again.stdout
