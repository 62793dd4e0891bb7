"""Check a contest zip against its split before uploading it.

Checks, stopping at the first problem with its line number (1-based):
the zip holds exactly ``predictions.txt``; each line reads
``impression_id [r1,...,rn]`` with no spaces in the brackets and ends in
``\n`` (Windows CRLF endings are named as such); impression ids
follow the behaviors order; n equals the in-view length; the ranks are a
permutation of 1..n; the line count equals the number of behaviors rows.

``predictions.txt`` is streamed in blocks of whole lines and parsed with
polars string expressions and numpy, never one line at a time in Python.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from recsys24.data import schema as S
from recsys24.data.split import Split
from recsys24.errors import DataError
from recsys24.evaluation.scores import BATCH_ROWS, aligned_batches, read_batches
from recsys24.submission import PREDICTIONS

BLOCK_BYTES = 32 << 20
LINE = "line"
LINE_PATTERN = r"^[0-9]+ \[[0-9]+(,[0-9]+)*\]\n$"


def _line_blocks(stream: BinaryIO, where: str) -> Iterator[tuple[int, pl.DataFrame]]:
    """(first line index, DataFrame of whole lines, each ending in '\\n')."""
    rest = b""
    first = 0
    while True:
        data = stream.read(BLOCK_BYTES)
        if not data:
            block, rest = rest, b""
            if block and not block.endswith(b"\n"):
                block += b"\n"  # a missing final newline is fine
        else:
            data = rest + data
            cut = data.rfind(b"\n") + 1
            block, rest = data[:cut], data[cut:]
        if not block:
            if not data:
                return
            continue
        raw = np.frombuffer(block, dtype=np.uint8)
        ends = np.flatnonzero(raw == 10) + 1
        if raw.max() >= 128:
            at = int(np.flatnonzero(raw >= 128)[0])
            line = first + int(np.searchsorted(ends, at, side="right")) + 1
            raise DataError(f"{where} line {line}: non-ASCII byte")
        offsets = np.concatenate([[0], ends]).astype(np.int32)
        arr = pa.StringArray.from_buffers(ends.size, pa.py_buffer(offsets), pa.py_buffer(block))
        yield first, pl.DataFrame({LINE: pl.Series(LINE, arr)})
        first += ends.size


def _check_block(lines: pl.DataFrame, beh: pl.DataFrame, where: str, first: int) -> None:
    text = lines[LINE]
    ok = text.str.contains(LINE_PATTERN).to_numpy()
    if not ok.all():
        r = int(np.flatnonzero(~ok)[0])
        bad = text[r].rstrip("\n")
        inside = bad[bad.find("[") :] if "[" in bad else ""
        if bad.endswith("\r"):  # the pattern's '$' sits before '\n', so '\r' shows up here
            why = "Windows line endings (CRLF); each line must end in '\\n' only"
        elif " " in inside:
            why = "spaces inside the brackets"
        else:
            why = "expected 'impression_id [r1,...,rn]' with no spaces in the brackets"
        raise DataError(f"{where} line {first + r + 1}: {why}: {bad[:80]!r}")
    # The pattern matched, so each line is exactly "<digits> [<digits>,...]\n".
    head_tail = text.str.strip_chars_end("\n").str.split_exact(" ", 1).struct
    parts = pl.DataFrame({
        "id": head_tail.field("field_0").cast(pl.UInt64, strict=False),
        "ranks": head_tail.field("field_1").str.strip_chars("[]").str.split(",")
        .cast(pl.List(pl.UInt32), strict=False),
    })
    ids = parts["id"].to_numpy()
    want = beh[S.IMPRESSION_ID].to_numpy().astype(np.uint64)
    bad = np.flatnonzero(parts["id"].is_null().to_numpy() | (ids != want))
    if bad.size:
        r = int(bad[0])
        raise DataError(
            f"{where} line {first + r + 1}: impression_id {text[r].split(' ')[0]}, expected "
            f"{want[r]} (lines must follow the behaviors order)"
        )
    arr = parts["ranks"].rechunk().to_arrow()
    r_off = np.asarray(arr.offsets, dtype=np.int64)
    r_off = r_off - r_off[0]
    ranks = pc.fill_null(arr.flatten(), 0).to_numpy().astype(np.int64)  # unparsable: 0
    n_ranks = np.diff(r_off)
    n_inview = beh[S.INVIEW].list.len().to_numpy()
    bad = np.flatnonzero(n_ranks != n_inview)
    if bad.size:
        r = int(bad[0])
        raise DataError(
            f"{where} line {first + r + 1}: {n_ranks[r]} ranks for {n_inview[r]} in-view articles"
        )
    # n ranks are a permutation of 1..n iff each is in 1..n and every slot
    # (line start + rank - 1) is hit: n values cannot fill n slots otherwise.
    start = np.repeat(r_off[:-1], n_ranks)
    ok = (ranks >= 1) & (ranks <= np.repeat(n_ranks, n_ranks))
    seen = np.zeros(ranks.size, dtype=bool)
    seen[(start + ranks - 1)[ok]] = True
    ok &= seen
    if not ok.all():
        r = int(np.searchsorted(r_off, np.argmin(ok), side="right") - 1)
        raise DataError(
            f"{where} line {first + r + 1}: ranks are not a permutation of 1..{n_ranks[r]}"
        )


def validate_submission(zip_path: str | Path, split: Split, batch_rows: int = BATCH_ROWS) -> int:
    """Check a contest zip against ``split``; return its number of lines or raise DataError."""
    zip_path = Path(zip_path)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as err:
        raise DataError(f"{zip_path}: not a readable zip file ({err})") from None
    with zf:
        names = zf.namelist()
        if names != [PREDICTIONS]:
            raise DataError(
                f"{zip_path}: must hold exactly '{PREDICTIONS}', holds {', '.join(names) or 'nothing'}"
            )
        where = f"{zip_path}:{PREDICTIONS}"
        lines = 0
        with zf.open(PREDICTIONS) as stream:
            seen = 0  # lines read from the file so far, checked or not

            def counted(blocks):
                nonlocal seen
                for first, text in blocks:
                    seen += text.height
                    yield first, text

            blocks = counted(_line_blocks(stream, where))
            behaviors = read_batches(split.behaviors, [S.IMPRESSION_ID, S.INVIEW], batch_rows)
            for first, text, beh in aligned_batches(blocks, behaviors):
                _check_block(text, beh, where, first)
                lines += text.height
            for _ in blocks:  # count any lines beyond the last behaviors row
                pass
            if seen != split.num_rows:
                raise DataError(
                    f"{where}: {seen} lines but {split.behaviors} has {split.num_rows} rows "
                    f"(line {min(seen, split.num_rows) + 1} is the first "
                    f"{'extra' if seen > split.num_rows else 'missing'} one)"
                )
    return lines
