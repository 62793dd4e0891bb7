"""``recsys24 features``: the feature table of a split, written in resumable pieces.

Pieces are cut by candidate count (about ``piece_candidates`` each), so the
250-candidate beyond-accuracy rows at the end of test do not make one huge
piece. The split-level tables (articles, history, one scan of the behaviors)
are built once per run; then each missing piece is computed and written
atomically. A rerun skips finished pieces; a folder made from other input
files or options is refused, never reused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from recsys24.data import schema as S
from recsys24.data.prepare import input_warnings
from recsys24.data.split import RowStream, Split, check_columns, iter_batches, open_split
from recsys24.allocator import large_blocks_by_mmap, release_freed_memory
from recsys24.errors import Recsys24Error
from recsys24.features import families as F
from recsys24.features.activity import scan_split
from recsys24.features.articles import build_article_table
from recsys24.features.folder import PIECE_CANDIDATES, FeaturePlan
from recsys24.features.groups import cut_ranges
from recsys24.features.history import build_history_table
from recsys24.fingerprints import fingerprint
from recsys24.io import atomic_path, intact_piece, iter_missing, piece_path, remove_stale_temps

# 2: seen_after; 3: other splits' history files; 4: history_per_day for history_len
FEATURES_VERSION = 4  # bump when a definition changes
STREAM_ROWS = 250_000  # behaviors rows read at once: the 250-candidate beyond-accuracy rows make big batches


def behaviors_columns(split_name: str) -> list[str]:
    """The behaviors columns features read: never the click columns or ``next_*``."""
    cols = [S.IMPRESSION_ID, S.USER_ID, S.IMPRESSION_TIME, S.INVIEW, S.DEVICE_TYPE, S.IS_SUBSCRIBER, S.IS_SSO_USER]
    return cols + ([S.IS_BEYOND_ACCURACY] if S.IS_BEYOND_ACCURACY in S.behaviors_schema(split_name) else [])


def other_histories(split: Split) -> list[Path]:
    """The history files of the other splits under the data folder (checked), in split order."""
    paths = [split.data_dir / name / "history.parquet" for name in S.SPLITS if name != split.name]
    paths = [p for p in paths if p.is_file()]
    for path in paths:
        check_columns(path, S.HISTORY_SCHEMA)
    return paths


def first_impression_us(split: Split) -> int:
    """The time of the split's earliest impression, in microseconds since the epoch."""
    first = pl.scan_parquet(split.behaviors).select(pl.col(S.IMPRESSION_TIME).dt.epoch("us").min()).collect().item()
    return int(first) if first is not None else 0


@dataclass
class FeatureBuild:
    """What one run of :func:`build_features` found and did."""

    rows: int  # behaviors rows of the split
    candidates: int  # (row, in-view candidate) pairs: rows of the feature table
    pieces: int  # pieces the split is cut into
    warnings: list[str]  # problems of the input files, one line each
    written: int = 0  # pieces this run wrote
    damaged: int = 0  # pieces found cut short or damaged, and built again
    table_seconds: float = 0.0  # building the split-level tables
    seconds: float = 0.0  # the whole run (0 when every piece was already there)


def _write_piece(frame, path: Path, rows: int) -> int:
    with atomic_path(path) as tmp:
        frame.write_parquet(tmp, compression="zstd", compression_level=1, statistics=False)
    return rows


def build_features(
    data_dir: str | Path,
    split_name: str,
    out: str | Path,
    past_only: bool = False,
    piece_candidates: int = PIECE_CANDIDATES,
    split_history: bool = False,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] = lambda msg: None,
) -> FeatureBuild:
    """Write the features of every behaviors row of ``split_name`` into ``out``; return counts and times.

    ``split_history``: the users' histories come from the split's history file
    only, not also from the other splits' files (their reads before the split).
    """
    if piece_candidates < 1:
        raise Recsys24Error(f"--piece-candidates must be at least 1, got {piece_candidates}")
    split = open_split(data_dir, split_name)
    others = [] if split_history else other_histories(split)
    out = Path(out)
    columns = behaviors_columns(split_name)
    counts = np.concatenate([b[S.INVIEW].list.len().to_numpy() for _, b in iter_batches(split.behaviors, [S.INVIEW])]
                            or [np.zeros(0, np.int64)])
    ranges = cut_ranges(counts.astype(np.int64), piece_candidates)
    want = FeaturePlan(
        str(Path(data_dir).resolve()), split_name, split.num_rows, int(counts.sum()), past_only, piece_candidates,
        split_history, FEATURES_VERSION,
        inputs={"articles.parquet": fingerprint(split.articles),
                f"{split_name}/behaviors.parquet": fingerprint(split.behaviors),
                f"{split_name}/history.parquet": fingerprint(split.history),
                **{f"{p.parent.name}/history.parquet": fingerprint(p) for p in others}})
    stats = FeatureBuild(split.num_rows, int(counts.sum()), len(ranges), input_warnings(split))
    want.check(out)  # before any work: a folder of other inputs, or pieces without a plan, is refused
    damaged = [(lo, hi) for lo, hi in ranges
               if piece_path(out, lo, hi).is_file() and not intact_piece(piece_path(out, lo, hi), counts[lo:hi].sum())]
    for lo, hi in damaged:  # cut short since it was written (a bad copy, a disk fault): built again below
        piece_path(out, lo, hi).unlink()
    stats.damaged = len(damaged)
    todo = set(iter_missing(out, ranges))
    done = sum(hi - lo for lo, hi in ranges if (lo, hi) not in todo)
    if not todo:
        return stats
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out / "pieces")  # pieces a killed run was writing
    large_blocks_by_mmap()
    t0 = time.perf_counter()
    log("building the article tables (TF-IDF and SVD of the texts)")
    articles = build_article_table(split.articles)
    log("building the user tables from the history files"
        + (f", with the earlier reads in {', '.join(p.parent.name for p in others)}" if others else ""))
    history = build_history_table(split.history, articles, others, first_impression_us(split))
    log("scanning the behaviors: in-view counts, impression gaps, repeats")
    activity = scan_split(split, articles, counts, past_only)
    stats.table_seconds = time.perf_counter() - t0
    first_row = RowStream(split.behaviors, columns, STREAM_ROWS).take(0, 1)
    first = F.Piece(first_row, 0, articles, history, activity, past_only)
    replace(want, families=F.family_names(first), history_span_days=history.span_days).write(out)
    if progress:
        progress(done, split.num_rows)
    stream = RowStream(split.behaviors, columns, STREAM_ROWS)

    def finished(write) -> None:
        nonlocal done
        done += write.result()
        stats.written += 1
        if progress:
            progress(done, split.num_rows)

    # piece i is compressed and written while piece i + 1 is computed, two families at a time
    with ThreadPoolExecutor(1) as writer, ThreadPoolExecutor(2) as pool:
        pending = None
        for lo, hi in sorted(todo):
            frame = F.piece_features(F.Piece(stream.take(lo, hi), lo, articles, history, activity, past_only), pool)
            release_freed_memory()
            if pending is not None:
                finished(pending)
            pending = writer.submit(_write_piece, frame, piece_path(out, lo, hi), hi - lo)
        if pending is not None:
            finished(pending)
    stats.seconds = time.perf_counter() - t0
    return stats
