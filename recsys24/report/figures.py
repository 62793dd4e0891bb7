"""The report's figures: one PNG per panel, drawn with matplotlib (Agg, no display).

Each function takes the tables of ``report.tables``, the colour of every item
(:func:`item_colours`: one colour per item, the same in every figure) and a
path, writes the PNG atomically, and returns False (writing nothing) when there
is nothing to draw. Legends sit outside the axes, right of the data; a number
per item is drawn as a bar per item, labelled with its value, on an axis
zoomed to the values (:func:`zoomed_limits`), so 0.991 against 0.994 shows.
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
# What every item is compared with: fixed greys, never an item's colour.
REFERENCE_COLOURS = {"candidate pool": "0.6", "clicked": "0.25"}
_PALETTE = plt.get_cmap("tab10").colors + plt.get_cmap("Dark2").colors


def item_colours(names: list[str]) -> dict[str, tuple]:
    """One colour per item name, in order (tab10, then Dark2), plus :data:`REFERENCE_COLOURS`."""
    colours = {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(names)}
    return {**colours, **REFERENCE_COLOURS}


def zoomed_limits(values: np.ndarray) -> tuple[float, float]:
    """y-limits that show the differences between ``values``.

    From 0 when the values are spread over more than half their size (0.2 and
    0.6); otherwise around them, padded by half their spread (0.991 and 0.994
    give about 0.9895 to 0.9955), so bars of nearly equal values still differ.

    >>> [round(v, 4) for v in zoomed_limits(np.array([0.2, 0.6]))]
    [0.0, 0.66]
    >>> [round(v, 4) for v in zoomed_limits(np.array([0.991, 0.994]))]
    [0.9895, 0.9955]
    """
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = float(values.min()), float(values.max())
    if lo >= 0 and (hi == 0 or lo < 0.5 * hi):
        return 0.0, hi * 1.1 or 1.0
    pad = max((hi - lo) / 2, abs(hi) * 1e-4, 1e-9)
    return lo - pad, hi + pad


def _save(fig, path: Path) -> bool:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")  # "tight" keeps the outside legends
    plt.close(fig)
    return True


def _legend(ax) -> None:
    """The legend right of the axes, never over the data."""
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def _number_panels(table: pl.DataFrame, metrics: list[str], colours: dict, title: str, path: Path) -> bool:
    """One small panel per metric, one bar per item in its colour, each axis zoomed to its values."""
    names = table["item"].to_list()
    fig, axes = plt.subplots(1, len(metrics), figsize=(2.4 * len(metrics) + 1, 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        values = table[metric].cast(pl.Float64).fill_null(np.nan).to_numpy()
        bars = ax.bar(np.arange(len(names)), np.nan_to_num(values), color=[colours[n] for n in names])
        ax.bar_label(bars, labels=[_value_text(v) for v in values], fontsize="x-small",
                     rotation=90 if len(names) > 3 else 0, padding=2)
        lo, hi = zoomed_limits(values)
        ax.set_ylim(lo, hi + (hi - lo) * 0.25)  # room for the value labels
        ax.set_title(metric.replace("_", " "))
        ax.set_xticks([])
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[n]) for n in names]
    fig.legend(handles, names, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 0.9))
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def _value_text(value: float) -> str:
    """A bar's label: four significant digits below 100 (0.9903, 6.709), whole numbers above (1,250)."""
    if not np.isfinite(value):
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4g}"


def _grouped_bars(ax, labels: list[str], series: dict[str, np.ndarray], colours: dict) -> None:
    """Bars of every series side by side per label, each series in its item's colour."""
    x = np.arange(len(labels))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name, color=colours[name])
    ax.set_xticks(x, labels, rotation=45, ha="right")
    _legend(ax)


def accuracy_figure(acc: pl.DataFrame, path: Path, colours: dict) -> bool:
    """Every contest metric in its own panel, one bar per item."""
    return _number_panels(acc, list(METRIC_NAMES), colours, "Accuracy", path)


