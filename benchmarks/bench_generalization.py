"""Does the toolkit hold its level on click models it was not tuned to? One table over the synth panel.

    python benchmarks/bench_generalization.py --work DIR [--click-models category,burst,fatigue,topic]
        [--history overlapping] [--preset demo] [--config configs/tiny/cgh_f.yaml] [--design NAME]
        [--set KEY=VALUE ...] [--features-variant NAME] [--features-arg ARG ...] [--skip-stacked] [--ranker-only]

For every click model of ``recsys24 synth`` (EB-NeRD-like overlapping history files by
default), the recipe a user runs (``scripts/demo.sh``), each step a ``recsys24`` command:

1. ``synth`` (demo size), ``prepare`` train and validation, ``features`` of train,
   validation and test;
2. the features-only ranker: ``rank train`` on train, early stopping on validation;
   ``rank predict`` on validation;
3. the tiny CGh-f: ``train --config configs/tiny/cgh_f.yaml`` (with ``--set`` overrides:
   a design to measure), ``predict`` on validation;
4. the stacked ranker: ``rank train`` on the validation features plus the CGh-f's and the
   ranker's scores, 20% of the users held out; ``rank predict``;
5. the heuristics (``baseline``) and the oracle (the truth file's click probabilities).

It prints AUC on the whole validation split per scorer and click model, the gap
CGh-f − ranker, the stacked ranker against the features ranker on the held-out users,
and, for every history-derived feature, its train → test shift: the difference of the
means in units of the within-split standard deviation (the root mean square of the two
splits' SDs), with quantiles per split (beyond-accuracy rows left out).

Every step is cached: it is skipped when its output exists and was made by the same
command (``.bench-step.json`` beside it); a changed command makes it again. So a rerun
costs only what changed, and ``--design``/``--features-variant`` runs share the data,
features and rankers they have in common. Results go to ``WORK/results-<variant>-<design>.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

HISTORY_FEATURES = ("history_per_day", "history_len", "category_share", "subcategory_share", "topic_share",
                    "entity_share", "text_similarity", "text_similarity_rank", "already_read", "read_users",
                    "read_users_share", "read_seconds")
HEURISTICS = ("category", "freshness", "inview-count", "popular", "random")
STAMP = ".bench-step.json"


def recsys24(*args: str) -> list[str]:
    return [sys.executable, "-m", "recsys24", *map(str, args)]


def step(name: str, output: Path, *commands: list[str]) -> None:
    """Run ``commands`` unless ``output`` exists and was made by the same commands."""
    stamp = (output if output.suffix == "" else output.parent) / (STAMP if output.suffix == "" else
                                                                    f".{output.name}{STAMP}")
    wanted = [c[2:] if c[:2] == [sys.executable, "-m"] else c for c in commands]
    if output.exists() and stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        return
    if output.is_dir():
        shutil.rmtree(output)
    elif output.exists():
        output.unlink()
    t0 = time.perf_counter()
    for command in commands:
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if result.returncode:
            sys.exit(f"{name} failed ({' '.join(command)}):\n{result.stdout[-3000:]}")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(wanted))
    print(f"  {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)


def oracle_scores(data: Path, out: Path) -> None:
    """The truth file's click probabilities as a scores file of the validation split."""
    from recsys24.data import schema as S
    from recsys24.evaluation.scores import write_scores

    truth = pl.read_parquet(data / "synth_truth" / "validation.parquet", columns=["propensities"])
    rows = pl.read_parquet(data / "validation" / "behaviors.parquet", columns=[S.IMPRESSION_ID, S.USER_ID])
    write_scores(rows.with_columns(truth["propensities"].alias(S.SCORES)), out)


def evaluate(data: Path, scores: Path, users: Path | None = None) -> float:
    cmd = recsys24("evaluate", "--scores", scores, "--data", data, "--split", "validation", "--json")
    out = subprocess.run(cmd + (["--users", str(users)] if users else []), capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)["auc"]


