"""``configs/recprompt*.yaml`` as typed objects.

Sections: ``data`` (which impressions), ``recommender`` and ``optimizer``
(which LLM answers, and how), ``loop`` (the optimiser loop). Unknown keys are
refused, so a typo cannot silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

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


def _build(cls, values: dict | None, where: str):
    values = values or {}
    if not isinstance(values, dict):
        raise Recsys24Error(f"{where}: expected a mapping")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise Recsys24Error(f"{where}: unknown key(s) {', '.join(unknown)}")
    kwargs = {}
    sections = {c.__name__: c for c in (DataConfig, BackendConfig, LoopConfig)}
    for name, value in values.items():
        match = sections.get(str(names[name].type))
        kwargs[name] = _build(match, value, f"{where}.{name}") if match else value
    return cls(**kwargs)


def load_config(path: str | Path | None) -> RecPromptConfig:
    """Read a YAML config; ``None`` gives the defaults."""
    if path is None:
        return RecPromptConfig()
    path = Path(path)
    if not path.is_file():
        raise Recsys24Error(f"{path}: no such config file")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise Recsys24Error(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    return _build(RecPromptConfig, values, str(path))
