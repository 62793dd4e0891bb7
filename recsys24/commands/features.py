"""``recsys24 features`` and ``recsys24 rank train|predict``."""

from __future__ import annotations

from pathlib import Path

import click

from recsys24.data import schema as S
from recsys24.progress import Phases, Progress, console, plural


@click.command()
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False),
              help="The raw EB-NeRD folder (articles.parquet, SPLIT/behaviors.parquet), not a prepared split.")
@click.option("--split", type=click.Choice(list(S.SPLITS)), required=True)
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
    from recsys24.cli import print_warning
    from recsys24.features.build import PIECE_CANDIDATES, build_features

    with Progress(f"features {split}", "rows") as progress:
        stats = build_features(data_dir, split, out, past_only,
                               PIECE_CANDIDATES if piece_candidates is None else piece_candidates,
                               split_history=split_history, progress=progress, log=progress.note)
    for warning in stats["warnings"]:
        print_warning(warning)
    if stats["damaged"]:
        print_warning(f"{out}: {plural(stats['damaged'], 'piece')} cut short or damaged since written, built again")
    if not stats["written"]:
        console.print(f"{out}: already complete ({stats['rows']:,} rows, {stats['candidates']:,} candidates)")
        return
    console.print(f"wrote {stats['written']} of {plural(stats['pieces'], 'piece')} to {out} "
                  f"({stats['rows']:,} rows, {stats['candidates']:,} candidates) in {stats['seconds']:.0f} s")


def _scores(specs, features_sets):
    """--scores NAME=PATH, each for its features folder: FEAT=... pairs are matched by order."""
    from recsys24.ranking.data import StackedScores

    out = {}
    for spec in specs:
        if "=" not in spec:
            raise click.BadParameter(f"'{spec}' is not NAME=SCORES", param_hint="--scores")
        name, paths = spec.split("=", 1)
        paths = paths.split(",")
        if len(paths) != len(features_sets):
            raise click.BadParameter(f"'{spec}': give one scores file per features folder "
                                     f"({len(features_sets)}), comma-separated", param_hint="--scores")
        for fs, path in zip(features_sets, paths):
            out.setdefault(str(fs.path), []).append(StackedScores(name, Path(path)))
    return out


@click.group()
def rank():
    """LightGBM learning to rank over features (and stacked scores of any model)."""


@rank.command("train")
@click.option("--features", "features_dirs", multiple=True, required=True, help="Training features folder(s).")
@click.option("--valid-features", default=None,
              help="Early-stopping features; when left out (or one of --features), users are held out instead.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Ranker folder.")
@click.option("--scores", "score_specs", multiple=True, metavar="NAME=SCORES[,SCORES]",
              help="Stack a scores file as features: one file per --features folder (comma-separated), "
                   "then one for --valid-features if given.")
@click.option("--sample", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True,
              help="Share of training impressions used (seeded by row).")
@click.option("--holdout", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.1, show_default=True,
              help="Share of users held out for early stopping when there are no separate validation features.")
@click.option("--drop", multiple=True, help="Leave out a feature family (time, popularity, read, article, user, "
                                            "context) or a single feature; for ablations.")
@click.option("--rounds", type=int, default=2000, show_default=True)
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A LightGBM parameter.")
@click.option("--seed", type=int, default=0, show_default=True)
def rank_train(features_dirs, valid_features, out, score_specs, sample, holdout, drop, rounds, params, seed):
    """Train a LightGBM lambdarank ranker (group = impression), early stopping on validation AUC."""
    import yaml

    from recsys24.model_inputs.feature_table import open_features
    from recsys24.ranking.lgbm import train_ranker

    train = [open_features(p) for p in features_dirs]
    valid = open_features(valid_features) if valid_features else None
    separate = valid is not None and all(valid.path.resolve() != t.path.resolve() for t in train)
    stacked = _scores(score_specs, train + ([valid] if separate else []))
    parsed = {}
    for kv in params:
        key, _, value = kv.partition("=")
        parsed[key] = yaml.safe_load(value)
    with Phases() as phases:
        summary = train_ranker(train, out, valid if separate else None, stacked, sample, holdout, seed, rounds,
                               params=parsed, drop=tuple(drop), log=phases.note,
                               reading=phases.step("rank train: read", "rows"),
                               boosting=phases.step("rank train: boost", "rounds"))
    m = summary["valid_metrics"]
    console.print(f"wrote {out}: best round {summary['best_iteration']}, validation AUC {m['auc']:.4f} "
                  f"MRR {m['mrr']:.4f} nDCG@10 {m['ndcg@10']:.4f} on {m['impressions']:,} impressions")


@rank.command("predict")
@click.option("--model", "ranker", required=True, type=click.Path(file_okay=False), help="Ranker folder.")
@click.option("--features", "features_dir", required=True, help="Features folder of the split to score.")
@click.option("--scores", "score_specs", multiple=True, metavar="NAME=SCORES",
              help="The same stacked score names the ranker was trained with, on this split.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Scores file to write.")
@click.option("--make-submission", is_flag=True, help="Also write and validate the contest zip.")
@click.option("--submission", "zip_path", default="submission/predictions.zip", show_default=True,
              type=click.Path(dir_okay=False))
def rank_predict(ranker, features_dir, score_specs, out, make_submission, zip_path):
    """Score a split's features with a ranker into a standard scores file."""
    from recsys24.model_inputs.feature_table import open_features
    from recsys24.ranking.lgbm import predict_ranker

    fs = open_features(features_dir)
    stacked = _scores(score_specs, [fs]).get(str(fs.path), [])
    with Progress("rank predict", "rows") as progress:
        rows = predict_ranker(ranker, fs, stacked, out, progress)
    console.print(f"wrote {out} ({rows:,} rows)")
    if make_submission:
        from recsys24.submission.validate import validate_submission
        from recsys24.submission.write import write_submission

        split = fs.split()
        write_submission(Path(out), split, Path(zip_path))
        lines = validate_submission(Path(zip_path), split)
        console.print(f"wrote and validated {zip_path} ({plural(lines, 'line')})")


COMMANDS = [features, rank]