def feature_shift(features: Path) -> dict[str, dict]:
    """Per history-derived feature: mean, SD and quantiles of train and test, and the shift of the mean."""
    def load(split):
        frame = pl.read_parquet(features / split / "pieces" / "*.parquet")
        return frame.filter(pl.col("impression_id") != 0)  # beyond-accuracy rows are not scored for accuracy

    train, test = load("train"), load("test")
    out = {}
    for name in HISTORY_FEATURES:
        if name not in train.columns:
            continue
        a, b = (f[name].to_numpy().astype(np.float64) for f in (train, test))
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        sd = float(np.sqrt((a.var() + b.var()) / 2)) or 1.0
        q = (0.1, 0.5, 0.9)
        out[name] = {"shift": float((b.mean() - a.mean()) / sd), "train_mean": float(a.mean()),
                     "test_mean": float(b.mean()), "train_q": np.quantile(a, q).tolist(),
                     "test_q": np.quantile(b, q).tolist()}
    return out


def run_click_model(args, cm: str) -> dict:
    from recsys24.training.runlog import TrainSummary

    work = args.work / cm
    data, prep = work / "data", work / "prepared"
    print(f"{cm}:", file=sys.stderr, flush=True)
    step("synth", data, recsys24("synth", data, "--preset", args.preset, "--seed", args.seed,
                                 "--click-model", cm, "--history", args.history))
    for split in ("train", "validation"):
        step(f"prepare {split}", prep / split, recsys24("prepare", "--data", data, "--split", split,
                                                        "--out", prep / split))
    feat = work / "features" / args.features_variant
    for split in ("train", "validation", "test"):
        step(f"features {split}", feat / split, recsys24("features", "--data", data, "--split", split,
                                                         "--out", feat / split, *args.features_arg))
    scores = {}
    for name in HEURISTICS:
        path = work / "scores" / f"{name}.parquet"
        step(name, path, recsys24("baseline", name, "--data", data, "--split", "validation", "--out", path))
        scores[name] = path
    scores["oracle"] = work / "scores" / "oracle.parquet"
    if not scores["oracle"].is_file():
        oracle_scores(data, scores["oracle"])

    ranker = work / "rankers" / args.features_variant
    step("features ranker", ranker,
         recsys24("rank", "train", "--features", feat / "train", "--valid-features", feat / "validation",
                  "--out", ranker),
         recsys24("rank", "predict", "--model", ranker, "--features", feat / "validation",
                  "--out", ranker / "validation"))
    scores["ranker"] = ranker / "validation" / "scores.parquet"

    if args.ranker_only:
        return {"auc": {name: evaluate(data, path) for name, path in scores.items()}, "shift": feature_shift(feat)}
    run = work / "runs" / args.features_variant / args.design
    overrides = [f"train.train_data={prep / 'train'}", f"train.valid_data={prep / 'validation'}",
                 f"train.train_features={feat / 'train'}", f"train.valid_features={feat / 'validation'}",
                 *args.set]
    step(f"CGh-f ({args.design})", run,
         recsys24("train", "--config", args.config, "--output", run, *overrides),
         recsys24("predict", "--model", run, "--prepared", prep, "--split", "validation", "--features",
                  feat / "validation", "--out", run / "scores" / "validation"),
         recsys24("predict-merge", "--prepared", prep, "--split", "validation", "--out", run / "scores" / "validation"))
    scores["cgh_f"] = run / "scores" / "validation" / "scores.parquet"

    holdout = None
    if not args.skip_stacked:
        stacked = work / "stacked" / args.features_variant / args.design
        stack = ["--scores", f"cgh_f={scores['cgh_f']}", "--scores", f"ranker={scores['ranker']}"]
        step("stacked ranker", stacked,
             recsys24("rank", "train", "--features", feat / "validation", *stack, "--holdout", "0.2",
                      "--out", stacked),
             recsys24("rank", "predict", "--model", stacked, "--features", feat / "validation", *stack,
                      "--out", stacked / "validation"))
        scores["stacked"] = stacked / "validation" / "scores.parquet"
        holdout = stacked / "holdout_users.parquet"

    result = {"auc": {name: evaluate(data, path) for name, path in scores.items()}}
    if holdout is not None:
        result["holdout_auc"] = {name: evaluate(data, scores[name], holdout) for name in ("stacked", "ranker",
                                                                                            "cgh_f")}
    result["shift"] = feature_shift(feat)
    result["cgh_f_best"] = TrainSummary.read(run).best_checkpoint
    return result


