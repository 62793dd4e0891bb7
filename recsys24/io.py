"""Atomic writes, so a killed job never leaves a half-written file behind.

Everything that writes a result goes through :func:`atomic_path`: it writes to a
temporary name in the same folder and renames it into place at the end. The
temporary name records its writer (``.NAME.tmp-<host>-<pid>-<random>``), so a
later run can tell the leftovers of a killed writer (removed, see
:func:`remove_stale_temps`) from the files of one still writing (kept). A disk
that refuses the write (full, read-only, no permission) becomes one
:class:`~recsys24.errors.Recsys24Error` line naming the file and the cause.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator, TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from recsys24.errors import DataError, Recsys24Error

T = TypeVar("T")

# Failures that mean "this place cannot take the file"; any other error passes through as it is.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}
# A temporary of another machine's writer (or of an unknown one) untouched this
# long has no writer left: every atomic write appends to its file as it goes.
STALE_AFTER_S = 3600

_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
_OWNER = re.compile(r"\.tmp-([0-9a-f]{6})-(\d+)-[0-9a-f]+$")


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _is_stale(tmp: Path) -> bool:
    owner = _OWNER.search(tmp.name)
    if owner is None:
        return True  # named before writers were recorded (or by hand): no run owns it now
    if owner.group(1) == _HOST:
        return not _pid_alive(int(owner.group(2)))
    try:
        return time.time() - tmp.stat().st_mtime > STALE_AFTER_S
    except FileNotFoundError:
        return False


def remove_stale_temps(folder: str | os.PathLike, name: str | None = None) -> int:
    """Remove leftover temporaries of killed atomic writes in ``folder``; return how many.

    ``name``: only those of this file name (default: every ``.*.tmp-*`` entry).
    A temporary is stale when its writer ran on this machine and is gone, when
    it has no recorded writer, or when it belongs to another machine and has not
    changed for :data:`STALE_AFTER_S` seconds. The temporaries of live writers,
    such as another shard writing into the same folder, are kept.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    pattern = f".{glob.escape(name)}.tmp-*" if name else ".*.tmp-*"
    stale = [tmp for tmp in folder.glob(pattern) if _is_stale(tmp)]
    for tmp in stale:
        _remove(tmp)
    return len(stale)


def write_failure(err: BaseException, *paths: Path) -> int | None:
    """The errno if ``err`` is a refused write to one of ``paths`` (or to an unnamed file), else None.

    Python reports these as OSError; polars wraps them as '... (os error 28)'.
    An error naming another file (an input that could not be read) is not one.
    """
    if isinstance(err, OSError):
        code, filename = err.errno, err.filename
        if code is None:  # pyarrow: OSError('... [errno 28] No space left on device')
            found = re.search(r"\[errno (\d+)\]", str(err), re.IGNORECASE)
            code = int(found.group(1)) if found else None
    else:
        found = re.search(r"os error (\d+)", str(err))
        code, filename = (int(found.group(1)) if found else None), None
    if code not in WRITE_ERRNOS:
        return None
    if filename is not None and not any(_related(str(filename), str(p)) for p in paths):
        return None
    return code


