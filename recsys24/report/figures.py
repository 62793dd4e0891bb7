"""The report's figures: one PNG per panel, drawn with matplotlib (Agg, no display).

Each function takes the tables of ``report.tables``, the colour of every item
(:func:`item_colours`: one colour per item, the same in every figure) and a
path, writes the PNG atomically, and returns False (writing nothing) when there
is nothing to draw. Legends sit outside the axes, right of the data; a number
per item is drawn as a horizontal bar per item, named on the left and labelled
with its value as the tables print it, on an axis zoomed to the values
(:func:`zoomed_limits`), so 0.991 against 0.994 shows; shares and
probabilities stay within [0, 1]. A line or grouped-bar chart takes at most
:data:`MAX_ITEMS` items: the report gives the others charts of their own.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from recsys24.evaluation.metrics import METRIC_NAMES
from recsys24.io import atomic_path

DPI = 100
MAX_ITEMS = 6  # items per line or grouped-bar chart: the report draws the rest in charts of their own
# What every item is compared with: fixed greys, and the item palette has none, so neither passes for an item.
REFERENCE_COLOURS = {"candidate pool": "0.78", "clicked": "0.1"}
_PALETTE = tuple(c for c in plt.get_cmap("tab10").colors + plt.get_cmap("Dark2").colors
                 if max(c) - min(c) > 0.05)  # tab10 and Dark2 without their greys: 16 colours
# Metrics that are shares or probabilities: their axes stay within [0, 1].
FRACTIONS = frozenset({*METRIC_NAMES, "coverage_fraction", "share"})
_TITLES = {"auc": "AUC", "mrr": "MRR", "intralist_diversity": "intra-list diversity",
           "coverage_fraction": "coverage (share of articles)"}
_WORDS = {"category": "Categories", "sentiment_label": "Sentiment"}  # distribution kinds in words


def item_colours(names: list[str]) -> dict[str, tuple]:
    """One colour per item name, in order (tab10, then Dark2, no greys), plus :data:`REFERENCE_COLOURS`."""
    colours = {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(names)}
    return {**colours, **REFERENCE_COLOURS}


def metric_title(metric: str) -> str:
    """A metric's name as a title: ``AUC``, ``nDCG@5``, ``HR@1``, ``intra-list diversity``.

    >>> [metric_title(m) for m in ("auc", "ndcg@10", "hr@5", "novelty", "training samples/s")]
    ['AUC', 'nDCG@10', 'HR@5', 'novelty', 'training samples/s']
    """
    if metric.startswith(("ndcg@", "hr@")):
        head, _, k = metric.partition("@")
        return f"{'nDCG' if head == 'ndcg' else 'HR'}@{k}"
    return _TITLES.get(metric, metric.replace("_", " "))


def zoomed_limits(values: np.ndarray, fraction: bool = False) -> tuple[float, float]:
    """Axis limits that show the differences between ``values``.

    From 0 when the values are spread over more than half their size (0.2 and
    0.6); otherwise around them, padded by half their spread (0.991 and 0.994
    give about 0.9895 to 0.9955), so bars of nearly equal values still differ.
    ``fraction``: the values are shares or probabilities, and the limits stay within [0, 1].

    >>> [round(v, 4) for v in zoomed_limits(np.array([0.2, 0.6]))]
    [0.0, 0.66]
    >>> [round(v, 4) for v in zoomed_limits(np.array([0.991, 0.994]))]
    [0.9895, 0.9955]
    >>> [round(v, 4) for v in zoomed_limits(np.array([0.3, 0.998]), fraction=True)]
    [0.0, 1.0]
    """
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = float(values.min()), float(values.max())
    if lo >= 0 and (hi == 0 or lo < 0.5 * hi or lo == hi):  # one value alone: a bar from 0
        lo, hi = 0.0, hi * 1.1 or 1.0
    else:
        pad = max((hi - lo) / 2, abs(hi) * 1e-4, 1e-9)
        lo, hi = lo - pad, hi + pad
    return (max(lo, 0.0), min(hi, 1.0)) if fraction else (lo, hi)


def _save(fig, path: Path) -> bool:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")  # "tight" keeps the outside legends
    plt.close(fig)
    return True


def _legend(ax) -> None:
    """The legend right of the axes, never over the data."""
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def value_text(value: float) -> str:
    """A bar's label, as the report's tables print the number: four decimals, ``n/a`` for none.

    >>> value_text(0.71234), value_text(1250.0), value_text(float("nan"))
    ('0.7123', '1250.0000', 'n/a')
    """
    return f"{value:.4f}" if np.isfinite(value) else "n/a"


def _label_bars(ax, y: np.ndarray, values: np.ndarray, colours: list, lo: float, hi: float) -> None:
    """Each bar's value, horizontal: inside the end of a long bar (dark or light text, whichever reads on
    the bar's colour), right of a short one."""
    span = hi - lo
    for yi, v, colour in zip(y, values, colours):
        text = value_text(v)
        if np.isfinite(v) and (v - lo) / span > 0.35:
            r, g, b = matplotlib.colors.to_rgb(colour)
            ink = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "white"
            ax.text(v - 0.02 * span, yi, text, ha="right", va="center", fontsize="small", color=ink)
        else:
            x = max(v, lo) if np.isfinite(v) else lo
            ax.text(x + 0.02 * span, yi, text, ha="left", va="center", fontsize="small")


