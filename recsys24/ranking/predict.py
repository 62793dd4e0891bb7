"""``recsys24 rank predict``: score a split's features with a ranker, in resumable pieces and shards.

The scores folder::

    OUT/rank_predict.json                which ranker, features and stacked scores files (each
                                         with a fingerprint) made the pieces; written first
    OUT/pieces/rows-LO-HI.parquet        one per features piece: ``row`` plus the scores columns
    OUT/scores.parquet                   every row exactly once, in behaviors order (the merge)

A piece is the unit of work and of recovery, as in ``recsys24 predict``: each
is written atomically, a rerun scores only the missing ones, and shard ``i`` of
``n`` scores a contiguous block of the features pieces, so a SLURM job array
(``slurm/rank.sh``) covers the split once. The merge refuses a missing or
doubly scored row, and a folder holding pieces of other inputs is refused
before anything is scored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from recsys24.data import schema as S
from recsys24.data.cuts import shard_range
from recsys24.errors import Recsys24Error
from recsys24.evaluation.scores import Provenance, scores_frame
from recsys24.inference.pieces import merge
from recsys24.fingerprints import file_digest, fingerprint
from recsys24.io import FolderPlan, piece_path, read_ahead, remove_stale_temps, write_parquet
from recsys24.features.folder import PLAN_FILE as FEATURES_PLAN
from recsys24.features.folder import FeatureSet
from recsys24.ranking.catboost_ranker import CatBoostModel
from recsys24.ranking.data import StackedScores, iter_blocks, list_of
from recsys24.ranking.lgbm import LightGBMModel
from recsys24.ranking.folder import SPEC_FILE, RankerSpec

PLAN_FILE = "rank_predict.json"
SCORES_FILE = "scores.parquet"
MODELS = {"lightgbm": LightGBMModel, "catboost": CatBoostModel}


def load_ranker(path: str | Path):
    """(model, spec) of a ranker folder; the model file's size and hash are checked before it is loaded."""
    path = Path(path)
    spec = RankerSpec.read(path)
    if spec.learner not in MODELS:
        raise Recsys24Error(f"{path / SPEC_FILE}: unknown learner {spec.learner!r} (made by a newer recsys24?)")
    spec.model_file.checked(path)
    return MODELS[spec.learner](path, spec), spec


def _check_inputs(ranker: Path, spec: RankerSpec, features: FeatureSet,
                  scores: list[StackedScores]) -> list[StackedScores]:
    """The stacked scores in the ranker's order; refuses other names or features made with other options."""
    given = [s.name for s in scores]
    if sorted(given) != sorted(spec.scores):
        missing = sorted(set(spec.scores) - set(given))
        extra = sorted(set(given) - set(spec.scores))
        raise Recsys24Error(f"{ranker}: trained with --scores {', '.join(spec.scores) or '(none)'}; "
                            + (f"missing {', '.join(missing)}" if missing else f"not trained with {', '.join(extra)}"))
    if not features.plan.compatible(spec.feature_options):
        option = features.plan.differing(spec.feature_options)[0]
        raise Recsys24Error(f"{features.path}: {option}={features.plan.options[option]} but {ranker} was "
                            f"trained on {option}={spec.feature_options[option]} features")
    order = {s.name: s for s in scores}
    return [order[n] for n in spec.scores]


def _plan(out: Path, ranker: Path, spec: RankerSpec, features: FeatureSet, scores: list[StackedScores]) -> dict:
    """Create or check ``OUT/rank_predict.json``; refuses a folder holding pieces of other inputs."""
    want = {"ranker": str(ranker.resolve()),
            "ranker_fingerprint": file_digest(ranker / SPEC_FILE) + "-" + fingerprint(ranker / spec.model_file.name),
            "features": str(features.path.resolve()), "features_fingerprint": file_digest(features.path / FEATURES_PLAN),
            "scores": {s.name: fingerprint(s.path) for s in scores},
            "split": features.split_name, "num_rows": features.plan.num_rows,
            "pieces": [[lo, hi] for lo, hi, _ in features.pieces()],
            "provenance": provenance(ranker, spec, features).to_json()}
    rank_scores_folder(out).require(want)
    return want