def print_tables(results: dict[str, dict], args) -> str:
    models = list(results)
    lines = [f"AUC, whole validation split (preset {args.preset}, {args.history} history files, features "
             f"'{args.features_variant}', CGh-f design '{args.design}')", "",
             "| scores | " + " | ".join(models) + " |", "| --- |" + " --- |" * len(models)]

    def row(label, values):
        lines.append(f"| {label} | " + " | ".join(values) + " |")

    names = [("oracle", "oracle (true click probabilities)"), ("ranker", "features ranker"),
             ("cgh_f", "tiny CGh-f"), ("stacked", "stacked ranker (in sample for 80% of users)")]
    for key, label in names + [(h, h) for h in HEURISTICS]:
        if all(key in r["auc"] for r in results.values()):
            row(label, [f"{r['auc'][key]:.4f}" for r in results.values()])
    if all("cgh_f" in r["auc"] for r in results.values()):
        row("**gap CGh-f − ranker**", [f"{r['auc']['cgh_f'] - r['auc']['ranker']:+.4f}" for r in results.values()])
    if all("holdout_auc" in r for r in results.values()):
        for key, label in (("stacked", "held-out users: stacked ranker"), ("ranker", "held-out users: features ranker"),
                           ("cgh_f", "held-out users: tiny CGh-f")):
            row(label, [f"{r['holdout_auc'][key]:.4f}" for r in results.values()])
        row("**held-out: stacked − features ranker**",
            [f"{r['holdout_auc']['stacked'] - r['holdout_auc']['ranker']:+.4f}" for r in results.values()])
    lines += ["", "Train → test shift of each history-derived feature's mean, in within-split SDs "
              "(train / test quantiles 10%, 50%, 90% of the first click model)", "",
              "| feature | " + " | ".join(models) + " | quantiles train | quantiles test |",
              "| --- |" + " --- |" * (len(models) + 2)]
    first = results[models[0]]["shift"]
    for name in first:
        q = " / ".join(f"{x:.3g}" for x in first[name]["train_q"]), " / ".join(f"{x:.3g}" for x in
                                                                               first[name]["test_q"])
        lines.append(f"| {name} | " + " | ".join(f"{r['shift'][name]['shift']:+.3f}" for r in results.values())
                     + f" | {q[0]} | {q[1]} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--click-models", default="category,burst,fatigue,topic")
    ap.add_argument("--history", default="overlapping", choices=["overlapping", "independent"])
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--seed", default="0")
    ap.add_argument("--config", default="configs/tiny/cgh_f.yaml")
    ap.add_argument("--design", default="shipped", help="name of the CGh-f run (a design measured with --set)")
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE override of the CGh-f config")
    ap.add_argument("--features-variant", default="default", help="name of the features folders")
    ap.add_argument("--features-arg", action="append", default=[], help="extra `recsys24 features` option")
    ap.add_argument("--skip-stacked", action="store_true")
    ap.add_argument("--ranker-only", action="store_true", help="no CGh-f and no stacked ranker (features variants)")
    args = ap.parse_args()
    args.work = args.work.resolve()
    results = {cm: run_click_model(args, cm) for cm in args.click_models.split(",")}
    table = print_tables(results, args)
    print(table)
    (args.work / f"results-{args.features_variant}-{args.design}.json").write_text(json.dumps(results, indent=1))
    (args.work / f"table-{args.features_variant}-{args.design}.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
