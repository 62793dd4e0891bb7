"""``configs/recprompt*.yaml`` as typed objects, merged with the ``recsys24 recprompt`` options.

Sections: ``data`` (which impressions), ``recommender`` and ``optimizer``
(which LLM answers, and how), ``loop`` (the optimiser loop). Read by the run
configs' reader (:func:`recsys24.config.read_config`): unknown keys and wrong
types are refused, so a typo cannot silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from recsys24.config import read_config
from recsys24.errors import Recsys24Error
from recsys24.recprompt.backends import Backend, Cached, LocalTransformers, OpenAICompatible


@dataclass
class DataConfig:
    source: str = "mind"  # "ebnerd" (official split folder) or "mind" (news.tsv + behaviors.tsv)
    path: str | None = None
    split: str = "validation"  # EB-NeRD split to sample from
    num_validation: int = 100
    num_test: int = 400
    num_negatives: int = 9
    history_size: int = 10
    seed: int = 42


@dataclass
class BackendConfig:
    kind: str = "openai"  # "openai" (any OpenAI-compatible server) or "local" (transformers folder)
    model: str = ""  # model name on the server, or the model folder for "local"
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str | None = "OPENAI_API_KEY"  # name of the env var, never the key itself
    max_concurrency: int = 8
    timeout: float = 120.0
    retries: int = 5
    temperature: float = 0.0
    max_tokens: int | None = 1024  # null: not sent (APIs that want max_completion_tokens)
    extra: dict = field(default_factory=dict)  # more request fields, e.g. {seed: 0}

    @property
    def params(self) -> dict:
        """Generation settings sent with every request (and part of the cache key)."""
        params = {"temperature": self.temperature}
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        return {**params, **self.extra}

    def build(self, cache_dir: str | Path | None) -> Backend:
        """The backend this section describes, behind a disk cache if ``cache_dir``."""
        if not self.model:
            raise Recsys24Error(f"{self.kind} backend: no model given (set `model` or --model)")
        if self.kind == "openai":
            backend: Backend = OpenAICompatible(
                self.base_url, self.model, self.api_key_env, self.max_concurrency, self.timeout, self.retries
            )
        elif self.kind == "local":
            backend = LocalTransformers(self.model)
        else:
            raise Recsys24Error(f"unknown backend '{self.kind}' (expected openai or local)")
        return Cached(backend, cache_dir) if cache_dir else backend


@dataclass
class LoopConfig:
    iterations: int = 10
    initial_template: str = "initial"  # a packaged template name or a file
    num_samples: int = 3  # (prompt, answer, click) samples shown to the optimiser
    select_metric: str = "mrr"  # the monitor keeps the template best on this (ties: auc)
    compare_templates: list[str] = field(
        default_factory=lambda: ["initial", "hand_crafted", "llm_generated"]
    )


@dataclass
class RecPromptConfig:
    data: DataConfig = field(default_factory=DataConfig)
    recommender: BackendConfig = field(default_factory=BackendConfig)
    optimizer: BackendConfig = field(default_factory=BackendConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    cache_dir: str | None = "~/.cache/recsys24/llm"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def run_hash(self) -> str:
        """Identity of the results: what changes answers or samples, not speed settings."""
        d = self.to_dict()
        for section in ("recommender", "optimizer"):
            for k in ("max_concurrency", "timeout", "retries", "api_key_env", "base_url"):
                d[section].pop(k)
        d["loop"].pop("iterations")
        d["loop"].pop("compare_templates")
        d.pop("cache_dir")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def cache_path(self) -> Path | None:
        return Path(os.path.expanduser(self.cache_dir)) if self.cache_dir else None


def read_recprompt_config(path: str | Path | None) -> RecPromptConfig:
    """Read a RecPrompt YAML config (a file, or a shipped one by name: ``recprompt``); ``None`` gives the defaults."""
    return RecPromptConfig() if path is None else read_config(RecPromptConfig, path)


def resolve_recprompt_config(
    path: str | Path | None,
    *,
    data: str | None = None,
    mind: str | None = None,
    split: str | None = None,
    backend: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    iterations: int | None = None,
    cache: str | None = None,
    no_cache: bool = False,
) -> RecPromptConfig:
    """A RecPrompt config: the YAML file (``None``: the defaults) with the command line's options on top.

    data / mind: an EB-NeRD or a MIND folder (one of them, or ``data.path`` in
    the file); backend, model, base_url: set on both LLMs; cache / no_cache: the
    answer cache folder, or none. Refuses a config without data or with an
    unknown data source.
    """
    config = read_recprompt_config(path)
    if data and mind:
        raise Recsys24Error("give --data or --mind, not both")
    if data or mind:
        config.data.source, config.data.path = ("ebnerd", data) if data else ("mind", mind)
    if split:
        config.data.split = split
    for section in (config.recommender, config.optimizer):
        section.kind = backend or section.kind
        section.model = model or section.model
        section.base_url = base_url or section.base_url
    if iterations is not None:
        config.loop.iterations = iterations
    if no_cache:
        config.cache_dir = None
    elif cache:
        config.cache_dir = cache
    if not config.data.path:
        raise Recsys24Error("no data: give --data DIR or --mind DIR (or data.path in the config)")
    if config.data.source not in ("ebnerd", "mind"):
        raise Recsys24Error(f"data.source '{config.data.source}': expected ebnerd or mind")
    return config
