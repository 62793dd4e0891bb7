"""``recsys24 rank train``: choose the rows, check the memory, fit with early stopping, refit, write the folder.

The ranker folder (written atomically)::

    RANKER/model.txt | model.cbm   the model (LightGBM text, CatBoost binary), at its best round
    RANKER/ranker.json      the learner, feature names, stacked score names, parameters, the
                            features folders, sample, hold-out and seed, the early-stopping
                            round and its validation metrics, and under ``fit`` which rows
                            and how many rounds made the saved model (train + validation
                            after ``refit``); the model file's size and hash
    RANKER/importance.csv   gain and split importance per feature, largest first
    RANKER/metrics.jsonl    one line per boosting round (``step``) of the early-stopping fit:
                            ``val_auc``, drawn by ``recsys24 report`` like a training curve
    RANKER/holdout_users.parquet   the users held out of every fit (when any are)

Which rows (seeded hashes of row and user ids; see :mod:`recsys24.ranking.data`):

- without ``valid`` (or with one of the training folders), ``holdout`` (default
  0.1) of the users are held out of training and early-stopped on;
- with a separate ``valid`` folder, the model trains on ``train`` and
  early-stops on ``valid``, less ``holdout`` (default 0) of its users, who are
  then kept out of everything, so a figure on them is out of sample;
- ``refit``: after early stopping, train again on train and the same
  validation rows at the best round count (the 1st place's recipe for test).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from recsys24.data import schema as S
from recsys24.errors import Recsys24Error
from recsys24.features.families import CATEGORICAL
from recsys24.io import atomic_path
from recsys24.model_inputs.feature_table import FeatureSet
from recsys24.ranking import catboost_ranker, lgbm
from recsys24.ranking.data import PieceReader, Selection, StackedScores, select, stacked_names, unit_hash
from recsys24.ranking.memory import Footprint, require_fit
from recsys24.ranking.metrics import group_metrics

SPEC_FILE = "ranker.json"
LEARNERS = {"lightgbm": lgbm, "catboost": catboost_ranker}
# options of `recsys24 features` that change what the features mean: a ranker is trained and used on one choice
FOLDER_OPTIONS = ("past_only", "split_history")


@dataclass(frozen=True)
class RankTraining:
    """How ``rank train`` fits: the learner, its parameters, and which rows."""

    learner: str = "lightgbm"
    params: dict = field(default_factory=dict)  # the learner's own parameter names
    sample: float = 1.0  # share of impressions read (seeded by row)
    holdout: float | None = None  # share of users held out (default: 0.1 without separate validation, else 0)
    seed: int = 0
    rounds: int = 2000
    early_stopping: int = 100
    refit: bool = False
    drop: tuple[str, ...] = ()  # feature families or single features left out
    memory: float | None = None  # bytes the run may use (default: what the machine has available)

    def check(self) -> dict:
        """Refuse bad options before any data is read; return the learner's full parameters."""
        if self.learner not in LEARNERS:
            raise Recsys24Error(f"--learner must be one of {', '.join(LEARNERS)}, got {self.learner!r}")
        if self.rounds < 1 or self.early_stopping < 1:
            raise Recsys24Error(f"--rounds must be at least 1, got {self.rounds}" if self.rounds < 1 else
                                f"early stopping must wait at least 1 round, got {self.early_stopping}")
        if not 0 < self.sample <= 1:
            raise Recsys24Error(f"--sample must be in (0, 1], got {self.sample}")
        if self.holdout is not None and not 0 <= self.holdout < 1:
            raise Recsys24Error(f"--holdout must be in [0, 1), got {self.holdout}")
        return LEARNERS[self.learner].check_params(dict(self.params), self.seed)


def select_features(names: list[str], families: dict[str, list[str]], drop: tuple[str, ...]) -> list[str]:
    """The features folder's names without the ``drop`` families (or single features)."""
    unknown = [d for d in drop if d not in families and d not in names]
    if unknown:
        raise Recsys24Error(f"--drop: unknown family or feature {', '.join(unknown)} "
                            f"(families: {', '.join(families)})")
    gone = {n for d in drop for n in families.get(d, [d])}
    return [n for n in names if n not in gone]


