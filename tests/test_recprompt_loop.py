"""The RecPrompt loop end to end with scripted LLMs on a synthetic MIND split."""

import json

import polars as pl
import pytest

from recprompt_fakes import ScriptedOptimizer, ScriptedRecommender, better_template, template_without_history
from recsys24.data import schema as S
from recsys24.data.mind import mind_tables, write_synthetic_mind
from recsys24.errors import Recsys24Error
from recsys24.recprompt.backends import Cached
from recsys24.recprompt.config import RecPromptConfig, read_recprompt_config
from recsys24.recprompt.optimizer import extract_template, run_recprompt
from recsys24.recprompt.recommender import load_template


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    return mind_tables(write_synthetic_mind(tmp_path_factory.mktemp("mind"), seed=3))


def small_config(iterations=2, compare=("initial",)) -> RecPromptConfig:
    config = RecPromptConfig(cache_dir=None)
    config.data.num_validation, config.data.num_test = 40, 60
    config.loop.iterations = iterations
    config.loop.compare_templates = list(compare)
    return config


def test_monitor_keeps_the_better_template_and_rejects_one_without_history(tables, tmp_path):
    optimizer = ScriptedOptimizer([template_without_history(), better_template()])
    results = run_recprompt(small_config(), tmp_path, tables, ScriptedRecommender(), optimizer)

    table = pl.read_csv(tmp_path / "iterations.csv")
    assert table["status"].to_list() == ["evaluated", "rejected: no ${history}", "evaluated"]
    assert table["new_best"].to_list() == [True, False, True]
    assert table["mrr"][2] > table["mrr"][0]
    assert results["best_iteration"] == 2
    assert (tmp_path / "best_template.txt").read_text() == better_template()
    assert results["test"]["best"]["mrr"] > results["test"]["initial"]["mrr"]
    assert json.loads((tmp_path / "metrics.json").read_text()) == results

    scores = pl.read_parquet(tmp_path / "test" / "best" / "scores.parquet")
    assert dict(scores.schema) == S.SCORES_SCHEMA and scores.height == 60
    test = pl.read_parquet(tmp_path / "samples" / "test.parquet")
    assert scores[S.IMPRESSION_ID].to_list() == test[S.IMPRESSION_ID].to_list()
    assert (test[S.LABELS].list.sum() == 1).all() and (test[S.INVIEW].list.len() == 10).all()


def test_optimizer_sees_tables_3_to_6_with_the_best_template_and_samples(tables, tmp_path):
    optimizer = ScriptedOptimizer([better_template()])
    config = small_config(iterations=1)
    config.loop.num_samples = 2
    run_recprompt(config, tmp_path, tables, ScriptedRecommender(), optimizer)
    system, user = optimizer.seen[0]
    assert system == {"role": "system", "content": load_template("optimizer_system").rstrip("\n")}
    text = user["content"]
    assert text.startswith("# Current Prompt Template Begin\n" + load_template("initial"))
    assert text.count("# Sample Begin") == 2 and text.count("## User’s Click\nC") == 2
    assert "## Recommender’s Answer\nThe user likes things." in text
    assert text.rstrip().endswith(load_template("observation").rstrip())
    assert not any(f"${{{k}}}" in text for k in ("full_prompt", "answer", "click", "prompt_temp"))


def test_killed_loop_resumes_after_its_last_finished_iteration(tables, tmp_path):
    proposals = [better_template(), template_without_history(), better_template().replace("step by step", "carefully")]
    full_rec = ScriptedRecommender()
    full = run_recprompt(small_config(3, ()), tmp_path / "full", tables, full_rec, ScriptedOptimizer(proposals))

    killed = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        run_recprompt(small_config(3, ()), killed, tables, ScriptedRecommender(),
                      ScriptedOptimizer(proposals, fail_at=2))
    assert json.loads((killed / "state.json").read_text())["completed"] == 1

    rec, opt = ScriptedRecommender(), ScriptedOptimizer(proposals[1:])
    resumed = run_recprompt(small_config(3, ()), killed, tables, rec, opt)
    assert resumed == full
    assert opt.requests == 2  # iterations 2 and 3 only
    # iterations 0 and 1 (40 validation prompts each) were not asked again
    assert rec.requests == full_rec.requests - 2 * 40
    assert pl.read_csv(killed / "iterations.csv").equals(pl.read_csv(tmp_path / "full" / "iterations.csv"))


def test_cache_makes_a_rerun_issue_zero_requests(tables, tmp_path):
    config = small_config(iterations=2)
    cache = tmp_path / "cache"

    def run(out):
        rec, opt = ScriptedRecommender(), ScriptedOptimizer([template_without_history(), better_template()])
        results = run_recprompt(config, out, tables, Cached(rec, cache), Cached(opt, cache))
        return results, rec.requests + opt.requests

    first, sent = run(tmp_path / "a")
    again, sent_again = run(tmp_path / "b")  # a new run folder: nothing to resume from
    assert sent > 0 and sent_again == 0
    assert again == first


def test_resume_refuses_a_run_folder_of_another_config(tables, tmp_path):
    run_recprompt(small_config(1), tmp_path, tables, ScriptedRecommender(), ScriptedOptimizer([better_template()]))
    other = small_config(1)
    other.recommender.temperature = 0.7
    with pytest.raises(Recsys24Error, match="different config"):
        run_recprompt(other, tmp_path, tables, ScriptedRecommender(), ScriptedOptimizer([better_template()]))


def test_extract_template_takes_the_last_marked_block():
    answer = (
        'I will answer between "# Prompt Template Begin" and "# Prompt Template End".\n'
        "# Prompt Template Begin\n```\nNew ${history} and ${candidate}\n```\n# Prompt Template End\nDone."
    )
    assert extract_template(answer) == "New ${history} and ${candidate}\n"
    assert extract_template("# Prompt Template Begin\nNo end ${history}") == "No end ${history}\n"
    assert extract_template("Here is a better prompt: ...") is None


def test_shipped_config_loads_typed_and_refuses_typos(tmp_path):
    config = read_recprompt_config("configs/recprompt.yaml")
    assert config.loop.iterations == 10 and config.data.num_validation == 100 and config.data.num_test == 400
    assert config.recommender.temperature == 0.0 and config.recommender.api_key_env == "OPENAI_API_KEY"
    bad = tmp_path / "bad.yaml"
    bad.write_text("loop:\n  iteratoins: 3\n")
    with pytest.raises(Recsys24Error, match="unknown key.*iteratoins"):
        read_recprompt_config(bad)


def test_request_params_follow_the_config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("recommender: {temperature: 0.2, max_tokens: null, extra: {seed: 7}}\n")
    config = read_recprompt_config(path)
    assert config.recommender.params == {"temperature": 0.2, "seed": 7}
    assert config.optimizer.params == {"temperature": 0.0, "max_tokens": 1024}


def test_resuming_with_more_iterations_retests_a_new_best(tables, tmp_path):
    proposals = [template_without_history(), better_template()]
    first = run_recprompt(small_config(1), tmp_path, tables, ScriptedRecommender(), ScriptedOptimizer(proposals))
    assert first["best_iteration"] == 0
    more = run_recprompt(small_config(2), tmp_path, tables, ScriptedRecommender(), ScriptedOptimizer(proposals[1:]))
    assert more["best_iteration"] == 2
    assert (tmp_path / "test" / "best" / "template.txt").read_text() == better_template()
    assert more["test"]["best"]["mrr"] != first["test"]["best"]["mrr"]
