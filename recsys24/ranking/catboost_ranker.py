"""The CatBoost learner: ``CatBoostRanker`` (YetiRank by default; QueryCrossEntropy, PairLogitPairwise, ...).

The contest's 2nd place's best single model was a CatBoost QueryCrossEntropy
ranker; the 1st place blended CatBoost with LightGBM. CatBoost takes the whole
training matrix at once (its ``Pool`` cannot be built piece by piece), so the
rows are read into one preallocated float32 matrix, which CatBoost copies and
quantizes; :mod:`recsys24.ranking.memory` refuses a sample that would not fit.
Its per-round ``QueryAUC`` on the early-stopping rows is the contest's group
AUC (ties count one half), the same number LightGBM's runs record.
The categorical features (category ids) are read as numbers: CatBoost takes
categories as integers or strings only, and its trees split ids as well.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from recsys24.errors import Recsys24Error
from recsys24.ranking.data import PieceReader, Selection
from recsys24.ranking.folder import SPEC_FILE, RankerSpec

MODEL_FILE = "model.cbm"
DEFAULT_PARAMS = {
    "loss_function": "YetiRank",
    "learning_rate": 0.1,
    "depth": 6,
    "eval_metric": "QueryAUC",
    "allow_writing_files": False,
    "verbose": False,
}
Part = tuple[Selection, PieceReader]


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def check_params(params: dict, seed: int = 0) -> dict:
    """CatBoost's parameters with ``params`` over ours; refuses what CatBoost refuses, before reading data."""
    from catboost import CatBoostError, CatBoostRanker, Pool

    full = {**DEFAULT_PARAMS, "random_seed": seed, "thread_count": os.cpu_count() or 1, **params}
    rng = np.random.default_rng(0)
    tiny = Pool(rng.random((64, 2)), rng.integers(0, 2, 64), group_id=np.repeat(np.arange(8), 8))
    try:
        CatBoostRanker(**{**full, "iterations": 1, "thread_count": 1}).fit(tiny)
    except (CatBoostError, TypeError, ValueError) as err:
        given = ", ".join(f"{k}={v}" for k, v in params.items()) or "the defaults"
        raise Recsys24Error(f"--param: CatBoost refuses {given} ({_first_line(err)})") from None
    return full


def _matrix(parts: list[Part], names: list[str], counted: Callable[[int], None] | None):
    """(x, label, group id per row) of the selected rows of ``parts``, in one preallocated matrix."""
    total = sum(s.candidates for s, _ in parts)
    x = np.empty((total, len(names)), dtype=np.float32)
    at = 0
    for selection, reader in parts:
        for i, n in enumerate(selection.piece_candidates(reader.pieces)):
            if n:
                x[at:at + n] = reader.matrix(i)
                at += n
                if counted:
                    counted(int(n))
        reader.clear()
    label = np.concatenate([s.label for s, _ in parts])
    groups = np.concatenate([s.group for s, _ in parts])
    return x, label, np.repeat(np.arange(groups.size, dtype=np.int64), groups)


class _Rounds:
    """CatBoost's per-iteration callback: reports each round's validation AUC."""

    def __init__(self, on_round: Callable[[dict], None] | None, history: list[dict]):
        self.on_round, self.history = on_round, history

    def after_iteration(self, info) -> bool:
        entry = {"step": info.iteration}
        auc = info.metrics.get("validation", {}).get("QueryAUC")
        if auc:
            entry["val_auc"] = float(auc[-1])
        self.history.append(entry)
        if self.on_round:
            self.on_round(entry)
        return True


def fit(train: list[Part], valid: list[Part] | None, names: list[str], categorical: list[str], params: dict,
        rounds: int, early_stopping: int = 100, counted: Callable[[int], None] | None = None,
        on_round: Callable[[dict], None] | None = None):
    """Fit on ``train``; early-stop on QueryAUC of ``valid`` (or run ``rounds`` without it).

    Returns (model, best round, per-round history, the best round's validation scores or None).
    """
    from catboost import CatBoostError, CatBoostRanker, Pool

    x, label, group_id = _matrix(train, names, counted)
    pool = Pool(x, label, group_id=group_id, feature_names=names)
    del x  # CatBoost holds its own copy
    eval_pool = None
    if valid:
        vx, vlabel, vgroup = _matrix(valid, names, counted)
        eval_pool = Pool(vx, vlabel, group_id=vgroup, feature_names=names)
        del vx
    history: list[dict] = []
    settings = {**params, "iterations": rounds}
    if valid:
        settings |= {"od_type": "Iter", "od_wait": early_stopping, "use_best_model": True}
    else:
        settings |= {"eval_metric": params.get("loss_function", DEFAULT_PARAMS["loss_function"])}
    model = CatBoostRanker(**settings)
    try:
        model.fit(pool, eval_set=eval_pool, callbacks=[_Rounds(on_round, history)])
    except CatBoostError as err:
        raise Recsys24Error(f"rank train: CatBoost stopped: {_first_line(err)}") from None
    if not valid:
        return model, model.tree_count_, history, None
    best = model.get_best_iteration() + 1
    return model, best, history, model.predict(eval_pool).astype(np.float32)


def save(model, best: int, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Write the model (already cut to its best round) into ``folder``; return (importance, NaN splits)."""
    model.save_model(str(folder / MODEL_FILE))
    gain = model.get_feature_importance(type="PredictionValuesChange")  # PredictionValuesChange: how much each feature moves the scores
    return gain, np.full(gain.size, np.nan)


class CatBoostModel:
    """A saved CatBoost ranker, for scoring feature matrices."""

    learner = "catboost"

    def __init__(self, folder: Path, spec: RankerSpec):
        from catboost import CatBoostError, CatBoostRanker

        self.model = CatBoostRanker()
        try:
            self.model.load_model(str(folder / MODEL_FILE))
        except CatBoostError as err:
            raise Recsys24Error(f"{folder / MODEL_FILE}: not a CatBoost model CatBoost can load "
                                f"({_first_line(err)}); train it again with `recsys24 rank train`") from None
        if list(self.model.feature_names_) != spec.features:
            raise Recsys24Error(f"{folder / MODEL_FILE}: its features are not those of {folder / SPEC_FILE} "
                                "(a model file of another ranker?); train it again with `recsys24 rank train`")
        self.trees = self.model.tree_count_
        self.threads = os.cpu_count() or 1

    def used(self, names: list[str]) -> set[str]:
        """Every feature (CatBoost's symmetric trees are read whole)."""
        return set(names)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(x, thread_count=self.threads).astype(np.float32)
