"""The report's tables, one polars DataFrame each (written as CSV beside the figures).

Accuracy comes from :func:`recsys24.evaluation.evaluate.evaluate_scores` and
beyond-accuracy from :func:`recsys24.evaluation.beyond.beyond_accuracy`, so the
numbers equal ``recsys24 evaluate --json`` and ``recsys24 beyond-accuracy``.
Model behaviour is computed here, streaming each scores file beside the
behaviors file, whole columns per batch:

- rank percentile of every candidate: ``(rank - 1) / (n_inview - 1)``, 0 = top
  of its impression, 1 = bottom (comparable across models whose score scales
  differ); averaged per article-age bin (hours from publication to the
  impression) and per in-view position;
- the category of each impression's top-1 candidate, against the categories of
  the clicked articles (train and validation only).

On test, the beyond-accuracy rows are left out of the behaviour tables.
"""

from __future__ import annotations

import itertools
from typing import Callable, Iterator

import numpy as np
import polars as pl

from recsys24.data import schema as S
from recsys24.data.columns import flat_lists
from recsys24.data.split import Split, iter_batches
from recsys24.evaluation.beyond import beyond_accuracy
from recsys24.evaluation.evaluate import evaluate_scores
from recsys24.evaluation.metrics import METRIC_NAMES
from recsys24.evaluation.ranking import (
    descending_order,
    descending_ranks,
    list_ids,
)
from recsys24.evaluation.scores import iter_checked
from recsys24.report.items import Item, is_ranker, parameter_count, read_metrics_log

AGE_EDGES_H = np.array([0, 1, 2, 4, 8, 16, 24, 48, 96, 168])  # last bin: a week and older
MAX_POSITION = 20  # in-view positions past this share one bin
BEYOND_NUMBERS = ("intralist_diversity", "serendipity", "novelty", "coverage_count", "coverage_fraction",
                  "sentiment_score")
TOP_K = 5
DISTRIBUTIONS = {"category": S.CATEGORY_STR, "sentiment_label": S.SENTIMENT_LABEL}  # beyond_accuracy key: column


def age_labels() -> list[str]:
    """Bin labels of :data:`AGE_EDGES_H` ("<0h" for articles published after the impression)."""
    e = AGE_EDGES_H
    return ["<0h"] + [f"{a}-{b}h" for a, b in itertools.pairwise(e)] + [f">={e[-1]}h"]


def _ticked(items: list[Item], tick: Callable[[], None] | None) -> Iterator[Item]:
    """``items`` one by one, calling ``tick()`` after each is done (the report's progress)."""
    for it in items:
        yield it
        if tick:
            tick()


def accuracy_table(items: list[Item], split: Split, labels_path=None, tick=None) -> pl.DataFrame:
    """One row per item: ``item, impressions`` and the contest metrics."""
    rows = [{"item": it.name, **evaluate_scores(it.scores, split, labels_path)} for it in _ticked(items, tick)]
    return pl.DataFrame(rows).select("item", "impressions", *METRIC_NAMES)


