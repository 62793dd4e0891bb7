"""The scores file: one row per behaviors row, in the same order.

Every scorer (baselines, models) writes one; evaluation and the submission
writer read it. Columns (``schema.SCORES_SCHEMA``)::

    impression_id u32   copied from behaviors (0 on beyond-accuracy rows)
    user_id       u32   copied from behaviors
    scores        list[f32]  one score per article of article_ids_inview, in
                        in-view order; higher = more likely clicked

:func:`iter_checked` streams a scores file beside its split's behaviors file
and stops at the first row that does not match, with a one-line error.

Its parquet metadata carries its :class:`Provenance` (key ``recsys24.provenance``):
the split it scores and the splits its scorer learned from, each by the content
fingerprint of its behaviors file, so a copy of the file, or scores of a copy
of the data folder, still say where they come from (the ranker refuses to stack
scores on the split their model trained on).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from recsys24.data import schema as S
from recsys24.data.columns import flat_lists
from recsys24.data.prepared import Prepared
from recsys24.data.split import Split, check_columns
from recsys24.errors import DataError
from recsys24.fingerprints import fingerprint
from recsys24.io import atomic_path, write_parquet

BATCH_ROWS = 1_000_000
PROVENANCE_KEY = "recsys24.provenance"


@dataclass(frozen=True)
class SplitData:
    """One split of one dataset: its name and its behaviors file's content fingerprint
    (:func:`recsys24.fingerprints.fingerprint`: size and footer hash, the same for a copy anywhere).

    >>> SplitData("train", "58213-9f1c2ab4d0e6f7a1").to_dict()
    {'split': 'train', 'behaviors': '58213-9f1c2ab4d0e6f7a1'}
    """

    split: str
    behaviors: str

    @classmethod
    def of_split(cls, split: Split) -> "SplitData":
        return cls(split.name, fingerprint(split.behaviors))

    @classmethod
    def of_prepared(cls, prepared: Prepared) -> "SplitData":
        """From the fingerprints ``recsys24 prepare`` recorded of its input files."""
        return cls(prepared.split, prepared.source_files[f"{prepared.split}/behaviors.parquet"])

    def to_dict(self) -> dict:
        return {"split": self.split, "behaviors": self.behaviors}

    @classmethod
    def from_dict(cls, d: dict) -> "SplitData":
        return cls(str(d["split"]), str(d["behaviors"]))


@dataclass(frozen=True)
class Provenance:
    """Where a scores file comes from, written into its parquet metadata.

    scores: the split it scores (None: not known); scorer: what scored it, in
    words (``model /runs/cgh/model``, ``baseline popular``); trained_on: the
    splits the scorer learned from (empty for a heuristic; None when the model
    folder does not say).
    """

    scores: SplitData | None
    scorer: str
    trained_on: tuple[SplitData, ...] | None = ()

    def to_json(self) -> str:
        return json.dumps({"scores": self.scores and self.scores.to_dict(), "scorer": self.scorer, "trained_on":
                           None if self.trained_on is None else [t.to_dict() for t in self.trained_on]})

    @classmethod
    def from_json(cls, text: str) -> "Provenance":
        d = json.loads(text)
        trained = d.get("trained_on")
        return cls(d.get("scores") and SplitData.from_dict(d["scores"]), str(d.get("scorer", "?")),
                   None if trained is None else tuple(SplitData.from_dict(t) for t in trained))


def read_provenance(path: str | Path) -> Provenance | None:
    """The :class:`Provenance` in a scores file's metadata; None for a file without one (an older recsys24
    or another tool wrote it). The file must be readable parquet (see ``check_columns``)."""
    found = (pq.read_metadata(path).metadata or {}).get(PROVENANCE_KEY.encode())
    if found is None:
        return None
    try:
        return Provenance.from_json(found.decode())
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path}: its {PROVENANCE_KEY} metadata is damaged ({err})") from None


def scores_frame(impression_ids, user_ids, scores: pl.Series) -> pl.DataFrame:
    """A scores DataFrame with the exact dtypes of ``SCORES_SCHEMA``."""
    return pl.DataFrame(
        {
            S.IMPRESSION_ID: pl.Series(impression_ids).cast(pl.UInt32),
            S.USER_ID: pl.Series(user_ids).cast(pl.UInt32),
            S.SCORES: scores.cast(pl.List(pl.Float32)),
        }
    )


def write_scores(df: pl.DataFrame, path: str | Path, provenance: Provenance | None = None) -> None:
    """Write a scores DataFrame atomically after checking its columns and dtypes."""
    for col, dtype in S.SCORES_SCHEMA.items():
        if col not in df.columns:
            raise DataError(f"{path}: scores frame lacks column '{col}'")
        if df.schema[col] != dtype:
            raise DataError(f"{path}: column '{col}' has dtype {df.schema[col]}, expected {dtype}")
    write_parquet(df.select(list(S.SCORES_SCHEMA)), path,
                  {PROVENANCE_KEY: provenance.to_json()} if provenance is not None else None)


class ScoresWriter:
    """Write a scores file batch by batch (one row group each), atomically, with its provenance.

    >>> with ScoresWriter(path, Provenance(SplitData.of_split(split), "baseline random")) as w:  # doctest: +SKIP
    ...     for batch in batches:
    ...         w.write(scores_frame(ids, users, scores))
    """

    def __init__(self, path: str | Path, provenance: Provenance | None = None):
        self.path = Path(path)
        self.provenance = provenance
        self.rows = 0

    def __enter__(self) -> "ScoresWriter":
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        arrow_schema = pl.DataFrame(schema=S.SCORES_SCHEMA).to_arrow().schema
        if self.provenance is not None:
            arrow_schema = arrow_schema.with_metadata({PROVENANCE_KEY: self.provenance.to_json()})
        try:
            self._writer = pq.ParquetWriter(tmp, arrow_schema, compression="zstd")
        except Exception as err:
            self._fail(err)
        self._schema = arrow_schema
        return self

    def write(self, df: pl.DataFrame) -> None:
        for col, dtype in S.SCORES_SCHEMA.items():
            if df.schema.get(col) != dtype:
                raise DataError(f"{self.path}: column '{col}' is {df.schema.get(col)}, expected {dtype}")
        self._writer.write_table(df.select(list(S.SCORES_SCHEMA)).to_arrow().cast(self._schema))
        self.rows += df.height

    def __exit__(self, *exc) -> bool:
        try:
            self._writer.close()  # flushes the last row group: a full disk may show only here
        except Exception as err:
            if exc[0] is None:
                self._fail(err)
            # else: the body's own error is the one to report
        return self._atomic.__exit__(*exc)

    def _fail(self, err: Exception):
        """Let atomic_path remove the temporary and word a refused write; else re-raise ``err``."""
        self._atomic.__exit__(type(err), err, err.__traceback__)
        raise err


def read_scores(path: str | Path) -> pl.DataFrame:
    """Read a whole scores file (check its columns first). Prefer :func:`iter_checked` on big files."""
    check_columns(Path(path), S.SCORES_SCHEMA)
    return pl.read_parquet(path, columns=list(S.SCORES_SCHEMA))


def aligned_batches(
    left: Iterator[tuple[int, pl.DataFrame]], right: Iterator[tuple[int, pl.DataFrame]]
) -> Iterator[tuple[int, pl.DataFrame, pl.DataFrame]]:
    """Pair two streams of row batches so each pair covers the same rows.

    Parquet batches end at row-group boundaries, which differ between files;
    this re-slices them. Stops when either stream ends.
    """
    lbuf: pl.DataFrame | None = None
    rbuf: pl.DataFrame | None = None
    offset = 0
    while True:
        if lbuf is None or lbuf.height == 0:
            lbuf = next(left, (0, None))[1]
        if rbuf is None or rbuf.height == 0:
            rbuf = next(right, (0, None))[1]
        if lbuf is None or rbuf is None:
            return
        n = min(lbuf.height, rbuf.height)
        yield offset, lbuf.slice(0, n), rbuf.slice(0, n)
        offset += n
        lbuf, rbuf = lbuf.slice(n), rbuf.slice(n)


def read_batches(
    path: Path, columns: Sequence[str], batch_rows: int = BATCH_ROWS
) -> Iterator[tuple[int, pl.DataFrame]]:
    """Like ``split.iter_batches`` (``(first row, DataFrame)``), but reads whole
    row groups of up to ``2 * batch_rows`` rows at once: pyarrow decodes those
    about twice as fast as through ``iter_batches``. Larger row groups are still
    streamed in ``batch_rows`` pieces, so memory stays bounded.
    """
    try:
        pf = pq.ParquetFile(path)
        offset = 0
        for i in range(pf.metadata.num_row_groups):
            if pf.metadata.row_group(i).num_rows <= 2 * batch_rows:
                tables = [pf.read_row_group(i, columns=list(columns))]
            else:
                tables = (pa.Table.from_batches([b]) for b in
                          pf.iter_batches(batch_size=batch_rows, row_groups=[i], columns=list(columns)))
            for table in tables:
                df = pl.from_arrow(table, rechunk=False)
                yield offset, df
                offset += df.height
    except (OSError, pa.ArrowException) as err:
        raise DataError(f"{path}: unreadable or corrupted parquet ({err})") from None


def _first(mask: np.ndarray) -> int | None:
    idx = np.flatnonzero(mask)
    return None if idx.size == 0 else int(idx[0])


def check_batch(scores: pl.DataFrame, behaviors: pl.DataFrame, path: Path, row_offset: int) -> None:
    """Raise DataError at the first row whose ids, list length or values are wrong."""
    for col in (S.IMPRESSION_ID, S.USER_ID):
        got = scores[col].to_numpy()
        want = behaviors[col].to_numpy()
        r = _first(got != want)
        if r is not None:
            raise DataError(
                f"{path}: row {row_offset + r}: {col} {got[r]} but the behaviors file has "
                f"{want[r]} (scores rows must follow the behaviors order)"
            )
    n_scores = scores[S.SCORES].list.len().fill_null(-1).to_numpy()
    n_inview = behaviors[S.INVIEW].list.len().to_numpy()
    r = _first(n_scores != n_inview)
    if r is not None:
        got = "null" if n_scores[r] < 0 else n_scores[r]
        raise DataError(
            f"{path}: row {row_offset + r}: {got} scores for {n_inview[r]} in-view articles"
        )
    values, offsets = flat_lists(scores[S.SCORES])  # null scores come out as NaN
    i = _first(~np.isfinite(values))
    if i is not None:
        r = int(np.searchsorted(offsets, i, side="right") - 1)
        raise DataError(f"{path}: row {row_offset + r}: a score is NaN, infinite or null")


def iter_checked(
    scores_path: str | Path,
    split: Split,
    behaviors_columns: Sequence[str] = (S.INVIEW,),
    batch_rows: int = BATCH_ROWS,
    extra: tuple[Path, Sequence[str]] | None = None,
) -> Iterator[tuple[int, pl.DataFrame, pl.DataFrame]]:
    """Stream (row offset, scores batch, behaviors batch), checking each batch.

    ``extra`` = (path, columns): a parquet file with one row per behaviors row
    (e.g. a truth-labels file) whose columns are appended to the behaviors batch.

    Raises DataError with one line on a wrong row count, a row whose
    impression_id/user_id differ from the behaviors file (order), or a score
    list whose length differs from the in-view list (row numbers are 0-based).
    """
    scores_path = Path(scores_path)
    check_columns(scores_path, S.SCORES_SCHEMA)
    n = pq.ParquetFile(scores_path).metadata.num_rows
    if n != split.num_rows:
        raise DataError(
            f"{scores_path}: {n} rows but {split.behaviors} has {split.num_rows} "
            f"(one scores row per behaviors row, same order)"
        )
    cols = list(dict.fromkeys([S.IMPRESSION_ID, S.USER_ID, S.INVIEW, *behaviors_columns]))
    behaviors = read_batches(split.behaviors, cols, batch_rows)
    if extra is not None:
        extra_path, extra_cols = Path(extra[0]), list(extra[1])
        n_extra = pq.ParquetFile(extra_path).metadata.num_rows
        if n_extra != split.num_rows:
            raise DataError(f"{extra_path}: {n_extra} rows but {split.behaviors} has {split.num_rows}")
        behaviors = (
            (o, b.hstack(e))
            for o, b, e in aligned_batches(behaviors, read_batches(extra_path, extra_cols, batch_rows))
        )
    pairs = aligned_batches(read_batches(scores_path, list(S.SCORES_SCHEMA), batch_rows), behaviors)
    for offset, sc, beh in pairs:
        check_batch(sc, beh, scores_path, offset)
        yield offset, sc, beh


def check_scores(scores_path: str | Path, split: Split) -> int:
    """Check a whole scores file against ``split``; return its number of rows."""
    rows = 0
    for _, sc, _ in iter_checked(scores_path, split, behaviors_columns=()):
        rows += sc.height
    return rows
