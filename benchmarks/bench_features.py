"""Benchmark: `recsys24 features` and `recsys24 rank` at the contest's full scale.

    python benchmarks/bench_features.py [--data DIR] [--work DIR] [--sample 0.2] [--rounds 300]

Steps, each in a child process whose wall time and peak RSS are printed:

1. (unless --data) ``recsys24 synth`` of the ``large`` preset, train and test splits;
2. ``recsys24 features`` of the test split (13,536,710 rows, ~205M candidates);
3. ``recsys24 features`` of the train split (12,063,890 rows);
4. ``recsys24 rank train`` on the train features: an impression sample (--sample),
   early stopping on 5% of the users held out;
5. ``recsys24 rank predict`` of the test features, and ``submission write`` is left
   to ``bench_eval.py``.

Targets on the 2-core, 24 GB machine: features ≤ 10 min and ≤ 8 GB each; rank
train ≤ 24 GB (time stated); rank predict on test ≤ 10 min.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def run_child(args: list[str]) -> tuple[float, float]:
    """Run ``python -m recsys24 ARGS``; return (seconds, the child's own peak RSS in GB)."""
    t0 = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "recsys24", *args])
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: recsys24 {' '.join(args)}")
    return seconds, usage.ru_maxrss / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="existing EB-NeRD folder with train and test (default: synthesise large)")
    ap.add_argument("--work", type=Path, default=Path("bench_work"))
    ap.add_argument("--sample", type=float, default=0.2, help="share of train impressions the ranker reads")
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--skip", default="", help="comma-separated steps to skip (features-test, features-train, "
                                               "rank-train, rank-predict), e.g. to rerun one step")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    data = args.data
    if data is None:
        data = args.work / "ebnerd_large"
        if not (data / "test" / "behaviors.parquet").exists():
            seconds, rss = run_child(["synth", str(data), "--preset", "large", "--splits", "train,test"])
            print(f"synth large (train, test): {seconds:.1f} s, peak RSS {rss:.2f} GB")
    results = {}
    for split in ("test", "train"):
        if f"features-{split}" in skip:
            continue
        out = args.work / "features" / split
        seconds, rss = run_child(["features", "--data", str(data), "--split", split, "--out", str(out)])
        plan = json.loads((out / "features.json").read_text())
        size = sum(p.stat().st_size for p in (out / "pieces").glob("*.parquet")) / 1e9
        results[f"features {split}"] = (seconds, rss)
        print(f"features {split}: {plan['num_rows']:,} rows, {plan['num_candidates']:,} candidates, "
              f"{sum(len(v) for v in plan['families'].values())} features in {seconds:.1f} s "
              f"({plan['num_candidates'] / seconds:,.0f} candidates/s), peak RSS {rss:.2f} GB, {size:.1f} GB on disk")
    ranker = args.work / "ranker"
    if "rank-train" not in skip:
        seconds, rss = run_child(["rank", "train", "--features", str(args.work / "features" / "train"),
                                  "--sample", str(args.sample), "--holdout", "0.05", "--rounds", str(args.rounds),
                                  "--param", "learning_rate=0.1", "--out", str(ranker)])
        spec = json.loads((ranker / "ranker.json").read_text())
        print(f"rank train: {spec['train_candidates']:,} candidates ({args.sample:.0%} of impressions), "
              f"{spec['best_iteration']} rounds, {seconds:.1f} s (read {spec['seconds']['read']} s, "
              f"LightGBM {spec['seconds']['train']} s), peak RSS {rss:.2f} GB; held-out users AUC "
              f"{spec['valid_metrics']['auc']:.4f} on {spec['valid_impressions']:,} impressions")
    if "rank-predict" not in skip:
        scores = args.work / "ranker_test.parquet"
        seconds, rss = run_child(["rank", "predict", "--model", str(ranker), "--features",
                                  str(args.work / "features" / "test"), "--out", str(scores)])
        print(f"rank predict test: {seconds:.1f} s, peak RSS {rss:.2f} GB")


if __name__ == "__main__":
    main()