def curves_figure(curves: pl.DataFrame, path: Path, colours: dict) -> bool:
    """Training loss and validation AUC against step, one line per run."""
    if curves.height == 0:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for (name,), run in curves.group_by("item", maintain_order=True):
        loss = run.filter(pl.col("loss").is_not_null())
        left.plot(loss["step"], loss["loss"], label=name, color=colours[name])
        auc = run.filter(pl.col("val_auc").is_not_null())
        right.plot(auc["step"], auc["val_auc"], marker="o", label=name, color=colours[name])
    left.set(title="Training loss", xlabel="step", ylabel="loss")
    right.set(title="Validation AUC", xlabel="step", ylabel="AUC")
    _legend(right)
    fig.tight_layout()
    return _save(fig, path)


def beyond_figure(numbers: pl.DataFrame, path: Path, colours: dict) -> bool:
    """One panel per beyond-accuracy number, one bar per item."""
    metrics = ["intralist_diversity", "serendipity", "novelty", "coverage_fraction"]
    return _number_panels(numbers, metrics, colours, "Beyond accuracy (top-5)", path)


def distribution_figure(shares: pl.DataFrame, kind: str, path: Path, colours: dict, top: int = 12) -> bool:
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
    _grouped_bars(ax, values, series, colours)
    ax.set(title=f"{kind}: top-5 recommendations vs candidate pool", ylabel="share")
    return _save(fig, path)


def behaviour_figure(table: pl.DataFrame, x: str, title: str, xlabel: str, path: Path, colours: dict) -> bool:
    """Mean rank percentile (0 = ranked first) per bin, one line per item."""
    if table.height == 0:
        return False
    fig, ax = plt.subplots(figsize=(8, 4))
    for (name,), grp in table.filter(pl.col("candidates") > 0).group_by("item", maintain_order=True):
        ax.plot(grp[x].to_list(), grp["mean_rank_pct"].to_numpy(), marker="o", label=name, color=colours[name])
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set(title=title, xlabel=xlabel, ylabel="mean rank percentile (0 = top)", ylim=(0, 1))
    ax.tick_params(axis="x", rotation=45)
    _legend(ax)
    return _save(fig, path)


def top1_figure(top1: pl.DataFrame, path: Path, colours: dict, top: int = 12) -> bool:
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
        series[name] = np.array([lookup.get(c) or 0.0 for c in categories])
    fig, ax = plt.subplots(figsize=(10, 4))
    _grouped_bars(ax, categories, series, colours)
    ax.set(title=f"{S.CATEGORY_STR} of top-1 picks vs clicked articles", ylabel="share of top-1 picks")
    return _save(fig, path)


def efficiency_figure(eff: pl.DataFrame, path: Path, colours: dict) -> bool:
    """Training throughput (samples/s) and parameters of the items that have them."""
    known = eff.filter(pl.col("samples_per_s").is_not_null() | pl.col("parameters").is_not_null())
    if known.height == 0:
        return False
    table = known.with_columns((pl.col("parameters") / 1e6).alias("parameters (millions)"))
    return _number_panels(table.rename({"samples_per_s": "training samples/s"}),
                          ["training samples/s", "parameters (millions)"], colours, "Efficiency", path)


def importance_figure(importance: pl.DataFrame, path: Path, colours: dict) -> bool:
    """Horizontal bars of each ranker's top features by share of the total gain, one panel per ranker."""
    if importance.height == 0:
        return False
    groups = list(importance.group_by("item", maintain_order=True))
    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 5.5), squeeze=False, layout="constrained")
    for ax, ((name,), part) in zip(axes[0], groups):
        ax.barh(part["feature"].to_list()[::-1], part["gain_share"].to_numpy()[::-1], color=colours[name])
        ax.set(title=f"{name}: feature importance", xlabel="share of total gain")
    return _save(fig, path)