def beyond_tables(items: list[Item], split: Split, tick=None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(numbers, distributions): beyond-accuracy numbers per item, and category /
    sentiment shares of each item's top-5 beside those of the candidate pool.

    ``users`` is the number of distinct users whose rows are ranked (on test:
    the beyond-accuracy rows; elsewhere: the impressions with 5 or more in-view
    articles), ``impressions`` the number of those rows."""
    numbers, shares = [], []
    for it in _ticked(items, tick):
        result = beyond_accuracy(it.scores, split, k=TOP_K)
        numbers.append({"item": it.name, "users": result["users"], "impressions": result["impressions"],
                        **{k: result[k] for k in BEYOND_NUMBERS}})
        for kind in DISTRIBUTIONS:
            shares += [{"item": it.name, "kind": kind, "value": v, "share": s} for v, s in result[kind].items()]
    shares += pool_shares(split)
    return pl.DataFrame(numbers), pl.DataFrame(shares, schema={"item": pl.String, "kind": pl.String,
                                                               "value": pl.String, "share": pl.Float64})


def pool_shares(split: Split) -> list[dict]:
    """Category and sentiment shares over the in-view articles of the rows that
    beyond-accuracy ranks (see ``evaluation.beyond``), as item "candidate pool"."""
    on_test = split.name == "test"
    cols = [S.INVIEW, S.IS_BEYOND_ACCURACY] if on_test else [S.INVIEW]
    ids = []
    for _, beh in iter_batches(split.behaviors, cols, 1_000_000):
        lengths = beh[S.INVIEW].list.len()
        chosen = beh[S.IS_BEYOND_ACCURACY] if on_test else lengths >= TOP_K
        ids.append(flat_lists(beh.filter(chosen)[S.INVIEW])[0])
    pool = pl.DataFrame({S.ARTICLE_ID: np.concatenate(ids).astype(np.int32)})
    arts = pl.read_parquet(split.articles, columns=[S.ARTICLE_ID, S.CATEGORY_STR, S.SENTIMENT_LABEL])
    pool = pool.join(arts, on=S.ARTICLE_ID, how="left")
    out = []
    for kind, column in DISTRIBUTIONS.items():
        counts = pool[column].drop_nulls().value_counts(sort=True)
        total = counts["count"].sum()
        out += [{"item": "candidate pool", "kind": kind, "value": str(v), "share": c / total}
                for v, c in counts.iter_rows()]
    return out


class _Articles:
    """Published time (µs) and category code of every article, looked up by id."""

    def __init__(self, split: Split):
        df = pl.read_parquet(split.articles, columns=[S.ARTICLE_ID, S.PUBLISHED_TIME, S.CATEGORY_STR])
        df = df.sort(S.ARTICLE_ID)
        self.ids = df[S.ARTICLE_ID].to_numpy().astype(np.int64)
        self.published = df[S.PUBLISHED_TIME].dt.epoch("us").to_numpy()
        self.categories, self.category = np.unique(df[S.CATEGORY_STR].fill_null("?").to_numpy().astype(str),
                                                   return_inverse=True)

    def rows(self, article_ids: np.ndarray) -> np.ndarray:
        return np.minimum(np.searchsorted(self.ids, article_ids.astype(np.int64)), self.ids.size - 1)


def behaviour_tables(items: list[Item], split: Split, tick=None) -> dict[str, pl.DataFrame]:
    """``age``, ``position`` (mean rank percentile per bin) and ``top1_category``
    tables, one block of rows per item (see the module doc)."""
    arts = _Articles(split)
    n_age, n_pos, n_cat = len(AGE_EDGES_H) + 1, MAX_POSITION + 1, arts.categories.size
    on_test = split.name == "test"
    cols = (S.INVIEW, S.IMPRESSION_TIME, S.IS_BEYOND_ACCURACY) if on_test else (S.INVIEW, S.IMPRESSION_TIME, S.CLICKED)
    age, position, top1 = [], [], []
    for it in _ticked(items, tick):
        sums = {"age": np.zeros((2, n_age)), "pos": np.zeros((2, n_pos))}
        top_counts, click_counts = np.zeros(n_cat), np.zeros(n_cat)
        for _, sc, beh in iter_checked(it.scores, split, cols):
            if on_test:  # the 250-candidate rows are no real impressions: behaviour on the regular ones
                sc, beh = sc.filter(~beh[S.IS_BEYOND_ACCURACY]), beh.filter(~beh[S.IS_BEYOND_ACCURACY])
            iv, off = flat_lists(beh[S.INVIEW])
            scores, _ = flat_lists(sc[S.SCORES])
            row, pos = list_ids(off)
            n = np.diff(off)
            pct = (descending_ranks(scores, off) - 1) / np.maximum(n[row] - 1, 1)
            at = arts.rows(iv)
            hours = (beh[S.IMPRESSION_TIME].dt.epoch("us").to_numpy()[row] - arts.published[at]) / 3.6e9
            for key, bins in (("age", np.digitize(hours, AGE_EDGES_H)), ("pos", np.minimum(pos, MAX_POSITION))):
                sums[key][0] += np.bincount(bins, weights=pct, minlength=sums[key].shape[1])
                sums[key][1] += np.bincount(bins, minlength=sums[key].shape[1])
            first = descending_order(scores, off)[off[:-1][n > 0]]
            top_counts += np.bincount(arts.category[at[first]], minlength=n_cat)
            if split.has_clicks:
                clicked, _ = flat_lists(beh[S.CLICKED])
                click_counts += np.bincount(arts.category[arts.rows(clicked)], minlength=n_cat)
        with np.errstate(invalid="ignore", divide="ignore"):
            age.append(pl.DataFrame({"item": it.name, "age": age_labels(), "candidates": sums["age"][1],
                                     "mean_rank_pct": sums["age"][0] / sums["age"][1]}))
            labels = [str(p) for p in range(MAX_POSITION)] + [f">={MAX_POSITION}"]
            position.append(pl.DataFrame({"item": it.name, "position": labels, "candidates": sums["pos"][1],
                                          "mean_rank_pct": sums["pos"][0] / sums["pos"][1]}))
            top1.append(pl.DataFrame({"item": it.name, "category": arts.categories,
                                      "top1_share": top_counts / top_counts.sum(),
                                      "clicked_share": click_counts / click_counts.sum() if split.has_clicks
                                      else np.full(n_cat, np.nan)}))
    return {"age": pl.concat(age).fill_nan(None), "position": pl.concat(position).fill_nan(None),
            "top1_category": pl.concat(top1).fill_nan(None)}


def curves_table(items: list[Item]) -> pl.DataFrame:
    """``item, unit, step, loss, val_auc`` from each run's metrics.jsonl (null where not logged); ``unit``
    is ``round`` for a ranker folder (``step`` counts its boosting rounds) and ``step`` for a training run."""
    rows = [{"item": it.name, "unit": "round" if is_ranker(it.run) else "step", "step": e.get("step"),
             "loss": e.get("loss"), "val_auc": e.get("val_auc")}
            for it in items for e in read_metrics_log(it.run)]
    return pl.DataFrame(rows, schema={"item": pl.String, "unit": pl.String, "step": pl.Int64, "loss": pl.Float64,
                                      "val_auc": pl.Float64})


def steady_throughput(entries: list[dict]) -> float | None:
    """Median ``samples_per_s`` of the logged steps after the first one.

    The first logged step pays for warm-up (DeepSpeed's first step, compiles,
    caches) and can be a hundred times slower than the rest; the median keeps
    the evaluation steps and other stragglers from moving the figure. With a
    single logged step, that one is all there is.

    >>> steady_throughput([{"samples_per_s": 2.8}, {"samples_per_s": 400.0}, {"samples_per_s": 415.0},
    ...                    {"samples_per_s": 40.0}, {"samples_per_s": 410.0}])
    405.0
    """
    speeds = [e["samples_per_s"] for e in entries if e.get("samples_per_s") is not None]
    if not speeds:
        return None
    return float(np.median(speeds[1:] if len(speeds) > 1 else speeds))


def efficiency_table(items: list[Item]) -> pl.DataFrame:
    """``item, steps`` (training steps of a run), ``rounds`` (boosting rounds of a ranker's early-stopping
    fit), ``samples_per_s`` (:func:`steady_throughput`) and ``parameters``; null = n/a."""
    rows = []
    for it in items:
        log = read_metrics_log(it.run)
        steps = [e["step"] for e in log if "step" in e]
        last = max(steps) if steps else None
        ranker = is_ranker(it.run)
        rows.append({"item": it.name, "steps": None if ranker else last, "rounds": last if ranker else None,
                     "samples_per_s": steady_throughput(log), "parameters": parameter_count(it.run)})
    return pl.DataFrame(rows, schema={"item": pl.String, "steps": pl.Int64, "rounds": pl.Int64,
                                      "samples_per_s": pl.Float64, "parameters": pl.Int64})


def importance_table(items: list[Item], top: int = 15) -> pl.DataFrame:
    """``item, feature, gain_share`` for the ``top`` features of each ranker item (``RUN/importance.csv``).

    ``gain_share`` is the feature's LightGBM gain over the ranker's total gain.
    """
    frames = []
    for it in items:
        path = it.run / "importance.csv" if it.run is not None else None
        if path is None or not path.is_file():
            continue
        imp = pl.read_csv(path)
        frames.append(imp.select(pl.lit(it.name).alias("item"), "feature",
                                 (pl.col("gain") / pl.col("gain").sum()).alias("gain_share")).head(top))
    if not frames:
        return pl.DataFrame(schema={"item": pl.String, "feature": pl.String, "gain_share": pl.Float64})
    return pl.concat(frames)
