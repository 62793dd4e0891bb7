"""Each class of bad input gives one clear line (file, column, row) and writes nothing."""

from __future__ import annotations

import polars as pl
import pytest

from recsys24.data import schema as S


def _rewrite(path, fn):
    df = fn(pl.read_parquet(path))
    df.write_parquet(path)


def _set_row(col, row, value, dtype):
    return lambda df: df.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value, dtype=dtype)).otherwise(pl.col(col)).alias(col)
    )


def _unknown_ids_at_row_3(df):
    df = _set_row(S.INVIEW, 3, [7, 8, 9, 10, 11], pl.List(pl.Int32))(df)
    return _set_row(S.CLICKED, 3, [7], pl.List(pl.Int32))(df)


CASES = {
    "missing file": (
        lambda d: (d / "train" / "history.parquet").unlink(),
        ["history.parquet", "missing file"],
    ),
    "missing column": (
        lambda d: _rewrite(d / "train" / "behaviors.parquet", lambda df: df.drop(S.USER_ID)),
        ["behaviors.parquet", "missing column 'user_id'"],
    ),
    "wrong dtype": (
        lambda d: _rewrite(d / "articles.parquet", lambda df: df.with_columns(pl.col(S.CATEGORY).cast(pl.Int64))),
        ["articles.parquet", "'category'", "Int64", "expected Int16"],
    ),
    "empty in-view list": (
        lambda d: _rewrite(d / "train" / "behaviors.parquet", _set_row(S.INVIEW, 17, [], pl.List(pl.Int32))),
        ["behaviors.parquet", "'article_ids_inview' is empty at row 17"],
    ),
    "click outside in-view": (
        lambda d: _rewrite(d / "train" / "behaviors.parquet", _set_row(S.CLICKED, 5, [1], pl.List(pl.Int32))),
        ["behaviors.parquet", "'article_ids_clicked' at row 5", "not in 'article_ids_inview'"],
    ),
    "unknown article ids": (
        lambda d: _rewrite(d / "train" / "behaviors.parquet", _unknown_ids_at_row_3),
        ["behaviors.parquet", "'article_ids_inview'", "5 article ids unknown", "first: 7, 8, 9, 10, 11"],
    ),
    "null impression time": (
        lambda d: _rewrite(d / "train" / "behaviors.parquet", _set_row(S.IMPRESSION_TIME, 9, None, S.DT)),
        ["behaviors.parquet", "'impression_time' is null at row 9"],
    ),
    "corrupted parquet": (
        lambda d: (d / "train" / "behaviors.parquet").write_bytes(
            (d / "train" / "behaviors.parquet").read_bytes()[:5000]),
        ["behaviors.parquet", "unreadable or corrupted parquet"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_with_one_line_and_writes_nothing(case, data_copy, tmp_path, cli):
    damage, expected = CASES[case]
    damage(data_copy)
    out = tmp_path / "prep"
    result = cli("prepare", "--data", data_copy, "--split", "train", "--out", out)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output  # one line, never wrapped; progress lines may come before it
    message = errors[0]
    for part in expected:
        assert part in message, (part, message)
    assert not out.exists()
    assert not list(tmp_path.glob(".prep.tmp-*"))


def test_extra_columns_are_fine(data_copy, tmp_path, cli):
    _rewrite(data_copy / "train" / "behaviors.parquet", lambda df: df.with_columns(pl.lit(1).alias("my_feature")))
    result = cli("prepare", "--data", data_copy, "--split", "train", "--out", tmp_path / "prep")
    assert result.exit_code == 0, result.output
