"""``recsys24 rank blend``: a weighted sum of scores files, normalised per impression, weights fitted on users.

What the contest's top two did last: the 2nd place blended per-impression
min-max normalised scores (0.3 DIN + 0.2 pairwise + 0.5 query CatBoost), the
1st place an Optuna-weighted mean tuned on 1% of the impressions. Here:

- each scores file is normalised inside every impression: ``rank`` (its rank
  among the impression's candidates, 0 = lowest, 1 = highest) or ``minmax``;
- the weights (non-negative, summing to 1) maximise the mean per-impression AUC
  on the *fitting* users only: every single model, equal weights and seeded
  random mixes are tried, then weight is moved between pairs of models in
  halving steps while the AUC rises;
- ``holdout`` of the users (the seeded user hash ``recsys24 rank train`` uses,
  so the same users for the same seed and share) are never fitted on, and
  ``BLEND/holdout_users.parquet`` names them for ``recsys24 evaluate --users``.

Blend only scores made out of sample for the split (models trained on another
split): a stacked ranker's scores of the split it trained on would win the fit
because they saw the labels.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from recsys24.data import schema as S
from recsys24.data.columns import flat_lists
from recsys24.data.prepare import click_labels
from recsys24.data.split import RowStream, Split
from recsys24.errors import Recsys24Error
from recsys24.evaluation.scores import Provenance, ScoresWriter, SplitData, check_batch, read_provenance, scores_frame
from recsys24.features.groups import group_max, group_min, group_rank
from recsys24.io import atomic_path
from recsys24.ranking.data import list_of, unit_hash
from recsys24.ranking.metrics import GroupAUC

BLEND_FILE = "blend.json"
NORMS = ("rank", "minmax")
BATCH_ROWS = 500_000


def normalise(values: np.ndarray, offsets: np.ndarray, norm: str) -> np.ndarray:
    """Scores mapped into [0, 1] inside each impression (0.5 where an impression's scores are all equal).

    >>> normalise(np.array([3., 9., 1., 5., 5.]), np.array([0, 3, 5]), "rank")
    array([0.5, 1. , 0. , 0.5, 0.5], dtype=float32)
    >>> normalise(np.array([3., 9., 1., 5., 5.]), np.array([0, 3, 5]), "minmax")
    array([0.25, 1.  , 0.  , 0.5 , 0.5 ], dtype=float32)
    """
    values = np.asarray(values, np.float32)
    n = np.repeat(np.diff(offsets), np.diff(offsets)).astype(np.float32)
    if norm == "rank":  # ascending rank, ties at their mean, scaled to [0, 1]
        low = group_rank(values, offsets, descending=False)
        high = n + 1 - group_rank(values, offsets, descending=True)
        spread = n - 1
        mid = (low + high) / 2 - 1
    else:
        lo, hi = group_min(values, offsets), group_max(values, offsets)
        spread, mid = hi - lo, values - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(spread > 0, mid / np.where(spread > 0, spread, 1), 0.5).astype(np.float32)


@dataclass(frozen=True)
class Blend:
    """A fitted blend: ``BLEND/blend.json``."""

    names: list[str]
    weights: list[float]
    norm: str
    split: str
    holdout: float
    seed: int
    fit_impressions: int
    fit_auc: dict  # name (or "blend") -> mean AUC on the fitting impressions
    fitted_on: dict | None = None  # the fitting split's SplitData (content fingerprint)

    def combine(self, columns: list[np.ndarray], offsets: np.ndarray) -> np.ndarray:
        return sum(w * normalise(c, offsets, self.norm) for w, c in zip(self.weights, columns)).astype(np.float32)


def _stream(split: Split, paths: list[Path], labels: bool):
    """Batches of (first row, behaviors batch, [scores batch per file]) over the whole split, each checked."""
    behaviors = RowStream(split.behaviors, [S.IMPRESSION_ID, S.USER_ID, S.INVIEW] + ([S.CLICKED] if labels else []))
    streams = [RowStream(p, list(S.SCORES_SCHEMA)) for p in paths]
    for lo in range(0, split.num_rows, BATCH_ROWS):
        hi = min(lo + BATCH_ROWS, split.num_rows)
        batch = behaviors.take(lo, hi)
        frames = [s.take(lo, hi) for s in streams]
        for path, frame in zip(paths, frames):
            if frame.height != batch.height:
                raise Recsys24Error(f"{path}: {lo + frame.height} rows but the {split.name} split has "
                                    f"{split.num_rows} (a scores file of another split?)")
            check_batch(frame, batch, path, lo)
        yield lo, batch, frames


def _search(columns: np.ndarray, label: np.ndarray, offsets: np.ndarray, seed: int) -> np.ndarray:
    """Non-negative weights summing to 1 that maximise the group AUC of ``columns @ weights``."""
    k = columns.shape[1]
    rng = np.random.default_rng(seed)
    seen: dict[tuple, float] = {}
    auc_of = GroupAUC(label, offsets)

    def auc(w):
        key = tuple(np.round(w, 6))
        if key not in seen:
            seen[key] = auc_of(columns @ w)
        return seen[key]

    tries = [np.eye(k)[i] for i in range(k)] + [np.full(k, 1 / k)] + list(rng.dirichlet(np.ones(k), 16))
    best = max(tries, key=auc)
    step = 0.1
    while step >= 0.0125:
        moves = [best + step * (np.eye(k)[i] - np.eye(k)[j]) for i in range(k) for j in range(k)
                 if i != j and best[j] >= step - 1e-9]
        top = max(moves, key=auc, default=best)
        if auc(top) > auc(best):
            best = np.clip(top, 0, None)
        else:
            step /= 2
    return best / best.sum()


def fit_blend(scores: dict[str, Path], split: Split, out: str | Path, norm: str = "rank", holdout: float = 0.1,
              seed: int = 0, max_impressions: int = 200_000) -> Blend:
    """Fit the weights on the users outside ``holdout`` (at most ``max_impressions`` of their impressions,
    chosen by row hash); write ``out/blend.json`` and ``out/holdout_users.parquet``."""
    if norm not in NORMS:
        raise Recsys24Error(f"--norm must be one of {', '.join(NORMS)}, got {norm!r}")
    if len(scores) < 2:
        raise Recsys24Error("rank blend: give at least two --scores NAME=FILE to blend")
    if not 0 <= holdout < 1:
        raise Recsys24Error(f"--holdout must be in [0, 1), got {holdout}")
    if not split.has_clicks:
        raise Recsys24Error(f"{split.behaviors}: the {split.name} split has no clicks to fit a blend on")
    names, paths = list(scores), [Path(p) for p in scores.values()]
    here = SplitData.of_split(split)
    for path in paths:
        _check_out_of_sample(path, here)
    rate = min(1.0, max_impressions / split.num_rows)
    values, labels, groups, users = [[] for _ in names], [], [], []
    for lo, batch, frames in _stream(split, paths, labels=True):
        rows = np.arange(lo, lo + batch.height)
        ids = batch[S.USER_ID].to_numpy()
        users.append(ids)
        fit = (unit_hash(ids, seed + 1) >= holdout) & (unit_hash(rows, seed) < rate)
        chosen = batch.filter(pl.Series(fit))
        labels.append(flat_lists(click_labels(chosen[S.INVIEW], chosen[S.CLICKED]))[0])
        groups.append(chosen[S.INVIEW].list.len().to_numpy())
        for k, frame in enumerate(frames):
            flat, offsets = flat_lists(frame.filter(pl.Series(fit))[S.SCORES])
            values[k].append(normalise(flat, offsets, norm))
    group = np.concatenate(groups)
    if group.size == 0:
        raise Recsys24Error("rank blend: no impressions left to fit on (lower --holdout)")
    offsets = np.concatenate([[0], np.cumsum(group)]).astype(np.int64)
    label = np.concatenate(labels).astype(np.float64)
    columns = np.stack([np.concatenate(v) for v in values], axis=1)
    weights = _search(columns, label, offsets, seed)
    auc_of = GroupAUC(label, offsets)
    fit_auc = {n: auc_of(columns[:, k]) for k, n in enumerate(names)}
    fit_auc["blend"] = auc_of(columns @ weights)
    blend = Blend(names, [round(float(w), 6) for w in weights], norm, split.name, holdout, seed, int(group.size),
                  fit_auc, here.to_dict())
    everyone = np.unique(np.concatenate(users))
    with atomic_path(out) as tmp:
        tmp.mkdir()
        (tmp / BLEND_FILE).write_text(json.dumps(asdict(blend), indent=2) + "\n")
        if holdout > 0:
            held = everyone[unit_hash(everyone, seed + 1) < holdout].astype(np.uint32)
            pl.DataFrame({S.USER_ID: held}).write_parquet(tmp / "holdout_users.parquet")
    return blend


def _check_out_of_sample(path: Path, here: SplitData) -> None:
    """Refuse to fit weights on scores whose model trained on the fitting split (by content fingerprint)."""
    found = read_provenance(path)
    for trained in (found and found.trained_on) or ():
        if trained.behaviors == here.behaviors:
            raise Recsys24Error(f"{path}: made by {found.scorer}, which trained on the '{trained.split}' split; "
                                "its scores there are in sample, so weights fitted on them would favour it "
                                "(blend scores of models that did not train on the fitting split)")


def _provenance(blend_dir, blend: Blend, paths: list[Path], here: SplitData) -> Provenance:
    """The blended file's provenance: the split scored; the inputs' training splits and the blend's own."""
    trained: list[SplitData] = []
    for path in paths:
        found = read_provenance(path)
        if found is None or found.trained_on is None:
            return Provenance(here, f"blend {Path(blend_dir).resolve()}", None)  # an input does not say
        trained.extend(found.trained_on)
    if blend.fitted_on:
        trained.append(SplitData.from_dict(blend.fitted_on))
    return Provenance(here, f"blend {Path(blend_dir).resolve()}", tuple(dict.fromkeys(trained)))


def load_blend(path: str | Path) -> Blend:
    path = Path(path)
    if not (path / BLEND_FILE).is_file():
        raise Recsys24Error(f"{path}: not a blend folder (no {BLEND_FILE}; make one with `recsys24 rank blend fit`)")
    return Blend(**json.loads((path / BLEND_FILE).read_text()))


def apply_blend(blend_dir: str | Path, scores: dict[str, Path], split: Split, out: str | Path) -> int:
    """Write the blend of ``scores`` (the blend's names, any split) as the scores file ``out``; return its rows."""
    blend = load_blend(blend_dir)
    if sorted(scores) != sorted(blend.names):
        raise Recsys24Error(f"{blend_dir}: blends {', '.join(blend.names)}; give --scores for exactly those "
                            f"(got {', '.join(scores) or 'none'})")
    paths = [Path(scores[n]) for n in blend.names]
    with ScoresWriter(out, _provenance(blend_dir, blend, paths, SplitData.of_split(split))) as writer:
        for _, batch, frames in _stream(split, paths, labels=False):
            flat = [flat_lists(f[S.SCORES]) for f in frames]
            offsets = flat[0][1]
            values = blend.combine([v for v, _ in flat], offsets)
            writer.write(scores_frame(batch[S.IMPRESSION_ID], batch[S.USER_ID],
                                      list_of(values, np.diff(offsets), S.SCORES)))
    return writer.rows

