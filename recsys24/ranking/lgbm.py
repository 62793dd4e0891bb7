"""Train, save and apply the LightGBM lambdarank ranker.

The ranker folder (written atomically)::

    RANKER/model.txt        the LightGBM booster (text format), best iteration
    RANKER/ranker.json      feature names, stacked score names, parameters, the
                            training features folders, sample and hold-out,
                            best iteration and its validation metrics
    RANKER/importance.csv   gain and split importance per feature, largest first
    RANKER/metrics.jsonl    one line per boosting round (``step``): ``val_auc``,
                            so ``recsys24 report`` draws it like a training run's curve
    RANKER/holdout_users.parquet   the held-out users (when training held users out)

Early stopping watches the group AUC of the validation rows (the contest's main
metric, computed per impression as ``recsys24 evaluate`` does).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from recsys24.data import schema as S
from recsys24.data.columns import list_series
from recsys24.errors import Recsys24Error
from recsys24.evaluation.metrics import accuracy
from recsys24.evaluation.scores import ScoresWriter, scores_frame
from recsys24.features.families import CATEGORICAL
from recsys24.features.groups import group_index, group_rank
from recsys24.model_inputs.feature_table import FeatureSet
from recsys24.io import atomic_path, read_ahead
from recsys24.ranking.data import Block, StackedScores, concat_blocks, iter_blocks, stacked_names, unit_hash

MODEL_FILE, SPEC_FILE = "model.txt", "ranker.json"
# options of `recsys24 features` that change what the features mean: a ranker is trained and used on one choice
FOLDER_OPTIONS = ("past_only", "split_history")
DEFAULT_PARAMS = {
    "objective": "lambdarank",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 200,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambdarank_truncation_level": 20,
    # Left to itself LightGBM times column- and row-wise histograms and keeps the faster, so a busy
    # machine can flip the choice between two runs and, with the summation order, the last digits of
    # every score. Column-wise is what it picks on the demo data; with it fixed, reruns are identical.
    "force_col_wise": True,
    "deterministic": True,
    "verbose": -1,
}


def _lists(values: np.ndarray, group: np.ndarray, name: str) -> pl.Series:
    """A list column of ``values`` cut into lists of ``group`` (LightGBM's list lengths) items."""
    return list_series(name, values, np.concatenate([[0], np.cumsum(group)]))


def group_metrics(scores: np.ndarray, block: Block) -> dict[str, float]:
    """Contest metrics (per impression, averaged) of flat scores over a block's impressions."""
    return accuracy(_lists(scores.astype(np.float32), block.group, S.SCORES),
                    _lists(block.label, block.group, S.LABELS))


def group_auc(scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray) -> float:
    """Mean per-impression ROC-AUC (ties count one half), over impressions with both labels.

    The rank-sum form of what ``group_metrics`` computes, fast enough to run
    after every boosting round:

    >>> group_auc(np.array([.9, .1, .5, .2, .2]), np.array([1, 0, 0, 1, 0]), np.array([0, 3, 5]))
    0.75
    """
    n = np.repeat(np.diff(offsets), np.diff(offsets))
    low = group_rank(scores, offsets, descending=False)  # 1-based, ties take the smallest
    high = n + 1 - group_rank(scores, offsets, descending=True)  # ... the largest
    group = group_index(offsets)
    count = np.diff(offsets)
    pos = np.bincount(group, weights=labels, minlength=count.size)
    rank_sum = np.bincount(group, weights=labels * (low + high) / 2, minlength=count.size)
    both = (pos > 0) & (pos < count)
    auc = (rank_sum[both] - pos[both] * (pos[both] + 1) / 2) / (pos[both] * (count[both] - pos[both]))
    return float(auc.mean()) if auc.size else float("nan")


def select_features(names: list[str], families: dict[str, list[str]], drop: tuple[str, ...]) -> list[str]:
    """The features folder's names without the ``drop`` families (or single features)."""
    unknown = [d for d in drop if d not in families and d not in names]
    if unknown:
        raise Recsys24Error(f"--drop: unknown family or feature {', '.join(unknown)} "
                            f"(families: {', '.join(families)})")
    gone = {n for d in drop for n in families.get(d, [d])}
    return [n for n in names if n not in gone]


def train_ranker(
    train: list[FeatureSet],
    out: str | Path,
    valid: FeatureSet | None = None,
    scores: dict[str, list[StackedScores]] | None = None,
    sample: float = 1.0,
    holdout: float = 0.1,
    seed: int = 0,
    rounds: int = 2000,
    early_stopping: int = 100,
    params: dict | None = None,
    drop: tuple[str, ...] = (),
    log: Callable[[str], None] = lambda msg: None,
    reading: Callable[[int, int], None] | None = None,
    boosting: Callable[[int, int], None] | None = None,
) -> dict:
    """Train a lambdarank model on ``train`` features; early-stop on ``valid`` or on held-out users.

    ``scores`` maps a features folder's path to the scores files stacked on it
    (the same names for every folder). ``reading(rows read, rows to read)`` is
    called after each features piece, ``boosting(round, rounds)`` after each
    boosting round. Returns the ranker's summary (ranker.json).
    """
    import lightgbm as lgb

    scores = scores or {}
    names = select_features(train[0].names, train[0].families, drop)
    for other in train[1:] + ([valid] if valid else []):
        for option in FOLDER_OPTIONS:
            if other.plan.get(option, False) != train[0].plan.get(option, False):
                raise Recsys24Error(f"{other.path}: made with another --{option.replace('_', '-')} "
                                    f"than {train[0].path}")
    score_names = [s.name for s in scores.get(str(train[0].path), [])]
    names = names + stacked_names(scores.get(str(train[0].path), []))
    in_training = valid is None or any(valid.path.resolve() == t.path.resolve() for t in train)
    held = (lambda rows, users: unit_hash(users, seed + 1) < holdout) if in_training else None

    def keep_train(rows, users):
        kept = unit_hash(rows, seed) < sample if sample < 1 else np.ones(rows.size, bool)
        return kept & ~held(rows, users) if held else kept

    t0 = time.perf_counter()
    log(f"reading {len(train)} features folder(s), {sample:.0%} of impressions")
    to_read = sum(f.plan["num_rows"] for f in train) + (0 if in_training else valid.plan["num_rows"])
    read = [0]

    def counted(blocks):
        for block in blocks:
            read[0] += block.rows_read
            if reading:
                reading(read[0], to_read)
            yield block

    train_block = concat_blocks(counted(b for f in train for b in iter_blocks(f, names, scores.get(str(f.path), []),
                                                                                keep=keep_train)))
    if in_training:
        source = train
        valid_keep = lambda rows, users: (unit_hash(rows, seed) < sample if sample < 1 else True) & held(rows, users)  # noqa: E731
    else:
        source = [valid]
        valid_keep = (lambda rows, users: unit_hash(rows, seed) < sample) if sample < 1 else None
    valid_block = concat_blocks(b for f in source for b in iter_blocks(f, names, scores.get(str(f.path), []),
                                                                         keep=valid_keep))
    if reading and not in_training:
        reading(to_read, to_read)
    read_seconds = time.perf_counter() - t0
    log(f"training on {train_block.x.shape[0]:,} candidates of {train_block.group.size:,} impressions, "
        f"early stopping on {valid_block.group.size:,} impressions")
    categorical = [n for n in CATEGORICAL if n in names]
    dtrain = lgb.Dataset(train_block.x, train_block.label, group=train_block.group, feature_name=names,
                         categorical_feature=categorical, free_raw_data=True)
    dvalid = lgb.Dataset(valid_block.x, valid_block.label, group=valid_block.group, reference=dtrain)
    train_rows = train_block.x.shape[0]
    del train_block  # LightGBM keeps its binned copy only

    history: list[dict] = []

    valid_offsets = np.concatenate([[0], np.cumsum(valid_block.group)]).astype(np.int64)

    def contest_metrics(preds, data):
        return "auc", group_auc(preds, valid_block.label, valid_offsets), True

    def record(env):
        entry = {"step": env.iteration + 1}
        entry.update({f"val_{name}": value for _, name, value, _ in env.evaluation_result_list})
        history.append(entry)
        if boosting:
            boosting(env.iteration + 1, rounds)
        if (env.iteration + 1) % 50 == 0:
            log(f"round {env.iteration + 1}: validation AUC {entry['val_auc']:.4f}")

    full = {**DEFAULT_PARAMS, "metric": "None", "seed": seed,
            "num_threads": os.cpu_count() or 1, **(params or {})}
    if full.get("force_row_wise"):  # the user's choice; LightGBM refuses both at once
        full.pop("force_col_wise")
    t1 = time.perf_counter()
    booster = lgb.train(full, dtrain, rounds, valid_sets=[dvalid], valid_names=["valid"], feval=contest_metrics,
                        callbacks=[record, lgb.early_stopping(early_stopping, first_metric_only=True, verbose=False)])
    train_seconds = time.perf_counter() - t1
    best = booster.best_iteration or booster.current_iteration()
    valid_scores = booster.predict(valid_block.x, num_iteration=best)
    summary = {
        "features": names, "scores": score_names, "categorical": categorical,
        "params": {k: v for k, v in full.items() if k != "num_threads"},
        "train_features": [str(f.path.resolve()) for f in train],
        "valid_features": None if in_training else str(valid.path.resolve()),
        **{option: train[0].plan.get(option, False) for option in FOLDER_OPTIONS}, "sample": sample, "seed": seed,
        "holdout": holdout if in_training else None, "best_iteration": best,
        "train_candidates": train_rows, "valid_impressions": int(valid_block.group.size),
        "valid_metrics": group_metrics(valid_scores, valid_block),
        "seconds": {"read": round(read_seconds, 1), "train": round(train_seconds, 1)},
    }
    gain = booster.feature_importance("gain", iteration=best)
    split = booster.feature_importance("split", iteration=best)
    importance = pl.DataFrame({"feature": names, "gain": gain, "split": split}).sort("gain", descending=True)
    with atomic_path(out) as tmp:
        tmp.mkdir()
        booster.save_model(str(tmp / MODEL_FILE), num_iteration=best)
        (tmp / SPEC_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        importance.write_csv(tmp / "importance.csv")
        (tmp / "metrics.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
        if in_training:
            users = np.unique(valid_block.user).astype(np.uint32)
            pl.DataFrame({S.USER_ID: users}).write_parquet(tmp / "holdout_users.parquet")
    return summary


def load_ranker(path: str | Path):
    """(booster, ranker.json) of a ranker folder."""
    import lightgbm as lgb

    path = Path(path)
    if not (path / SPEC_FILE).is_file() or not (path / MODEL_FILE).is_file():
        raise Recsys24Error(f"{path}: not a ranker folder (no {SPEC_FILE} / {MODEL_FILE}; "
                            "make one with `recsys24 rank train`)")
    return lgb.Booster(model_file=str(path / MODEL_FILE)), json.loads((path / SPEC_FILE).read_text())


def predict_ranker(ranker: str | Path, features: FeatureSet, scores: list[StackedScores], out: str | Path,
                   progress: Callable[[int, int], None] | None = None) -> int:
    """Score every row of ``features`` into the scores file ``out``; return the rows written."""
    booster, spec = load_ranker(ranker)
    given = [s.name for s in scores]
    if sorted(given) != sorted(spec["scores"]):
        missing = sorted(set(spec["scores"]) - set(given))
        extra = sorted(set(given) - set(spec["scores"]))
        raise Recsys24Error(f"{ranker}: trained with --scores {', '.join(spec['scores']) or '(none)'}; "
                            + (f"missing {', '.join(missing)}" if missing else f"not trained with {', '.join(extra)}"))
    for option in FOLDER_OPTIONS:
        if features.plan.get(option, False) != spec.get(option, False):
            raise Recsys24Error(f"{features.path}: {option}={features.plan.get(option, False)} but {ranker} was "
                                f"trained on {option}={spec.get(option, False)} features")
    order = {s.name: s for s in scores}
    scores = [order[n] for n in spec["scores"]]
    threads = os.cpu_count() or 1
    # features no tree splits on are not read: their values cannot change a score
    needed = {n for n, count in zip(spec["features"], booster.feature_importance("split")) if count > 0}
    with ScoresWriter(out) as writer:
        for block in read_ahead(iter_blocks(features, spec["features"], scores, labels=False, needed=needed)):
            values = booster.predict(block.x, num_threads=threads).astype(np.float32)
            writer.write(scores_frame(block.impression, block.user, _lists(values, block.group, S.SCORES)))
            if progress:
                progress(writer.rows, features.plan["num_rows"])
    return writer.rows