def check_writable(out: Path) -> None:
    """Refuse an ``--out`` that cannot be written before any work (the first folder that exists must take files)."""
    parent = out.resolve().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise Recsys24Error(f"{out}: cannot write it ({parent} is not a writable folder)")


def _same(a: FeatureSet, b: FeatureSet) -> bool:
    return a.path.resolve() == b.path.resolve()


def train_ranker(train: list[FeatureSet], out: str | Path, valid: FeatureSet | None = None,
                 scores: dict[str, list[StackedScores]] | None = None, how: RankTraining = RankTraining(),
                 log: Callable[[str], None] = lambda msg: None,
                 reading: Callable[[int, int], None] | None = None,
                 boosting: Callable[[int, int], None] | None = None) -> dict:
    """Train a ranker on ``train`` features; early-stop on ``valid`` or on held-out users; write ``out``.

    ``scores`` maps a features folder's path to the scores files stacked on it
    (the same names for every folder). ``reading(candidates read, to read)`` and
    ``boosting(round, rounds)`` report progress. Returns ranker.json's content.
    """
    out = Path(out)
    params = how.check()
    check_writable(out)
    learner = LEARNERS[how.learner]
    scores = scores or {}
    separate = valid is not None and not any(_same(valid, t) for t in train)
    for other in train[1:] + ([valid] if separate else []):
        for option in FOLDER_OPTIONS:
            if other.plan.get(option, False) != train[0].plan.get(option, False):
                raise Recsys24Error(f"{other.path}: made with another --{option.replace('_', '-')} "
                                    f"than {train[0].path}")
    if how.refit and not separate:
        raise Recsys24Error("--refit needs --valid-features, a split other than --features to early-stop on "
                            "and then train on")
    holdout = how.holdout if how.holdout is not None else (0.0 if separate else 0.1)
    if not separate and holdout == 0:
        raise Recsys24Error("nothing to early-stop on: give --valid-features, or --holdout above 0")
    stack = lambda f: scores.get(str(f.path), [])  # noqa: E731
    names = select_features(train[0].names, train[0].families, how.drop) + stacked_names(stack(train[0]))
    categorical = [n for n in CATEGORICAL if n in names]

    def sampled(rows):
        return unit_hash(rows, how.seed) < how.sample if how.sample < 1 else np.ones(rows.size, bool)

    def held(users):
        return unit_hash(users, how.seed + 1) < holdout

    t0 = time.perf_counter()
    log(f"choosing {how.sample:.0%} of impressions from the behaviors files")
    if separate:
        train_sel = [select(f, stack(f), lambda r, u: sampled(r)) for f in train]
        valid_sel = [select(valid, stack(valid), lambda r, u: sampled(r) & ~held(u))]
    else:
        train_sel = [select(f, stack(f), lambda r, u: sampled(r) & ~held(u)) for f in train]
        valid_sel = [select(f, stack(f), lambda r, u: sampled(r) & held(u)) for f in train]
    folders = train + ([valid] if separate else [])
    piece = max(int(np.add.reduceat(s.inview, [lo for lo, _, _ in f.pieces()]).max())
                for s, f in zip(train_sel + (valid_sel if separate else []), folders))
    n_train, n_valid = sum(s.candidates for s in train_sel), sum(s.candidates for s in valid_sel)
    if n_valid == 0 or n_train == 0:
        raise Recsys24Error(f"no {'validation' if n_train else 'training'} impressions selected "
                            "(raise --sample or --holdout)")
    footprint = Footprint(how.learner, n_train + (n_valid if how.refit else 0), 0 if how.refit else n_valid,
                          len(names), piece)
    need = max(require_fit(footprint, how.sample, how.memory),
               require_fit(Footprint(how.learner, n_train, n_valid, len(names), piece), how.sample, how.memory))
    log(f"{how.learner}: {n_train:,} training and {n_valid:,} early-stopping candidates, "
        f"about {need / 1e9:.1f} GB")

    def parts(selections, sources):
        return [(s, PieceReader(f, names, stack(f), selection=s)) for s, f in zip(selections, sources)]

    valid_sources = [valid] if separate else train
    to_read, done = n_train + n_valid + ((n_train + n_valid) if how.refit else 0), [0]

    def counted(n):
        done[0] += n
        if reading:
            reading(done[0], to_read)

    planned = [how.rounds]  # the refit runs the best round count

    def on_round(entry):
        if boosting:
            boosting(entry["step"], planned[0])
        if entry["step"] % 50 == 0 and "val_auc" in entry:
            log(f"round {entry['step']}: validation AUC {entry['val_auc']:.4f}")

    model, best, history, valid_scores = learner.fit(
        parts(train_sel, train), parts(valid_sel, valid_sources), names, categorical, params, how.rounds,
        how.early_stopping, counted, on_round)
    label = np.concatenate([s.label for s in valid_sel])
    group = np.concatenate([s.group for s in valid_sel])
    valid_metrics = group_metrics(valid_scores, label, group)
    seconds = {"fit": round(time.perf_counter() - t0, 1)}
    fit_sel, fit_rounds = train_sel, best
    if how.refit:
        log(f"refit: {n_train + n_valid:,} candidates of train and validation, {best} rounds")
        del model
        planned[0] = best
        t1 = time.perf_counter()
        model, _, _, _ = learner.fit(parts(train_sel, train) + parts(valid_sel, [valid]), None, names, categorical,
                                     params, best, how.early_stopping, counted, on_round)
        seconds["refit"] = round(time.perf_counter() - t1, 1)
        fit_sel = train_sel + valid_sel
    summary = {
        "learner": how.learner, "features": names, "scores": [s.name for s in stack(train[0])],
        "categorical": categorical, "params": {k: v for k, v in params.items() if k not in ("num_threads",
                                                                                         "thread_count")},
        "train_features": [str(f.path.resolve()) for f in train],
        "valid_features": str(valid.path.resolve()) if separate else None,
        **{option: train[0].plan.get(option, False) for option in FOLDER_OPTIONS},
        "sample": how.sample, "seed": how.seed, "holdout": holdout, "best_iteration": best,
        "train_candidates": n_train, "valid_impressions": int(group.size), "valid_metrics": valid_metrics,
        "fit": {"features": [str(s.features.path.resolve()) for s in fit_sel], "refit": how.refit,
                "impressions": int(sum(s.group.size for s in fit_sel)),
                "candidates": int(sum(s.candidates for s in fit_sel)), "rounds": fit_rounds},
        "memory_estimate_gb": round(need / 1e9, 2), "seconds": seconds,
    }
    _write(out, learner, model, fit_rounds, summary, history, _held_users(valid_sel, holdout, held))
    return summary


def _held_users(selections: list[Selection], holdout: float, held) -> np.ndarray | None:
    """The users kept out of every fit: ``holdout`` of the users of the early-stopping split(s)."""
    if holdout == 0:
        return None
    users = np.unique(np.concatenate([s.user for s in selections]))
    return users[held(users)].astype(np.uint32)


def _write(out: Path, learner, model, rounds: int, summary: dict, history: list[dict],
           held_users: np.ndarray | None) -> None:
    with atomic_path(out) as tmp:
        tmp.mkdir()
        gain, split = learner.save(model, rounds, tmp)
        model_path = tmp / learner.MODEL_FILE
        summary["model_file"] = {"name": learner.MODEL_FILE, "bytes": model_path.stat().st_size,
                                 "sha256": hashlib.sha256(model_path.read_bytes()).hexdigest()}
        (tmp / SPEC_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        pl.DataFrame({"feature": summary["features"], "gain": np.asarray(gain, float),
                      "split": np.asarray(split, float)}).sort("gain", descending=True).write_csv(tmp / "importance.csv")
        (tmp / "metrics.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
        if held_users is not None:
            pl.DataFrame({S.USER_ID: held_users}).write_parquet(tmp / "holdout_users.parquet")
