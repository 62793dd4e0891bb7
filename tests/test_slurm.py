"""`sbatch slurm/train.sh` on a real one-node SLURM cluster (Debian slurm-wlm + munge).

The cluster is installed and started by ``slurm/local-cluster.sh`` (needs root;
these tests are skipped, saying so, when not root).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_training import CONFIG, ROOT, metrics, overrides, train_env

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the SLURM tests start a local cluster and need root")


@pytest.fixture(scope="module")
def cluster():
    started = subprocess.run(["bash", str(ROOT / "slurm" / "local-cluster.sh")], capture_output=True, text=True,
                             timeout=600)
    assert started.returncode == 0, started.stdout + started.stderr


def sbatch(*args: str, env: dict, log_dir: Path) -> str:
    out = subprocess.run(["sbatch", "--parsable", "--gres=gpu:1", "--ntasks-per-node=1", "--cpus-per-task=1",
                          "--time=20", f"--output={log_dir}/sbatch-%j.out", *args],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().split(";")[0]


def job_field(job: str, name: str) -> str:
    out = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    match = re.search(rf"\b{name}=(\S+)", out)
    return match.group(1) if match else ""


def wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def slurm_env() -> dict:
    return dict(train_env(), RECSYS24_PYTHON=sys.executable)


def test_sbatch_train_completes_with_checkpoints_and_metrics(cluster, prepared, tmp_path):
    run = tmp_path / "run"
    job = sbatch("slurm/train.sh", str(CONFIG), "--output", str(run),
                 *overrides(prepared, steps=8, eval_every=8, save_every=4), env=slurm_env(), log_dir=tmp_path)
    wait_for(lambda: job_field(job, "JobState") in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"), 900, "the job")
    log = (run / "logs" / f"job-{job}.out").read_text()
    assert job_field(job, "JobState") == "COMPLETED", log + (run / "logs" / "rank-0.log").read_text()[-3000:]
    assert "training exited with 0" in log
    assert (run / "checkpoints" / "step8").is_dir()
    assert metrics(run)[-1]["step"] == 8
    assert (run / "model" / "model.safetensors").is_file()


def test_preempted_job_requeues_and_resumes(cluster, prepared, tmp_path):
    run = tmp_path / "run"
    job = sbatch("slurm/train.sh", str(CONFIG), "--output", str(run),
                 *overrides(prepared, steps=60, eval_every=60, save_every=60), env=slurm_env(), log_dir=tmp_path)
    wait_for(lambda: (run / "metrics.jsonl").exists() and metrics(run)[-1]["step"] >= 8, 900, "training to start")
    subprocess.run(["scancel", "--signal=USR1", job], check=True)
    log_path = run / "logs" / f"job-{job}.out"
    wait_for(lambda: "requeueing" in log_path.read_text(), 300, "the job to checkpoint and requeue itself")
    wait_for(lambda: job_field(job, "JobState") == "COMPLETED" and "training exited with 0" in log_path.read_text(),
             900, "the requeued job to finish")
    rank_log = (run / "logs" / "rank-0.log").read_text()
    stopped = re.search(r"stop requested: saved step(\d+)", rank_log)
    assert stopped, rank_log[-3000:]
    assert f"resuming at step {stopped.group(1)}" in rank_log
    assert [m["step"] for m in metrics(run)][-1] == 60
    assert (run / "model" / "model.safetensors").is_file()


def test_predict_array_and_dependent_merge_make_a_valid_zip(cluster, tiny, tmp_path):
    import zipfile

    out, zip_path = tmp_path / "scores", tmp_path / "predictions.zip"
    env = dict(slurm_env(), SUBMISSION=str(zip_path), SBATCH_ARGS="--cpus-per-task=1 --time=20")
    done = subprocess.run(["bash", "slurm/predict.sh", str(tiny["model"]), str(tiny["root"] / "prepared"), str(out), "3"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    array, merge = re.match(r"array (\d+) merge (\d+)", done.stdout).groups()
    assert job_field(merge, "Dependency").startswith(f"afterok:{array}")
    wait_for(lambda: job_field(merge, "JobState") in ("COMPLETED", "FAILED", "CANCELLED"), 900, "the merge job")
    assert job_field(merge, "JobState") == "COMPLETED", (out / "logs" / "merge.log").read_text()
    assert sorted(p.name for p in (out / "logs").glob("shard-*.log")) == ["shard-0.log", "shard-1.log", "shard-2.log"]
    assert "validated" in (out / "logs" / "merge.log").read_text()
    lines = zipfile.ZipFile(zip_path).read("predictions.txt").decode().splitlines()
    assert len(lines) == tiny["prepared"].num_impressions


@pytest.fixture(scope="module")
def rank_tiny(tmp_path_factory):
    """Tiny synthetic data, its train and test features (several pieces) and a small LightGBM ranker."""
    from recsys24.data.synth import synthesize
    from recsys24.features.build import build_features
    from recsys24.features.folder import open_features
    from recsys24.ranking.train import RankTraining, train_ranker

    root = tmp_path_factory.mktemp("rank")
    synthesize(root / "data", "tiny", seed=0, splits=("train", "test"))
    for split in ("train", "test"):
        build_features(root / "data", split, root / "features" / split, piece_candidates=4_000)
    train_ranker([open_features(root / "features" / "train")], root / "ranker", how=RankTraining(rounds=10))
    return root


def test_rank_array_and_dependent_merge_make_a_valid_zip(cluster, rank_tiny, tmp_path):
    import zipfile

    from recsys24.data.split import open_split

    out, zip_path = tmp_path / "scores", tmp_path / "predictions.zip"
    env = dict(slurm_env(), SUBMISSION=str(zip_path), SBATCH_ARGS="--cpus-per-task=1 --time=20")
    done = subprocess.run(["bash", "slurm/rank.sh", str(rank_tiny / "ranker"), str(rank_tiny / "features" / "test"),
                           str(out), "3"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    array, merge = re.match(r"array (\d+) merge (\d+)", done.stdout).groups()
    assert job_field(merge, "Dependency").startswith(f"afterok:{array}")
    wait_for(lambda: job_field(merge, "JobState") in ("COMPLETED", "FAILED", "CANCELLED"), 900, "the merge job")
    assert job_field(merge, "JobState") == "COMPLETED", (out / "logs" / "merge.log").read_text()
    logs = sorted(p.name for p in (out / "logs").glob("shard-*.log"))
    assert logs == ["shard-0.log", "shard-1.log", "shard-2.log"]
    assert all("scored" in (out / "logs" / name).read_text() for name in logs)
    assert "validated" in (out / "logs" / "merge.log").read_text()
    lines = zipfile.ZipFile(zip_path).read("predictions.txt").decode().splitlines()
    assert len(lines) == open_split(rank_tiny / "data", "test").num_rows
