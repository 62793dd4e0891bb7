"""The RecPrompt loop: recommender LLM, optimiser LLM and monitor.

Iteration 0 evaluates the initial template (table 2) on the validation
impressions. Each later iteration asks the optimiser LLM for a better
template: system instruction (table 3), the best template so far (table 5),
``num_samples`` (prompt, answer, click) samples of that template (table 4) and
the observation instruction (table 6). The proposal, read between "# Prompt
Template Begin" and "# Prompt Template End", is rejected if it lacks
``${history}`` or ``${candidate}``; otherwise it is evaluated on validation and
the monitor keeps it if it beats the best on ``select_metric`` (ties: AUC).
At the end the best template and the ``compare_templates`` (tables 2, 7, 8)
are evaluated on the test impressions.

Run folder::

    RUN/config.json                   resolved config and code version
    RUN/samples/{validation,test}.parquet
    RUN/iterations/NN/template.txt    NN = 00, 01, ...; proposals that were read
    RUN/iterations/NN/optimizer_answer.txt
    RUN/iterations/NN/answers.parquet validation prompts, answers, scores
    RUN/state.json                    after each finished iteration (resume point)
    RUN/iterations.csv                one row per iteration: status and metrics
    RUN/best_template.txt
    RUN/test/<name>/scores.parquet    scores file (schema.SCORES_SCHEMA); also answers.parquet, template.txt
    RUN/metrics.json                  validation of the best, test of every template

Rerunning with the same RUN continues after the last finished iteration;
with the disk cache, repeated requests cost nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl

from recsys24.data import schema as S
from recsys24.data.tables import NewsTables
from recsys24.errors import Recsys24Error
from recsys24.evaluation.metrics import METRIC_NAMES, accuracy
from recsys24.io import atomic_path, write_json, write_parquet
from recsys24.recprompt.backends import Backend
from recsys24.recprompt.config import RecPromptConfig
from recsys24.recprompt.recommender import (
    CANDIDATE_TITLES,
    Recommender,
    load_template,
    missing_placeholders,
    ranked_scores,
)
from recsys24.recprompt.sampling import sample_impressions
from recsys24.resources import code_version

STATE = "state.json"
_PROPOSAL = re.compile(
    r"^[ \t*>]*#\s*Prompt Template Begin[ \t*]*\n(.*?)(?:^[ \t*>]*#\s*Prompt Template End|\Z)",
    re.S | re.M,
)


def extract_template(answer: str) -> str | None:
    """The template between "# Prompt Template Begin" and "# Prompt Template End".

    The last non-empty block wins (models often restate the markers before
    answering); a missing end marker takes the rest of the answer.
    """
    blocks = [m.group(1).strip("\n") for m in _PROPOSAL.finditer(answer)]
    blocks = [b for b in blocks if b.strip()]
    if not blocks:
        return None
    text = blocks[-1].strip()
    # Some models wrap the template in a code fence.
    text = re.sub(r"^```[a-z]*\n(.*?)\n```$", r"\1", text, flags=re.S)
    return text + "\n"


def optimizer_messages(template: str, ranked: pl.DataFrame, samples: pl.DataFrame, rows: np.ndarray) -> list[dict]:
    """Chat messages asking the optimiser for a better ``template`` (tables 3-6).

    ``ranked`` is the recommender's output for ``samples`` with ``template``;
    ``rows`` picks the samples shown.
    """
    sample_block = load_template("sample")
    clicked = samples[S.LABELS].list.arg_max()
    parts = [fill_named(load_template("current_template"), prompt_temp=template.rstrip("\n"))]
    for i in rows.tolist():
        c = int(clicked[i])
        click = f"C{c + 1}: {samples[CANDIDATE_TITLES][i][c]}"
        parts.append(
            fill_named(sample_block, full_prompt=ranked["prompt"][i].rstrip("\n"), answer=ranked["answer"][i], click=click)
        )
    parts.append(load_template("observation"))
    return [
        {"role": "system", "content": load_template("optimizer_system").rstrip("\n")},
        {"role": "user", "content": "\n".join(p.rstrip("\n") + "\n" for p in parts)},
    ]


def fill_named(block: str, **values: str) -> str:
    """Replace ``${name}`` in an instruction block; unlike templates, nothing else is touched."""
    for name, value in values.items():
        block = block.replace("${" + name + "}", value)
    return block


def _better(a: dict, b: dict | None, metric: str) -> bool:
    return b is None or (a[metric], a["auc"]) > (b[metric], b["auc"])


def _code_version() -> str:
    """The short commit (``-dirty`` with local changes) from a checkout, else ``recsys24 <version>``."""
    info = code_version()
    if "git_commit" not in info:
        return f"recsys24 {info['recsys24']}"
    return info["git_commit"][:7] + ("-dirty" if info.get("git_dirty") else "")


def _load_samples(run_dir: Path, config: RecPromptConfig, tables: NewsTables) -> tuple[pl.DataFrame, pl.DataFrame]:
    paths = run_dir / "samples" / "validation.parquet", run_dir / "samples" / "test.parquet"
    if all(p.is_file() for p in paths):
        return pl.read_parquet(paths[0]), pl.read_parquet(paths[1])
    d = config.data
    validation, test = sample_impressions(
        tables, d.num_validation, d.num_test, d.num_negatives, d.history_size, d.seed
    )
    write_parquet(validation, paths[0])
    write_parquet(test, paths[1])
    return validation, test


def _evaluate(recommender: Recommender, template: str, samples: pl.DataFrame) -> tuple[pl.DataFrame, dict]:
    ranked = recommender.rank(template, samples)
    metrics = accuracy(ranked[S.SCORES], samples[S.LABELS])
    metrics["parsed"] = float(ranked["parsed"].mean())
    return ranked, metrics


def run_recprompt(
    config: RecPromptConfig,
    run_dir: str | Path,
    tables: NewsTables,
    recommender_backend: Backend,
    optimizer_backend: Backend,
    log=lambda msg: None,
) -> dict:
    """Run (or continue) the loop in ``run_dir``; return the contents of metrics.json."""
    run_dir = Path(run_dir)
    metric = config.loop.select_metric
    if metric not in METRIC_NAMES:
        raise Recsys24Error(f"loop.select_metric '{metric}': expected one of {', '.join(METRIC_NAMES)}")
    state_path = run_dir / STATE
    state = _read_state(state_path, config)
    write_json({"config": config.to_dict(), "run_hash": config.run_hash(), "code_version": _code_version(),
                "source": tables.source}, run_dir / "config.json")
    validation, test = _load_samples(run_dir, config, tables)
    recommender = Recommender(recommender_backend, config.recommender.params)

    if state is None:
        template = load_template(config.loop.initial_template)
        if missing_placeholders(template):
            raise Recsys24Error(
                f"initial template lacks ${{{missing_placeholders(template)[0]}}}"
            )
        ranked, metrics = _evaluate(recommender, template, validation)
        _save_iteration(run_dir, 0, template, ranked)
        state = {"run_hash": config.run_hash(), "completed": 0, "best": 0, "rows": []}
        state["rows"].append(_row(0, "evaluated", metrics, True))
        _write_state(state_path, state, run_dir)
        log(f"iteration 0 (initial): {metric} {metrics[metric]:.4f}")

    for it in range(state["completed"] + 1, config.loop.iterations + 1):
        best_dir = run_dir / "iterations" / f"{state['best']:02d}"
        best_template = (best_dir / "template.txt").read_text(encoding="utf-8")
        best_ranked = pl.read_parquet(best_dir / "answers.parquet")
        rng = np.random.default_rng([config.data.seed, it])
        rows = rng.choice(validation.height, size=min(config.loop.num_samples, validation.height), replace=False)
        messages = optimizer_messages(best_template, best_ranked, validation, np.sort(rows))
        answer = optimizer_backend.complete(messages, **config.optimizer.params)
        proposal = extract_template(answer)
        it_dir = run_dir / "iterations" / f"{it:02d}"
        with atomic_path(it_dir / "optimizer_answer.txt") as tmp:
            tmp.write_text(answer, encoding="utf-8")
        if proposal is None:
            row = _row(it, "unparsable", None, False)
        elif missing := missing_placeholders(proposal):
            _write_text(it_dir / "template.txt", proposal)
            row = _row(it, f"rejected: no ${{{missing[0]}}}", None, False)
        else:
            ranked, metrics = _evaluate(recommender, proposal, validation)
            _save_iteration(run_dir, it, proposal, ranked)
            best_metrics = state["rows"][state["best"]]
            improved = _better(metrics, best_metrics, metric)
            if improved:
                state["best"] = it
            row = _row(it, "evaluated", metrics, improved)
        state["rows"].append(row)
        state["completed"] = it
        _write_state(state_path, state, run_dir)
        log(f"iteration {it}: {row['status']}" + (f", {metric} {row[metric]:.4f}" if row[metric] is not None else "")
            + (" (new best)" if row["new_best"] else ""))

    best_template = (run_dir / "iterations" / f"{state['best']:02d}" / "template.txt").read_text(encoding="utf-8")
    _write_text(run_dir / "best_template.txt", best_template)
    results = {"best_iteration": state["best"], "validation": state["rows"][state["best"]], "test": {}}
    for name, template in [("best", best_template)] + [(n, load_template(n)) for n in config.loop.compare_templates]:
        out = run_dir / "test" / Path(name).stem
        done = out / "template.txt"  # written last; a resumed run may have a new best
        if not (done.is_file() and done.read_text(encoding="utf-8") == template):
            ranked = recommender.rank(template, test)
            write_parquet(ranked.drop(S.SCORES), out / "answers.parquet")
            write_parquet(ranked_scores(ranked), out / "scores.parquet")
            _write_text(done, template)
        scores = pl.read_parquet(out / "scores.parquet")
        parsed = pl.read_parquet(out / "answers.parquet", columns=["parsed"])["parsed"]
        results["test"][Path(name).stem] = {**accuracy(scores[S.SCORES], test[S.LABELS]), "parsed": float(parsed.mean())}
        log(f"test {Path(name).stem}: {metric} {results['test'][Path(name).stem][metric]:.4f}")
    write_json(results, run_dir / "metrics.json")
    return results


METRIC_COLUMNS = ("auc", "mrr", "ndcg@5", "ndcg@10", "hr@1", "hr@5", "parsed")


def _row(it: int, status: str, metrics: dict | None, new_best: bool) -> dict:
    row = {"iteration": it, "status": status, "new_best": new_best}
    row.update({k: (float(metrics[k]) if metrics else None) for k in METRIC_COLUMNS})
    return row


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _save_iteration(run_dir: Path, it: int, template: str, ranked: pl.DataFrame) -> None:
    it_dir = run_dir / "iterations" / f"{it:02d}"
    write_parquet(ranked, it_dir / "answers.parquet")
    _write_text(it_dir / "template.txt", template)


def _write_state(path: Path, state: dict, run_dir: Path) -> None:
    table = pl.DataFrame(state["rows"], schema={"iteration": pl.Int32, "status": pl.String, "new_best": pl.Boolean,
                                                **{k: pl.Float64 for k in METRIC_COLUMNS}})
    with atomic_path(run_dir / "iterations.csv") as tmp:
        table.write_csv(tmp)
    write_json(state, path)  # last: the state names only iterations whose files exist


def _read_state(path: Path, config: RecPromptConfig) -> dict | None:
    if not path.is_file():
        return None
    state = json.loads(path.read_text())
    if state.get("run_hash") != config.run_hash():
        raise Recsys24Error(
            f"{path.parent}: holds a run of a different config (data, models, generation "
            "settings or loop); use a new --output folder"
        )
    return state
