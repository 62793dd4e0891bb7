"""What LightGBM lambdarank holds per candidate while boosting, beyond its binned Dataset.

    python benchmarks/bench_lgbm_memory.py [--rows 10000000] [--features 52] [--rounds 15] [--from FEAT]

Each configuration runs in its own process: random float32 features, about 9%
clicks, impressions of 10 candidates, or with ``--from`` the first pieces of a
features folder holding ``--rows`` candidates, with their impressions and click
labels (real features are mostly zero in many columns, which LightGBM stores
sparse and bundles; random ones are not); ``recsys24.ranking.lgbm.DEFAULT_PARAMS``
with the histogram layout, bagging and sparse storage varied. It bins the Dataset, frees the
raw matrix, resets the peak (``/proc/self/clear_refs``), boosts ``--rounds``
rounds and prints the peak resident memory during boosting minus the resident
memory after binning, per candidate: the figure ``recsys24.ranking.memory``'s
``LIGHTGBM_ROW_BYTES`` stands for (Linux only); and the CPU seconds of a round
(wall seconds depend on what else the machine runs).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time

CONFIGS = {
    "column-wise, 80% bagging (default)": {},
    "column-wise, no bagging": {"bagging_fraction": 1.0, "bagging_freq": 0},
    "column-wise, dense storage": {"is_enable_sparse": False},
    "column-wise, no feature bundling": {"enable_bundle": False},
    "row-wise, 80% bagging": {"force_col_wise": False, "force_row_wise": True},
}


def resident() -> int:
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak() -> int:
    line = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
    return int(line.split()[1]) * 1024


def random_rows(rows: int, features: int):
    """(matrix, labels, impression sizes): random features, about 9% clicks, 10 candidates an impression."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, features), dtype=np.float32)
    return x, (rng.random(rows) < 0.09).astype(np.float32), np.full(rows // 10, 10)


def features_rows(folder: str, rows: int):
    """(matrix, labels, impression sizes) of the first pieces of a features folder with ``rows`` candidates."""
    import numpy as np

    from recsys24.features.folder import open_features
    from recsys24.ranking.data import iter_blocks, select

    features = open_features(folder)
    blocks, count = [], 0
    for block in iter_blocks(features, features.names):
        blocks.append(block)
        count += block.x.shape[0]
        if count >= rows:
            break
    x = np.concatenate([b.x for b in blocks])
    group = np.concatenate([b.group for b in blocks])
    del blocks
    return x, select(features).label[: x.shape[0]].astype(np.float32), group


def one(rows: int, features: int, rounds: int, overrides: dict, source: str | None) -> dict:
    import lightgbm as lgb

    from recsys24.ranking.lgbm import DEFAULT_PARAMS

    params = {**DEFAULT_PARAMS, "num_threads": os.cpu_count() or 1, "metric": "None", **overrides}
    if params.get("force_row_wise"):
        params.pop("force_col_wise", None)
    x, label, group = features_rows(source, rows) if source else random_rows(rows, features)
    rows = x.shape[0]
    dataset = lgb.Dataset(x, label, group=group, params=params).construct()
    del x
    gc.collect()
    binned = resident()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak from here on
    t0, c0 = time.perf_counter(), time.process_time()
    lgb.train(params, dataset, rounds)
    return {"rows": rows, "binned_gb": binned / 1e9, "boosting_bytes_per_row": (peak() - binned) / rows,
            "seconds_per_round": (time.perf_counter() - t0) / rounds,
            "cpu_seconds_per_round": (time.process_time() - c0) / rounds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--features", type=int, default=52)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--from", dest="source", help="a features folder: its first pieces instead of random rows")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.rows, args.features, args.rounds, CONFIGS[args.one], args.source)))
        return
    what = f"the first pieces of {args.source}" if args.source else f"random rows x {args.features} features"
    print(f"about {args.rows:,} candidates, {what}, {args.rounds} rounds, {os.cpu_count()} threads")
    print("| histograms, bagging, storage | binned Dataset | boosting bytes per candidate | CPU s per round | s per round |")
    print("| --- | --- | --- | --- | --- |")
    for name in CONFIGS:
        out = subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--features", str(args.features),
                              "--rounds", str(args.rounds), "--one", name, *(["--from", args.source] if args.source
                                                                             else [])],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {name} | {r['binned_gb']:.2f} GB | {r['boosting_bytes_per_row']:.0f} | "
              f"{r['cpu_seconds_per_round']:.2f} | {r['seconds_per_round']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
