"""Scripted stand-ins for LLMs, shared by the RecPrompt tests."""

from __future__ import annotations

import re

from recsys24.recprompt.backends import Backend
from recsys24.recprompt.recommender import load_template

_CANDIDATE = re.compile(r"^C(\d+): (.*)$", re.M)
_HISTORY = re.compile(r"^\d+\. (.*)$", re.M)


def _words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z]+", text) if len(w) > 3}


class ScriptedRecommender(Backend):
    """Ranks by title word overlap with the history when the template asks for a
    "Recommendation Process"; otherwise answers in the order given (a weak ranker)."""

    kind = "scripted"
    model = "scripted-recommender"

    def __init__(self, fail_after: int | None = None):
        self.requests = 0
        self.fail_after = fail_after

    def complete(self, messages, **params):
        self.requests += 1
        if self.fail_after is not None and self.requests > self.fail_after:
            raise KeyboardInterrupt("killed")
        prompt = messages[0]["content"]
        cands = _CANDIDATE.findall(prompt)
        if "Recommendation Process" in prompt:
            liked = set().union(*(_words(t) for t in _HISTORY.findall(prompt)))
            cands = sorted(cands, key=lambda c: -len(_words(c[1]) & liked))
        ranking = ", ".join(f"C{n}" for n, _ in cands)
        return f"The user likes things.\nRanked news: <START>{ranking}<END>"


class ScriptedOptimizer(Backend):
    """Answers with ``proposals`` in turn (the last one repeats)."""

    kind = "scripted"
    model = "scripted-optimizer"

    def __init__(self, proposals: list[str], fail_at: int | None = None):
        self.proposals = proposals
        self.requests = 0
        self.fail_at = fail_at
        self.seen: list[list[dict]] = []

    def complete(self, messages, **params):
        self.requests += 1
        if self.fail_at is not None and self.requests == self.fail_at:
            raise KeyboardInterrupt("killed")
        self.seen.append(messages)
        text = self.proposals[min(self.requests - 1, len(self.proposals) - 1)]
        return f"Observations: fine.\n# Prompt Template Begin\n{text}\n# Prompt Template End\n"


def better_template() -> str:
    return load_template("hand_crafted")


def template_without_history() -> str:
    return load_template("hand_crafted").replace("${history}", "(none)")


class FakeOpenAIServer:
    """An OpenAI-compatible chat server on 127.0.0.1 in a thread.

    ``fail`` maps a 1-based request number to an HTTP status to return instead
    (429 or 5xx exercise retries; 200 sends a cut-off JSON body). Answers come from ``answer(messages)``:
    by default a :class:`ScriptedRecommender` for recommender prompts and a
    ``proposal`` template for optimiser prompts.
    """

    def __init__(self, fail: dict[int, int] | None = None, proposal: str | None = None):
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.fail = dict(fail or {})
        self.requests = 0
        self.auth_headers: list[str | None] = []
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        recommender = ScriptedRecommender()
        proposal = proposal or better_template()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests += 1
                    n = server.requests
                    server.auth_headers.append(self.headers.get("Authorization"))
                    server.bodies.append(body)
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": "not found"}})
                if server.fail.get(n) == 200:  # a cut-off body
                    self.send_response(200)
                    self.send_header("Content-Length", "9")
                    self.end_headers()
                    return self.wfile.write(b'{"choices')
                if n in server.fail:
                    headers = {"Retry-After": "0"} if server.fail[n] == 429 else {}
                    return self._send(server.fail[n], {"error": {"message": "busy"}}, headers)
                messages = body["messages"]
                if messages[0]["role"] == "system":
                    text = f"# Prompt Template Begin\n{proposal}\n# Prompt Template End"
                else:
                    text = recommender.complete(messages)
                self._send(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]})

            def _send(self, code, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
