"""``recsys24 rank train|predict|merge|blend``: learning to rank over the feature table."""

from __future__ import annotations

from pathlib import Path

import click

from recsys24.commands import options
from recsys24.progress import Phases, Progress, console, plural


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


def _named(specs) -> dict[str, Path]:
    """--scores NAME=FILE, in order; refuses a spec without NAME= and a repeated name."""
    named = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"'{spec}' is not NAME=SCORES", param_hint="--scores")
        if name in named:
            raise click.BadParameter(f"'{name}' given twice", param_hint="--scores")
        named[name] = Path(path)
    return named


def _params(specs) -> dict:
    import yaml

    parsed = {}
    for kv in specs:
        key, sep, value = kv.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"'{kv}' is not KEY=VALUE", param_hint="--param")
        parsed[key] = yaml.safe_load(value)
    return parsed


@click.group()
def rank():
    """Learning to rank over features (LightGBM, CatBoost), stacking any model's scores, and blends."""


@rank.command("train")
@click.option("--features", "features_dirs", multiple=True, required=True, help="Training features folder(s).")
@click.option("--valid-features", default=None,
              help="Early-stopping features; when left out (or one of --features), users are held out instead.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Ranker folder.")
@click.option("--scores", "score_specs", multiple=True, metavar="NAME=SCORES[,SCORES]",
              help="Stack a scores file as features: one file per --features folder (comma-separated), "
                   "then one for --valid-features if given.")
@click.option("--learner", type=click.Choice(["lightgbm", "catboost"]), default="lightgbm", show_default=True,
              help="LightGBM lambdarank, or CatBoostRanker (YetiRank unless --loss says otherwise).")
@click.option("--loss", default=None,
              help="The learner's ranking loss: LightGBM `objective` (lambdarank, rank_xendcg) or CatBoost "
                   "`loss_function` (YetiRank, QueryCrossEntropy, PairLogitPairwise, ...).")
@click.option("--sample", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True,
              help="Share of impressions used (seeded by row), of training and early-stopping rows alike.")
