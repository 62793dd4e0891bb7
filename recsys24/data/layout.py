"""The official two-folder download as the one raw EB-NeRD folder every command takes as ``--data``.

EB-NeRD comes as two downloads, each with its own articles.parquet::

    ebnerd_large/articles.parquet               (or ebnerd_small/, ebnerd_demo/)
    ebnerd_large/{train,validation}/{behaviors,history}.parquet
    ebnerd_testset/articles.parquet
    ebnerd_testset/test/{behaviors,history}.parquet

:func:`link_layout` makes ``OUT`` look like one download::

    OUT/train -> /abs/ebnerd_large/train          symbolic links, nothing copied
    OUT/validation -> /abs/ebnerd_large/validation
    OUT/test -> /abs/ebnerd_testset/test
    OUT/articles.parquet                          both downloads' articles, one row per article_id
    OUT/layout.json                               the sources, their articles' fingerprints, the links

so ``recsys24 prepare|features|baseline --data OUT`` read it as they read a
single folder, and ``features`` finds every split's history file beside the
split it builds (:func:`recsys24.features.build.other_histories`).

:func:`write_official` does the opposite for ``recsys24 synth --layout official``:
it moves a synthetic single folder into the two downloads' shape, so tests run
on what a user unpacks.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from recsys24.data import schema as S
from recsys24.data.split import check_columns
from recsys24.errors import DataError, Recsys24Error
from recsys24.fingerprints import fingerprint
from recsys24.io import atomic_path, write_json

LAYOUT_FILE = "layout.json"
TESTSET = "ebnerd_testset"


def _download(folder: str | Path, option: str) -> tuple[Path, list[str]]:
    """The absolute path of a download and the splits it holds; refuses one that is not a download."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder ({option}: an unpacked EB-NeRD download)")
    articles = folder / "articles.parquet"
    if not articles.is_file():
        raise DataError(f"{folder}: not an EB-NeRD download, no articles.parquet ({option})")
    check_columns(articles, S.ARTICLES_SCHEMA)
    return folder.resolve(), [s for s in S.SPLITS if (folder / s).is_dir()]


def union_articles(data_articles: Path, testset_articles: Path) -> pl.DataFrame:
    """Both downloads' articles, one row per ``article_id``, sorted by id; the testset's row wins on a shared id.

    The test split must be scored against exactly the rows the organisers
    shipped with it, so those win. Every split then reads one snapshot of an
    article: the article-level features (``total_inviews``, ``total_pageviews``,
    ... in :mod:`recsys24.features.articles`) mean the same in the train rows a
    ranker learns from and the test rows it scores. Where the two downloads
    disagree on an id, train and validation see the testset's later totals;
    ``--drop article`` leaves that family out of a ranker if that matters.

    >>> a = pl.DataFrame({"article_id": [1, 2], "title": ["old", "two"]})
    >>> t = pl.DataFrame({"article_id": [1, 3], "title": ["new", "three"]})
    >>> union = pl.concat([t, a], how="diagonal_relaxed").unique("article_id", keep="first").sort("article_id")
    >>> union.rows()
    [(1, 'new'), (2, 'two'), (3, 'three')]
    """
    frames = [pl.read_parquet(testset_articles), pl.read_parquet(data_articles)]
    try:
        both = pl.concat(frames, how="diagonal_relaxed")
    except pl.exceptions.PolarsError as err:
        raise DataError(f"{data_articles} and {testset_articles}: columns do not combine "
                        f"({str(err).strip().splitlines()[0]})") from None
    return both.unique(S.ARTICLE_ID, keep="first", maintain_order=True).sort(S.ARTICLE_ID)


