"""The LightGBM lambdarank learner: datasets built piece by piece, early stopping on the contest AUC.

LightGBM's Dataset is built from :class:`PieceSequence` objects, one per
features piece: LightGBM samples rows to find the bin edges, then pushes every
piece's rows in batches and keeps only its binned copy (about one byte per
value). The raw float32 matrix of the training rows never exists, so the
whole train split of EB-NeRD (140M candidates) trains in bounded memory. The
model is the same as LightGBM's from one in-memory matrix of the same rows
(``tests/test_rank_scale.py``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from recsys24.allocator import release_freed_memory
from recsys24.errors import Recsys24Error
from recsys24.ranking.data import PieceReader, Selection
from recsys24.ranking.folder import SPEC_FILE, RankerSpec
from recsys24.ranking.metrics import GroupAUC

MODEL_FILE = "model.txt"
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
Part = tuple[Selection, PieceReader]


def check_params(params: dict, seed: int = 0) -> dict:
    """LightGBM's parameters with ``params`` over ours; refuses a name LightGBM does not know, or a value
    it cannot take, before any data is read (by one boosting round on a few random rows)."""
    import lightgbm as lgb

    _quiet_fatals()
    aliases = lgb.basic._ConfigAliases._get_all_param_aliases()
    known = set(aliases) | {a for names in aliases.values() for a in names}
    unknown = sorted(set(params) - known)
    if unknown:
        raise Recsys24Error(f"--param {unknown[0]}: not a LightGBM parameter "
                            "(https://lightgbm.readthedocs.io/en/latest/Parameters.html)")
    full = {**DEFAULT_PARAMS, "metric": "None", "seed": seed, "num_threads": os.cpu_count() or 1, **params}
    if full.get("force_row_wise"):  # the user's choice; LightGBM refuses both at once
        full.pop("force_col_wise")
    rng = np.random.default_rng(0)
    tiny = lgb.Dataset(rng.random((64, 2)), label=rng.integers(0, 2, 64), group=[8] * 8, params=full)
    try:
        lgb.train({**full, "num_threads": 1}, tiny, 1)
    except lgb.basic.LightGBMError as err:
        given = ", ".join(f"{k}={v}" for k, v in params.items()) or "the defaults"
        raise Recsys24Error(f"--param: LightGBM refuses {given} ({_first_line(err)})") from None
    return full


def storage_chosen(params: dict) -> bool:
    """Whether the user's ``params`` set how LightGBM stores the bins (``is_enable_sparse`` or an alias)."""
    import lightgbm as lgb

    return bool(lgb.basic._ConfigAliases.get("is_enable_sparse") & set(params))


def stored_dense(params: dict) -> bool:
    """Whether LightGBM's full ``params`` store every feature's bins dense."""
    import lightgbm as lgb

    return any(str(params[k]).lower() in ("false", "0") for k in lgb.basic._ConfigAliases.get("is_enable_sparse")
               if k in params)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class _Logger:
    """LightGBM's messages, less its '[Fatal]' lines: each comes back as an exception we report in one line."""

    def info(self, msg: str) -> None:
        if "[Fatal]" not in msg:
            print(msg, end="")

    def warning(self, msg: str) -> None:
        self.info(msg)


def _quiet_fatals() -> None:
    import lightgbm as lgb

    lgb.register_logger(_Logger())


class PieceSequence:
    """The selected candidates of one features piece, as LightGBM's ``Sequence`` reads them."""

    batch_size = 1 << 16  # rows pushed into the Dataset at a time

    def __init__(self, reader: PieceReader, piece: int, rows: int, counted: Callable[[int], None] | None = None):
        self.reader, self.piece, self.rows, self.counted = reader, piece, rows, counted

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, index):
        x = self.reader.matrix(self.piece)
        if not isinstance(index, slice):  # one row, for the sample LightGBM bins from: it wants doubles
            return x[index].astype(np.float64)
        if self.counted:
            self.counted(len(range(*index.indices(self.rows))))
        return x[index]


def _dataset_class():
    """LightGBM's Dataset, passing ``min_data_in_leaf`` and ``seed`` to the binning of Sequence rows.

    From one matrix, LightGBM draws its bin sample with the generator ``seed``
    derives and drops a feature with fewer non-zero values in that sample than
    ``min_data_in_leaf`` (scaled to the sample); from Sequence objects its Python
    side leaves both parameters out of what it passes, so it sampled other rows
    and kept rare features. With them passed, both give the same model.
    """
    import lightgbm as lgb

    class SequenceDataset(lgb.Dataset):
        def get_params(self):
            params = super().get_params()
            keys = lgb.basic._ConfigAliases.get("min_data_in_leaf", "seed")
            return params | {k: v for k, v in (self.params or {}).items() if k in keys}

    return SequenceDataset


def dataset(parts: list[Part], names: list[str], categorical: list[str], params: dict, reference=None,
            counted: Callable[[int], None] | None = None):
    """A LightGBM Dataset of the selected rows of ``parts`` (bins from ``reference`` when given), constructed."""
    import lightgbm as lgb

    lgb.Sequence.register(PieceSequence)
    seqs = [PieceSequence(reader, i, int(n), counted) for selection, reader in parts
            for i, n in enumerate(selection.piece_candidates(reader.pieces)) if n > 0]
    label = np.concatenate([selection.label for selection, _ in parts]).astype(np.float32)
    group = np.concatenate([selection.group for selection, _ in parts])
    data = _dataset_class()(seqs, label=label, group=group, feature_name=names, categorical_feature=categorical,
                       reference=reference, params=params, free_raw_data=True)
    try:
        data.construct()
    finally:
        for _, reader in parts:
            reader.clear()
    data.label = None  # LightGBM holds its own copy now
    release_freed_memory()  # what reading the pieces left in glibc's and Arrow's pools
    return data


