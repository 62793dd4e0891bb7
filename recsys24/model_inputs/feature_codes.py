"""The feature table as a model input: one quantile code per (row, candidate) and feature.

CGh-f reads the pair features of ``recsys24 features`` (one float32 row per
behaviors row and in-view candidate). Their scales differ by orders of
magnitude (counts in the thousands, shares in 0..1, hours, nulls), so each
feature becomes a quantile bucket fitted on the train split
(:class:`FeatureEncoding`, kept in the model folder's spec): code 0 = null, 1..B =
the bucket. The model embeds each code, so the encoding is robust to outliers
and needs no scaling.

Training draws pairs from anywhere in the split, so the codes of a whole split
are written once into its features folder, named by the encoding::

    FEAT/codes-<digest>/keys.npy    int64 [N]: row << 32 | article_id, sorted
    FEAT/codes-<digest>/codes.npy   uint8 [N, F]

and memory-mapped: a batch reads only its own pairs. A model that also reads the
features as numbers (``model.feature_values``) gets ``fractions.npy`` (uint8 [N, F],
where in its bucket each value lies) beside them, from which
:meth:`FeatureEncoding.gauss` makes the rank-gauss value. N is the split's number of
candidates (≈ 180M on the full EB-NeRD train split: 1.4 GB of keys plus F
bytes per pair, 9.4 GB for all 52 features). The folder is written under a
temporary name and renamed, so a killed build leaves nothing behind, and a
model with another encoding gets its own folder.

>>> enc = FeatureEncoding(("age_hours",), np.array([[1.0, 5.0, np.inf]], np.float32), values=True)
>>> x = np.array([[0.5], [1.0], [3.0], [7.0], [np.nan]], np.float32)
>>> codes = enc.encode(x)
>>> codes.ravel().tolist()
[1, 2, 2, 3, 0]
>>> enc.gauss(codes, enc.fractions(x, codes)).ravel().astype(float).round(2).tolist()  # quantile 1/6, 1/3, ...
[-0.96, -0.43, 0.0, 0.97, 0.0]
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from recsys24.data import schema as S
from recsys24.data.prepared import Prepared
from recsys24.data.split import RowStream
from recsys24.errors import DataError, Recsys24Error
from recsys24.io import atomic_path
from recsys24.features.folder import FeatureSet, open_features

FIT_SAMPLE = 1_000_000  # pairs the quantiles are fitted on
FIT_PIECES = 8  # ... drawn from this many pieces of the features folder


@dataclass(frozen=True)
class FeatureEncoding:
    """names [F]; edges float32 [F, B - 1], ascending, padded with +inf (a feature with few distinct values)."""

    names: tuple[str, ...]
    edges: np.ndarray
    values: bool = False  # the model reads each feature's rank-gauss value too (fractions are stored)

    @property
    def buckets(self) -> int:
        """B: codes run 0 (null) .. B."""
        return self.edges.shape[1] + 1

    @property
    def digest(self) -> str:
        h = hashlib.sha256("\n".join(self.names).encode())
        h.update(np.ascontiguousarray(self.edges, np.float32).tobytes())
        if self.values:
            h.update(b"values")
        return h.hexdigest()[:16]

    def fractions(self, values: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """uint8 [N, F]: where each value lies between its bucket's edges (0..255); 128 in the open
        first and last buckets, and for nulls."""
        out = np.full(values.shape, 128, np.uint8)
        for j, edges in enumerate(self.edges):
            finite = edges[np.isfinite(edges)]
            if finite.size < 2:
                continue
            c = codes[:, j].astype(np.int64)
            inner = (c >= 2) & (c <= finite.size)
            lo, hi = finite[np.clip(c - 2, 0, finite.size - 1)], finite[np.clip(c - 1, 0, finite.size - 1)]
            with np.errstate(invalid="ignore", divide="ignore"):
                f = np.clip((values[:, j] - lo) / (hi - lo) * 256, 0, 255)
            out[inner, j] = f[inner].astype(np.uint8)
        return out

    def gauss(self, codes: np.ndarray, fractions: np.ndarray) -> np.ndarray:
        """float32 [N, F] rank-gauss values: the normal's inverse CDF at the value's quantile position
        in the train split (its bucket plus where in the bucket it lies); 0 for nulls."""
        from scipy.special import ndtri

        buckets = np.isfinite(self.edges).sum(axis=1) + 1  # a feature with few distinct values has fewer
        position = (codes.astype(np.float64) - 1 + (fractions.astype(np.float64) + 0.5) / 256) / buckets
        return np.where(codes == 0, 0.0, ndtri(np.clip(position, 1e-4, 1 - 1e-4))).astype(np.float32)

    def encode(self, values: np.ndarray) -> np.ndarray:
        """uint8 codes [N, F] of float32 features [N, F] (columns in ``names`` order)."""
        codes = np.empty(values.shape, np.uint8)
        for j, edges in enumerate(self.edges):  # one pass per feature, over the whole column
            codes[:, j] = np.searchsorted(edges, values[:, j], side="right") + 1
        codes[np.isnan(values)] = 0
        return codes

    @classmethod
    def fit(cls, features: FeatureSet, names: tuple[str, ...], buckets: int, seed: int = 0,
            sample: int = FIT_SAMPLE, values: bool = False) -> "FeatureEncoding":
        """Quantile edges of each feature on a seeded sample of about ``sample`` pairs of ``features``."""
        if not 2 <= buckets <= 255:
            raise Recsys24Error(f"model.feature_buckets must be in 2..255 (codes are bytes), got {buckets}")
        require_names(features, names)
        pieces = features.pieces()  # up to FIT_PIECES spread over the split, not all 45 of full EB-NeRD train
        chosen = [pieces[i] for i in np.unique(np.linspace(0, len(pieces) - 1, FIT_PIECES).round().astype(int))]
        rate = min(1.0, sample / max(sum(features.piece_rows(path) for _, _, path in chosen), 1))
        rng = np.random.default_rng(seed)
        sampled = np.concatenate([_sampled(features.read_piece(path, names), rate, rng)
                                  for _, _, path in chosen])
        edges = np.full((len(names), buckets - 1), np.inf, np.float32)
        levels = np.linspace(0, 1, buckets + 1)[1:-1]
        for j in range(len(names)):
            column = sampled[:, j][np.isfinite(sampled[:, j])]
            if column.size:
                cut = np.unique(np.quantile(column, levels).astype(np.float32))
                edges[j, :cut.size] = cut
        return cls(tuple(names), edges, values)

    @property
    def ragged_edges(self) -> tuple[tuple[float, ...], ...]:
        """Each feature's finite edges (how the model folder's spec stores them)."""
        return tuple(tuple(float(x) for x in row if np.isfinite(x)) for row in self.edges)

    @classmethod
    def from_spec(cls, spec) -> "FeatureEncoding":
        """The encoding a model folder's spec (``ModelSpec``: features, feature_buckets, feature_edges) holds."""
        return cls.from_edges(spec.features, spec.feature_buckets, spec.feature_edges, spec.feature_values)

    @classmethod
    def from_edges(cls, names: tuple[str, ...], buckets: int, edges, values: bool = False) -> "FeatureEncoding":
        padded = np.full((len(names), buckets - 1), np.inf, np.float32)
        for j, row in enumerate(edges):
            padded[j, :len(row)] = row
        return cls(tuple(names), padded, values)


