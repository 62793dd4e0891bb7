"""``recsys24 rank train``: choose the rows, check the memory, fit with early stopping, refit, write the folder.

The ranker folder (its layout, and ``ranker.json``'s :class:`RankerSpec`: :mod:`recsys24.ranking.folder`)
is written atomically.

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

import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from recsys24.allocator import large_blocks_by_mmap, release_freed_memory
from recsys24.data import schema as S
from recsys24.errors import Recsys24Error
from recsys24.evaluation.scores import SplitData, read_provenance
from recsys24.features.families import CATEGORICAL
from recsys24.io import atomic_path
from recsys24.features.folder import FeatureSet
from recsys24.ranking import catboost_ranker, lgbm
from recsys24.ranking.data import (PieceReader, Selection, StackedScores, select, select_each, stacked_names,
                                   unit_hash)
from recsys24.ranking.folder import FitRecord, ModelFile, RankerSpec
from recsys24.ranking.memory import Footprint, require_fit
from recsys24.ranking.metrics import group_metrics

LEARNERS = {"lightgbm": lgbm, "catboost": catboost_ranker}


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
    memory: float | None = None  # bytes the run may use (default: memory.available_bytes())

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


@dataclass
class Rows:
    """What a run fits on and early-stops on, chosen from the behaviors files before any feature is read."""

    train: list[Selection]  # one per training folder
    valid: list[Selection]  # the early-stopping rows: of --valid-features, or the held-out users of each folder
    names: list[str]  # feature columns, stacked scores included
    categorical: list[str]
    holdout: float
    separate: bool  # early stopping on a folder of its own
    piece: int  # candidates of the largest piece read

    @property
    def train_candidates(self) -> int:
        return sum(s.candidates for s in self.train)

    @property
    def valid_candidates(self) -> int:
        return sum(s.candidates for s in self.valid)


def choose_rows(train: list[FeatureSet], valid: FeatureSet | None, scores: dict[str, list[StackedScores]],
                how: RankTraining) -> Rows:
    """The seeded impression sample and user hold-out of every folder, with labels (see the module doc)."""
    separate = valid is not None and not any(_same(valid, t) for t in train)
    for other in train[1:] + ([valid] if separate else []):
        if not other.plan.compatible(train[0].plan):
            option = other.plan.differing(train[0].plan)[0]
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

    def sampled(rows):
        return unit_hash(rows, how.seed) < how.sample if how.sample < 1 else np.ones(rows.size, bool)

    def held(users):
        return unit_hash(users, how.seed + 1) < holdout

    if separate:
        train_sel = [select(f, stack(f), lambda r, u: sampled(r)) for f in train]
        valid_sel = [select(valid, stack(valid), lambda r, u: sampled(r) & ~held(u))]
    else:  # one pass over each folder's behaviors for its training and its held-out rows
        pairs = [select_each(f, stack(f), [lambda r, u: sampled(r) & ~held(u), lambda r, u: sampled(r) & held(u)])
                 for f in train]
        train_sel, valid_sel = [t for t, _ in pairs], [v for _, v in pairs]
    pieces = [(s, f) for s, f in zip(train_sel, train)] + ([(valid_sel[0], valid)] if separate else [])
    piece = max(int(np.add.reduceat(s.inview.astype(np.int64), [lo for lo, _, _ in f.pieces()]).max()) for s, f in pieces)
    rows = Rows(train_sel, valid_sel, names, [n for n in CATEGORICAL if n in names], holdout, separate,
                piece)
    if rows.train_candidates == 0 or rows.valid_candidates == 0:
        raise Recsys24Error(f"no {'validation' if rows.train_candidates else 'training'} impressions selected "
                            "(raise --sample or --holdout)")
    return rows


def check_memory(rows: Rows, how: RankTraining, params: dict) -> tuple[float, dict]:
    """The estimated peak bytes of the run (its refit included) and the learner's parameters to run it with.

    A LightGBM run over ``how.memory`` with its default sparse storage, and
    within it with dense storage, is stored dense (unless the user set the
    storage); one over it either way is refused.
    """
    n_train, n_valid, n = rows.train_candidates, rows.valid_candidates, len(rows.names)

    def need(dense: bool) -> float:
        fits = [Footprint(how.learner, n_train, n_valid, n, rows.piece, dense)]
        if how.refit:
            fits.append(Footprint(how.learner, n_train + n_valid, 0, n, rows.piece, dense))
        return max(require_fit(f, how.sample, how.memory) for f in fits)

    if how.learner != "lightgbm" or lgbm.storage_chosen(how.params):
        return need(dense=lgbm.stored_dense(params)), params
    try:
        return need(dense=False), params
    except Recsys24Error:
        return need(dense=True), {**params, "is_enable_sparse": False}


def train_ranker(train: list[FeatureSet], out: str | Path, valid: FeatureSet | None = None,
                 scores: dict[str, list[StackedScores]] | None = None, how: RankTraining = RankTraining(),
                 log: Callable[[str], None] = lambda msg: None,
                 reading: Callable[[int, int], None] | None = None,
                 boosting: Callable[[int, int], None] | None = None) -> RankerSpec:
    """Train a ranker on ``train`` features; early-stop on ``valid`` or on held-out users; write ``out``.

    ``scores`` maps a features folder's path to the scores files stacked on it
    (the same names for every folder). ``reading(candidates read, to read)`` and
    ``boosting(round, rounds)`` report progress. Three steps: :func:`read_rows`,
    :func:`fit_rows`, :func:`write_ranker`. Returns what ranker.json records.
    """
    out, scores = Path(out), scores or {}
    params = how.check()
    check_writable(out)
    t0 = time.perf_counter()
    rows, params, need = read_rows(train, valid, scores, how, params, log)
    fitted = fit_rows(rows, how, params, t0, log, reading, boosting)
    label = np.concatenate([s.label for s in rows.valid])
    group = np.concatenate([s.group for s in rows.valid])
    spec = RankerSpec(
        learner=how.learner, features=rows.names, scores=[s.name for s in scores.get(str(train[0].path), [])],
        categorical=rows.categorical,
        params={k: v for k, v in params.items() if k not in ("num_threads", "thread_count")},
        train_features=[str(f.path.resolve()) for f in train],
        valid_features=str(valid.path.resolve()) if rows.separate else None,
        feature_options=train[0].plan.options,
        sample=how.sample, seed=how.seed, holdout=rows.holdout, best_iteration=fitted.best,
        train_candidates=rows.train_candidates, valid_impressions=int(group.size),
        valid_metrics=group_metrics(fitted.valid_scores, label, group),
        fit=FitRecord(features=[str(s.features.path.resolve()) for s in fitted.rows], refit=how.refit,
                      impressions=int(sum(s.group.size for s in fitted.rows)),
                      candidates=int(sum(s.candidates for s in fitted.rows)), rounds=fitted.best),
        trained_on=trained_on(fitted.rows),
        memory_estimate_gb=round(need / 1e9, 2), seconds=fitted.seconds,
    )
    held = (lambda users: unit_hash(users, how.seed + 1) < rows.holdout)
    return write_ranker(out, LEARNERS[how.learner], fitted, spec, _held_users(rows.valid, rows.holdout, held))


def read_rows(train: list[FeatureSet], valid: FeatureSet | None, scores: dict[str, list[StackedScores]],
              how: RankTraining, params: dict, log: Callable[[str], None]) -> tuple[Rows, dict, float]:
    """The read step: the rows to fit and early-stop on, and the learner's parameters and estimated peak bytes
    for them (refused when they do not fit the memory)."""
    large_blocks_by_mmap()
    log(f"choosing {how.sample:.0%} of impressions from the behaviors files")
    rows = choose_rows(train, valid, scores, how)
    release_freed_memory()
    need, fitting = check_memory(rows, how, params)
    dense = (", every feature's bins stored dense to fit the memory (rounds about 25% slower)"
             if fitting != params else "")
    log(f"{how.learner}: {rows.train_candidates:,} training and {rows.valid_candidates:,} early-stopping "
        f"candidates, about {need / 1e9:.1f} GB{dense}")
    return rows, fitting, need


@dataclass
class Fitted:
    """What the fit step made: the model at its best round, and what it learned from."""

    model: object  # the learner's booster
    best: int  # the early-stopping round: the rounds the saved model keeps
    history: list[dict]  # one entry per round of the early-stopping fit (``step``, ``val_auc``)
    valid_scores: np.ndarray | None  # the early-stopping rows' scores at the best round
    rows: list[Selection]  # the rows the saved model was fitted on (train, + validation after a refit)
    seconds: dict  # wall time of the fit (and of the refit)


def fit_rows(rows: Rows, how: RankTraining, params: dict, t0: float, log: Callable[[str], None],
             reading: Callable[[int, int], None] | None = None,
             boosting: Callable[[int, int], None] | None = None) -> Fitted:
    """The fit step: boost with early stopping on ``rows.valid``; with ``how.refit``, boost again on train +
    validation for the best round count. ``t0``: the run's start (``seconds["fit"]`` counts the read step)."""
    learner = LEARNERS[how.learner]
    to_read, done = (rows.train_candidates + rows.valid_candidates) * (2 if how.refit else 1), [0]
    planned = [how.rounds]  # the refit runs the best round count

    def counted(n):
        done[0] += n
        if reading:
            reading(done[0], to_read)

    def on_round(entry):
        if boosting:
            boosting(entry["step"], planned[0])
        if entry["step"] % 50 == 0 and "val_auc" in entry:
            log(f"round {entry['step']}: validation AUC {entry['val_auc']:.4f}")

    def parts(selections: list[Selection]):
        return [(s, PieceReader(s.features, rows.names, s.scores, selection=s)) for s in selections]

    model, best, history, valid_scores = learner.fit(parts(rows.train), parts(rows.valid), rows.names,
                                                     rows.categorical, params, how.rounds, how.early_stopping,
                                                     counted, on_round)
    fitted = Fitted(model, best, history, valid_scores, rows.train, {"fit": round(time.perf_counter() - t0, 1)})
    if how.refit:
        # short: it ends the boosting's last progress line (the next lines count the candidates and rounds)
        log("refit on train + validation")
        fitted.model = None  # free the first booster before the second is built
        del model
        planned[0], t1, fitted.rows = best, time.perf_counter(), rows.train + rows.valid
        fitted.model, *_ = learner.fit(parts(fitted.rows), None, rows.names, rows.categorical, params, best,
                                       how.early_stopping, counted, on_round)
        fitted.seconds["refit"] = round(time.perf_counter() - t1, 1)
    return fitted