def fit(train: list[Part], valid: list[Part] | None, names: list[str], categorical: list[str], params: dict,
        rounds: int, early_stopping: int = 100, counted: Callable[[int], None] | None = None,
        on_round: Callable[[dict], None] | None = None):
    """Boost on ``train``; early-stop on the group AUC of ``valid`` (or run ``rounds`` without it).

    LightGBM's own callbacks do the bookkeeping: ``record_evaluation`` keeps
    each round's validation AUC, ``early_stopping`` stops ``early_stopping``
    rounds after the best, and :func:`reported` hands each round to
    ``on_round`` as it ends. Returns (booster, best round, per-round history
    ``[{"step": 1, "val_auc": ...}, ...]``, the best round's validation scores
    or None).
    """
    import lightgbm as lgb

    _quiet_fatals()
    dtrain = dataset(train, names, categorical, params, counted=counted)
    recorded: dict[str, dict[str, list[float]]] = {}
    callbacks = [lgb.record_evaluation(recorded)] + ([reported(on_round)] if on_round else [])
    valid_sets, feval, best = [], None, {"auc": -np.inf, "scores": None}
    if valid:
        dvalid = dataset(valid, names, categorical, params, reference=dtrain, counted=counted)
        auc_of = GroupAUC(np.concatenate([s.label for s, _ in valid]),
                          np.concatenate([[0], np.cumsum(np.concatenate([s.group for s, _ in valid]))]))

        def feval(preds, data):
            auc = auc_of(preds)
            if auc > best["auc"]:  # early stopping keeps the first round of the best AUC, so do we
                best.update(auc=auc, scores=np.array(preds, np.float32))
            return "auc", auc, True

        valid_sets = [dvalid]
        callbacks.append(lgb.early_stopping(early_stopping, first_metric_only=True, verbose=False))
    try:
        booster = lgb.train(params, dtrain, rounds, valid_sets=valid_sets, valid_names=["valid"] if valid else None,
                            feval=feval, callbacks=callbacks)
    except lgb.basic.LightGBMError as err:
        raise Recsys24Error(f"rank train: LightGBM stopped: {_first_line(err)}") from None
    best_round = (booster.best_iteration or booster.current_iteration()) if valid else booster.current_iteration()
    return booster, best_round, rounds_of(recorded.get("valid", {}), booster.current_iteration()), best["scores"]


def reported(on_round: Callable[[dict], None]):
    """A LightGBM callback, like its ``log_evaluation``, that passes each round's ``{"step", "val_<metric>"}``
    to ``on_round``."""

    def callback(env) -> None:
        on_round({"step": env.iteration + 1,
                  **{f"val_{name}": value for _, name, value, _ in env.evaluation_result_list}})

    callback.order = 10  # before early_stopping (30), which ends the training by raising at its last round
    return callback


def rounds_of(metrics: dict[str, list[float]], rounds: int) -> list[dict]:
    """``record_evaluation``'s lists of one validation set as one entry per round.

    >>> rounds_of({"auc": [0.61, 0.64]}, 2)
    [{'step': 1, 'val_auc': 0.61}, {'step': 2, 'val_auc': 0.64}]
    >>> rounds_of({}, 2)
    [{'step': 1}, {'step': 2}]
    """
    n = len(next(iter(metrics.values()))) if metrics else rounds
    return [{"step": i + 1, **{f"val_{name}": values[i] for name, values in metrics.items()}} for i in range(n)]


def save(booster, best: int, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Write the booster (its ``best`` rounds) into ``folder``; return its (gain, split) importance."""
    booster.save_model(str(folder / MODEL_FILE), num_iteration=best)
    return booster.feature_importance("gain", iteration=best), booster.feature_importance("split", iteration=best)


class LightGBMModel:
    """A saved lambdarank booster, for scoring feature matrices."""

    learner = "lightgbm"

    def __init__(self, folder: Path, spec: RankerSpec):
        import lightgbm as lgb

        _quiet_fatals()
        try:
            self.booster = lgb.Booster(model_file=str(folder / MODEL_FILE))
        except lgb.basic.LightGBMError as err:
            raise Recsys24Error(f"{folder / MODEL_FILE}: not a LightGBM model LightGBM can load "
                                f"({_first_line(err)}); train it again with `recsys24 rank train`") from None
        if self.booster.feature_name() != spec.features:
            raise Recsys24Error(f"{folder / MODEL_FILE}: its features are not those of {folder / SPEC_FILE} "
                                "(a model file of another ranker?); train it again with `recsys24 rank train`")
        self.trees = self.booster.num_trees()
        self.threads = os.cpu_count() or 1

    def used(self, names: list[str]) -> set[str]:
        """The features some tree splits on: the others cannot change a score, so they need not be read."""
        return {n for n, count in zip(names, self.booster.feature_importance("split")) if count > 0}

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.booster.predict(x, num_threads=self.threads).astype(np.float32)
