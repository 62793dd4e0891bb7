"""``recsys24 prepare``: validate an EB-NeRD split and write it as prepared shards.

The behaviors file is streamed in batches (memory does not grow with the split):
each batch is checked, joined with the user's last T history articles, given
click labels aligned to the in-view order, and written as one impressions shard;
for train, each click also becomes a training pair with K not-clicked articles
of the same impression. Everything goes to a temporary folder that is renamed
into place after ``manifest.json`` is written, so a killed run leaves nothing
that looks finished and is simply redone. Rerunning on unchanged input with the
same parameters does nothing.

History problems do not stop a run unless ``strict``: users of the behaviors
file with no row in history.parquet (they get an empty history) and users
whose history has times after one of their impressions are counted over the
whole file and reported as one warning line (``manifest["warnings"]``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from recsys24 import __version__
from recsys24.data import schema as S
from recsys24.data.columns import list_series, list_values
from recsys24.data.prepared import MANIFEST, Prepared
from recsys24.data.split import (
    Split,
    UnknownArticles,
    check_behaviors_batch,
    iter_batches,
    known_article_table,
    open_split,
)
from recsys24.errors import DataError
from recsys24.fingerprints import fingerprint
from recsys24.io import FolderPlan, atomic_path

FORMAT_VERSION = 1
LAST_READ = "_last_history_time"  # the user's latest history time, for the time check only


def load_history(split: Split, history_size: int, unknown: UnknownArticles) -> pl.DataFrame:
    """One row per user with their last ``history_size`` articles and times, oldest first.

    EB-NeRD history lists are in time order, so the latest T are the list tail.
    Column ``_last_history_time`` is the latest time of the whole list, for
    :class:`HistoryCheck`.

    >>> # user_id | article_id_fixed [1, 2, 3, 4] -> history_article_ids [3, 4] for T=2
    """
    parts = []
    cols = [S.USER_ID, S.HIST_ARTICLE, S.HIST_TIME]
    for _, df in iter_batches(split.history, cols, batch_rows=200_000):
        unknown.add(list_values(df[S.HIST_ARTICLE]))
        parts.append(
            df.select(
                pl.col(S.USER_ID),
                pl.col(S.HIST_ARTICLE).list.tail(history_size).alias(S.HISTORY_IDS),
                pl.col(S.HIST_TIME).list.tail(history_size).alias(S.HISTORY_TIMES),
                pl.col(S.HIST_TIME).list.max().alias(LAST_READ),
            )
        )
    unknown.raise_if_any(split.history, S.HIST_ARTICLE)
    history = pl.concat(parts, rechunk=True) if parts else pl.DataFrame(
        schema={S.USER_ID: pl.UInt32, S.HISTORY_IDS: pl.List(pl.Int32), S.HISTORY_TIMES: pl.List(S.DT),
                LAST_READ: S.DT}
    )
    dup = history[S.USER_ID].is_duplicated()
    if dup.any():
        user = history.filter(dup)[S.USER_ID][0]
        raise DataError(f"{split.history}: column '{S.USER_ID}' has user {user} more than once")
    return history


class HistoryCheck:
    """Counts, over a whole behaviors file, the impressions whose user's history is missing or too late.

    ``add`` takes each batch of impressions joined with the history (before
    missing histories are filled with empty lists); :meth:`warning` words the
    totals as one line, or returns None when there is nothing to report.
    """

    def __init__(self) -> None:
        self.missing: list[np.ndarray] = []  # user ids, one entry per impression
        self.late: list[np.ndarray] = []

    def add(self, joined: pl.DataFrame) -> None:
        users = joined[S.USER_ID]
        self.missing.append(users.filter(joined[S.HISTORY_IDS].is_null()).to_numpy())
        # History is read before the impression window; a later time is data from the window itself.
        late = (joined[LAST_READ] > joined[S.IMPRESSION_TIME]).fill_null(False)
        self.late.append(users.filter(late).to_numpy())

    def warning(self, split: Split) -> str | None:
        parts = []
        for ids, what in ((self.missing, "have no row in it and get an empty history"),
                          (self.late, "have history times after their first impression")):
            ids = np.concatenate(ids) if ids else np.empty(0, np.uint32)
            if ids.size:
                users = np.unique(ids)
                parts.append(f"{users.size:,} users of {split.behaviors.name} ({ids.size:,} impressions, "
                             f"e.g. user {int(users[0])}) {what}")
        return f"{split.history}: " + "; ".join(parts) if parts else None


def input_warnings(split: Split) -> list[str]:
    """What ``prepare`` says of a split, as warning lines, for a command that still uses the split as it is
    (``recsys24 features``): in-view article ids unknown to articles.parquet (which prepare refuses), users
    without history and history times after an impression (which prepare warns of). Streams both files.
    """
    warnings = []
    unknown = UnknownArticles(known_article_table(split.articles))
    last = pl.scan_parquet(split.history).select(
        S.USER_ID, pl.col(S.HIST_TIME).list.max().alias(LAST_READ), pl.lit([0]).alias(S.HISTORY_IDS)).collect()
    check = HistoryCheck()
    for _, df in iter_batches(split.behaviors, [S.USER_ID, S.IMPRESSION_TIME, S.INVIEW]):
        unknown.add(list_values(df[S.INVIEW]))
        check.add(df.join(last, on=S.USER_ID, how="left"))
    if unknown.count:
        warnings.append(f"{split.behaviors}: column '{S.INVIEW}' has {unknown.count:,} article ids unknown to "
                        f"articles.parquet (first: {', '.join(map(str, unknown.examples))}); their article "
                        "features are missing (NaN)")
    history = check.warning(split)
    return warnings + ([history] if history else [])


def click_labels(inview: pl.Series, clicked: pl.Series) -> pl.Series:
    """list[i8]: 1/0 per in-view article (in in-view order): was it in the clicked list?

    Prepare writes it into the prepared impressions; ``recsys24 evaluate`` and
    the ranker read the same labels straight from a behaviors file.

    >>> click_labels(pl.Series([[5, 7, 9]]), pl.Series([[9]])).to_list()
    [[0, 0, 1]]
    """
    n_in = inview.list.len().to_numpy().astype(np.int64)
    n_cl = clicked.list.len().fill_null(0).to_numpy().astype(np.int64)
    rows = np.arange(inview.len(), dtype=np.int64)
    key_in = np.repeat(rows, n_in) << 32 | (list_values(inview).astype(np.int64) & 0xFFFFFFFF)
    key_cl = np.repeat(rows, n_cl) << 32 | (list_values(clicked).astype(np.int64) & 0xFFFFFFFF)
    labels = np.isin(key_in, key_cl).astype(np.int8)
    offsets = np.concatenate([[0], np.cumsum(n_in)])
    return list_series(S.LABELS, labels, offsets, pl.Int8)


def training_pairs(impressions: pl.DataFrame, npratio: int, rng: np.random.Generator) -> pl.DataFrame:
    """Each click with ``npratio`` not-clicked articles of the same impression.

    Negatives are drawn without replacement when the impression has at least
    ``npratio`` of them, else cycled through a random permutation (as the
    official toolkit samples with replacement then). Impressions whose every
    in-view article was clicked give no pairs.
    """
    inview = list_values(impressions[S.INVIEW])
    labels = list_values(impressions[S.LABELS]).astype(bool)
    n = impressions[S.INVIEW].list.len().to_numpy().astype(np.int64)
    imp = np.repeat(np.arange(n.size), n)
    n_neg = np.bincount(imp[~labels], minlength=n.size)
    pos_imp, positives = imp[labels], inview[labels]
    keep = n_neg[pos_imp] > 0
    pos_imp, positives = pos_imp[keep], positives[keep]
    # Random permutation of each impression's negatives, one per pair.
    negs = inview[~labels]
    neg_start = np.concatenate([[0], np.cumsum(n_neg)[:-1]])
    pair_n = n_neg[pos_imp]
    pair = np.repeat(np.arange(pos_imp.size), pair_n)
    src = neg_start[pos_imp].repeat(pair_n) + (np.arange(pair.size) - np.repeat(np.cumsum(pair_n) - pair_n, pair_n))
    order = np.lexsort((rng.random(pair.size), pair))
    perm = negs[src[order]]
    perm_start = np.cumsum(pair_n) - pair_n
    take = perm_start[:, None] + (np.arange(npratio)[None, :] % pair_n[:, None])
    negatives = perm[take.ravel()].astype(np.int32)
    offsets = np.arange(pos_imp.size + 1) * npratio
    base = impressions.select(
        S.ROW, S.IMPRESSION_ID, S.USER_ID, S.IMPRESSION_TIME, S.HISTORY_IDS, S.HISTORY_TIMES
    )[pos_imp]
    return base.with_columns(
        pl.Series(S.POSITIVE, positives.astype(np.int32)),
        list_series(S.NEGATIVES, negatives, offsets, pl.Int32),
    ).select(list(S.PREPARED_PAIRS_SCHEMA))


def _fingerprints(split: Split) -> dict:
    return {p.name if p == split.articles else f"{split.name}/{p.name}": fingerprint(p)
            for p in (split.articles, split.behaviors, split.history)}


def _up_to_date(out: Path, params: dict, files: dict) -> bool:
    """Whether ``out`` holds this split prepared from these files with these options, every shard intact
    (a folder of other inputs is prepared again: it is written whole, never mixed)."""
    manifest = FolderPlan(out, MANIFEST)
    if manifest.differing({"params": params, "source.files": files}):
        return False
    try:
        Prepared(out, manifest.read()).check_shards()
    except DataError:
        return False  # a shard damaged since: write the split again
    return True


@dataclass(frozen=True)
class PrepareResult:
    """What :func:`prepare` did: the prepared split, and whether it was up to date (nothing written)."""

    prepared: Prepared
    skipped: bool = False


def prepare(
    data_dir: str | Path,
    split: str,
    out: str | Path,
    history_size: int = 20,
    npratio: int = 4,
    seed: int = 0,
    batch_rows: int = 1_000_000,
    progress=None,
    strict: bool = False,
) -> PrepareResult:
    """Validate ``split`` of ``data_dir`` and write the prepared split to ``out``.

    Returns the prepared split (``skipped``: ``out`` was up to date); its
    ``warnings`` list history problems as one line. ``strict``: raise
    DataError on them instead, and write nothing. ``progress(rows_done,
    rows_total)`` is called once the history is loaded and after each batch, if given.
    """
    t0 = time.perf_counter()
    sp = open_split(data_dir, split)
    out = Path(out)
    params = {"split": split, "history_size": history_size, "npratio": npratio, "seed": seed}
    files = _fingerprints(sp)
    if _up_to_date(out, params, files):
        prepared = Prepared(out, json.loads((out / MANIFEST).read_text()))
        if strict and prepared.warnings:
            raise DataError(f"{prepared.warnings[0]} (refused by --strict)")
        return PrepareResult(prepared, skipped=True)

    known = known_article_table(sp.articles)
    history = load_history(sp, history_size, UnknownArticles(known))
    unknown = UnknownArticles(known)
    history_check = HistoryCheck()
    cols = [c for c in S.behaviors_schema(split) if c in (
        S.IMPRESSION_ID, S.USER_ID, S.IMPRESSION_TIME, S.INVIEW, S.CLICKED, S.IS_BEYOND_ACCURACY)]
    shards = {"impressions": [], "pairs": []}
    with atomic_path(out) as tmp:
        (tmp / "impressions").mkdir(parents=True)
        if sp.has_clicks:
            (tmp / "pairs").mkdir()
        pl.read_parquet(sp.articles, columns=list(S.PREPARED_ARTICLE_COLUMNS)).write_parquet(
            tmp / "articles.parquet", compression="zstd"
        )
        if progress:
            progress(0, sp.num_rows)
        for i, (row0, df) in enumerate(iter_batches(sp.behaviors, cols, batch_rows)):
            check_behaviors_batch(df, sp.behaviors, row0, unknown, sp.has_clicks)
            imps = _impressions_batch(df, row0, history, sp.has_clicks, history_check)
            name = f"part-{i:05d}.parquet"
            imps.write_parquet(tmp / "impressions" / name, compression="zstd")
            shards["impressions"].append({"file": f"impressions/{name}", "rows": imps.height, "first_row": row0})
            if sp.has_clicks:
                pairs = training_pairs(imps, npratio, np.random.default_rng([seed, i]))
                pairs.write_parquet(tmp / "pairs" / name, compression="zstd")
                shards["pairs"].append({"file": f"pairs/{name}", "rows": pairs.height, "first_row": None})
            if progress:
                progress(row0 + df.height, sp.num_rows)
        unknown.raise_if_any(sp.behaviors, S.INVIEW)
        warning = history_check.warning(sp)
        if warning and strict:
            raise DataError(f"{warning} (refused by --strict)")
        manifest = {
            "format": FORMAT_VERSION,
            "recsys24_version": __version__,
            "split": split,
            "num_impressions": sum(s["rows"] for s in shards["impressions"]),
            "num_pairs": sum(s["rows"] for s in shards["pairs"]),
            "num_users_with_history": history.height,
            "params": params,
            "source": {"data_dir": str(Path(data_dir).resolve()), "files": files},
            "shards": shards,
            "warnings": [warning] if warning else [],
            "seconds": round(time.perf_counter() - t0, 1),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return PrepareResult(Prepared(out, manifest))


def _impressions_batch(
    df: pl.DataFrame, row0: int, history: pl.DataFrame, has_clicks: bool, check: HistoryCheck
) -> pl.DataFrame:
    df = df.with_columns(pl.int_range(row0, row0 + df.height, dtype=pl.UInt64).alias(S.ROW))
    if has_clicks:
        df = df.with_columns(click_labels(df[S.INVIEW], df[S.CLICKED]))
    else:
        df = df.with_columns(pl.lit(None, dtype=pl.List(pl.Int8)).alias(S.LABELS))
    if S.IS_BEYOND_ACCURACY not in df.columns:
        df = df.with_columns(pl.lit(False).alias(S.IS_BEYOND_ACCURACY))
    df = df.join(history, on=S.USER_ID, how="left", maintain_order="left")
    check.add(df)
    return df.with_columns(
        pl.col(S.HISTORY_IDS).fill_null(pl.lit([], dtype=pl.List(pl.Int32))),
        pl.col(S.HISTORY_TIMES).fill_null(pl.lit([], dtype=pl.List(S.DT))),
    ).select([pl.col(c).cast(t) for c, t in S.PREPARED_IMPRESSIONS_SCHEMA.items()])
