"""Drop-one-family ablation of the features-only ranker: what each feature family adds.

    python benchmarks/bench_ablation.py --train FEAT_TRAIN --valid FEAT_VALID [--work DIR]

Trains ``recsys24 rank train`` once with every family and once without each
family (``--drop FAMILY``), early stopping on the validation features, and
prints a markdown table of validation AUC / MRR / nDCG@10 and the change in AUC.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", required=True, type=Path)
    ap.add_argument("--valid", required=True, type=Path)
    ap.add_argument("--work", type=Path, default=Path("bench_work/ablation"))
    ap.add_argument("--threads", type=int, default=None, help="LightGBM threads (default: every core)")
    args = ap.parse_args()
    from recsys24.features.folder import open_features
    from recsys24.ranking.folder import SPEC_FILE, RankerSpec

    families = list(open_features(args.train).families)
    rows = []
    for drop in [None, *families]:
        out = args.work / (f"without_{drop}" if drop else "all")
        cmd = [sys.executable, "-m", "recsys24", "rank", "train", "--features", str(args.train),
               "--valid-features", str(args.valid), "--out", str(out)] + (["--drop", drop] if drop else [])
        cmd += ["--param", f"num_threads={args.threads}"] if args.threads else []
        if not (out / SPEC_FILE).is_file():
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        spec = RankerSpec.read(out)
        rows.append((drop, spec.valid_metrics, len(spec.features)))
    base = rows[0][1]["auc"]
    print("| features | count | AUC | ΔAUC | MRR | nDCG@10 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for drop, m, n in rows:
        name = f"all but {drop}" if drop else "all families"
        delta = "" if drop is None else f"{m['auc'] - base:+.4f}"
        print(f"| {name} | {n} | {m['auc']:.4f} | {delta} | {m['mrr']:.4f} | {m['ndcg@10']:.4f} |")


if __name__ == "__main__":
    main()