def _sampled(table: pl.DataFrame, rate: float, rng: np.random.Generator) -> np.ndarray:
    return table.filter(pl.Series(rng.random(table.height) < rate)).to_numpy().astype(np.float32)


def require_names(features: FeatureSet, names: tuple[str, ...]) -> None:
    """Refuse a features folder that lacks one of ``names`` (e.g. made with ``--past-only``)."""
    missing = [n for n in names if n not in features.names]
    if missing:
        raise Recsys24Error(f"{features.path}: has no feature {', '.join(missing[:3])}"
                            f"{' ...' if len(missing) > 3 else ''} (the model was trained on features "
                            f"{'with' if features.plan.past_only else 'without'} --past-only? make them again "
                            "with the options of the training features)")


def require_same_split(features: FeatureSet, prepared: Prepared) -> None:
    """Refuse features made from another split, or from other behaviors than ``prepared`` was made from."""
    key = f"{prepared.split}/behaviors.parquet"
    ours = features.plan.input_fingerprint(f"{features.split_name}/behaviors.parquet")
    theirs = prepared.source_files.get(key)
    if features.split_name != prepared.split or ours != theirs:
        raise Recsys24Error(
            f"{features.path}: features of the '{features.split_name}' split of {features.plan.data}, but "
            f"{prepared.path} is the '{prepared.split}' split of {prepared.source_dir}"
            f" (make its features: `recsys24 features --data DATA --split {prepared.split} --out FEAT`)")


