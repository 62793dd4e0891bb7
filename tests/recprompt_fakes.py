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
