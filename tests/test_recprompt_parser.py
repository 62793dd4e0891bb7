"""The recommender's answer parser and scores on real-looking LLM answers."""

import numpy as np
import polars as pl
import pytest

from recsys24.recprompt.recommender import (
    TEMPLATES,
    Recommender,
    fill,
    load_template,
    missing_placeholders,
    parse_ranking,
    ranking_scores,
)

ANSWERS = [
    # (answer, n candidates, expected 0-based ranking or None)
    ("Ranked news: <START>C3, C1, C2<END>", 3, [2, 0, 1]),
    # GPT-4 style: reasoning first, echoing the format spec, then the answer
    (
        "The user is interested in sports and finance.\n"
        'The required format is "<START>C#, C#, C#<END>".\n'
        "C2 is about football, C3 about stocks.\n"
        "Candidate news ranked solely by relevance to the user's interests: "
        "<START>C2, C3, C1<END>",
        3,
        [1, 2, 0],
    ),
    ("<START>\nC10,\nC2,\nC1\n<END>", 10, [9, 1, 0]),
    ("<start>c4 > c2 > c1</end><END>", 4, [3, 1, 0]),
    ("Ranked news: <START>C1, C1, C3, C11, C0<END>", 10, [0, 2]),  # dups, out of range
    ("Ranked news: <START>C2, C1", 3, [1, 0]),  # no <END>, answer cut off
    ("Ranked news: C3, C2, C1", 3, [2, 1, 0]),  # markers left out
    ("**Ranked news:** [C2, C3]", 3, [1, 2]),
    ("First <START>C1, C2<END> then I changed my mind: <START>C2, C1<END>", 2, [1, 0]),
    ("I recommend the article about the storm.", 3, None),
    ("Ranked news: <START>C#, C#, C#<END>", 3, None),  # the format echoed, no ranking
    ("", 3, None),
]


@pytest.mark.parametrize("answer,n,expected", ANSWERS)
def test_parse_ranking(answer, n, expected):
    assert parse_ranking(answer, n) == expected


def test_scores_rank_first_highest_and_unranked_share_lowest():
    s = ranking_scores([2, 0], 4)
    assert s.dtype == np.float32
    assert s[2] > s[0] > s[1] == s[3]
    assert (ranking_scores(None, 3) == 0).all()


def test_paper_templates_ship_with_their_placeholders():
    for name in ("initial", "hand_crafted", "llm_generated"):
        assert missing_placeholders(load_template(name)) == [], name
    # table 8 writes $history without braces; both forms are placeholders
    assert "$history\n" in load_template("llm_generated")
    assert missing_placeholders("only ${candidate}") == ["history"]
    assert set(TEMPLATES) == {
        "initial", "optimizer_system", "sample", "current_template", "observation",
        "hand_crafted", "llm_generated",
    }


def test_fill_keeps_other_dollar_signs():
    out = fill("Costs $5. ${history} | $candidate", "H", "C")
    assert out == "Costs $5. H | C"


class _Answers:
    kind, model, max_concurrency = "fake", "fake", 1

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def complete_many(self, batch, **params):
        self.calls.append(batch)
        return [self.answers.pop(0) for _ in batch]


def test_unparsable_answer_is_retried_once_with_the_conversation():
    samples = pl.DataFrame({
        "impression_id": [7, 8], "user_id": [1, 2],
        "history_titles": [["Storm hits coast"], ["Stocks fall"]],
        "candidate_titles": [["A", "B", "C"], ["D", "E", "F"]],
    }, schema_overrides={"impression_id": pl.UInt32, "user_id": pl.UInt32})
    backend = _Answers(["<START>C2<END>", "no idea", "still no idea"])
    out = Recommender(backend, {}).rank("${history}\n${candidate}", samples)
    assert len(backend.calls) == 2 and len(backend.calls[1]) == 1
    retry = backend.calls[1][0]
    assert [m["role"] for m in retry] == ["user", "assistant", "user"]
    assert retry[1]["content"] == "no idea"
    assert out["parsed"].to_list() == [True, False]
    assert out["retried"].to_list() == [False, True]
    assert out["scores"].to_list() == [[0.0, 3.0, 0.0], [0.0, 0.0, 0.0]]
    assert "C1: A\nC2: B\nC3: C" in out["prompt"][0]
