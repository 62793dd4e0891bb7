"""`recsys24 train` through the real DeepSpeed engine on CPU with the tiny model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import torch

from recsys24.data.prepared import open_prepared
from recsys24.training.data import PairStream

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "tiny" / "cgc_d.yaml"


def train_env() -> dict:
    env = dict(os.environ, DS_ACCELERATOR="cpu", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    return env


def overrides(prepared, **train) -> list[str]:
    base = {"train_data": prepared["train"], "valid_data": prepared["validation"], "steps": 24,
            "micro_batch": 8, "eval_every": 12, "save_every": 12, "log_every": 4,
            "eval_impressions": 96, "warmup_steps": 4, "lr": 0.002}
    base.update(train)
    return [f"train.{k}={v}" for k, v in base.items()]


def train_cmd(run: Path, prepared, launcher=(sys.executable, "-m"), **train) -> list[str]:
    return [*launcher, "recsys24", "train", "--config", str(CONFIG), "--output", str(run), *overrides(prepared, **train)]


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {**load_file(str(run / "model" / "model.safetensors")), **load_file(str(run / "model" / "head.safetensors"))}


@pytest.fixture(scope="module")
def trained(prepared, tmp_path_factory) -> Path:
    """One uninterrupted single-process run (shared by several tests); its output, as a log file
    gets it, is kept beside the run folder as ``full.log``."""
    run = tmp_path_factory.mktemp("runs") / "full"
    done = subprocess.run(train_cmd(run, prepared), env=train_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run.parent / "full.log").write_text(done.stdout)
    return run


def test_training_reduces_validation_loss_and_fills_the_run_folder(trained):
    log = metrics(trained)
    evals = [m for m in log if "val_loss" in m]
    assert evals[0]["step"] == 0 and evals[-1]["step"] == 24
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    assert {"loss", "lr", "samples_per_s"} <= set(log[-1])
    assert [m["step"] for m in log] == sorted({m["step"] for m in log})  # each step once
    for name in ("config.yaml", "version.json", "summary.json", "model", "tensorboard", "checkpoints/latest"):
        assert (trained / name).exists(), name
    assert list((trained / "tensorboard").glob("events.out.tfevents.*"))
    summary = json.loads((trained / "summary.json").read_text())
    kept = sorted(p.name for p in (trained / "checkpoints").glob("step*"))
    assert kept == sorted({"step24", summary["best_checkpoint"]})


def test_the_exported_model_is_the_best_checkpoint_by_validation_auc(trained, prepared):
    """model/ holds the weights of the best validation AUC, and its spec file says which step they are
    and which split they trained on (by content, for the ranker's in-sample check)."""
    from recsys24.evaluation.scores import SplitData

    summary = json.loads((trained / "summary.json").read_text())
    origin = json.loads((trained / "model" / "recsys24_model.json").read_text())["origin"]
    aucs = {m["step"]: m["val_auc"] for m in metrics(trained) if "val_auc" in m and m["step"] > 0}
    best = max(aucs, key=aucs.get)
    assert origin == {"checkpoint": f"step{best}", "step": best, "val_auc": pytest.approx(aucs[best]),
                      "last_step": 24, "trained_on": [SplitData.of_prepared(open_prepared(prepared["train"])).to_dict()]}
    assert summary["best_checkpoint"] == f"step{best}"

    def checkpoint(tag):
        return torch.load(trained / "checkpoints" / tag / "mp_rank_00_model_states.pt", weights_only=False)["module"]

    exported, saved, last = weights(trained), checkpoint(f"step{best}"), checkpoint("step24")
    head = {k.removeprefix("model.head."): v for k, v in saved.items() if k.startswith("model.head.")}
    assert head and all(torch.equal(exported[k], v) for k, v in head.items())
    if best != 24:  # the last step's weights were not kept
        assert not all(torch.equal(saved[k], last[k]) for k in saved)


def test_a_log_file_gets_plain_progress_lines_and_a_rounded_summary(trained):
    """Not a terminal (SLURM, a pipe): timestamped progress lines of at most 120 characters, no ANSI codes,
    nothing wrapped."""
    import re

    text = (trained.parent / "full.log").read_text()
    assert "\x1b" not in text and "\r" not in text
    lines = text.splitlines()
    steps = [line for line in lines if re.match(r"\d\d:\d\d:\d\d train: \d+/24 steps \(\d+%\)", line)]
    assert len(steps) >= 6  # every logged step (4, 8, ...) at least
    # a logged step's main metrics are on its progress line (all of them in metrics.jsonl), and no line is long
    assert any(line.split(" train: ")[1].startswith("24/24 steps (100%)") and "val_auc=" in line for line in steps)
    assert max(len(line) for line in lines) <= 120, max(lines, key=len)
    # each validation pass (steps 0, 12 and 24) says that it starts: it may take minutes
    assert sum(re.match(r"\d\d:\d\d:\d\d train: validation on 96 impressions$", line) is not None
               for line in lines) == 3
    summary = json.loads((trained / "summary.json").read_text())
    best = f"best validation AUC {summary['best_val_auc']:.4f} at step {summary['best_checkpoint'][4:]})"
    assert any(line.startswith("trained 24 steps -> ") and line.endswith(best) for line in lines), text[-2000:]


def test_exported_model_loads_and_scores(trained, prepared):
    from recsys24.model_inputs.prompt_collator import PromptCollator as Collator
    from recsys24.models.loading import load_recommender
    from recsys24.prompts.article_tokens import build_token_table

    model, tokenizer = load_recommender(trained / "model")
    p = open_prepared(prepared["validation"])
    table = build_token_table(p.articles(), tokenizer, model.spec.prompt)
    frame = p.impressions().head(3)
    batch = Collator(table, model.spec.prompt)(frame)
    scores = model.score(batch)
    assert scores.shape == (int(frame["article_ids_inview"].list.len().sum()),)
    assert torch.isfinite(scores).all()


def test_killed_run_resumes_to_the_same_weights(trained, prepared, tmp_path):
    run = tmp_path / "killed"
    proc = subprocess.Popen(train_cmd(run, prepared), env=train_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 600
    while time.time() < deadline:
        if (run / "metrics.jsonl").exists() and any(m["step"] >= 6 for m in metrics(run)):
            break
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        time.sleep(0.2)
    proc.send_signal(signal.SIGUSR1)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 75, out[-3000:]
    stopped_at = json.loads((run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
                             / "trainer_state.json").read_text())["step"]
    assert 6 <= stopped_at < 24
    done = subprocess.run(train_cmd(run, prepared), env=train_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"resuming at step {stopped_at}" in done.stdout
    resumed, full = weights(run), weights(trained)
    for name, value in full.items():
        torch.testing.assert_close(resumed[name], value, rtol=1e-4, atol=1e-5, msg=name)
    assert [m["step"] for m in metrics(run)] == [m["step"] for m in metrics(trained)]


@pytest.mark.parametrize("option, says", [("compile", "mT5 blocks compiled"),
                                          ("gradient_checkpointing", "activations recomputed")])
def test_speed_and_memory_options_train_like_eager(trained, prepared, tmp_path, option, says):
    """train.compile (torch.compile per mT5 block) and train.gradient_checkpointing change how a step runs,
    not what it computes: the same losses and weights as the plain run."""
    run = tmp_path / option
    done = subprocess.run([*train_cmd(run, prepared), f"train.{option}=true"], env=train_env(), capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert says in done.stdout
    plain, other = metrics(trained), metrics(run)
    assert [m["step"] for m in other] == [m["step"] for m in plain]
    for a, b in zip(plain, other):
        for key in ("loss", "val_loss", "val_auc"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-4), (a["step"], key)
    got, want = weights(run), weights(trained)
    for name, value in want.items():
        torch.testing.assert_close(got[name], value, rtol=1e-3, atol=1e-4, msg=name)


def test_compile_refuses_zero3():
    from recsys24.errors import Recsys24Error
    from recsys24.config import TrainConfig
    from recsys24.training.engine import make_engine

    with pytest.raises(Recsys24Error, match="train.compile works with ZeRO stages 0-2, not zero3"):
        make_engine(torch.nn.Linear(2, 1), TrainConfig(compile=True, deepspeed="zero3"), bf16=False)


def test_ranks_see_disjoint_pairs(prepared):
    p = open_prepared(prepared["train"])
    streams = [PairStream(p, seed=0, rank=r, world_size=2) for r in range(2)]
    seen = [[], []]
    for step in range(5):
        for r, s in enumerate(streams):
            seen[r].append(s.micro_batch(step * 2 * 8, 8))
    keys = [set(pl.concat(f).select(pl.concat_str("row", "positive", separator=":")).to_series()) for f in seen]
    assert len(keys[0]) == len(keys[1]) == 40
    assert not keys[0] & keys[1]
    # The position alone fixes the data: a new stream at step 3 gives the same batch.
    assert PairStream(p, seed=0, rank=1, world_size=2).micro_batch(3 * 16, 8).equals(seen[1][3])


def test_two_process_training_runs(prepared, tmp_path):
    run = tmp_path / "ddp"
    launcher = (sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m")
    done = subprocess.run(train_cmd(run, prepared, launcher=launcher, steps=6, eval_every=6, save_every=6),
                          env=train_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "world size 2" in done.stdout
    assert (run / "model" / "model.safetensors").exists()
    assert metrics(run)[-1]["step"] == 6
