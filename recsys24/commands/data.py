"""``recsys24 synth`` and ``recsys24 prepare``."""

from __future__ import annotations

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from recsys24.data import schema as S

console = Console()


@click.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--preset", type=click.Choice(["tiny", "demo", "small", "large"]), default="demo", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--splits", default=",".join(S.SPLITS), show_default=True, help="Comma-separated splits to write.")
def synth(out, preset, seed, splits):
    """Write a synthetic EB-NeRD (official schema, planted signal) to OUT."""
    from recsys24.data.synth import synthesize

    wanted = tuple(s for s in splits.split(",") if s)
    bad = [s for s in wanted if s not in S.SPLITS]
    if bad:
        raise click.BadParameter(f"unknown split(s) {bad}", param_hint="--splits")
    with console.status(f"synthesising '{preset}' into {out}"):
        summary = synthesize(out, preset, seed, wanted)
    for split, info in summary["splits"].items():
        console.print(f"{split:>10}: {info['impressions']:,} impressions, {info['users']:,} users")
    console.print(f"wrote {out} (true click propensities in {out}/synth_truth/)")


@click.command()
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False), help="EB-NeRD folder.")
@click.option("--split", type=click.Choice(list(S.SPLITS)), required=True)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Prepared split folder.")
@click.option("--history-size", "-T", type=int, default=20, show_default=True, help="History items kept per user.")
@click.option("--npratio", "-K", type=int, default=4, show_default=True, help="Negatives per training pair.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-rows", type=int, default=1_000_000, show_default=True, help="Behaviors rows per shard.")
@click.option("--strict", is_flag=True,
              help="Refuse history problems (users without history, history after an impression) "
                   "instead of warning.")
def prepare(data_dir, split, out, history_size, npratio, seed, batch_rows, strict):
    """Validate a split of an EB-NeRD folder and write it as prepared shards."""
    from recsys24.cli import print_warning
    from recsys24.data.prepare import prepare as run

    columns = [TextColumn("prepare {task.description}"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,} impressions"), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(split, total=None)
        manifest = run(data_dir, split, out, history_size, npratio, seed, batch_rows,
                       progress=lambda done, total: bar.update(task, completed=done, total=total), strict=strict)
    for warning in manifest.get("warnings", []):
        print_warning(warning)
    if manifest.get("skipped"):
        console.print(f"{out} is up to date ({manifest['num_impressions']:,} impressions); nothing to do")
        return
    console.print(
        f"prepared {split}: {manifest['num_impressions']:,} impressions, {manifest['num_pairs']:,} "
        f"training pairs, {len(manifest['shards']['impressions'])} shards in {manifest['seconds']} s -> {out}"
    )


COMMANDS = [synth, prepare]
