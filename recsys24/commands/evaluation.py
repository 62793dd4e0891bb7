"""``recsys24 evaluate``, ``recsys24 beyond-accuracy``, ``recsys24 baseline`` and ``recsys24 submission write|validate``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich.table import Table

from recsys24.commands import options
from recsys24.data import schema as S
from recsys24.progress import Progress, console, plural



def _named(spec: str) -> tuple[str, str]:
    """'name=path' or 'path' (named after the file)."""
    if "=" in spec:
        name, path = spec.split("=", 1)
        return name, path
    return Path(spec).stem, spec


@click.command()
@click.option("--scores", "scores_specs", multiple=True, required=True, metavar="[NAME=]PATH",
              help="Scores file; repeat to compare several.")
@options.raw_data()
@options.split("validation")
@click.option("--labels", "labels_path", type=click.Path(dir_okay=False), default=None,
              help="Truth labels file for a split without clicks (e.g. DIR/synth_truth/test.parquet).")
@click.option("--users", "users_path", type=click.Path(dir_okay=False), default=None,
              help="Only the impressions of the user ids in this parquet file (column user_id), "
                   "e.g. a ranker's holdout_users.parquet.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def evaluate(scores_specs, data_dir, split, labels_path, users_path, as_json):
    """Contest metrics (AUC, MRR, nDCG@5/10, HR@1/5) of scores files on a split."""
    from recsys24.data.split import open_split
    from recsys24.evaluation.evaluate import evaluate_scores
    from recsys24.evaluation.metrics import METRIC_NAMES

    sp = open_split(data_dir, split)
    users = None
    if users_path:
        import polars as pl

        from recsys24.data.split import check_columns

        check_columns(Path(users_path), {S.USER_ID: pl.UInt32})
        users = pl.read_parquet(users_path, columns=[S.USER_ID])[S.USER_ID].to_numpy()
    results = {}
    for spec in scores_specs:
        name, path = _named(spec)
        results[name] = evaluate_scores(path, sp, labels_path, users=users)
    if as_json:
        obj = next(iter(results.values())) if len(results) == 1 else results
        click.echo(json.dumps(obj))
        return
    who = f", users of {users_path}" if users_path else ""
    # the title as a line of its own: a rich table title wraps at the table's width
    console.print(f"{split} ({next(iter(results.values()))['impressions']:,} impressions{who})")
    table = Table()
    table.add_column("scores")
    for m in METRIC_NAMES:
        table.add_column(m.upper() if m in ("auc", "mrr") else m, justify="right")
    best = {m: max(r[m] for r in results.values()) for m in METRIC_NAMES}
    for name, r in sorted(results.items(), key=lambda kv: -kv[1]["auc"]):
        cells = [f"[bold]{r[m]:.4f}[/]" if r[m] == best[m] and len(results) > 1 else f"{r[m]:.4f}" for m in METRIC_NAMES]
        table.add_row(name, *cells)
    console.print(table)


@click.command("beyond-accuracy")
@click.option("--scores", "scores_path", required=True, type=click.Path(dir_okay=False))
@options.raw_data()
@click.option("--top", "k", type=int, default=5, show_default=True, help="Recommendations per user.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def beyond_accuracy(scores_path, data_dir, k, as_json):
    """Diversity, serendipity, novelty, coverage and distributions on the test split's 250-candidate rows."""
    from recsys24.data.split import open_split
    from recsys24.evaluation.beyond import beyond_accuracy as run

    result = run(scores_path, open_split(data_dir, "test"), k=k)
    if as_json:
        click.echo(json.dumps(result))
        return
    console.print(f"beyond accuracy: top {k} of {plural(result['impressions'], 'row')} "
                  f"({plural(result['users'], 'user')})")
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result.items():
        if isinstance(value, dict):
            top3 = ", ".join(f"{v} {share:.1%}" for v, share in list(value.items())[:3])
            table.add_row(name, top3)
        elif name not in ("users", "impressions", "k"):
            table.add_row(name, f"{value:,}" if isinstance(value, int) else f"{value:.4f}")
    console.print(table)


@click.command()
@click.argument("name")
@options.raw_data()
@options.split()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Scores file to write.")
@options.seed()
def baseline(name, data_dir, split, out, seed):
    """Score a split with a heuristic baseline: random, popular, category, freshness, inview-count."""
    from recsys24.baselines import run_baseline
    from recsys24.data.split import open_split

    t0 = time.perf_counter()
    with Progress(f"baseline {name}", "impressions") as progress:
        rows = run_baseline(name, open_split(data_dir, split), out, seed, progress=progress)
    console.print(f"{name}: scored {plural(rows, 'impression')} in {time.perf_counter() - t0:.1f} s -> {out}")


@click.group()
def submission():
    """Write and check the contest zip (predictions.txt)."""


@submission.command("write")
@click.option("--scores", "scores_path", required=True, type=click.Path(dir_okay=False))
@options.raw_data()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Zip to write.")
@options.split("test")
def submission_write(scores_path, data_dir, out, split):
    """Turn a scores file into the contest zip (rank 1 = highest score), then validate it."""
    from recsys24.data.split import open_split
    from recsys24.submission.make import make

    t0 = time.perf_counter()
    lines = make(scores_path, open_split(data_dir, split), out)
    console.print(f"wrote and validated {out}: {plural(lines, 'line')} in {time.perf_counter() - t0:.1f} s")


@submission.command("validate")
@click.argument("zip_path", type=click.Path(dir_okay=False))
@options.raw_data()
@options.split("test")
def submission_validate(zip_path, data_dir, split):
    """Check a contest zip against the split; exit 0 only when it is valid."""
    from recsys24.data.split import open_split
    from recsys24.submission.validate import validate_submission

    lines = validate_submission(zip_path, open_split(data_dir, split))
    console.print(f"[green]valid[/]: {zip_path} ({plural(lines, 'line')})")


COMMANDS = [evaluate, beyond_accuracy, baseline, submission]
