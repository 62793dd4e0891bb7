"""The experiment runner behind ``recsys24 compare``: the neural baselines, the heuristics and CGc-d on one
split, trained, scored and evaluated into one table.

For each model config (``configs/tiny/{nrms,naml,lstur,npa,dkn,cgc_d}.yaml`` by
default) it trains a run with ``recsys24 train`` (a subprocess, as a user would
run it) into ``OUT/runs/<name>``, scores the split with ``recsys24 predict``
into ``OUT/runs/<name>/scores/<split>/``, scores the heuristics into
``OUT/scores/<split>/``, and evaluates everything with the contest metrics.
Writes ``OUT/table.md`` (markdown, best AUC first) and ``OUT/results.json``.
Every step is skipped when its output exists, so a rerun only finishes what is
missing (a run folder without ``summary.json`` resumes from its checkpoint).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

from recsys24 import resources
from recsys24.errors import Recsys24Error

CONFIGS = resources.CONFIGS / "tiny"
MODELS = ("nrms", "naml", "lstur", "npa", "dkn", "cgc_d")
LABELS = {"nrms": "NRMS", "naml": "NAML", "lstur": "LSTUR", "npa": "NPA", "dkn": "DKN", "cgc_d": "CGc-d (tiny mT5)"}
HEURISTICS = ("random", "popular", "category", "freshness", "inview-count")
COLUMNS = ("auc", "mrr", "ndcg@5", "ndcg@10")


def train_run(config: Path, run: Path, overrides: list[str]) -> None:
    """``recsys24 train --config CONFIG --output RUN OVERRIDES``; raises with its output's tail on failure."""
    env = dict(os.environ)
    if "DS_ACCELERATOR" not in env:
        import torch

        if not torch.cuda.is_available():
            env["DS_ACCELERATOR"] = "cpu"
    cmd = [sys.executable, "-m", "recsys24", "train", "--config", str(config), "--output", str(run), *overrides]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise Recsys24Error(f"training {config.name} into {run} failed: " + " | ".join(tail))


def markdown_table(results: dict[str, dict], split: str) -> str:
    """Rows of AUC, MRR, nDCG@5, nDCG@10 per scorer, best AUC first."""
    head = ["| model | AUC | MRR | nDCG@5 | nDCG@10 |", "|---|---:|---:|---:|---:|"]
    rows = [f"| {name} | " + " | ".join(f"{r[m]:.4f}" for m in COLUMNS) + " |"
            for name, r in sorted(results.items(), key=lambda kv: -kv[1]["auc"])]
    impressions = next(iter(results.values()))["impressions"] if results else 0
    return "\n".join([f"{split} split, {impressions:,} impressions", "", *head, *rows]) + "\n"


def compare(
    data: str | Path,
    prepared: str | Path,
    out: str | Path,
    split: str = "validation",
    models: tuple[str, ...] = MODELS,
    overrides: tuple[str, ...] = (),
    configs: str | Path = CONFIGS,
    log: Callable[[str], None] = print,
) -> dict[str, dict]:
    """Train, score and evaluate ``models`` (config names under ``configs``) and the heuristics on ``split``.

    data: the EB-NeRD folder; prepared: the folder of prepared splits (``train/``,
    ``<split>/``). overrides: extra ``section.key=value`` for every training run.
    Returns {display name: metrics}; also writes ``out/table.md`` and ``out/results.json``.
    """
    from recsys24.baselines import run_baseline
    from recsys24.data.split import open_split
    from recsys24.evaluation.evaluate import evaluate_scores
    from recsys24.inference.predict import merge_scores, predict_shard, resolve_prepared
    from recsys24.io import atomic_path, write_json

    out, prepared, configs = Path(out), Path(prepared), Path(configs)
    sp = open_split(data, split)
    target = resolve_prepared(prepared, split)
    scores: dict[str, Path] = {}
    for name in HEURISTICS:
        path = out / "scores" / split / f"{name}.parquet"
        if not path.is_file():
            run_baseline(name, sp, path)
        scores[name] = path
        log(f"{name}: {path}")
    for name in models:
        config = configs / f"{name}.yaml"
        if not config.is_file():
            raise Recsys24Error(f"{config}: no such config (models are config names under {configs})")
        run = out / "runs" / name
        if not (run / "summary.json").is_file():
            log(f"{name}: training {config} into {run}")
            train_run(config, run, [f"train.train_data={prepared / 'train'}",
                                    f"train.valid_data={prepared / split}", *overrides])
        folder = run / "scores" / split
        if not (folder / "scores.parquet").is_file():
            log(f"{name}: scoring {split}")
            predict_shard(run, target, folder, batch_size=1024)
            merge_scores(target, folder)
        scores[LABELS.get(name, name)] = folder / "scores.parquet"
    results = {name: evaluate_scores(path, sp) for name, path in scores.items()}
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "table.md") as tmp:
        tmp.write_text(markdown_table(results, split))
    write_json({"split": split, "scores": {k: str(v) for k, v in scores.items()}, "metrics": results},
               out / "results.json")
    return results
