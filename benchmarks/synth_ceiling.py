"""How far can a ranker get on synthetic data from what the history shows of each reader?

    python benchmarks/synth_ceiling.py --data demo_run/data --features demo_run/features

The synthetic click model is a softmax over ``log(preference) - age + 0.6 log(popularity)``
(``data/synth.py``). This rebuilds the synthetic world from ``synth.json`` (preset and
seed) and trains the same LightGBM lambdarank on three columns, on train, scored on
validation:

- the Bayesian estimate of the user's log preference for the candidate's category from
  the history (posterior mean of a Dirichlet(0.3) prior: digamma(count + 0.3) -
  digamma(n + 32 * 0.3)),
- the candidate's age,
- its *true* latent popularity, which no feature can see.

It prints that AUC beside the oracle's (the true click probabilities), i.e. the gap
that only better preference evidence could close.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
from scipy.special import digamma

from recsys24.data import schema as S
from recsys24.data.columns import flat_lists
from recsys24.data.prepare import click_labels
from recsys24.data.split import open_split
from recsys24.data.synth import PRESETS, SynthSummary, _make_world
from recsys24.features.folder import FeatureSet, open_features
from recsys24.ranking.metrics import group_metrics


def history_span_days(features: FeatureSet) -> float:
    """The span ``history_per_day`` divides by, as the features folder recorded it when it was built (from the
    history files it read, ``HistoryTable.span_days``)."""
    span = features.plan.history_span_days
    if span is None:
        raise SystemExit(f"{features.path}: its features.json does not record history_span_days (built by an "
                         f"older recsys24): rebuild the features (delete the folder, then `{features.command}`)")
    return span


def columns(data: Path, features: Path, split: str, world) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(feature matrix, click labels, candidates per impression) of a split."""
    feature_set = open_features(features / split)
    frame = pl.concat(feature_set.iter_pieces())
    behaviors = pl.read_parquet(open_split(data, split).behaviors, columns=[S.INVIEW, S.CLICKED])
    ids, offsets = flat_lists(behaviors[S.INVIEW])
    popularity = world.popularity[np.searchsorted(world.article_ids, ids)]
    n = frame["history_per_day"].to_numpy() * history_span_days(feature_set)  # back to the count of reads
    count = frame["category_share"].to_numpy() * n
    x = np.column_stack([digamma(count + 0.3) - digamma(n + 32 * 0.3), frame["age_hours"].to_numpy(),
                         np.log(popularity)])
    labels = flat_lists(click_labels(behaviors[S.INVIEW], behaviors[S.CLICKED]))[0]
    return x, labels, np.diff(offsets)


def main() -> None:
    import lightgbm as lgb

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a `recsys24 synth` folder")
    ap.add_argument("--features", type=Path, required=True, help="folder holding train/ and validation/ features")
    args = ap.parse_args()
    info = SynthSummary.read(args.data)
    world = _make_world(PRESETS[info.preset], np.random.default_rng(info.seed), Path(tempfile.mkdtemp()))
    x_train, train_labels, train_group = columns(args.data, args.features, "train", world)
    x_valid, *valid = columns(args.data, args.features, "validation", world)
    params = {"objective": "lambdarank", "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 200,
              "verbose": -1, "seed": 0}
    model = lgb.train(params, lgb.Dataset(x_train, train_labels, group=train_group), 500)
    ceiling = group_metrics(model.predict(x_valid), *valid)["auc"]
    truth = pl.read_parquet(args.data / "synth_truth" / "validation.parquet", columns=["propensities"])
    oracle = group_metrics(flat_lists(truth["propensities"])[0], *valid)["auc"]
    print(f"validation AUC: oracle (true click probabilities) {oracle:.4f}; LightGBM on the history's "
          f"preference estimate + age + TRUE popularity {ceiling:.4f}")


if __name__ == "__main__":
    main()
