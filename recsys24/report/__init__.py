"""``recsys24 report``: plots and tables that compare runs, baselines and scores files.

:func:`build_report` writes into ``out``:

- ``index.html``: every table and figure on one self-contained page;
- ``accuracy.csv``: AUC, MRR, nDCG@5/10, HR@1/5 per item (equal to
  ``recsys24 evaluate --json`` on the same scores file and split);
- ``beyond.csv`` / ``beyond_distribution.csv``: users and rows ranked, diversity, serendipity,
  novelty, coverage, and category / sentiment shares of the top-5 against the
  candidate pool. On test: the beyond-accuracy rows; on train / validation:
  the regular impressions with at least 5 in-view articles (top-5 of the
  in-view list), see ``evaluation.beyond``;
- ``behaviour_age.csv`` / ``behaviour_position.csv`` / ``top1_category.csv``:
  model behaviour (see ``report.tables``);
- ``curves.csv`` / ``efficiency.csv``: from the run folders' metrics.jsonl and
  model folders (null, "n/a" on the page, for bare scores files); a ranker
  folder's steps are boosting rounds (``unit`` = round, the ``rounds`` column),
  drawn in a chart of their own;
- ``importance.csv``: the top features of each ranker item (a ``recsys24 rank
  train`` folder holding ``scores/<split>.parquet``) by share of gain;
- one PNG per figure; a line or grouped-bar chart shows the best
  ``figures.MAX_ITEMS`` items by AUC, and the others' charts are folded away
  under it (``NAME_2.png``...).

Items: see ``report.items``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import polars as pl

from recsys24.data.split import Split
from recsys24.errors import Recsys24Error
from recsys24.evaluation.metrics import METRIC_NAMES
from recsys24.io import atomic_path
from recsys24.report import figures as F
from recsys24.report import tables as T
from recsys24.report.html import page, table_html
from recsys24.report.items import Item, resolve_item

__all__ = ["Item", "build_report", "resolve_item"]


def _write_csv(df: pl.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.write_csv(tmp)


def _item_groups(name: str, table: pl.DataFrame, order: list[str], draw, out: Path) -> list:
    """Charts of ``table`` for :data:`F.MAX_ITEMS` of its items each, in ``order``: ``name.png`` for the
    first, ``name_2.png``... for the rest, which the page folds away (see ``html.page``). Rows of other
    items (the candidate pool) are in every chart."""
    present = set(table["item"].to_list())
    mine = [n for n in order if n in present]
    groups = [mine[i:i + F.MAX_ITEMS] for i in range(0, len(mine), F.MAX_ITEMS)] or [[]]
    shown, folded = [], []
    for i, group in enumerate(groups):
        file = f"{name}.png" if i == 0 else f"{name}_{i + 1}.png"
        part = table.filter(pl.col("item").is_in(group) | ~pl.col("item").is_in(order))
        if draw(part, out / file):
            (shown if i == 0 else folded).append(file)
    if folded:
        others = ", ".join(mine[F.MAX_ITEMS:])
        return shown + [(f"The same chart for the other items: {others}", folded)]
    return shown


def build_report(items: list[Item], split: Split, out: str | Path, labels_path=None,
                 progress: Callable[[int, int], None] | None = None) -> Path:
    """Write the report of ``items`` on ``split`` into the folder ``out``; return ``out/index.html``.

    ``progress(done, total)`` is called as the scores files are read (three
    passes per item: accuracy, beyond accuracy, behaviour) and once the figures are drawn.
    """
    if not items:
        raise Recsys24Error("report: give at least one scores file or run folder")
    names = [it.name for it in items]
    if len(set(names)) != len(names):
        raise Recsys24Error(f"report: item names must differ (got {', '.join(names)}); use NAME=PATH")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    total, done = 3 * len(items) + 1, [0]

    def tick() -> None:
        done[0] += 1
        if progress:
            progress(done[0], total)

    if progress:
        progress(0, total)
    acc = T.accuracy_table(items, split, labels_path, tick)
    curves = T.curves_table(items)
    numbers, shares = T.beyond_tables(items, split, tick)
    behaviour = T.behaviour_tables(items, split, tick)
    eff = T.efficiency_table(items)
    importance = T.importance_table(items)
    tables = {"accuracy": acc, "curves": curves, "beyond": numbers, "beyond_distribution": shares,
              "behaviour_age": behaviour["age"], "behaviour_position": behaviour["position"],
              "top1_category": behaviour["top1_category"], "efficiency": eff, "importance": importance}
    for name, df in tables.items():
        _write_csv(df, out / f"{name}.csv")

    colours = F.item_colours(names)
    by_auc = acc.sort("auc", descending=True)["item"].to_list()  # the charts of few items show the best first

    def figure(name: str, drawn: bool) -> list[str]:
        return [f"{name}.png"] if drawn else []

    def per_group(name: str, table: pl.DataFrame, draw: Callable[[pl.DataFrame, Path], bool]) -> list:
        """``draw`` for the best :data:`F.MAX_ITEMS` items by AUC; the others' charts on request."""
        return _item_groups(name, table, by_auc, draw, out)

    ba_rows = ("the beyond-accuracy rows" if split.name == "test"
               else "the regular impressions with at least 5 in-view articles (top-5 of the in-view list)")
    csv_links = " ".join(f"<a href='{n}.csv'>{n}.csv</a>" for n in tables)
    sections = [
        ("Accuracy", f"<p class='note'>{split.name} split, {acc['impressions'][0]:,} impressions; "
                     f"best per column in bold. Tables: {csv_links}</p>" + table_html(acc, METRIC_NAMES),
         figure("accuracy", F.accuracy_figure(acc, out / "accuracy.png", colours))),
        ("Training curves", "" if curves.height else "<p class='note'>n/a: no item has a metrics.jsonl</p>",
         per_group("curves", curves.filter(pl.col("unit") == "step"), lambda t, p: F.curves_figure(t, p, colours))
         + per_group("rounds", curves.filter(pl.col("unit") == "round"),
                     lambda t, p: F.rounds_figure(t, p, colours))),
        ("Beyond accuracy", f"<p class='note'>Top-5 recommendations of {ba_rows}; users: distinct users of "
                            "those rows. Each panel's axis is zoomed to its values (see the numbers).</p>"
                            + table_html(numbers.rename(lambda c: c.replace("_", " "))),
         figure("beyond", F.beyond_figure(numbers, out / "beyond.png", colours))
         + per_group("category", shares, lambda t, p: F.distribution_figure(t, "category", p, colours))
         + per_group("sentiment", shares, lambda t, p: F.distribution_figure(t, "sentiment_label", p, colours))),
        ("Model behaviour", ("<p class='note'>Rank percentile of a candidate in its impression: 0 = ranked "
                             "first, 1 = last; 0.5 (dashed) is what a random ranking gives.</p>"),
         per_group("age", behaviour["age"],
                   lambda t, p: F.behaviour_figure(t, "age", "Rank vs article age at impression time",
                                                   "hours since publication", p, colours))
         + per_group("position", behaviour["position"],
                     lambda t, p: F.behaviour_figure(t, "position", "Rank vs position in the in-view list",
                                                     "in-view position", p, colours))
         + per_group("top1", behaviour["top1_category"], lambda t, p: F.top1_figure(t, p, colours))),
        ("Efficiency", "<p class='note'>steps: training steps of a run; rounds: boosting rounds of a ranker's "
                       "early-stopping fit; samples/s: median over the logged training steps after the first "
                       "(warm-up); parameters: from RUN/model/*.safetensors.</p>" + table_html(eff),
         figure("efficiency", F.efficiency_figure(eff, out / "efficiency.png", colours))),
        ("Feature importance", ("<p class='note'>Rankers (<code>recsys24 rank train</code>): the top features "
                                "by share of LightGBM's total gain.</p>" + table_html(importance))
         if importance.height else "<p class='note'>n/a: no item is a ranker folder</p>",
         figure("importance", F.importance_figure(importance, out / "importance.png", colours))),
    ]
    index = out / "index.html"
    with atomic_path(index) as tmp:
        tmp.write_text(page(f"recsys24 report: {', '.join(names)}", sections))
    tick()
    return index
