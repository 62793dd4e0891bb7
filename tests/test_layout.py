"""The official two-folder download (ebnerd_<size>/ beside ebnerd_testset/) joined by `recsys24 layout`."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from tests.test_messages import error_line


@pytest.fixture(scope="module")
def official(tmp_path_factory) -> Path:
    """`recsys24 synth --preset tiny --layout official`: OUT/ebnerd_tiny/ and OUT/ebnerd_testset/. Read-only."""
    from click.testing import CliRunner

    from recsys24.cli import main

    out = tmp_path_factory.mktemp("official")
    done = CliRunner().invoke(main, ["synth", str(out), "--preset", "tiny", "--layout", "official"])
    assert done.exit_code == 0, done.output
    return out


def test_synth_writes_the_two_downloads_as_unpacked(official):
    files = sorted(str(p.relative_to(official)) for p in official.rglob("*.parquet"))
    assert [f for f in files if f.startswith("ebnerd_")] == [
        "ebnerd_testset/articles.parquet", "ebnerd_testset/test/behaviors.parquet",
        "ebnerd_testset/test/history.parquet", "ebnerd_tiny/articles.parquet",
        "ebnerd_tiny/train/behaviors.parquet", "ebnerd_tiny/train/history.parquet",
        "ebnerd_tiny/validation/behaviors.parquet", "ebnerd_tiny/validation/history.parquet"]
    assert (official / "synth_truth" / "test.parquet").is_file()  # where the single layout has it
    small = pl.read_parquet(official / "ebnerd_tiny" / "articles.parquet")["article_id"]
    test = pl.read_parquet(official / "ebnerd_testset" / "articles.parquet")["article_id"]
    # the train download's articles are the ones published before the test week: a strict subset
    assert set(small) < set(test) and small.len() > 0


def test_layout_links_the_splits_and_unites_the_articles_the_testset_winning(official, cli, tmp_path):
    data, testset = Path(shutil.copytree(official / "ebnerd_tiny", tmp_path / "small")), official / "ebnerd_testset"
    articles = pl.read_parquet(data / "articles.parquet")
    shared = articles["article_id"][0]
    articles.with_columns(pl.when(pl.col("article_id") == shared).then(pl.lit("older title"))
                          .otherwise(pl.col("title")).alias("title")).write_parquet(data / "articles.parquet")
    out = tmp_path / "data"
    assert cli("layout", "--data", data, "--testset", testset, "--out", out).exit_code == 0
    assert {p.name: p.resolve() for p in out.iterdir() if p.is_symlink()} == {
        "train": data / "train", "validation": data / "validation", "test": testset / "test"}
    union = pl.read_parquet(out / "articles.parquet")
    expected = pl.read_parquet(testset / "articles.parquet")
    assert union.equals(expected.sort("article_id"))  # every id once; the shared id's row is the testset's
    assert union.filter(pl.col("article_id") == shared)["title"][0] != "older title"

    stamp = (out / "articles.parquet").stat().st_mtime_ns
    done = cli("layout", "--data", data, "--testset", testset, "--out", out)
    assert done.exit_code == 0 and "unchanged" in done.output
    assert (out / "articles.parquet").stat().st_mtime_ns == stamp  # a rerun leaves prepare's inputs alone

    other = Path(shutil.copytree(data, tmp_path / "other"))
    line = error_line(cli("layout", "--data", other, "--testset", testset, "--out", out))
    assert line == (f"error: {out}: links train/ to {data / 'train'}, not to these inputs; "
                    "give a new --out or remove it")


def test_bad_downloads_are_refused_in_one_line_naming_the_path(official, cli, tmp_path):
    data, testset = official / "ebnerd_tiny", official / "ebnerd_testset"
    out = tmp_path / "out"
    missing = tmp_path / "ebnerd_large"
    assert error_line(cli("layout", "--data", missing, "--testset", testset, "--out", out)) == (
        f"error: {missing}: no such folder (--data: an unpacked EB-NeRD download)")
    bare = tmp_path / "bare"
    (bare / "test").mkdir(parents=True)
    assert error_line(cli("layout", "--data", data, "--testset", bare, "--out", out)) == (
        f"error: {bare}: not an EB-NeRD download, no articles.parquet (--testset)")
    wrong = Path(shutil.copytree(testset, tmp_path / "wrong"))
    pl.read_parquet(testset / "articles.parquet").with_columns(pl.col("article_id").cast(pl.Int64)).write_parquet(
        wrong / "articles.parquet")
    assert error_line(cli("layout", "--data", data, "--testset", wrong, "--out", out)) == (
        f"error: {wrong / 'articles.parquet'}: column 'article_id' has dtype Int64, expected Int32")
    assert error_line(cli("layout", "--data", data, "--testset", data, "--out", out)) == (
        f"error: {data}: given as both --data and --testset")
    no_test = Path(shutil.copytree(data, tmp_path / "no_test"))
    shutil.rmtree(no_test / "train")
    assert error_line(cli("layout", "--data", data, "--testset", no_test, "--out", out)) == (
        f"error: validation/ is in both {data} and {no_test}; each split must come from one download")
    shutil.rmtree(no_test / "validation")
    assert error_line(cli("layout", "--data", data, "--testset", no_test, "--out", out)).startswith(
        f"error: {no_test}: has no test/ folder (--testset: the unpacked ebnerd_testset/")
    assert not out.exists()
    assert error_line(cli("layout", "--data", data, "--testset", testset, "--out", data)).startswith(
        f"error: {data}: not empty and not written by `recsys24 layout`")
