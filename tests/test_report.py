"""``recsys24 report`` on two hand-made run folders and a baseline scores file."""

from __future__ import annotations

import json
import re
import struct

import matplotlib.image as mpimg
import numpy as np
import polars as pl

from recsys24.baselines import run_baseline
from recsys24.data.split import open_split
from recsys24.evaluation.metrics import METRIC_NAMES


def _fake_run(root, name, baseline, seed, split, params, scores_file):
    """A run folder as `recsys24 train` leaves it (metrics.jsonl, model/), plus validation scores in it."""
    run = root / name
    (run / "model").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    lines = [{"step": s, "loss": 1.0 / s + rng.random() * 0.1, "lr": 1e-4, "samples_per_s": 100.0 + seed,
              **({"val_loss": 0.5, "val_auc": 0.5 + s / 100} if s % 2 == 0 else {})} for s in range(1, 7)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    header = json.dumps({"w": {"dtype": "F32", "shape": [params, 1], "data_offsets": [0, 4 * params]}}).encode()
    (run / "model" / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(4 * params))
    run_baseline(baseline, split, run / scores_file, seed=seed)
    return run


def test_report_from_two_runs_and_a_baseline(demo_data, tmp_path, cli):
    split = open_split(demo_data, "validation")
    run_a = _fake_run(tmp_path, "run_a", "random", 1, split, 1000, "scores/validation.parquet")
    # B as scripts/demo.sh lays it out: a `recsys24 predict` folder inside the run folder
    run_b = _fake_run(tmp_path, "run_b", "popular", 2, split, 3000, "scores/validation/scores.parquet")
    fresh = tmp_path / "freshness.parquet"
    run_baseline("freshness", split, fresh)
    out = tmp_path / "report"

    result = cli("report", f"A={run_a}", f"B={run_b / 'scores' / 'validation'}", f"fresh={fresh}",
                 "--data", demo_data, "--split", "validation", "--out", out)
    assert result.exit_code == 0, result.output

    html = (out / "index.html").read_text()
    referenced = set(re.findall(r"src='([^']+)'", html))
    written = {p.name for p in out.glob("*.png")}
    assert referenced == written
    assert {"accuracy.png", "curves.png", "beyond.png", "category.png", "sentiment.png",
            "age.png", "position.png", "top1.png", "efficiency.png"} <= written
    assert "http" not in html  # self-contained: nothing fetched
    for name in written:
        pixels = mpimg.imread(out / name)[..., :3]
        assert pixels.std() > 0.01, name
        assert (pixels < 0.9).mean() > 0.005, name  # not (almost) all white

    acc = pl.read_csv(out / "accuracy.csv")
    for name, path in (("A", run_a / "scores" / "validation.parquet"),
                       ("B", run_b / "scores" / "validation" / "scores.parquet"), ("fresh", fresh)):
        r = cli("evaluate", "--scores", path, "--data", demo_data, "--split", "validation", "--json")
        expected = json.loads(r.output)
        row = acc.filter(pl.col("item") == name).row(0, named=True)
        assert row["impressions"] == expected["impressions"]
        for m in METRIC_NAMES:
            assert abs(row[m] - expected[m]) <= 1e-12, (name, m)
    best_auc = acc["auc"].max()
    assert f"<b>{best_auc:.4f}</b>" in html

    # beyond accuracy counts users, not impressions: the distinct users of the rows it ranks
    beh = pl.read_parquet(split.behaviors, columns=["user_id", "article_ids_inview"])
    ranked = beh.filter(pl.col("article_ids_inview").list.len() >= 5)
    beyond = pl.read_csv(out / "beyond.csv")
    assert beyond["users"].to_list() == [beh["user_id"].n_unique()] * 3 == [ranked["user_id"].n_unique()] * 3
    assert beyond["impressions"].to_list() == [ranked.height] * 3 and ranked.height > beh["user_id"].n_unique()

    eff = pl.read_csv(out / "efficiency.csv")
    assert eff.filter(pl.col("item") == "B")["parameters"][0] == 3000
    assert eff.filter(pl.col("item") == "fresh")["samples_per_s"].is_null().all()
    assert "n/a" in html
    curves = pl.read_csv(out / "curves.csv")
    assert set(curves["item"]) == {"A", "B"}


def test_report_on_test_split_with_truth_labels(demo_data, tmp_path, cli):
    """On test: accuracy from the truth labels (beyond-accuracy rows left out, as
    `recsys24 evaluate --labels`), beyond accuracy on the 250-candidate rows."""
    split = open_split(demo_data, "test")
    scores = tmp_path / "freshness.parquet"
    run_baseline("freshness", split, scores)
    labels = demo_data / "synth_truth" / "test.parquet"
    out = tmp_path / "report"
    result = cli("report", f"fresh={scores}", "--data", demo_data, "--split", "test", "--labels", labels,
                 "--out", out)
    assert result.exit_code == 0, result.output
    expected = json.loads(cli("evaluate", "--scores", scores, "--data", demo_data, "--split", "test",
                              "--labels", labels, "--json").output)
    row = pl.read_csv(out / "accuracy.csv").row(0, named=True)
    assert all(abs(row[m] - expected[m]) <= 1e-12 for m in METRIC_NAMES)
    n_beyond = pl.read_parquet(split.behaviors, columns=["is_beyond_accuracy"])["is_beyond_accuracy"].sum()
    assert pl.read_csv(out / "beyond.csv")["users"][0] == n_beyond


def test_throughput_is_the_median_after_the_warm_up_step():
    from recsys24.report.tables import steady_throughput

    log = [{"step": 0, "val_auc": 0.5}] + [{"step": s, "samples_per_s": v}
                                           for s, v in zip(range(10, 60, 10), [2.8, 400.0, 415.0, 40.0, 410.0])]
    assert steady_throughput(log) == 405.0  # not the mean, 253.6, that the first step and an evaluation drag down
    assert steady_throughput(log[:2]) == 2.8 and steady_throughput([]) is None


def test_each_item_keeps_its_colour_in_every_figure_and_axes_zoom_to_the_values():
    import matplotlib.colors as mcolors
    import numpy as np

    from recsys24.report.figures import REFERENCE_COLOURS, item_colours, zoomed_limits

    names = [f"item {i}" for i in range(16)]
    colours = item_colours(names)
    rgb = [mcolors.to_rgb(colours[n]) for n in names]
    assert len(set(rgb) | {mcolors.to_rgb(c) for c in REFERENCE_COLOURS.values()}) == 16 + len(REFERENCE_COLOURS)
    # no item is grey, so none looks like the candidate pool or the clicked articles
    assert all(max(c) - min(c) > 0.05 for c in rgb)
    lo, hi = zoomed_limits(np.array([0.9912, 0.9934, 0.9941]))
    assert 0.98 < lo < 0.9912 and 0.9941 < hi < 1.0
    assert zoomed_limits(np.array([0.1, 0.6]))[0] == 0.0
    # shares and probabilities: never past 1 or below 0, however the values are padded
    lo, hi = zoomed_limits(np.array([0.5, 0.99]), fraction=True)
    assert 0 < lo < 0.5 and hi == 1.0 and zoomed_limits(np.array([0.5, 0.99]))[1] > 1.2  # unbounded: past 1
    assert zoomed_limits(np.array([0.9990, 0.9999]), fraction=True)[1] == 1.0


def _fake_ranker(root, name, split, rounds, auc_at):
    """A ranker folder as `recsys24 rank train` leaves it: ranker.json, one metrics.jsonl line per boosting
    round, scores of the split."""
    ranker = root / name
    (ranker / "scores").mkdir(parents=True)
    (ranker / "ranker.json").write_text(json.dumps({"learner": "lightgbm"}))
    lines = [{"step": r, "val_auc": auc_at(r)} for r in range(1, rounds + 1)]
    (ranker / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    run_baseline("popular", split, ranker / "scores" / "validation.parquet", seed=rounds)
    return ranker


def test_rankers_rounds_have_their_own_chart_and_many_items_fold_away(demo_data, tmp_path):
    """A ranker's boosting rounds are not drawn or counted as training steps; a report of more than
    MAX_ITEMS items draws its line charts for the best MAX_ITEMS by AUC and folds the others' away."""
    from recsys24.report import build_report, resolve_item
    from recsys24.report.figures import MAX_ITEMS

    split = open_split(demo_data, "validation")
    run = _fake_run(tmp_path, "run", "random", 1, split, 1000, "scores/validation.parquet")
    ranker = _fake_ranker(tmp_path, "ranker", split, 40, lambda r: 0.6 + r / 1000)
    specs = [f"run={run}", f"ranker={ranker}"]
    for i, name in enumerate(["random", "popular", "freshness", "inview-count", "category"]):
        path = tmp_path / f"{name}.parquet"
        run_baseline(name, split, path, seed=i)
        specs.append(f"{name}={path}")
    out = tmp_path / "report"
    build_report([resolve_item(s, "validation") for s in specs], split, out)

    curves = pl.read_csv(out / "curves.csv")
    assert set(curves.filter(pl.col("unit") == "round")["item"]) == {"ranker"}
    assert set(curves.filter(pl.col("unit") == "step")["item"]) == {"run"}
    eff = pl.read_csv(out / "efficiency.csv").filter(pl.col("item").is_in(["run", "ranker"])).sort("item")
    assert eff.select("item", "steps", "rounds").rows() == [("ranker", None, 40), ("run", 6, None)]
    assert (out / "curves.png").is_file() and (out / "rounds.png").is_file()

    html = (out / "index.html").read_text()
    assert len(specs) > MAX_ITEMS and (out / "age.png").is_file() and (out / "age_2.png").is_file()
    # the first chart is shown, the rest on request: those of the lowest AUCs
    folded = re.search(r"<details><summary>([^<]*)</summary><img src='age_2.png'", html)
    assert folded and "<img src='age.png'" in html.replace(folded.group(0), "")
    worst = pl.read_csv(out / "accuracy.csv").sort("auc")["item"][0]
    assert folded.group(1).endswith(f": {worst}")
