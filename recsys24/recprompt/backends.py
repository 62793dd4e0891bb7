"""LLM backends behind one interface: chat messages in, text out.

Every backend has ``complete(messages, **params) -> str`` and
``complete_many(list of messages, **params) -> list[str]`` (the latter runs up
to ``max_concurrency`` requests at once). ``messages`` are OpenAI-style chat
messages: ``[{"role": "system" | "user" | "assistant", "content": str}, ...]``;
``params`` are generation settings (``temperature``, ``max_tokens``, ...).

- :class:`OpenAICompatible`: any server speaking ``POST {base_url}/chat/completions``
  (vLLM, hosted APIs). Standard library only. The API key is read from an
  environment variable at request time and never logged, cached or written.
- :class:`LocalTransformers`: any causal-LM folder loadable by transformers.
- :class:`Cached`: wraps a backend; one JSON file per (backend kind, model,
  messages, params), so rerunning an experiment sends no request.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from recsys24.errors import Recsys24Error
from recsys24.io import atomic_path

log = logging.getLogger(__name__)

Messages = list[dict]


class Backend:
    """Base class: subclasses set ``kind`` and ``model`` and implement ``complete``."""

    kind = "base"
    model = ""
    max_concurrency = 1

    def complete(self, messages: Messages, **params) -> str:
        raise NotImplementedError

    def complete_many(self, batch: list[Messages], **params) -> list[str]:
        """Answers for each message list, in order, ``max_concurrency`` at a time."""
        return concurrent_map(lambda m: self.complete(m, **params), batch, self.max_concurrency)


def concurrent_map(fn, items: list, max_workers: int) -> list:
    """``[fn(x) for x in items]`` on up to ``max_workers`` threads, in order.

    The first failure cancels the requests not yet started and is raised.
    """
    if max_workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    pool = ThreadPoolExecutor(max_workers)
    try:
        futures = [pool.submit(fn, x) for x in items]
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class OpenAICompatible(Backend):
    """Client of an OpenAI-compatible chat-completions endpoint.

    ``base_url`` is the API root, e.g. ``http://127.0.0.1:8000/v1`` for vLLM or
    ``https://api.openai.com/v1``. Requests that fail with 429, 5xx, a timeout
    or a dropped connection are retried ``retries`` times with exponential
    backoff (``backoff`` seconds, doubled each time, honouring ``Retry-After``).
    ``requests`` counts HTTP requests sent (retries included).
    """

    kind = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        max_concurrency: int = 8,
        timeout: float = 120.0,
        retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.max_concurrency = max(1, int(max_concurrency))
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.requests = 0
        self._lock = threading.Lock()

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _redact(self, text: str) -> str:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return text.replace(key, "***") if key else text

    def complete(self, messages: Messages, **params) -> str:
        body = json.dumps({"model": self.model, "messages": messages, **params}).encode()
        url = f"{self.base_url}/chat/completions"
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(url, data=body, headers=self._headers(), method="POST")
            with self._lock:
                self.requests += 1
            retry_after = None
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    payload = json.loads(response.read())
                return _message_text(payload, url)
            except urllib.error.HTTPError as err:
                detail = self._redact(err.read(500).decode("utf-8", "replace").strip())
                if err.code != 429 and err.code < 500:
                    raise Recsys24Error(
                        f"{url}: HTTP {err.code} {' '.join(detail.split())[:200]}"
                    ) from None
                reason = f"HTTP {err.code}"
                retry_after = _seconds(err.headers.get("Retry-After"))
            except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError,
                    http.client.HTTPException, json.JSONDecodeError) as err:
                # dropped connections, timeouts and cut-off bodies are worth another try
                reason = type(err).__name__ + (f" ({err.reason})" if hasattr(err, "reason") else "")
            if attempt == self.retries:
                raise Recsys24Error(
                    f"{url}: gave up after {self.retries + 1} attempts (last: {reason})"
                )
            wait = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random() / 2)
            if retry_after is not None:
                wait = min(self.max_backoff, max(wait, retry_after))
            log.warning("%s: %s, retry %d/%d in %.2fs", url, reason, attempt + 1, self.retries, wait)
            time.sleep(wait)
        raise AssertionError("unreachable")


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _message_text(payload: dict, url: str) -> str:
    try:
        return payload["choices"][0]["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        raise Recsys24Error(f"{url}: response has no choices[0].message.content") from None


class LocalTransformers(Backend):
    """A causal LM from a local folder (``AutoModelForCausalLM.from_pretrained``).

    Uses the tokenizer's chat template when it has one, else joins the message
    contents with blank lines. ``temperature`` 0 (the default) decodes greedily.
    """

    kind = "local"

    def __init__(self, model_dir: str | os.PathLike, device: str | None = None, dtype: str = "auto"):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model = str(model_dir)
        if not Path(model_dir).is_dir():
            raise Recsys24Error(f"{model_dir}: not a model folder")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.lm = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(self.device)
        self.lm.eval()
        self.requests = 0

    def _prompt_ids(self, messages: Messages):
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )["input_ids"]
        text = "\n\n".join(m["content"] for m in messages)
        return self.tokenizer(text, return_tensors="pt")["input_ids"]

    def complete(self, messages: Messages, **params) -> str:
        import torch

        self.requests += 1
        ids = self._prompt_ids(messages).to(self.device)
        limit = getattr(self.lm.config, "max_position_embeddings", None) or getattr(
            self.lm.config, "n_positions", None
        )
        max_new = int(params.get("max_tokens") or 256)
        if limit and ids.shape[1] + max_new > limit:
            ids = ids[:, -(limit - max_new):]  # keep the end: the output format is there
        temperature = float(params.get("temperature", 0.0))
        generate = dict(max_new_tokens=max_new, attention_mask=torch.ones_like(ids))
        if temperature > 0:
            generate.update(do_sample=True, temperature=temperature)
        else:
            generate.update(do_sample=False)
        if self.tokenizer.pad_token_id is None:
            generate["pad_token_id"] = self.tokenizer.eos_token_id
        with torch.no_grad():
            out = self.lm.generate(ids, **generate)
        return self.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


class Cached(Backend):
    """Disk cache in front of ``backend``: ``cache_dir/ab/abcdef....json`` per request.

    The key is the sha256 of (backend kind, model, messages, params); entries
    hold those and the answer, never credentials. ``hits`` and ``misses``
    count lookups.
    """

    kind = "cached"

    def __init__(self, backend: Backend, cache_dir: str | os.PathLike):
        self.backend = backend
        self.model = backend.model
        self.max_concurrency = backend.max_concurrency
        self.cache_dir = Path(cache_dir)
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def key(self, messages: Messages, params: dict) -> str:
        blob = json.dumps(
            {"kind": self.backend.kind, "model": self.backend.model, "messages": messages, "params": params},
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.json"

    def lookup(self, messages: Messages, params: dict) -> str | None:
        path = self._path(self.key(messages, params))
        if not path.is_file():
            return None
        return json.loads(path.read_text())["answer"]

    def store(self, messages: Messages, params: dict, answer: str) -> None:
        entry = {
            "kind": self.backend.kind,
            "model": self.backend.model,
            "params": params,
            "messages": messages,
            "answer": answer,
        }
        with atomic_path(self._path(self.key(messages, params))) as tmp:
            tmp.write_text(json.dumps(entry, ensure_ascii=False, indent=1))

    def complete(self, messages: Messages, **params) -> str:
        return self.complete_many([messages], **params)[0]

    def complete_many(self, batch: list[Messages], **params) -> list[str]:
        answers = [self.lookup(m, params) for m in batch]
        todo = [i for i, a in enumerate(answers) if a is None]
        with self._lock:
            self.hits += len(batch) - len(todo)
            self.misses += len(todo)
        if todo:
            # Store each answer as it arrives, so a killed run keeps what it paid for.
            def fetch(i: int) -> str:
                answer = self.backend.complete(batch[i], **params)
                self.store(batch[i], params, answer)
                return answer

            for i, answer in zip(todo, concurrent_map(fetch, todo, self.max_concurrency)):
                answers[i] = answer
        return answers