def _check_out(out: Path, links: dict[str, Path]) -> None:
    """Refuse an ``out`` that is something else than this layout (other links, a real folder, files)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise Recsys24Error(f"{out}: not a folder (--out: the folder to write the layout into)")
    if not (out / LAYOUT_FILE).is_file() and any(out.iterdir()):
        raise Recsys24Error(f"{out}: not empty and not written by `recsys24 layout` (no {LAYOUT_FILE}); "
                            "give a new folder")
    for split in S.SPLITS:
        entry = out / split
        if entry.is_symlink():
            if split not in links or Path(os.readlink(entry)) != links[split]:
                raise Recsys24Error(f"{out}: links {split}/ to {os.readlink(entry)}, not to these inputs; "
                                    "give a new --out or remove it")
        elif entry.exists():
            raise Recsys24Error(f"{entry}: a real folder, not a link of `recsys24 layout`; give a new --out")


def _link(target: Path, link: Path) -> None:
    """Point ``link`` at ``target``, replacing an older link in one rename."""
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    tmp = link.with_name(f".{link.name}.link-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp, target_is_directory=True)
    os.replace(tmp, link)


def _read_layout(out: Path) -> dict:
    try:
        return json.loads((out / LAYOUT_FILE).read_text())
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: written again


@dataclass(frozen=True)
class LinkedLayout:
    """What :func:`link_layout` made of ``out``."""

    splits: dict[str, str]  # split -> the download folder its link points into
    articles: int  # rows of OUT/articles.parquet
    written: bool  # False: both downloads' articles were unchanged since the last run, the file was kept


def link_layout(data: str | Path, testset: str | Path, out: str | Path) -> LinkedLayout:
    """Link the splits of the ``data`` and ``testset`` downloads into ``out`` with one articles.parquet.

    Returns the splits linked, the articles' rows and whether articles.parquet was
    written: it is not when the articles of both inputs are unchanged since the last
    run into ``out`` (then only missing links are made). Refused, in one line naming the
    path: a missing input folder or articles.parquet, a wrong articles schema, a split
    in both downloads, no test split, an ``out`` holding anything else.
    """
    out = Path(out)
    data_dir, data_splits = _download(data, "--data")
    test_dir, test_splits = _download(testset, "--testset")
    if data_dir == test_dir:
        raise DataError(f"{data}: given as both --data and --testset")
    both = sorted(set(data_splits) & set(test_splits), key=S.SPLITS.index)
    if both:
        raise DataError(f"{both[0]}/ is in both {data_dir} and {test_dir}; each split must come from one download")
    if "test" not in data_splits + test_splits:
        raise DataError(f"{test_dir}: has no test/ folder (--testset: the unpacked ebnerd_testset/, "
                        "holding test/behaviors.parquet and test/history.parquet)")
    links = {s: (data_dir if s in data_splits else test_dir) / s for s in S.SPLITS if s in data_splits + test_splits}
    _check_out(out, links)
    sources = {"data": str(data_dir), "testset": str(test_dir),
               "articles": {str(p): fingerprint(p) for p in (data_dir / "articles.parquet",
                                                            test_dir / "articles.parquet")}}
    previous = _read_layout(out)
    written = previous.get("sources") != sources or not (out / "articles.parquet").is_file()
    if written:
        articles = union_articles(data_dir / "articles.parquet", test_dir / "articles.parquet")
        with atomic_path(out / "articles.parquet") as tmp:
            articles.write_parquet(tmp, compression="zstd", statistics=True)
        rows = articles.height
    else:
        rows = previous["articles"]
    for split, target in links.items():
        _link(target, out / split)
    write_json({"sources": sources, "splits": {s: str(t) for s, t in links.items()}, "articles": rows},
               out / LAYOUT_FILE)
    return LinkedLayout({s: str(t.parent) for s, t in links.items()}, rows, written)


def write_official(flat: Path, out: Path, name: str, test_start: datetime) -> tuple[Path, Path]:
    """Move the synthetic single folder ``flat`` into the official downloads under ``out``; return both.

    ``out/ebnerd_<name>/`` gets train/, validation/ and the articles published
    before ``test_start`` (that download was cut before the test week);
    ``out/ebnerd_testset/`` gets test/ and every article, so its articles overlap
    the other download's and add the test week's. Everything else of ``flat``
    (synth_truth/, synth.json) moves to ``out``, where ``synth`` writes it in the
    single-folder layout; ``flat`` is removed.
    """
    data_dir, test_dir = out / f"ebnerd_{name}", out / TESTSET
    articles = pl.read_parquet(flat / "articles.parquet")
    for folder, rows in ((data_dir, articles.filter(pl.col(S.PUBLISHED_TIME) < test_start)), (test_dir, articles)):
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "articles.parquet") as tmp:
            rows.write_parquet(tmp, compression="zstd", statistics=True)
    (flat / "articles.parquet").unlink()
    for entry in flat.iterdir():
        dest = (test_dir if entry.name == "test" else data_dir if entry.name in S.SPLITS else out) / entry.name
        if dest.is_dir():
            shutil.rmtree(dest)
        os.replace(entry, dest)
    flat.rmdir()
    return data_dir, test_dir
