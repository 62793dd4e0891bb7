"""``recsys24 report``: one HTML page of tables and figures comparing runs and scores files."""

from __future__ import annotations

import time

import click

from recsys24.commands import options
from recsys24.progress import Progress, console


@click.command()
@click.argument("items", nargs=-1, required=True, metavar="[NAME=]PATH...")
@options.raw_data()
@options.split("validation")
@click.option("--labels", "labels_path", type=click.Path(dir_okay=False), default=None,
              help="Truth labels file for a split without clicks (e.g. DIR/synth_truth/test.parquet).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Report folder to write.")
def report(items, data_dir, split, labels_path, out):
    """Compare scores files and run folders: accuracy, training curves, beyond accuracy, behaviour, efficiency.

    PATH: a scores parquet, a `predict` folder (scores.parquet), or a run folder
    with scores/<split>.parquet; a run folder's metrics.jsonl and model/ add
    training curves, throughput and parameters.
    """
    from recsys24.data.split import open_split
    from recsys24.report import build_report, resolve_item

    t0 = time.perf_counter()
    resolved, sp = [resolve_item(i, split) for i in items], open_split(data_dir, split)
    with Progress("report", "steps") as progress:
        index = build_report(resolved, sp, out, labels_path, progress)
    console.print(f"wrote {index} in {time.perf_counter() - t0:.1f} s")


COMMANDS = [report]
