"""``recsys24 recprompt`` end to end: EB-NeRD demo data against a local
OpenAI-compatible server, and synthetic MIND with a tiny local causal LM."""

import json

import polars as pl

from recprompt_fakes import FakeOpenAIServer
from recsys24.data import schema as S
from recsys24.data.mind import write_synthetic_mind

KEY = "sk-cli-test-93b1-DO-NOT-LEAK"

SMALL = """
data: {num_validation: 20, num_test: 30, history_size: 5}
recommender: {kind: openai, model: demo-llm, api_key_env: RECPROMPT_CLI_KEY, max_concurrency: 4, retries: 3, max_tokens: 64}
optimizer: {kind: openai, model: demo-llm, api_key_env: RECPROMPT_CLI_KEY, retries: 3, max_tokens: 64}
loop: {iterations: 2, compare_templates: [hand_crafted]}
"""


def all_text(folder):
    return "".join(p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file())


def test_recprompt_on_ebnerd_demo_through_http_leaves_no_key_and_reruns_free(
    cli, demo_data, tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("RECPROMPT_CLI_KEY", KEY)
    config = tmp_path / "recprompt.yaml"
    config.write_text(SMALL)
    cache, run = tmp_path / "cache", tmp_path / "run"
    with FakeOpenAIServer(fail={1: 429, 7: 500}) as server:
        args = ["recprompt", "--config", config, "--data", demo_data, "--base-url", server.base_url,
                "--cache", cache, "--output", run]
        result = cli(*args)
        assert result.exit_code == 0, result.output
        sent = server.requests
        assert sent > 0 and set(server.auth_headers) == {f"Bearer {KEY}"}
        rerun = cli(*args[:-1], tmp_path / "run2")
        assert rerun.exit_code == 0 and server.requests == sent  # all answers from the cache
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test"]) == {"best", "hand_crafted"} and metrics["test"]["best"]["impressions"] == 30
    assert pl.read_csv(run / "iterations.csv").height == 3
    scores = pl.read_parquet(run / "test" / "best" / "scores.parquet")
    assert dict(scores.schema) == S.SCORES_SCHEMA
    recorded = json.loads((run / "config.json").read_text())
    assert recorded["source"] == "ebnerd" and recorded["config"]["recommender"]["api_key_env"] == "RECPROMPT_CLI_KEY"
    for folder in (run, cache, tmp_path / "run2"):
        assert KEY not in all_text(folder)
    assert KEY not in result.output + caplog.text


def test_recprompt_on_synthetic_mind_with_a_local_model(cli, tmp_path):
    from test_recprompt_backends import _tiny_causal_lm

    model = _tiny_causal_lm(tmp_path / "tiny-lm")
    mind = write_synthetic_mind(tmp_path / "mind", seed=2)
    config = tmp_path / "local.yaml"
    config.write_text(
        "data: {num_validation: 4, num_test: 4, history_size: 3}\n"
        "recommender: {kind: local, max_tokens: 8}\noptimizer: {kind: local, max_tokens: 8}\n"
        "loop: {iterations: 1, compare_templates: []}\n"
    )
    result = cli("recprompt", "--config", config, "--mind", mind, "--model", model, "--no-cache",
                 "--output", tmp_path / "run")
    assert result.exit_code == 0, result.output
    table = pl.read_csv(tmp_path / "run" / "iterations.csv")
    # gibberish: iteration 0 parses nothing, the optimiser's answer has no template
    assert table["status"].to_list() == ["evaluated", "unparsable"] and table["parsed"][0] == 0.0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["best"]["parsed"] == 0.0


def test_recprompt_without_data_is_one_red_line(cli, tmp_path):
    out = cli("recprompt", "--output", tmp_path / "run")
    assert out.exit_code == 2 and "no data" in out.output and "Traceback" not in out.output