def rank_scores_folder(out: Path) -> FolderPlan:
    """``OUT/rank_predict.json``, the plan of a rank scores folder."""
    return FolderPlan(out, PLAN_FILE, "rank scores", "rank score pieces")


@dataclass(frozen=True)
class RankPredictRun:
    """What one run of :func:`predict_ranker` did on its shard."""

    pieces: int  # pieces scored by this run
    skipped_pieces: int  # pieces of the shard an earlier run had scored
    rows: int  # behaviors rows of the shard
    scored_rows: int  # ... scored by this run
    candidates: int  # (row, candidate) pairs scored by this run
    trees: int  # trees of the ranker
    seconds: float
    predict_seconds: float  # in the learner's own predict


def predict_ranker(ranker: str | Path, features: FeatureSet, scores: list[StackedScores], out: str | Path,
                   shard_id: int = 0, num_shards: int = 1,
                   progress: Callable[[int, int], None] | None = None) -> RankPredictRun:
    """Score this shard's missing pieces of ``features`` into ``out``; return counts and timings."""
    ranker, out = Path(ranker), Path(out)
    if out.suffix == ".parquet":
        raise Recsys24Error(f"{out}: rank predict writes a scores folder (its merged file is OUT/{SCORES_FILE}); "
                            "give a folder name")
    model, spec = load_ranker(ranker)
    scores = _check_inputs(ranker, spec, features, scores)
    for s in scores:
        s.check(features)
    pieces = features.pieces()
    mine = shard_range(len(pieces), shard_id, num_shards)
    _plan(out, ranker, spec, features, scores)
    remove_stale_temps(out / "pieces")
    todo = [i for i in mine if not piece_path(out, *pieces[i][:2]).is_file()]
    total_rows = sum(pieces[i][1] - pieces[i][0] for i in mine)
    done_rows = total_rows - sum(pieces[i][1] - pieces[i][0] for i in todo)
    t0, candidates, predict_seconds = time.perf_counter(), 0, 0.0
    blocks = iter_blocks(features, spec.features, scores, needed=model.used(spec.features), pieces=todo)
    for i, block in zip(todo, read_ahead(blocks)):
        t1 = time.perf_counter()
        values = model.predict(block.x)
        predict_seconds += time.perf_counter() - t1
        candidates += values.size
        frame = scores_frame(block.impression, block.user, list_of(values, block.group, S.SCORES))
        write_parquet(frame.insert_column(0, pl.Series(S.ROW, block.row.astype(np.int64))),
                      piece_path(out, *pieces[i][:2]))
        done_rows += block.row.size
        if progress:
            progress(done_rows, total_rows)
    return RankPredictRun(len(todo), len(mine) - len(todo), total_rows, sum(pieces[i][1] - pieces[i][0] for i in todo),
                          candidates, model.trees, time.perf_counter() - t0, predict_seconds)


def merge_rank_scores(out: str | Path, features: FeatureSet) -> Path:
    """Merge every piece of ``out`` into ``OUT/scores.parquet`` (each row exactly once); return its path."""
    out = Path(out)
    folder = rank_scores_folder(out)
    if not folder.exists():
        raise Recsys24Error(f"{out}: no {PLAN_FILE}; run `recsys24 rank predict` into it first")
    have = folder.read()
    if have["features"] != str(features.path.resolve()) or have["num_rows"] != features.plan.num_rows:
        raise Recsys24Error(f"{out}: holds rank scores of {have['features']}, not {features.path}")
    found = have.get("provenance")  # None: pieces of a recsys24 before scores files carried it
    merge(out, have["num_rows"], out / SCORES_FILE, found and Provenance.from_json(found))
    return out / SCORES_FILE


def provenance(ranker: Path, spec: RankerSpec, features: FeatureSet) -> Provenance:
    """What the merged scores file says of itself: the features' split, and the splits the ranker learned from
    (``spec.trained_on``; None for a ranker written before it was recorded)."""
    return Provenance(features.split_data, f"ranker {ranker.resolve()}", spec.trained_on)
