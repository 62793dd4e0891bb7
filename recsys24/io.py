"""Atomic writes, so a killed job never leaves a half-written file behind.

Everything that writes a result goes through :func:`atomic_path`: it writes to a
temporary name in the same folder and renames it into place at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

import polars as pl


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    On an exception the temporary file (or folder) is removed and ``path`` is
    left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        if tmp.is_dir() and path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_parquet(df: pl.DataFrame, path: str | os.PathLike) -> None:
    """Write ``df`` to ``path`` atomically (zstd, statistics on)."""
    with atomic_path(path) as tmp:
        df.write_parquet(tmp, compression="zstd", statistics=True)


def write_json(obj, path: str | os.PathLike) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")


def fingerprint(path: str | os.PathLike) -> str:
    """A cheap identity of a file: size, mtime and a hash of its parquet footer.

    Reading the last 64 KiB (the parquet footer holds row counts and column
    statistics) changes whenever the content does, without reading gigabytes.
    """
    path = Path(path)
    st = path.stat()
    h = hashlib.sha256()
    with path.open("rb") as f:
        f.seek(max(0, st.st_size - 65536))
        h.update(f.read())
    return f"{st.st_size}-{h.hexdigest()[:16]}"