def _related(a: str, b: str) -> bool:
    """Is one path the other or inside it (a folder that could not be made, a file written)?"""
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def _not_a_folder(path: Path) -> Path | None:
    """The first ancestor of ``path`` that exists but is not a folder, if any."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    On an exception the temporary file (or folder) is removed and ``path`` is
    left as it was; a refused write (disk full, read-only file system, no
    permission) is raised as one Recsys24Error line naming ``path``. Stale
    temporaries of ``path`` left by killed writers are removed first.
    """
    path = Path(path)
    blocker = _not_a_folder(path)
    if blocker is not None:
        raise Recsys24Error(f"{path}: cannot write it ({blocker} is a file, not a folder)")
    tmp = _tmp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path.parent, path.name)
        yield tmp
        if tmp.is_dir() and path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except Exception as err:
        code = write_failure(err, path.parent, tmp, path)
        if code is None:
            raise
        raise Recsys24Error(f"{path}: cannot write it ({os.strerror(code)})") from None
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_parquet(df: pl.DataFrame, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Write ``df`` to ``path`` atomically (zstd, statistics on; ``metadata``: key-value pairs of the footer)."""
    with atomic_path(path) as tmp:
        df.write_parquet(tmp, compression="zstd", statistics=True, metadata=metadata)


def write_json(obj, path: str | os.PathLike) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")


def known_fields(cls, record: dict) -> dict:
    """The keys of a JSON ``record`` that the dataclass ``cls`` has fields for (a newer recsys24 may have
    written more)."""
    return {k: v for k, v in record.items() if k in cls.__dataclass_fields__}


class FolderPlan:
    """The plan file of an output folder (``features.json``, ``predict.json``, ``rank_predict.json``, a
    prepared split's ``manifest.json``): the inputs and options its contents were made from.

    A folder is resumed only by a run of the same inputs and options; one made
    from others is refused, never reused or mixed (:meth:`require`), and so is
    one that holds pieces but lost its plan. ``what`` and ``pieces`` name the
    contents in messages (``"scores"``, ``"scored pieces"``).
    """

    def __init__(self, folder: str | os.PathLike, name: str, what: str = "files", pieces: str = "pieces"):
        self.folder, self.name, self.what, self.pieces = Path(folder), name, what, pieces

    @property
    def path(self) -> Path:
        return self.folder / self.name

    def exists(self) -> bool:
        return self.path.is_file()

    def read(self) -> dict:
        return json.loads(self.path.read_text())

    def differing(self, want: dict, have: dict | None = None) -> list[str]:
        """The keys of ``want`` whose value the plan on disk (or ``have``) does not hold; a dotted key
        (``source.files``) looks inside a nested dict. Every key when there is no plan."""
        if have is None:
            if not self.exists():
                return list(want)
            have = self.read()
        return [key for key in want if _lookup(have, key) != want[key]]

    def check(self, want: dict, explain=None, defaults: dict | None = None) -> dict | None:
        """The plan on disk when it holds ``want`` (None when there is none yet); writes nothing.

        Raises Recsys24Error, one line, when the plan differs in a key of
        ``want`` (``explain(key, have)`` says why, default ``KEY differ``), or
        when the folder holds pieces but no plan. ``defaults``: values of keys
        that older plans did not record.
        """
        if not self.exists():
            if any((self.folder / "pieces").glob("*.parquet")):
                raise Recsys24Error(f"{self.folder}: holds {self.pieces} but no {self.name} to say which inputs "
                                    "and options made them (deleted?); use a new --out folder, or delete its "
                                    "pieces/ to make them again")
            return None
        have = (defaults or {}) | self.read()
        diff = self.differing(want, have)
        if diff:
            reasons = [explain(key, have) for key in diff] if explain else \
                [f"other inputs or options: {', '.join(diff)} differ"]
            raise Recsys24Error(f"{self.folder}: holds {self.what} of another run ({'; '.join(reasons)}); "
                                "use a new --out folder")
        return have

    def require(self, want: dict, record: dict | None = None, explain=None, defaults: dict | None = None) -> dict:
        """:meth:`check` the plan against ``want``, or write ``want | record`` as the plan when there is none;
        return the plan."""
        have = self.check(want, explain, defaults)
        if have is not None:
            return have
        plan = want | (record or {})
        write_json(plan, self.path)
        return plan


def _lookup(have: dict, key: str):
    for part in key.split("."):
        have = have.get(part) if isinstance(have, dict) else None
    return have


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


@contextlib.contextmanager
def reading(path: str | os.PathLike, remedy: str) -> Iterator[None]:
    """Turn a failed read of the parquet file ``path`` (missing, truncated, corrupt, lacking a column)
    into one DataError line naming the file and ``remedy``, the command that rebuilds it.

    >>> with reading("FEAT/pieces/rows-0-9.parquet", "rerun `recsys24 features ...`"):   # doctest: +SKIP
    ...     frame = pl.read_parquet("FEAT/pieces/rows-0-9.parquet")
    """
    try:
        yield
    except Recsys24Error:
        raise
    except (OSError, pl.exceptions.PolarsError, pa.ArrowException) as err:
        raise DataError(f"{path}: unreadable, truncated or damaged ({_first_line(err)}); {remedy}") from None


def read_parquet_checked(path: str | os.PathLike, columns=None, remedy: str = "") -> pl.DataFrame:
    """``columns`` (default: all) of a parquet file a command wrote (a piece, a shard), read through
    :func:`reading`: a damaged file is one line naming it and ``remedy``."""
    with reading(path, remedy):
        return pl.read_parquet(path, columns=list(columns) if columns is not None else None)


def parquet_rows(path: str | os.PathLike, remedy: str = "") -> int:
    """The row count of a parquet file from its footer (a truncated file has none), read through :func:`reading`."""
    with reading(path, remedy):
        return pq.read_metadata(path).num_rows


def umask_mode(folder: str | os.PathLike) -> None:
    """Give every file under ``folder`` (and the folder) the permissions the umask allows, as ``open`` would.

    Some writers (safetensors) create their files 0600 whatever the umask, so a
    model folder shared on a cluster would be unreadable to the rest of the group.
    """
    mask = os.umask(0)
    os.umask(mask)
    folder = Path(folder)
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def read_ahead(items: Iterable[T]) -> Iterator[T]:
    """The items of ``items``, each made on a worker thread while the caller works on the one before.

    For a loop that reads a piece (parquet decoding, which releases the GIL)
    and then computes on it: the next read overlaps the computation. Errors
    come out where the item would have.
    """
    iterator = iter(items)
    done = object()
    with ThreadPoolExecutor(1) as pool:
        upcoming = pool.submit(next, iterator, done)
        while (item := upcoming.result()) is not done:
            upcoming = pool.submit(next, iterator, done)
            yield item


# Row-range pieces: the resumable unit of predict and features, one file per rows LO..HI-1.
_PIECE = re.compile(r"rows-(\d+)-(\d+)\.parquet$")


def piece_path(out: Path, lo: int, hi: int) -> Path:
    return out / "pieces" / f"rows-{lo:010d}-{hi:010d}.parquet"


def existing_pieces(out: Path) -> list[tuple[int, int, Path]]:
    found = []
    for path in (out / "pieces").glob("rows-*.parquet"):
        m = _PIECE.match(path.name)
        if m:
            found.append((int(m.group(1)), int(m.group(2)), path))
    return sorted(found)


def intact_piece(path: Path, rows: int) -> bool:
    """Whether the piece ``path`` has a readable footer counting ``rows`` rows (a truncated file has none)."""
    try:
        return pq.read_metadata(path).num_rows == rows
    except (OSError, pa.ArrowException):
        return False


def iter_missing(out: Path, ranges: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    for lo, hi in ranges:
        if not piece_path(out, lo, hi).is_file():
            yield lo, hi
