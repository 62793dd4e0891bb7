"""Read a prepared split (the output of ``recsys24 prepare``).

Layout::

    PREP/manifest.json              written last; a folder without it is refused
    PREP/articles.parquet           schema.PREPARED_ARTICLE_COLUMNS
    PREP/impressions/part-NNNNN.parquet   schema.PREPARED_IMPRESSIONS_SCHEMA, file order
    PREP/pairs/part-NNNNN.parquet         schema.PREPARED_PAIRS_SCHEMA (train only)

Impression shards hold every behaviors row exactly once, in file order; column
``row`` is the 0-based position in the behaviors file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import polars as pl
import pyarrow.parquet as pq

from recsys24.errors import DataError
from recsys24.io import parquet_rows, read_parquet_checked, reading

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Shard:
    """One parquet file of a prepared split: its path, its first row in the behaviors file (None for
    pairs, which are not in row order) and its row count, as the manifest records them."""

    path: Path
    first_row: int | None
    rows: int

    @property
    def end_row(self) -> int:
        """One past the last behaviors row the shard holds (impression shards)."""
        return self.first_row + self.rows


@dataclass(frozen=True)
class Prepared:
    """A prepared split on disk and its manifest."""

    path: Path
    manifest: dict

    @property
    def split(self) -> str:
        return self.manifest["split"]

    @property
    def num_impressions(self) -> int:
        return self.manifest["num_impressions"]

    @property
    def num_pairs(self) -> int:
        return self.manifest.get("num_pairs", 0)

    @property
    def source_files(self) -> dict[str, str]:
        """The fingerprint of each EB-NeRD file the split was prepared from (``validation/behaviors.parquet``)."""
        return self.manifest.get("source", {}).get("files", {})

    @property
    def seconds(self) -> float | None:
        """How long ``recsys24 prepare`` took to write the split."""
        return self.manifest.get("seconds")

    @property
    def warnings(self) -> list[str]:
        """History problems found while preparing, one line each."""
        return self.manifest.get("warnings", [])

    def shards(self, kind: str = "impressions") -> list[Shard]:
        """The ``impressions`` shards (in row order) or the ``pairs`` shards, as the manifest lists them."""
        return [Shard(self.path / s["file"], s.get("first_row"), s["rows"])
                for s in self.manifest["shards"].get(kind, [])]

    @property
    def history_size(self) -> int:
        return self.manifest["params"]["history_size"]

    def require_history(self, wanted: int, asker: str) -> None:
        """Refuse a model that reads more history items per user than this split was prepared with.

        A model asking for 50 items of a split prepared with 20 would silently
        see 20: the split must be prepared again, or the model ask for fewer.
        asker: who asks, for the message (``prompt.history_size``).
        """
        if wanted <= self.history_size:
            return
        raise DataError(f"{self.path}: prepared with {self.history_size} history items per user, but {asker} asks "
                        f"for {wanted}; prepare it again with `{self.prepare_command(wanted)}`")

    def prepare_command(self, history_size: int | None = None) -> str:
        """The ``recsys24 prepare`` command that writes this folder again (with the same pairs)."""
        params = self.manifest["params"]
        command = (f"recsys24 prepare --data {self.source_dir} --split {self.split} --out {self.path} "
                   f"--history-size {history_size or self.history_size}")
        return command + "".join(f" --{key} {params[key]}" for key, default in (("npratio", 4), ("seed", 0))
                                 if params.get(key, default) != default)

    @property
    def remedy(self) -> str:
        return f"run `{self.prepare_command()}` to write the prepared split again"

    def check_shards(self) -> None:
        """Refuse a shard that is missing, truncated or of another length than the manifest says (reads
        only the footers), naming it and the command that writes the split again."""
        for kind in ("impressions", "pairs"):
            for shard in self.shards(kind):
                rows = parquet_rows(shard.path, self.remedy)
                if rows != shard.rows:
                    raise DataError(f"{shard.path}: {rows:,} rows, but {MANIFEST} says {shard.rows:,}; {self.remedy}")

    def read_shard(self, path: Path, columns: list[str] | None = None) -> pl.DataFrame:
        """A whole shard of this split, read through the checked reader."""
        return read_parquet_checked(path, columns, self.remedy)

    @property
    def source_dir(self) -> Path | None:
        """The EB-NeRD data folder this split was prepared from (None: not recorded)."""
        found = self.manifest.get("source", {}).get("data_dir")
        return None if found is None else Path(found)

    def shard_paths(self, kind: str = "impressions") -> list[Path]:
        """Paths of the ``impressions`` or ``pairs`` shards, in order."""
        return [shard.path for shard in self.shards(kind)]

    def articles(self) -> pl.DataFrame:
        return pl.read_parquet(self.path / "articles.parquet")

    def iter_impressions(
        self, columns: list[str] | None = None, batch_rows: int = 65536
    ) -> Iterator[pl.DataFrame]:
        """Stream impressions in file order, ``batch_rows`` at a time."""
        yield from _iter(self.shard_paths("impressions"), columns, batch_rows, self.remedy)

    def iter_pairs(
        self, columns: list[str] | None = None, batch_rows: int = 65536
    ) -> Iterator[pl.DataFrame]:
        """Stream training pairs (train split only) in shard order."""
        yield from _iter(self.shard_paths("pairs"), columns, batch_rows, self.remedy)

    def impressions(self, columns: list[str] | None = None) -> pl.DataFrame:
        """All impressions in one frame (small splits and tests only)."""
        return pl.concat(list(self.iter_impressions(columns)), rechunk=True)


def _iter(paths: list[Path], columns, batch_rows: int, remedy: str) -> Iterator[pl.DataFrame]:
    for path in paths:
        with reading(path, remedy):  # the consumer's own errors do not pass through here
            for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=columns):
                yield pl.from_arrow(batch)


PREPARED_WANTED = "expected a prepared split: the folder `recsys24 prepare --out` writes"


def is_raw_folder(path: Path) -> bool:
    """True when ``path`` looks like an EB-NeRD folder (articles.parquet, SPLIT/behaviors.parquet), not prepared."""
    return (path / "articles.parquet").is_file() and not (path / MANIFEST).is_file() and any(
        (path / split / "behaviors.parquet").is_file() for split in ("train", "validation", "test"))


def raw_folder_hint(path: Path, split: str = "SPLIT") -> str:
    """What to do with an EB-NeRD folder given where a prepared split is wanted."""
    return (f"{path}: is a raw EB-NeRD folder, not a prepared split; run `recsys24 prepare --data {path} "
            f"--split {split} --out PREP` and give PREP")


def prepared_identity(path: str | Path) -> dict | None:
    """What a prepared split holds, whatever its path: its manifest's inputs and options, not its timing or
    its folder (None: ``path`` is not a prepared split)."""
    manifest = Path(path) / MANIFEST
    if not manifest.is_file():
        return None
    found = {k: v for k, v in json.loads(manifest.read_text()).items()
             if k in ("format", "split", "params", "source", "num_impressions")}
    found["source"] = {"files": found.get("source", {}).get("files")}  # not the folder's path
    return found


def open_prepared(path: str | Path) -> Prepared:
    """Open a prepared split; refuse a folder without a manifest (unfinished run), saying what it is instead."""
    path = Path(path)
    manifest = path / MANIFEST
    if not manifest.is_file():
        if not path.is_dir():
            raise DataError(f"{path}: no such folder ({PREPARED_WANTED})")
        if is_raw_folder(path):
            raise DataError(raw_folder_hint(path))
        if is_raw_folder(path.parent):  # DATA/<split> of an EB-NeRD folder
            raise DataError(raw_folder_hint(path.parent, path.name))
        raise DataError(
            f"{path}: not a prepared split (no {MANIFEST}; run `recsys24 prepare` "
            "or let an interrupted one finish)"
        )
    prepared = Prepared(path, json.loads(manifest.read_text()))
    prepared.check_shards()
    return prepared
