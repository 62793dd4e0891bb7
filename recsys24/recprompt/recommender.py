"""The LLM recommender: fill a template, ask the LLM, parse its ranking, score.

A template is text with ``${history}`` and ``${candidate}`` placeholders
(``$history`` / ``$candidate`` also work: :class:`string.Template` syntax).
History titles are listed as ``1. title`` lines, candidates as ``C1: title``
lines. The answer is parsed from ``<START>C#, C#, ...<END>`` (the paper's
format); see :func:`parse_ranking` for what else is accepted.

Scores: the candidate ranked i-th (0-based) of n gets ``n - i``; candidates
the answer leaves out share score 0, below every ranked one. An unparsable
answer is retried once with a reminder of the format; if that fails too, all
candidates of the impression score 0 (a random guess for AUC).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from recsys24.data import schema as S
from recsys24.errors import Recsys24Error
from recsys24.recprompt.backends import Backend

TEMPLATE_DIR = Path(__file__).parent / "templates"

# The paper's tables 2-8, shipped as files under templates/.
TEMPLATES = {
    "initial": "initial.txt",  # table 2
    "optimizer_system": "optimizer_system.txt",  # table 3
    "sample": "sample.txt",  # table 4
    "current_template": "current_template.txt",  # table 5
    "observation": "observation.txt",  # table 6
    "hand_crafted": "hand_crafted.txt",  # table 7
    "llm_generated": "llm_generated.txt",  # table 8
}
PLACEHOLDERS = ("history", "candidate")

HISTORY_TITLES = "history_titles"
CANDIDATE_TITLES = "candidate_titles"

RETRY_INSTRUCTION = (
    "Your answer did not contain the ranking in the required format. Reply with the "
    'ranking of all candidate news only, in the format: "<START>C#, C#, ..., C#<END>".'
)


def load_template(name_or_path: str | Path) -> str:
    """A packaged template by name (see ``TEMPLATES``) or a template file's text."""
    if str(name_or_path) in TEMPLATES:
        return (TEMPLATE_DIR / TEMPLATES[str(name_or_path)]).read_text(encoding="utf-8")
    path = Path(name_or_path)
    if not path.is_file():
        raise Recsys24Error(
            f"{name_or_path}: no such template file or name ({', '.join(TEMPLATES)})"
        )
    return path.read_text(encoding="utf-8")


def missing_placeholders(template: str) -> list[str]:
    """The recommender placeholders (history, candidate) that ``template`` lacks."""
    found = set(string.Template(template).get_identifiers())
    return [p for p in PLACEHOLDERS if p not in found]


def render_inputs(samples: pl.DataFrame) -> pl.DataFrame:
    """``history`` and ``candidate`` text per impression from the title lists.

    >>> render_inputs(pl.DataFrame({"history_titles": [["A", "B"]],
    ...                             "candidate_titles": [["X", "Y"]]})).row(0)
    ('1. A\\n2. B', 'C1: X\\nC2: Y')
    """
    def numbered(col: str, fmt: str) -> pl.Expr:
        return (
            pl.col(col)
            .list.eval(pl.format(fmt, pl.int_range(1, pl.len() + 1), pl.element()))
            .list.join("\n")
        )

    return samples.select(
        numbered(HISTORY_TITLES, "{}. {}").alias("history"),
        numbered(CANDIDATE_TITLES, "C{}: {}").alias("candidate"),
    )


def fill(template: str, history: str, candidate: str) -> str:
    """The template with its placeholders replaced; other ``$`` text is kept."""
    return string.Template(template).safe_substitute(history=history, candidate=candidate)


_BLOCK = re.compile(r"<\s*START\s*>(.*?)<\s*END\s*>", re.S | re.I)
_OPEN_BLOCK = re.compile(r"<\s*START\s*>([^\n]*)", re.I)
_RANKED_LINE = re.compile(r"ranked[^:\n]*:\s*([^\n]*)", re.I)
_LABEL = re.compile(r"\bC\s*(\d{1,3})\b", re.I)


def _labels(text: str, n: int) -> list[int]:
    """Distinct 0-based candidate indices named in ``text``, first mention first."""
    seen: list[int] = []
    for m in _LABEL.finditer(text):
        i = int(m.group(1)) - 1
        if 0 <= i < n and i not in seen:
            seen.append(i)
    return seen


def parse_ranking(answer: str, n: int) -> list[int] | None:
    """The ranking in ``answer`` as 0-based candidate indices, best first; None if absent.

    Looks, in order, for the last ``<START>...<END>`` block that names a
    candidate, an unclosed ``<START>`` line, then a line after "ranked ...:"
    (e.g. "Ranked news: C3, C1"). Reasoning text around the block is ignored,
    labels outside C1..Cn and repeats are dropped.

    >>> parse_ranking("Ranked news: <START>C3, C1, C3, C12<END>", 10)
    [2, 0]
    """
    for pattern in (_BLOCK, _OPEN_BLOCK, _RANKED_LINE):
        for m in reversed(list(pattern.finditer(answer))):
            labels = _labels(m.group(1), n)
            if labels:
                return labels
    return None


def ranking_scores(ranking: list[int] | None, n: int) -> np.ndarray:
    """Scores for n candidates: ``n - position`` if ranked, 0 for the rest."""
    scores = np.zeros(n, dtype=np.float32)
    if ranking:
        scores[ranking] = np.arange(n, n - len(ranking), -1, dtype=np.float32)
    return scores


@dataclass
class Recommender:
    """Ranks sampled impressions with ``backend`` using ``template``."""

    backend: Backend
    params: dict

    def prompts(self, template: str, samples: pl.DataFrame) -> list[str]:
        inputs = render_inputs(samples)
        return [fill(template, h, c) for h, c in inputs.iter_rows()]

    def rank(self, template: str, samples: pl.DataFrame) -> pl.DataFrame:
        """One row per impression: ids, ``scores`` (list[f32]), prompt, answer, parse flags.

        ``samples`` needs impression_id, user_id, history_titles and
        candidate_titles (see :mod:`recsys24.recprompt.sampling`).
        """
        prompts = self.prompts(template, samples)
        sizes = samples[CANDIDATE_TITLES].list.len().to_list()
        first = [[{"role": "user", "content": p}] for p in prompts]
        answers = self.backend.complete_many(first, **self.params)
        rankings = [parse_ranking(a, n) for a, n in zip(answers, sizes)]
        retry = [i for i, r in enumerate(rankings) if r is None]
        final = list(answers)
        if retry:
            follow_up = [
                first[i]
                + [{"role": "assistant", "content": answers[i]}, {"role": "user", "content": RETRY_INSTRUCTION}]
                for i in retry
            ]
            for i, answer in zip(retry, self.backend.complete_many(follow_up, **self.params)):
                final[i] = answer
                rankings[i] = parse_ranking(answer, sizes[i])
        retried = np.zeros(len(prompts), dtype=bool)
        retried[retry] = True
        return pl.DataFrame(
            {
                S.IMPRESSION_ID: samples[S.IMPRESSION_ID],
                S.USER_ID: samples[S.USER_ID],
                S.SCORES: pl.Series([ranking_scores(r, n).tolist() for r, n in zip(rankings, sizes)], dtype=pl.List(pl.Float32)),
                "prompt": prompts,
                "answer": final,
                "parsed": [r is not None for r in rankings],
                "retried": retried,
            }
        )


def ranked_scores(ranked: pl.DataFrame) -> pl.DataFrame:
    """The scores-file columns of :meth:`Recommender.rank`'s output."""
    return ranked.select(list(S.SCORES_SCHEMA)).cast(S.SCORES_SCHEMA)
