"""Benchmark: `recsys24 features` and `recsys24 rank` at the contest's full scale.

    python benchmarks/bench_features.py [--data DIR] [--work DIR] [--samples 1.0,0.2] [--rounds 300]

Steps, each in a child process whose wall time and peak RSS are printed:

1. (unless --data) ``recsys24 synth`` of the ``large`` preset, train and test splits;
2. ``recsys24 features`` of the test split (13,536,710 rows, ~205M candidates);
3. ``recsys24 features`` of the train split (12,063,890 rows);
4. ``recsys24 rank train`` on the train features, once per impression sample of
   ``--samples`` (1.0 = every candidate), early stopping on 5% of the users held
   out: time, peak RSS against the run's own memory estimate, held-out AUC;
5. ``recsys24 rank predict`` of the test features with the ranker of the first
   sample (``--predict-sample`` picks another), and the throughput in candidate ×
   tree evaluations per second against LightGBM's own ``booster.predict`` on an
   in-memory matrix of one features piece (what reading, stacking and writing
   cost on top).

Targets on the 2-core, 24 GB machine: features ≤ 10 min and ≤ 8 GB each; rank
train ≤ 16 GB at --sample 1.0 (time stated); rank predict time stated.
"""

from __future__ import annotations

import argparse
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
    ap.add_argument("--samples", default="1.0,0.2", help="impression samples the ranker is trained on, in turn")
    ap.add_argument("--predict-sample", type=float, default=None, help="the sample whose ranker scores test")
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--learning-rate", type=float, default=0.1,
                    help="a lower rate keeps the validation AUC rising longer, so the ranker keeps more trees")
    ap.add_argument("--skip", default="", help="comma-separated steps to skip (features-test, features-train, "
                                               "rank-train, rank-predict), e.g. to rerun one step")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    from recsys24.features.folder import open_features
    from recsys24.ranking.folder import SPEC_FILE, RankerSpec

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
        fs = open_features(out)
        size = sum(p.stat().st_size for p in (out / "pieces").glob("*.parquet")) / 1e9
        results[f"features {split}"] = (seconds, rss)
        print(f"features {split}: {fs.plan.num_rows:,} rows, {fs.plan.num_candidates:,} candidates, "
              f"{len(fs.names)} features in {seconds:.1f} s "
              f"({fs.plan.num_candidates / seconds:,.0f} candidates/s), peak RSS {rss:.2f} GB, {size:.1f} GB on disk")
    samples = [float(x) for x in args.samples.split(",")]
    for sample in samples:
        ranker = args.work / f"ranker-{sample:g}"
        if "rank-train" in skip or (ranker / SPEC_FILE).is_file():
            continue
        seconds, rss = run_child(["rank", "train", "--features", str(args.work / "features" / "train"),
                                  "--sample", str(sample), "--holdout", "0.05", "--rounds", str(args.rounds),
                                  "--param", f"learning_rate={args.learning_rate:g}", "--out", str(ranker)])
        spec = RankerSpec.read(ranker)
        print(f"rank train --sample {sample:g}: {spec.train_candidates:,} candidates, best round "
              f"{spec.best_iteration} of {args.rounds}, {seconds:.1f} s (selecting + binning + boosting "
              f"{spec.seconds['fit']} s), peak RSS {rss:.2f} GB (estimated {spec.memory_estimate_gb} GB); "
              f"held-out users AUC {spec.valid_metrics['auc']:.4f} on {spec.valid_impressions:,} impressions")
    if "rank-predict" not in skip:
        ranker = args.work / f"ranker-{(args.predict_sample or samples[0]):g}"
        features = args.work / "features" / "test"
        out = args.work / f"scores-{ranker.name}"
        seconds, rss = run_child(["rank", "predict", "--model", str(ranker), "--features", str(features),
                                  "--out", str(out)])
        booster_rate, candidates, trees = booster_throughput(ranker, features)
        ours = candidates * trees / seconds
        print(f"rank predict test: {candidates:,} candidates × {trees} trees in {seconds:.1f} s, peak RSS "
              f"{rss:.2f} GB: {ours / 1e6:.1f}M candidate-tree evaluations/s; LightGBM's booster.predict on one "
              f"in-memory piece: {booster_rate / 1e6:.1f}M/s (ratio {ours / booster_rate:.2f})")


def booster_throughput(ranker: Path, features: Path) -> tuple[float, int, int]:
    """(candidate × tree evaluations per second of ``booster.predict`` on one piece's in-memory matrix,
    the split's candidates, the trees), with the threads rank predict uses."""
    from recsys24.features.folder import open_features
    from recsys24.ranking.data import iter_blocks
    from recsys24.ranking.predict import load_ranker

    model, spec = load_ranker(ranker)
    fs = open_features(features)
    block = next(iter_blocks(fs, spec.features, needed=model.used(spec.features), pieces=[0]))
    t0 = time.perf_counter()
    model.predict(block.x)
    seconds = time.perf_counter() - t0
    return block.x.shape[0] * model.trees / seconds, fs.plan.num_candidates, model.trees


if __name__ == "__main__":
    main()