def _number_panels(table: pl.DataFrame, metrics: list[str], colours: dict, title: str, path: Path) -> bool:
    """One panel per metric, one horizontal bar per item in its colour and labelled with its value, the
    items named down the left; each axis zoomed to its values (within [0, 1] for :data:`FRACTIONS`)."""
    names = table["item"].to_list()
    ncols = 3 if len(metrics) % 3 == 0 else 2 if len(metrics) % 2 == 0 else min(len(metrics), 3)
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols + 1.5, (0.3 * len(names) + 0.9) * nrows),
                             squeeze=False, sharey=True, layout="constrained")
    y = np.arange(len(names))
    bar_colours = [colours[n] for n in names]
    for ax, metric in zip(axes.flat, metrics):
        values = table[metric].cast(pl.Float64).fill_null(np.nan).to_numpy()
        lo, hi = zoomed_limits(values, fraction=metric in FRACTIONS)
        ax.barh(y, np.nan_to_num(values, nan=lo), color=bar_colours)
        ax.set_xlim(lo, hi)
        _label_bars(ax, y, values, bar_colours, lo, hi)
        ax.set_title(metric_title(metric))
        ax.tick_params(axis="x", labelsize="small")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
        ax.xaxis.get_major_formatter().set_useOffset(False)  # 0.989, not 1e-3 + 0.988
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    axes[0, 0].set_yticks(y, names)
    axes[0, 0].invert_yaxis()  # the first item on top (shared by every panel)
    fig.suptitle(title)
    return _save(fig, path)


def _grouped_bars(ax, labels: list[str], series: dict[str, np.ndarray], colours: dict) -> None:
    """Bars of every series side by side per label, each series in its item's colour; shares, so the axis
    runs from 0 to at most 1."""
    x = np.arange(len(labels))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name, color=colours[name],
               edgecolor="0.3" if name in REFERENCE_COLOURS else None, linewidth=0.6)
    long = sum(len(label) + 2 for label in labels) > 60  # the labels would not fit side by side
    ax.set_xticks(x, labels, rotation=30 if long else 0, ha="right" if long else "center")
    top = max((float(np.nanmax(v)) for v in series.values() if len(v)), default=1.0)
    ax.set_ylim(0, min(1.0, top * 1.1) or 1.0)
    _legend(ax)


def accuracy_figure(acc: pl.DataFrame, path: Path, colours: dict) -> bool:
    """Every contest metric in its own panel, one bar per item."""
    return _number_panels(acc, list(METRIC_NAMES), colours, "Accuracy", path)


def curves_figure(curves: pl.DataFrame, path: Path, colours: dict) -> bool:
    """Training loss and validation AUC against the training step, one line per training run (rankers'
    boosting rounds are no steps: see :func:`rounds_figure`)."""
    runs = curves.filter(pl.col("unit") == "step")
    if runs.height == 0:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for (name,), run in runs.group_by("item", maintain_order=True):
        loss = run.filter(pl.col("loss").is_not_null())
        left.plot(loss["step"], loss["loss"], label=name, color=colours[name])
        auc = run.filter(pl.col("val_auc").is_not_null())
        right.plot(auc["step"], auc["val_auc"], marker="o", label=name, color=colours[name])
    left.set(title="Training loss", xlabel="training step", ylabel="loss")
    right.set(title="Validation AUC (the run's validation sample)", xlabel="training step", ylabel="AUC",
              ylim=zoomed_limits(runs["val_auc"].drop_nulls().to_numpy(), fraction=True))
    _legend(right)
    fig.tight_layout()
    return _save(fig, path)


def rounds_figure(curves: pl.DataFrame, path: Path, colours: dict) -> bool:
    """The rankers' validation AUC after each boosting round of their early-stopping fit, one line each."""
    rounds = curves.filter((pl.col("unit") == "round") & pl.col("val_auc").is_not_null())
    if rounds.height == 0:
        return False
    fig, ax = plt.subplots(figsize=(8, 4))
    for (name,), ranker in rounds.group_by("item", maintain_order=True):
        ax.plot(ranker["step"], ranker["val_auc"], marker="o" if ranker.height <= 30 else None, label=name,
                color=colours[name])
    ax.set(title="Rankers: validation AUC per boosting round (early-stopping rows)", xlabel="boosting round",
           ylabel="AUC", ylim=zoomed_limits(rounds["val_auc"].to_numpy(), fraction=True))
    _legend(ax)
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
    ax.set(title=f"{_WORDS.get(kind, kind)} of the top-5 recommendations vs the candidate pool",
           ylabel="share of the top-5")
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
    ax.set(title="Category of each impression's top-1 pick vs the clicked articles", ylabel="share")
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
