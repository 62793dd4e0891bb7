"""``recsys24 predict`` and ``recsys24 predict-merge``."""

from __future__ import annotations

from pathlib import Path

import click

from recsys24.commands import options
from recsys24.models.scoring import ScoringDefaults
from recsys24.progress import Progress, console, plural, rate_text

def _submit(prepared, scores: Path, zip_path: Path) -> None:
    from recsys24.data.split import open_split
    from recsys24.submission.make import make

    lines = make(scores, open_split(prepared.source_dir, prepared.split), zip_path)
    console.print(f"wrote and validated {zip_path} ({plural(lines, 'line')})")


@click.command()
@click.option("--model", required=True, help="Model folder, training run folder, or baseline:NAME.")
@options.prepared()
@options.data_is_now_prepared()
@options.split("test")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Scores folder.")
@options.shard_id()
@options.num_shards("Into how many shards the split is cut; run one predict per shard, then predict-merge.")
@click.option("--batch-size", type=int, default=None,
              help=f"Candidates per forward pass (default: the architecture's `scoring.batch_size`, "
                   f"{ScoringDefaults.batch_size:,} unless it declares more, as CGh does).")
@click.option("--piece-rows", type=int, default=None,
              help=f"Impressions per resumable piece (default: the architecture's `scoring.piece_rows`, "
                   f"{ScoringDefaults.piece_rows:,} unless it declares more, as CGh does so that more "
                   "impressions of one user share a history encoding).")
@click.option("--device", default=None, help="cuda, cuda:1, cpu (default: cuda if available).")
@click.option("--order", type=click.Choice(["rows", "users"]), default=None,
              help="Pieces of consecutive rows, or of whole users (each history encoded once per user); "
                   "default: users for architectures that declare `scoring.user_order` (CGh), else rows.")
@click.option("--reference", is_flag=True,
              help="Score through the plain forward, not the architecture's fast path (those whose "
                   "`scoring.fast_path` is true: CGh).")
@click.option("--features", default=None, type=click.Path(file_okay=False),
              help="The `recsys24 features` folder of this split, for a model that reads the feature table (CGh-f).")
@options.make_submission("Merge all shards, write and validate the contest zip.")
@options.submission_zip()
def predict(model, prepared_dir, split, out, shard_id, num_shards, batch_size, piece_rows, device, order, reference,
            features, make_submission, zip_path):
    """Score (a shard of) a prepared split into a scores folder; rerun to finish what is missing."""
    from recsys24.inference.predict import merge_scores, predict_shard, resolve_prepared

    prepared = resolve_prepared(prepared_dir, split)
    out = Path(out)
    if model.startswith("baseline:"):
        from recsys24.baselines import run_baseline
        from recsys24.data.split import open_split

        scores = out / "scores.parquet"
        run_baseline(model.split(":", 1)[1], open_split(prepared.source_dir, split), scores)
        console.print(f"baseline {model[9:]}: wrote {scores}")
    else:
        with Progress(f"predict shard {shard_id}/{num_shards}", "impressions") as progress:
            stats = predict_shard(model, prepared, out, shard_id, num_shards, batch_size, piece_rows, device, progress,
                                  fast=not reference, features=features, order=order)
        rate = stats.scored_rows / stats.seconds if stats.seconds else 0.0
        shard = f"shard {shard_id}/{num_shards}"
        # a line each, every one within 120 characters
        console.print(f"{shard}: scored {plural(stats.scored_rows, 'impression')} "
                      f"({plural(stats.pairs, 'pair')}, {rate_text(rate)} impressions/s), "
                      f"{stats.skipped_rows:,} already done")
        if stats.damaged:
            console.print(f"{shard}: {plural(stats.damaged, 'damaged piece')} scored again")
        for line in _encodings(stats):
            console.print(f"{shard}: {line}")
        if not make_submission:
            return
        scores = merge_scores(prepared, out)
        console.print(f"merged {plural(prepared.num_impressions, 'row')} into {scores}")
    if make_submission:
        _submit(prepared, out / "scores.parquet", Path(zip_path))


def _encodings(stats) -> list[str]:
    """'N history encodings, R rows per encoding' of this run, then of every piece so far (predict.json).

    stats: what :func:`recsys24.inference.predict.predict_shard` returned (a ``ShardStats``).
    """
    def text(encodings, rows):
        return f"{plural(encodings, 'history encoding')}, {rows / encodings:.2f} rows per encoding"

    lines = []
    if stats.history_encodings:
        lines.append(f"{text(stats.history_encodings, stats.scored_rows)} ({stats.order} order)")
    counts = stats.counts
    if counts.history_encodings and counts.rows != stats.scored_rows:
        lines.append(f"all pieces so far: {text(counts.history_encodings, counts.rows)}")
    return lines


@click.command("predict-merge")
@options.prepared()
@options.data_is_now_prepared()
@options.split("test")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Scores folder of the shards.")
@options.make_submission()
@options.submission_zip()
def predict_merge(prepared_dir, split, out, make_submission, zip_path):
    """Check every row is scored exactly once across shards; write OUT/scores.parquet."""
    from recsys24.inference.predict import merge_scores, resolve_prepared

    prepared = resolve_prepared(prepared_dir, split)
    scores = merge_scores(prepared, out)
    console.print(f"merged {plural(prepared.num_impressions, 'row')} into {scores}")
    if make_submission:
        _submit(prepared, scores, Path(zip_path))


COMMANDS = [predict, predict_merge]
