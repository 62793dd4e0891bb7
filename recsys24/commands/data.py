"""``recsys24 synth`` and ``recsys24 prepare``."""

from __future__ import annotations

from pathlib import Path

import click

from recsys24.commands import options
from recsys24.data import schema as S
from recsys24.messages import print_warning
from recsys24.progress import Progress, console, log, plural


@click.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--preset", type=click.Choice(["tiny", "demo", "small", "large"]), default="demo", show_default=True)
@options.seed()
@click.option("--splits", default=",".join(S.SPLITS), show_default=True, help="Comma-separated splits to write.")
@click.option("--click-model", default="category", show_default=True,
              help="What drives clicks (docs/data.md, 'Synthetic EB-NeRD'): category (preference + age + popularity), "
                   "burst (short popularity bursts), fatigue (exposure fatigue + drifting interests) or topic "
                   "(topic/entity affinity).")
@click.option("--history", type=click.Choice(["independent", "overlapping"]), default="independent",
              show_default=True,
              help="History files drawn per split, or cut from one reading timeline per user as EB-NeRD's "
                   "(each the 21 days before its split; validation and test repeat the earlier reads).")
@click.option("--layout", type=click.Choice(["single", "official"]), default="single", show_default=True,
              help="One folder (OUT/articles.parquet, OUT/SPLIT/), or the two downloads as unpacked: "
                   "OUT/ebnerd_PRESET/{articles.parquet,train,validation} and OUT/ebnerd_testset/{articles.parquet,"
                   "test} (join them with `recsys24 layout`).")
def synth(out, preset, seed, splits, click_model, history, layout):
    """Write a synthetic EB-NeRD (official schema, planted signal) to OUT."""
    from recsys24.data.synth import synthesize
    from recsys24.data.synth_clicks import CLICK_MODELS

    if click_model not in CLICK_MODELS:
        raise click.BadParameter(f"unknown click model '{click_model}' (one of {', '.join(CLICK_MODELS)})",
                                 param_hint="--click-model")

    wanted = tuple(s for s in splits.split(",") if s)
    bad = [s for s in wanted if s not in S.SPLITS]
    if bad:
        raise click.BadParameter(f"unknown split(s) {bad}", param_hint="--splits")
    where = Path(out) / ".synth-single" if layout == "official" else Path(out)
    if console.is_terminal:
        with console.status(f"synthesising '{preset}' into {out}"):
            summary = synthesize(where, preset, seed, wanted, click_model, history)
    else:
        log(f"synthesising '{preset}' into {out}")
        summary = synthesize(where, preset, seed, wanted, click_model, history)
    if layout == "official":
        from recsys24.data.layout import write_official
        from recsys24.data.synth import WINDOWS

        folders = write_official(where, Path(out), preset, WINDOWS["test"])
        console.print(f"official layout: {folders[0]}, {folders[1]}")
    for split, size in summary.splits.items():
        console.print(f"{split:>10}: {size.impressions:,} impressions, {size.users:,} users")
    console.print(f"wrote {out} (true click propensities in {out}/synth_truth/)")


@click.command()
@options.raw_data(help="The unpacked train download: ebnerd_large/, ebnerd_small/ or ebnerd_demo/ "
                        "(articles.parquet, train/, validation/).")
@click.option("--testset", required=True, type=click.Path(),
              help="The unpacked test download: ebnerd_testset/ (articles.parquet, test/).")
@click.option("--out", required=True, type=click.Path(),
              help="The folder to make: the raw EB-NeRD folder every other command takes as --data.")
def layout(data_dir, testset, out):
    """Join the two official downloads into one raw EB-NeRD folder: split links and one articles.parquet.

    OUT/SPLIT links to the download that holds SPLIT (nothing is copied);
    OUT/articles.parquet is both downloads' articles, the testset's row where an
    id is in both. Rerun to refresh it after a download changed.
    """
    from recsys24.data.layout import link_layout

    done = link_layout(data_dir, testset, out)
    splits = ", ".join(f"{s}/ -> {src}" for s, src in done.splits.items())
    articles = "written" if done.written else "unchanged"
    console.print(f"{out}: {splits}; articles.parquet {articles} ({done.articles:,} articles)")


@click.command()
@options.raw_data(help="The raw EB-NeRD folder (articles.parquet, SPLIT/behaviors.parquet, SPLIT/history.parquet), "
                        "e.g. ebnerd_small/ or what `recsys24 synth` writes.")
@options.split(help="Which split of the folder to prepare: train (also writes training pairs), validation or test.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Prepared split folder.")
@click.option("--history-size", "-T", type=int, default=20, show_default=True, help="History items kept per user.")
@click.option("--npratio", "-K", type=int, default=4, show_default=True, help="Negatives per training pair.")
@options.seed(help="Seeds the choice of negatives for the training pairs (train only).")
@click.option("--batch-rows", type=int, default=1_000_000, show_default=True, help="Behaviors rows per shard.")
@click.option("--strict", is_flag=True,
              help="Refuse history problems (users without history, history after an impression) "
                   "instead of warning.")
def prepare(data_dir, split, out, history_size, npratio, seed, batch_rows, strict):
    """Validate a split of an EB-NeRD folder and write it as prepared shards."""
    from recsys24.data.prepare import prepare as run

    with Progress(f"prepare {split}", "impressions") as progress:
        done = run(data_dir, split, out, history_size, npratio, seed, batch_rows, progress=progress, strict=strict)
    prepared = done.prepared
    for warning in prepared.warnings:
        print_warning(warning)
    if done.skipped:
        console.print(f"{out} is up to date ({prepared.num_impressions:,} impressions); nothing to do")
        return
    shards = len(prepared.shards())  # named only when there are several: the line ends in a path
    console.print(
        f"prepared {split}: {plural(prepared.num_impressions, 'impression')}, "
        f"{plural(prepared.num_pairs, 'training pair')}{f', {shards:,} shards' if shards > 1 else ''} "
        f"in {prepared.seconds} s -> {out}"
    )


COMMANDS = [synth, layout, prepare]
