"""Submission zip: round trip, and every class of bad file rejected at its line."""

from __future__ import annotations

import zipfile

import numpy as np
import polars as pl
import pytest

from recsys24.baselines import run_baseline
from recsys24.data import schema as S
from recsys24.data.split import open_split
from recsys24.errors import DataError
from recsys24.evaluation.scores import check_scores, read_scores, scores_frame, write_scores
from recsys24.submission import PREDICTIONS
from recsys24.submission.validate import validate_submission
from recsys24.submission.write import write_submission


@pytest.fixture(scope="module")
def test_split(demo_data):
    return open_split(demo_data, "test")


@pytest.fixture(scope="module")
def good(test_split, tmp_path_factory):
    """(scores path, zip path, predictions lines) of the freshness baseline on test."""
    d = tmp_path_factory.mktemp("sub")
    scores = d / "scores.parquet"
    run_baseline("freshness", test_split, scores)
    out = d / "sub.zip"
    write_submission(scores, test_split, out, batch_rows=7_000)  # several batches
    lines = zipfile.ZipFile(out).read(PREDICTIONS).decode().splitlines()
    return scores, out, lines


def _zip(path, lines, extra=None):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(PREDICTIONS, "\n".join(lines) + "\n")
        if extra:
            zf.writestr(extra, "x")
    return path


def test_round_trip_ranks_follow_scores(good, test_split):
    scores_path, out, lines = good
    assert validate_submission(out, test_split, batch_rows=6_000) == test_split.num_rows == len(lines)
    scores = read_scores(scores_path)
    ids = scores[S.IMPRESSION_ID].to_list()
    for row in (0, 1, 12_345, len(lines) - 1):  # last row: a 250-candidate beyond-accuracy row
        head, ranks = lines[row].split(" ")
        assert int(head) == ids[row]
        s = np.array(scores[S.SCORES][row])
        want = np.empty(s.size, dtype=int)
        want[np.lexsort((np.arange(s.size), -s))] = np.arange(1, s.size + 1)  # ties: earlier first
        assert ranks == "[" + ",".join(map(str, want)) + "]"
    assert lines[-1].startswith("0 [")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda L: L[:-1], r"24999 lines but .* has 25000 rows \(line 25000 is the first missing one\)"),
        (lambda L: L + [L[-1]], r"25001 lines but .* has 25000 rows \(line 25001 is the first extra one\)"),
        (lambda L: L[:1] + [L[2], L[1]] + L[3:], r"line 2: impression_id \d+, expected \d+ \(lines must follow"),
        (lambda L: L[:4] + [L[4].replace(",", ", ", 1)] + L[5:], r"line 5: spaces inside the brackets"),
        (lambda L: L[:4] + [L[4].replace("[", "[ ", 1)] + L[5:], r"line 5: spaces inside the brackets"),
        (lambda L: L[:6] + [L[6].rsplit(",", 1)[0] + "]"] + L[7:], r"line 7: \d+ ranks for \d+ in-view articles"),
        (lambda L: L[:9] + [L[9].split(" ")[0] + " [" + ",".join(["1"] * (L[9].count(",") + 1)) + "]"] + L[10:],
         r"line 10: ranks are not a permutation of 1\.\.\d+"),
        (lambda L: L[:9] + [L[9].replace("[1,", "[0,").replace(",1,", ",0,").replace(",1]", ",0]")] + L[10:],
         r"line 10: ranks are not a permutation"),
        (lambda L: L[:2] + [L[2].replace(" ", "\t")] + L[3:], r"line 3: expected 'impression_id \[r1,\.\.\.,rn\]'"),
    ],
    ids=["missing-line", "extra-line", "wrong-order", "space-after-comma", "space-after-bracket",
         "wrong-length", "duplicate-ranks", "rank-zero", "bad-format"],
)
def test_bad_submission_rejected_with_line_number(good, test_split, tmp_path, damage, message):
    bad = _zip(tmp_path / "bad.zip", damage(list(good[2])))
    with pytest.raises(DataError, match=message):
        validate_submission(bad, test_split, batch_rows=6_000)


def test_zip_must_hold_only_predictions(good, test_split, tmp_path):
    bad = _zip(tmp_path / "extra.zip", good[2], extra="README.txt")
    with pytest.raises(DataError, match="must hold exactly 'predictions.txt', holds predictions.txt, README.txt"):
        validate_submission(bad, test_split)
    (tmp_path / "nozip.zip").write_text("not a zip")
    with pytest.raises(DataError, match="not a readable zip"):
        validate_submission(tmp_path / "nozip.zip", test_split)


def test_mismatched_scores_file_named_by_row(good, test_split, tmp_path):
    scores = read_scores(good[0])
    path = tmp_path / "s.parquet"
    write_scores(scores.head(100), path)
    with pytest.raises(DataError, match=r"100 rows but .* has 25000"):
        check_scores(path, test_split)
    swapped = pl.concat([scores.slice(0, 3), scores.slice(4, 1), scores.slice(3, 1), scores.slice(5)])
    write_scores(swapped, path)
    with pytest.raises(DataError, match=r"row 3: impression_id \d+ but the behaviors file has \d+"):
        check_scores(path, test_split)
    short = scores[S.SCORES].to_list()
    short[8] = short[8][:-1]
    write_scores(scores_frame(scores[S.IMPRESSION_ID], scores[S.USER_ID], pl.Series(short)), path)
    with pytest.raises(DataError, match=r"row 8: \d+ scores for \d+ in-view articles"):
        write_submission(path, test_split, tmp_path / "never.zip")
    assert not (tmp_path / "never.zip").exists()  # nothing half-written
