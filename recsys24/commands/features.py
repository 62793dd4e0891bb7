"""``recsys24 features``."""

from __future__ import annotations

import click

from recsys24.commands import options
from recsys24.messages import print_warning
from recsys24.progress import Progress, console, plural


@click.command()
@options.raw_data()
@options.split()
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Features folder.")
@click.option("--past-only", is_flag=True,
              help="Only what is known at the impression's time: no forward in-view windows, no next-impression gap.")
@click.option("--split-history", is_flag=True,
              help="Read the users' histories from the split's history.parquet only; by default the other splits' "
                   "history files under --data add their reads from before the split's first impression.")
@click.option("--piece-candidates", type=int, default=None,
              help="Candidates per resumable piece (default 4,000,000).")
def features(data_dir, split, out, past_only, split_history, piece_candidates):
    """Contest-grade features: one row per (behaviors row, in-view candidate); rerun to finish a killed run."""
    from recsys24.features.build import PIECE_CANDIDATES, build_features

    with Progress(f"features {split}", "rows") as progress:
        stats = build_features(data_dir, split, out, past_only,
                               PIECE_CANDIDATES if piece_candidates is None else piece_candidates,
                               split_history=split_history, progress=progress, log=progress.note)
    for warning in stats.warnings:
        print_warning(warning)
    if stats.damaged:
        print_warning(f"{out}: {plural(stats.damaged, 'piece')} cut short or damaged since written, built again")
    if not stats.written:
        console.print(f"{out}: already complete ({stats.rows:,} rows, {stats.candidates:,} candidates)")
        return
    console.print(f"wrote {stats.written} of {plural(stats.pieces, 'piece')} to {out} "
                  f"({stats.rows:,} rows, {stats.candidates:,} candidates) in {stats.seconds:.0f} s")


COMMANDS = [features]