def trained_on(fitted: list[Selection]) -> tuple[SplitData, ...] | None:
    """The splits the saved model learned from, by content fingerprint: the folders it was fitted on and
    whatever the scores stacked on them trained on (None when a folder does not record its split)."""
    found = []
    for s in fitted:
        if s.features.split_data is None:
            return None
        found.append(s.features.split_data)
        for stacked in s.scores:
            provenance = read_provenance(stacked.path)
            found.extend((provenance and provenance.trained_on) or ())
    return tuple(dict.fromkeys(found))


def _held_users(selections: list[Selection], holdout: float, held) -> np.ndarray | None:
    """The users kept out of every fit: ``holdout`` of the users of the early-stopping split(s)."""
    if holdout == 0:
        return None
    users = np.unique(np.concatenate([s.user for s in selections]))
    return users[held(users)].astype(np.uint32)


def write_ranker(out: Path, learner, fitted: Fitted, spec: RankerSpec,
                 held_users: np.ndarray | None) -> RankerSpec:
    """The write step: the ranker folder (see :mod:`recsys24.ranking.folder`), atomically; returns ``spec``
    with the model file's record."""
    with atomic_path(out) as tmp:
        tmp.mkdir()
        gain, split = learner.save(fitted.model, fitted.best, tmp)
        spec = replace(spec, model_file=ModelFile.of(tmp / learner.MODEL_FILE))
        spec.write(tmp)
        pl.DataFrame({"feature": spec.features, "gain": np.asarray(gain, float),
                      "split": np.asarray(split, float)}).sort("gain", descending=True).write_csv(tmp / "importance.csv")
        (tmp / "metrics.jsonl").write_text("".join(json.dumps(h) + "\n" for h in fitted.history))
        if held_users is not None:
            pl.DataFrame({S.USER_ID: held_users}).write_parquet(tmp / "holdout_users.parquet")
    return spec