class FeatureCodes:
    """The codes of one split under one encoding, looked up by (row, article id)."""

    def __init__(self, folder: Path, features: FeatureSet, encoding: FeatureEncoding | None = None):
        self.folder, self.features, self.encoding = folder, features, encoding
        self.keys = np.load(folder / "keys.npy", mmap_mode="r")
        self.codes = np.load(folder / "codes.npy", mmap_mode="r")
        values = encoding is not None and encoding.values
        self.fractions = np.load(folder / "fractions.npy", mmap_mode="r") if values else None

    def _at(self, rows: np.ndarray, article_ids: np.ndarray) -> np.ndarray:
        wanted = (rows.astype(np.int64) << 32) | article_ids.astype(np.int64)
        at = np.minimum(np.searchsorted(self.keys, wanted), len(self.keys) - 1)
        found = self.keys[at] == wanted
        if not found.all():
            i = int(np.flatnonzero(~found)[0])
            raise DataError(f"{self.features.path}: no features for row {rows[i]}, article {article_ids[i]} "
                            f"(features of another split, or of other behaviors?)")
        return at

    def lookup(self, rows: np.ndarray, article_ids: np.ndarray) -> np.ndarray:
        """uint8 codes [N, F] of the pairs (rows[i], article_ids[i])."""
        return np.asarray(self.codes[self._at(rows, article_ids)])

    def lookup_values(self, rows: np.ndarray, article_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The codes and (an encoding with ``values``) the float32 rank-gauss values [N, F] of the pairs."""
        at = self._at(rows, article_ids)
        codes = np.asarray(self.codes[at])
        if self.fractions is None:
            return codes, None
        return codes, self.encoding.gauss(codes, np.asarray(self.fractions[at]))


def feature_codes(features: FeatureSet, encoding: FeatureEncoding,
                  log: Callable[[str], None] = lambda message: None) -> FeatureCodes:
    """The codes of ``features`` under ``encoding``, written into the features folder the first time."""
    folder = features.path / f"codes-{encoding.digest}"
    if not (folder / "codes.npy").is_file():
        require_names(features, encoding.names)
        log(f"coding {features.plan.num_candidates:,} pairs for the model ({len(encoding.names)} features, "
            f"{encoding.buckets} buckets) in {features.path}")
        _write_codes(features, encoding, folder)
    return FeatureCodes(folder, features, encoding)


def _write_codes(features: FeatureSet, encoding: FeatureEncoding, folder: Path) -> None:
    total = features.plan.num_candidates
    inview = RowStream(features.split().behaviors, [S.INVIEW])
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        keys = np.lib.format.open_memmap(tmp / "keys.npy", "w+", np.int64, (total,))
        codes = np.lib.format.open_memmap(tmp / "codes.npy", "w+", np.uint8, (total, len(encoding.names)))
        fractions = (np.lib.format.open_memmap(tmp / "fractions.npy", "w+", np.uint8, (total, len(encoding.names)))
                     if encoding.values else None)
        at = 0
        for lo, hi, path in features.pieces():
            piece = features.read_piece(path, [S.ROW, *encoding.names])
            articles = inview.take(lo, hi)[S.INVIEW].explode().drop_nulls().to_numpy().astype(np.int64)
            if len(articles) != piece.height:
                raise DataError(f"{path}: {piece.height} pairs, but rows {lo}..{hi - 1} of the behaviors have "
                                f"{len(articles)} in-view articles (the behaviors changed since?)")
            k = (piece[S.ROW].to_numpy().astype(np.int64) << 32) | articles
            order = np.argsort(k, kind="stable")
            keys[at:at + len(k)] = k[order]
            values = piece.select(encoding.names).to_numpy().astype(np.float32)
            piece_codes = encoding.encode(values)
            codes[at:at + len(k)] = piece_codes[order]
            if fractions is not None:
                fractions[at:at + len(k)] = encoding.fractions(values, piece_codes)[order]
            at += len(k)
        if at != total:
            raise DataError(f"{features.path}: pieces hold {at} pairs, the plan says {total}")
        for array in (keys, codes, fractions):
            if array is not None:
                array.flush()
        del keys, codes, fractions


def open_model_features(path: str | Path, prepared: Prepared) -> FeatureSet:
    """The features folder ``path``, checked to be of the same split and behaviors as ``prepared``."""
    features = open_features(path)
    require_same_split(features, prepared)
    features.pieces()  # refuses an unfinished folder now, not in the middle of a run
    return features
