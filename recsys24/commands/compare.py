"""``recsys24 compare``: neural baselines vs heuristics vs CGc-d, trained, scored and evaluated in one go."""

from __future__ import annotations

from pathlib import Path

import click

from recsys24.commands import options
from recsys24.progress import console, log


@click.command()
@options.raw_data()
@options.prepared(help="Folder of prepared splits (train/ and the scored split).")
@options.split("validation", choices=("train", "validation"))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for runs, scores and table.md.")
@click.option("--models", default="nrms,naml,lstur,npa,dkn,cgc_d", show_default=True,
              help="Comma-separated config names under --configs.")
@click.option("--configs", default=None, type=click.Path(file_okay=False), help="Config folder (default: configs/tiny).")
@click.argument("overrides", nargs=-1)
def compare(data_dir, prepared_dir, split, out, models, configs, overrides):
    """Train each model config, score SPLIT with predict, add the heuristics, print the table.

    OVERRIDES (section.key=value) apply to every training run, e.g. train.steps=100.
    Finished steps are skipped on a rerun; OUT/table.md holds the markdown table.
    """
    from recsys24.experiments import CONFIGS, compare as run

    names = tuple(m for m in models.split(",") if m)
    run(data_dir, prepared_dir, out, split, names, tuple(overrides), configs or CONFIGS,
        log=lambda line: log(f"compare: {line}"))
    console.print((Path(out) / "table.md").read_text(), markup=False)


COMMANDS = [compare]
