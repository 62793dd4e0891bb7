"""Time evaluation and submission on a full-size synthetic test split; print figures.

    recsys24 synth /tmp/large --preset large --splits test      # ~13.5M impressions
    python benchmarks/bench_eval.py /tmp/large [--baseline freshness]

Stages, each in its own process so its peak RSS is its own:
  scores    the baseline's scores file (not part of the targets)
  accuracy  all accuracy metrics from the files, against the truth labels in
            DIR/synth_truth/test.parquet (reads + checks + metrics)
  write     scores file -> contest zip (check, rank, format, compress)
  validate  the zip against the split
Targets (2-core box, 13.5M rows): accuracy <= 60 s, write <= 48 s,
validate <= 48 s, peak RSS <= 4 GB per stage. The official toolkit's way took
89 s to rank + 151 s to write and zip (FACTS.md).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

TARGETS = {"accuracy": 60, "write": 48, "validate": 48}


def run_stage(stage: str, data: Path, work: Path, baseline: str) -> dict:
    from recsys24.data.split import open_split

    split = open_split(data, "test")
    scores, zip_path = work / f"{baseline}.parquet", work / "submission.zip"
    t0 = time.perf_counter()
    if stage == "scores":
        from recsys24.baselines import run_baseline

        info = {"rows": run_baseline(baseline, split, scores)}
    elif stage == "accuracy":
        from recsys24.evaluation.evaluate import evaluate_scores

        info = evaluate_scores(scores, split, data / "synth_truth" / "test.parquet")
    elif stage == "write":
        from recsys24.submission.write import write_submission

        info = {"lines": write_submission(scores, split, zip_path), "zip_mb": 0}
        info["zip_mb"] = round(zip_path.stat().st_size / 2**20, 1)
    elif stage == "validate":
        from recsys24.submission.validate import validate_submission

        info = {"lines": validate_submission(zip_path, split)}
    else:
        raise SystemExit(f"unknown stage {stage}")
    seconds = time.perf_counter() - t0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return {"stage": stage, "seconds": round(seconds, 1), "peak_rss_gb": round(peak_gb, 2), **info}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="folder written by `recsys24 synth --preset large --splits test`")
    ap.add_argument("--work", type=Path, default=None, help="where scores and zip go (default DATA/bench)")
    ap.add_argument("--baseline", default="freshness")
    ap.add_argument("--stage", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    work = args.work or args.data / "bench"
    work.mkdir(parents=True, exist_ok=True)
    if args.stage:
        print(json.dumps(run_stage(args.stage, args.data, work, args.baseline)))
        return
    for stage in ("scores", "accuracy", "write", "validate"):
        cmd = [sys.executable, __file__, str(args.data), "--work", str(work), "--baseline", args.baseline, "--stage", stage]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        target = TARGETS.get(stage)
        verdict = "" if target is None else (" ok" if r["seconds"] <= target and r["peak_rss_gb"] <= 4 else " MISSED")
        extra = {k: v for k, v in r.items() if k not in ("stage", "seconds", "peak_rss_gb")}
        extra = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in extra.items()}
        print(f"{stage:>9}: {r['seconds']:7.1f} s  peak RSS {r['peak_rss_gb']:5.2f} GB"
              f"{'' if target is None else f'  (target {target} s)'}{verdict}  {extra}", flush=True)


if __name__ == "__main__":
    main()
