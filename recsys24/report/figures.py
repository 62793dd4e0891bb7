"""The report's figures: one PNG per panel, drawn with matplotlib (Agg, no display).

Each function takes the tables of ``report.tables`` and a path, writes the PNG
atomically, and returns False (writing nothing) when there is nothing to draw.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from recsys24.data import schema as S
from recsys24.evaluation.metrics import METRIC_NAMES
from recsys24.io import atomic_path

DPI = 100


def _save(fig, path: Path) -> bool:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return True


def _grouped_bars(ax, labels: list[str], series: dict[str, np.ndarray]) -> None:
    """Bars of every series side by side per label."""
    x = np.arange(len(labels))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, labels, rotation=45, ha="right")
    ax.legend(fontsize="small")


def accuracy_figure(acc: pl.DataFrame, path: Path) -> bool:
    """Grouped bars: every contest metric, one bar per item."""
    fig, ax = plt.subplots(figsize=(9, 4))
    labels = list(METRIC_NAMES)
    _grouped_bars(ax, labels, {r["item"]: np.array([r[m] for m in labels]) for r in acc.iter_rows(named=True)})
    ax.set_ylim(0, 1)
    ax.set_title("Accuracy")
    return _save(fig, path)


def curves_figure(curves: pl.DataFrame, path: Path) -> bool:
    """Training loss and validation AUC against step, one line per run."""
    if curves.height == 0:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for (name,), run in curves.group_by("item", maintain_order=True):
        loss = run.filter(pl.col("loss").is_not_null())
        left.plot(loss["step"], loss["loss"], label=name)
        auc = run.filter(pl.col("val_auc").is_not_null())
        right.plot(auc["step"], auc["val_auc"], marker="o", label=name)
    left.set(title="Training loss", xlabel="step", ylabel="loss")
    right.set(title="Validation AUC", xlabel="step", ylabel="AUC")
    left.legend(fontsize="small")
    right.legend(fontsize="small")
    return _save(fig, path)


def beyond_figure(numbers: pl.DataFrame, path: Path) -> bool:
    """One small bar chart per beyond-accuracy number, one bar per item."""
    metrics = ["intralist_diversity", "serendipity", "novelty", "coverage_fraction"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(12, 3.5))
    for ax, metric in zip(axes, metrics):
        ax.bar(numbers["item"].to_list(), numbers[metric].to_numpy(), color=[f"C{i}" for i in range(numbers.height)])
        ax.set_title(metric.replace("_", " "))
        ax.tick_params(axis="x", rotation=45)
    return _save(fig, path)


def distribution_figure(shares: pl.DataFrame, kind: str, path: Path, top: int = 12) -> bool:
    """Shares per value of ``kind`` in each item's top-5 and in the candidate pool."""
    part = shares.filter(pl.col("kind") == kind)
    if part.height == 0:
        return False
    pool = part.filter(pl.col("item") == "candidate pool").sort("share", descending=True)
    values = (pool if pool.height else part)["value"].unique(maintain_order=True).head(top).to_list()
    series = {}
    for (name,), grp in part.group_by("item", maintain_order=True):
        lookup = dict(zip(grp["value"].to_list(), grp["share"].to_list()))
        series[name] = np.array([lookup.get(v, 0.0) for v in values])
    fig, ax = plt.subplots(figsize=(10, 4))
    _grouped_bars(ax, values, series)
    ax.set(title=f"{kind}: top-5 recommendations vs candidate pool", ylabel="share")
    return _save(fig, path)


def behaviour_figure(table: pl.DataFrame, x: str, title: str, xlabel: str, path: Path) -> bool:
    """Mean rank percentile (0 = ranked first) per bin, one line per item."""
    if table.height == 0:
        return False
    fig, ax = plt.subplots(figsize=(8, 4))
    for (name,), grp in table.filter(pl.col("candidates") > 0).group_by("item", maintain_order=True):
        ax.plot(grp[x].to_list(), grp["mean_rank_pct"].to_numpy(), marker="o", label=name)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set(title=title, xlabel=xlabel, ylabel="mean rank percentile (0 = top)", ylim=(0, 1))
    ax.tick_params(axis="x", rotation=45)
    ax.legend(fontsize="small")
    return _save(fig, path)


def top1_figure(top1: pl.DataFrame, path: Path, top: int = 12) -> bool:
    """Category mix of each item's top-1 picks beside that of the clicked articles."""
    if top1.height == 0:
        return False
    first = top1.filter(pl.col("item") == top1["item"][0])
    has_clicks = first["clicked_share"].null_count() < first.height
    order = first.sort("clicked_share" if has_clicks else "top1_share", descending=True, nulls_last=True)
    categories = order["category"].head(top).to_list()
    series = {}
    if has_clicks:
        series["clicked"] = order["clicked_share"].head(top).fill_null(0).to_numpy()
    for (name,), grp in top1.group_by("item", maintain_order=True):
        lookup = dict(zip(grp["category"].to_list(), grp["top1_share"].to_list()))
        series[f"{name} top-1"] = np.array([lookup.get(c) or 0.0 for c in categories])
    fig, ax = plt.subplots(figsize=(10, 4))
    _grouped_bars(ax, categories, series)
    ax.set(title=f"{S.CATEGORY_STR} of top-1 picks vs clicked articles", ylabel="share")
    return _save(fig, path)


def efficiency_figure(eff: pl.DataFrame, path: Path) -> bool:
    """Throughput (samples/s) and parameters per item that has them."""
    known = eff.filter(pl.col("samples_per_s").is_not_null() | pl.col("parameters").is_not_null())
    if known.height == 0:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    names = known["item"].to_list()
    left.bar(names, known["samples_per_s"].fill_null(0).to_numpy(), color="C0")
    left.set(title="Training throughput", ylabel="samples / s")
    right.bar(names, known["parameters"].fill_null(0).to_numpy() / 1e6, color="C1")
    right.set(title="Parameters", ylabel="millions")
    return _save(fig, path)


def importance_figure(importance: pl.DataFrame, path: Path) -> bool:
    """Horizontal bars of each ranker's top features by share of the total gain, one panel per ranker."""
    if importance.height == 0:
        return False
    groups = list(importance.group_by("item", maintain_order=True))
    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 5.5), squeeze=False, layout="constrained")
    for ax, ((name,), part) in zip(axes[0], groups):
        ax.barh(part["feature"].to_list()[::-1], part["gain_share"].to_numpy()[::-1], color="C0")
        ax.set(title=f"{name}: feature importance", xlabel="share of total gain")
    return _save(fig, path)
