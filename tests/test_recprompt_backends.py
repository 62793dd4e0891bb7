"""LLM backends: real HTTP against a local OpenAI-compatible server, the disk
cache, and a tiny random causal LM through the local transformers backend."""

import json
import logging

import polars as pl
import pytest

from recprompt_fakes import FakeOpenAIServer
from recsys24.errors import Recsys24Error
from recsys24.recprompt.backends import Cached, LocalTransformers, OpenAICompatible
from recsys24.recprompt.recommender import Recommender

KEY = "sk-test-7f3a9c-DO-NOT-LEAK"
MESSAGES = [{"role": "user", "content": "Candidates:\nC1: Storm\nC2: Stocks\nRanked news?"}]


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv("RECPROMPT_TEST_KEY", KEY)
    return "RECPROMPT_TEST_KEY"


def test_retries_429_5xx_and_cut_off_bodies_then_answers(api_key, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeOpenAIServer(fail={1: 429, 2: 500, 3: 503, 4: 200}) as server:
        client = OpenAICompatible(server.base_url, "m", api_key, retries=4, backoff=0.01)
        answer = client.complete(MESSAGES, temperature=0.0)
    assert "<START>C1, C2<END>" in answer
    assert server.requests == 5 and client.requests == 5
    assert server.auth_headers == [f"Bearer {KEY}"] * 5  # sent to the server...
    assert server.bodies[-1] == {"model": "m", "messages": MESSAGES, "temperature": 0.0}
    assert "HTTP 429" in caplog.text and "HTTP 500" in caplog.text
    assert KEY not in caplog.text  # ...never logged


def test_gives_up_after_retries_and_refuses_client_errors(api_key):
    with FakeOpenAIServer(fail={1: 500, 2: 500, 3: 400}) as server:
        client = OpenAICompatible(server.base_url, "m", api_key, retries=1, backoff=0.01)
        with pytest.raises(Recsys24Error, match="gave up after 2 attempts"):
            client.complete(MESSAGES)
        with pytest.raises(Recsys24Error, match="HTTP 400"):
            client.complete(MESSAGES)
        assert server.requests == 3  # a 400 is not retried


def test_timeout_is_retried(api_key):
    import socket

    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        client = OpenAICompatible(url, "m", api_key, timeout=0.2, retries=1, backoff=0.01)
        with pytest.raises(Recsys24Error, match="gave up after 2 attempts.*timeout|gave up after 2 attempts.*Timeout"):
            client.complete(MESSAGES)
        assert client.requests == 2


def test_concurrent_requests_keep_order(api_key):
    # question i lists i + 1 candidates, so each answer shows which question it answers
    batch = [
        [{"role": "user", "content": "".join(f"C{c}: title\n" for c in range(1, i + 2))}]
        for i in range(12)
    ]
    with FakeOpenAIServer(fail={2: 429, 5: 502}) as server:
        client = OpenAICompatible(server.base_url, "m", api_key, max_concurrency=4, backoff=0.01)
        answers = client.complete_many(batch)
    assert [a.count("C") for a in answers] == list(range(1, 13))
    assert server.requests == 14


def test_cache_answers_reruns_without_requests_and_stores_no_key(api_key, tmp_path):
    with FakeOpenAIServer() as server:
        inner = OpenAICompatible(server.base_url, "m", api_key, backoff=0.01)
        first = Cached(inner, tmp_path / "cache").complete(MESSAGES, temperature=0.0)
        again = Cached(inner, tmp_path / "cache")
        assert again.complete(MESSAGES, temperature=0.0) == first
        assert server.requests == 1 and (again.hits, again.misses) == (1, 0)
        # other params or another model are other entries
        again.complete(MESSAGES, temperature=0.7)
        Cached(OpenAICompatible(server.base_url, "m2", api_key), tmp_path / "cache").complete(MESSAGES, temperature=0.0)
        assert server.requests == 3
    files = list((tmp_path / "cache").rglob("*.json"))
    assert len(files) == 3
    for f in files:
        text = f.read_text()
        assert KEY not in text and api_key not in text
        assert json.loads(text)["answer"]


def _tiny_causal_lm(path):
    """A 2-layer GPT-2 with random weights and a 40-word vocabulary."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    words = "the a user news storm stocks sports rank read likes today city team market".split()
    vocab = {w: i for i, w in enumerate(["[UNK]", "[EOS]", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="[EOS]", pad_token="[EOS]")
    fast.save_pretrained(path)
    config = GPT2Config(vocab_size=len(vocab), n_positions=512, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=1, eos_token_id=1)
    import torch

    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(path)
    return path


def test_local_transformers_gibberish_goes_through_the_parser_failure_path(tmp_path):
    model_dir = _tiny_causal_lm(tmp_path / "tiny-lm")
    backend = LocalTransformers(model_dir, device="cpu")
    params = {"temperature": 0.0, "max_tokens": 12}
    answer = backend.complete(MESSAGES, **params)
    assert isinstance(answer, str) and answer == backend.complete(MESSAGES, **params)  # greedy
    samples = pl.DataFrame({
        "impression_id": [1, 2], "user_id": [5, 6],
        "history_titles": [["storm city"], ["stocks market"]],
        "candidate_titles": [["sports team", "market"], ["news", "storm"]],
    }, schema_overrides={"impression_id": pl.UInt32, "user_id": pl.UInt32})
    ranked = Recommender(backend, params).rank("${history} rank ${candidate}", samples)
    assert ranked["parsed"].to_list() == [False, False]
    assert ranked["retried"].to_list() == [True, True]
    assert ranked["scores"].to_list() == [[0.0, 0.0], [0.0, 0.0]]
    assert backend.requests == 1 + 1 + 4  # two direct calls above, then 2 prompts + 2 retries