@click.option("--holdout", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Share of users kept out of training [default: 0.1 without --valid-features, where they are "
                   "early-stopped on; 0 with it, else those validation users are kept out of every fit].")
@click.option("--refit", is_flag=True,
              help="After early stopping on --valid-features, train again on train + validation rows at the best "
                   "round count; the saved model is the refit one.")
@click.option("--drop", multiple=True, help="Leave out a feature family (time, popularity, read, article, user, "
                                            "context) or a single feature; for ablations.")
@click.option("--rounds", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--early-stopping", type=click.IntRange(min=1), default=100, show_default=True,
              help="Stop after this many rounds without a better validation AUC.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A parameter of the learner.")
@click.option("--memory", type=click.FloatRange(0, min_open=True), default=None,
              help="GB the run may use [default: what the machine has available, at most 2/3 of its memory]; a "
                   "LightGBM run estimated above it stores its bins dense, one still above it is "
                   "refused before reading, naming the --sample that fits.")
@options.seed()
def rank_train(features_dirs, valid_features, out, score_specs, learner, loss, sample, holdout, refit, drop, rounds,
               early_stopping, params, memory, seed):
    """Train a ranker (group = impression), early stopping on the contest's validation AUC."""
    from recsys24.features.folder import open_features
    from recsys24.ranking.train import RankTraining, train_ranker

    parsed = _params(params)
    if loss:
        parsed["objective" if learner == "lightgbm" else "loss_function"] = loss
    how = RankTraining(learner, parsed, sample, holdout, seed, rounds, early_stopping, refit, tuple(drop),
                       memory * 1e9 if memory else None)
    how.check()  # options and parameters before any folder is opened
    train = [open_features(p) for p in features_dirs]
    valid = open_features(valid_features) if valid_features else None
    separate = valid is not None and all(valid.path.resolve() != t.path.resolve() for t in train)
    stacked = _scores(score_specs, train + ([valid] if separate else []))
    with Phases() as phases:
        spec = train_ranker(train, out, valid if separate else None, stacked, how, log=phases.note,
                            reading=phases.step("rank train: read", "candidates"),
                            boosting=phases.step("rank train: boost", "rounds"))
    m, fit = spec.valid_metrics, spec.fit
    # a line each, the folder last: every line stays within 120 characters and says what it is about
    console.print(f"best round {spec.best_iteration}: validation AUC {m['auc']:.4f} MRR {m['mrr']:.4f} "
                  f"nDCG@10 {m['ndcg@10']:.4f} on {m['impressions']:,} impressions")
    if fit.refit:
        console.print(f"refit on {fit.impressions:,} impressions of train + validation, {fit.rounds} rounds")
    console.print(f"wrote {out}")


def _submit(scores: Path, split, zip_path: Path) -> None:
    from recsys24.submission.make import make

    lines = make(scores, split, zip_path)
    console.print(f"wrote and validated {zip_path} ({plural(lines, 'line')})")


@rank.command("predict")
@click.option("--model", "ranker", required=True, type=click.Path(file_okay=False), help="Ranker folder.")
@click.option("--features", "features_dir", required=True, help="Features folder of the split to score.")
@click.option("--scores", "score_specs", multiple=True, metavar="NAME=SCORES",
              help="The same stacked score names the ranker was trained with, on this split.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Scores folder: pieces, then OUT/scores.parquet once every piece is there.")
@options.shard_id()
@options.num_shards("Into how many shards the features pieces are cut; then `rank merge` (or --make-submission).")
@options.make_submission("Also merge, write and validate the contest zip.")
@options.submission_zip()
def rank_predict(ranker, features_dir, score_specs, out, shard_id, num_shards, make_submission, zip_path):
    """Score (a shard of) a split's features with a ranker; rerun to finish what is missing."""
    from recsys24.features.folder import open_features
    from recsys24.ranking.predict import merge_rank_scores, predict_ranker

    fs = open_features(features_dir)
    stacked = _scores(score_specs, [fs]).get(str(fs.path), [])
    with Progress(f"rank predict shard {shard_id}/{num_shards}", "rows") as progress:
        stats = predict_ranker(ranker, fs, stacked, out, shard_id, num_shards, progress)
    shard = f"shard {shard_id}/{num_shards}"
    console.print(f"{shard}: scored {plural(stats.pieces, 'piece')} ({stats.scored_rows:,} rows, "
                  f"{stats.candidates:,} candidates) in {stats.seconds:.0f} s, "
                  f"{plural(stats.skipped_pieces, 'piece')} already done")
    if stats.predict_seconds:  # the learner's own speed, on a line of its own (a line stays within 120 characters)
        rate = stats.candidates * stats.trees / stats.predict_seconds
        console.print(f"{shard}: {stats.trees} trees × {stats.candidates:,} candidates at "
                      f"{rate / 1e6:,.1f}M tree evaluations a second in LightGBM/CatBoost")
    if num_shards == 1 or make_submission:
        scores = merge_rank_scores(out, fs)
        console.print(f"merged {plural(fs.plan.num_rows, 'row')} into {scores}")
        if make_submission:
            _submit(scores, fs.split(), Path(zip_path))


@rank.command("merge")
@click.option("--features", "features_dir", required=True, help="Features folder of the scored split.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Scores folder of the shards.")
@options.make_submission()
@options.submission_zip()
def rank_merge(features_dir, out, make_submission, zip_path):
    """Check every row is scored exactly once across shards; write OUT/scores.parquet."""
    from recsys24.features.folder import open_features
    from recsys24.ranking.predict import merge_rank_scores

    fs = open_features(features_dir)
    scores = merge_rank_scores(out, fs)
    console.print(f"merged {plural(fs.plan.num_rows, 'row')} into {scores}")
    if make_submission:
        _submit(scores, fs.split(), Path(zip_path))


@rank.group("blend")
def blend():
    """A weighted sum of scores files, normalised per impression; weights fitted on some users."""


@blend.command("fit")
@click.option("--scores", "score_specs", multiple=True, required=True, metavar="NAME=SCORES",
              help="A scores file of the split to fit on (made out of sample for it); two or more.")
@options.raw_data()
@options.split("validation", choices=("train", "validation"))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Blend folder.")
@click.option("--norm", type=click.Choice(["rank", "minmax"]), default="rank", show_default=True,
              help="Per-impression normalisation before the weighted sum.")
@click.option("--holdout", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
              help="Share of users never fitted on (the same users `rank train --holdout` keeps out for a seed).")
@click.option("--max-impressions", type=click.IntRange(min=1), default=200_000, show_default=True,
              help="At most this many fitting impressions (a seeded row sample).")
@options.seed()
def blend_fit(score_specs, data_dir, split, out, norm, holdout, max_impressions, seed):
    """Fit blend weights on a split's users outside the hold-out."""
    from recsys24.data.split import open_split
    from recsys24.ranking.blend import fit_blend

    fitted = fit_blend(_named(score_specs), open_split(data_dir, split), out, norm, holdout, seed, max_impressions)
    weights = ", ".join(f"{n} {w:.3f}" for n, w in zip(fitted.names, fitted.weights))
    singles = ", ".join(f"{n} {fitted.fit_auc[n]:.4f}" for n in fitted.names)
    # a line each, the folder last: every line stays within 120 characters and says what it is about
    console.print(f"blend weights: {weights}")
    console.print(f"AUC on the {fitted.fit_impressions:,} impressions fitted on: blend {fitted.fit_auc['blend']:.4f} "
                  f"({singles})")
    console.print(f"wrote {out}")


@blend.command("apply")
@click.option("--model", "blend_dir", required=True, type=click.Path(file_okay=False), help="Blend folder.")
@click.option("--scores", "score_specs", multiple=True, required=True, metavar="NAME=SCORES",
              help="A scores file of the split to score, for each name the blend was fitted with.")
@options.raw_data()
@options.split("test")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Scores file to write.")
@options.make_submission()
@options.submission_zip()
def blend_apply(blend_dir, score_specs, data_dir, split, out, make_submission, zip_path):
    """Blend scores files of a split with fitted weights into one scores file."""
    from recsys24.data.split import open_split
    from recsys24.ranking.blend import apply_blend

    split_ = open_split(data_dir, split)
    rows = apply_blend(blend_dir, _named(score_specs), split_, out)
    console.print(f"wrote {out} ({rows:,} rows)")
    if make_submission:
        _submit(Path(out), split_, Path(zip_path))


COMMANDS = [rank]
