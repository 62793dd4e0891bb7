"""Cheap identities of files and folders, so a rerun can tell its own inputs from other ones.

A results folder records the identity of every input it was made from (a scores
file's :func:`fingerprint`, a model folder's :func:`folder_fingerprint`, a plan's
:func:`file_digest`) and refuses pieces made from inputs that differ.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def fingerprint(path: str | os.PathLike) -> str:
    """A cheap identity of a file: its size and a hash of its parquet footer.

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


FULL_HASH_BYTES = 256 << 20  # a file up to this size is hashed whole (about 0.25 s at 1.1 GB/s)
SAMPLE_BYTES = 65536
SAMPLES = 16


def file_identity(path: str | os.PathLike) -> str:
    """What identifies one file of a folder for :func:`folder_fingerprint`: size, times, inode and content.

    Size, modification and status-change times (ns) and inode change whenever
    the file is written, replaced or renamed over, even when its mtime is set
    back afterwards (the status-change time cannot be set). A file up to
    :data:`FULL_HASH_BYTES` is hashed whole; a larger one (the weights of
    mt5-base, 2.3 GB: 2.1 s to hash) by :data:`SAMPLES` blocks of 64 KiB on top
    of its times and inode, which already see every write.
    """
    path = Path(path)
    st = path.stat()
    h = hashlib.sha256()
    with path.open("rb") as f:
        if st.st_size <= FULL_HASH_BYTES:
            h = hashlib.file_digest(f, "sha256")
        else:
            for i in range(SAMPLES):
                f.seek((st.st_size - SAMPLE_BYTES) * i // (SAMPLES - 1))
                h.update(f.read(SAMPLE_BYTES))
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}:{h.hexdigest()[:16]}"


def folder_fingerprint(folder: str | os.PathLike) -> str:
    """An identity of every file under ``folder`` (names and :func:`file_identity`), e.g. a model's weights.

    Any write to any file of the folder changes it (a changed tensor, weights
    retrained at the same path, a file added or removed), and so does a copy of
    the folder (new inodes): it identifies these files, not equal contents
    elsewhere. Temporaries of atomic writes are skipped.
    """
    folder = Path(folder)
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".tmp-" not in str(p.relative_to(folder))):
        h.update(f"{path.relative_to(folder).as_posix()}\0{file_identity(path)}\0".encode())
    return h.hexdigest()[:16]


def file_digest(path: str | os.PathLike) -> str:
    """A hash of a small file's whole content (e.g. a manifest)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
