"""Benchmark: `recsys24 prepare` of the full-size synthetic test split (13.5M impressions).

    python benchmarks/bench_prepare.py [--data DIR] [--split test] [--work DIR]

Generates the synthetic ``large`` preset (test split only) under --work unless
--data points at an existing EB-NeRD folder, then runs ``recsys24 prepare`` in a
child process and prints wall time, impressions/s and the child's peak RSS.
Anchor (FACTS.md): the official toolkit's in-memory load of the same size, with
no validation and nothing written, took 105 s at 6.0 GB peak RSS on 2 cores.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from recsys24.data.prepared import open_prepared


def run_child(args: list[str]) -> tuple[float, float]:
    """Run ``python -m recsys24 ARGS``; return (seconds, peak RSS of the child in GB)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "recsys24", *args], check=True)
    seconds = time.perf_counter() - t0
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="existing EB-NeRD folder (default: synthesise large)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--work", type=Path, default=Path("bench_work"))
    args = ap.parse_args()

    data = args.data
    if data is None:
        data = args.work / "ebnerd_large"
        if not (data / args.split / "behaviors.parquet").exists():
            seconds, rss = run_child(["synth", str(data), "--preset", "large", "--splits", args.split])
            print(f"synth large ({args.split}): {seconds:.1f} s, peak RSS {rss:.2f} GB")
    out = args.work / f"prepared_{args.split}"
    shutil.rmtree(out, ignore_errors=True)
    seconds, rss = run_child(["prepare", "--data", str(data), "--split", args.split, "--out", str(out)])
    n = open_prepared(out).num_impressions
    print(f"prepare {args.split}: {n:,} impressions in {seconds:.1f} s = {n / seconds:,.0f} impressions/s; "
          f"peak RSS {rss:.2f} GB (anchor: official toolkit load 105 s, 6.0 GB)")


if __name__ == "__main__":
    main()
