"""Beyond-accuracy metrics of the top-k recommendations on the 250-candidate rows.

The test split's beyond-accuracy rows (``is_beyond_accuracy``) share one list of
250 candidates; each belongs to a real user with history. For every such row
the top ``k`` (default 5) candidates by score are the user's recommendations
(ties: earlier in-view position first). Train and validation have no such rows:
there the regular impressions with at least ``k`` in-view articles stand in
(their top ``k`` of the in-view list; ``recsys24 report`` uses this). Following
``ebrec.evaluation``:

- ``intralist_diversity``: mean cosine distance over pairs of recommended items;
- ``serendipity``: mean cosine distance between recommended and history items;
- ``novelty``: mean ``-log2 p(item)``, ``p`` = share of the split's impressions
  showing the item in view (add-one smoothed);
- ``coverage_count`` / ``coverage_fraction``: distinct recommended items, and
  their share of the distinct candidates;
- ``category`` / ``sentiment_label`` / ``topics``: share of recommended items per
  value; ``sentiment_score``: mean over recommended items.

All averages are over the ranked rows, then items; ``impressions`` counts
those rows and ``users`` the distinct users among them. Cosine distances use an
:class:`ArticleVectors` table; the default, :func:`title_vectors`, hashes the
lower-cased words of each title into ``dim`` signed buckets (CRC32, stable
across runs and library versions) and L2-normalises: cheap, no model, and
articles sharing title words come out close. Pass any other table (e.g. model
embeddings) to measure with it. Because the vectors are unit length, the mean
pairwise cosine of a set is computed from its sum vector, with no pairwise matrix.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from recsys24.data import schema as S
from recsys24.data.columns import flat_lists, sorted_rows
from recsys24.data.split import Split, iter_batches
from recsys24.errors import DataError
from recsys24.evaluation.ranking import descending_order, list_ids
from recsys24.evaluation.scores import iter_checked


@dataclass(frozen=True)
class ArticleVectors:
    """``matrix[i]`` is the unit-length (or zero) vector of article ``ids[i]``; ids sorted."""

    ids: np.ndarray
    matrix: np.ndarray

    def rows(self, article_ids: np.ndarray) -> np.ndarray:
        """Row index of each article id (-1 when the table lacks it)."""
        at, found = sorted_rows(self.ids, article_ids)
        return np.where(found, at, -1)

    def of(self, article_ids: np.ndarray) -> np.ndarray:
        """Vectors of ``article_ids`` (zero for unknown ids)."""
        rows = self.rows(article_ids)
        out = self.matrix[np.maximum(rows, 0)].copy()
        out[rows < 0] = 0
        return out


def title_vectors(articles_path: str | Path, dim: int = 256) -> ArticleVectors:
    """Hashed bag of title words, signed, L2-normalised (see module doc)."""
    df = pl.read_parquet(articles_path, columns=[S.ARTICLE_ID, S.TITLE]).sort(S.ARTICLE_ID)
    words = df[S.TITLE].fill_null("").str.to_lowercase().str.extract_all(r"\w+")
    tokens, offsets = flat_lists(words)
    article, _ = list_ids(offsets)
    vocab, inverse = np.unique(tokens.astype(str), return_inverse=True)
    # one CRC32 per distinct word (the vocabulary, not the corpus)
    h = np.array([zlib.crc32(w.encode()) for w in vocab], dtype=np.uint32)[inverse]
    bucket = (h % dim).astype(np.int64)
    sign = np.where((h >> 31) & 1, -1.0, 1.0)
    matrix = np.bincount(article * dim + bucket, weights=sign, minlength=df.height * dim)
    matrix = matrix.reshape(df.height, dim).astype(np.float32)
    norm = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = np.divide(matrix, norm, out=np.zeros_like(matrix), where=norm > 0)
    return ArticleVectors(df[S.ARTICLE_ID].to_numpy().astype(np.int64), matrix)


def _sums(rec: np.ndarray, vectors: ArticleVectors, chunk: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Per user: the sum of the recommended vectors, and the sum of their squared norms."""
    total = np.zeros((rec.shape[0], vectors.matrix.shape[1]), dtype=np.float32)
    squares = np.zeros(rec.shape[0])
    for lo in range(0, rec.shape[0], chunk):  # (chunk, k, dim) at a time
        v = vectors.of(rec[lo : lo + chunk].ravel()).reshape(-1, rec.shape[1], total.shape[1])
        total[lo : lo + chunk] = v.sum(axis=1)
        squares[lo : lo + chunk] = (v.astype(np.float64) ** 2).sum(axis=(1, 2))
    return total, squares


def beyond_accuracy(
    scores_path: str | Path,
    split: Split,
    vectors: ArticleVectors | None = None,
    k: int = 5,
) -> dict:
    """Beyond-accuracy metrics of a scores file on the split's 250-candidate rows
    (test), or on its regular rows with at least ``k`` in-view articles (train,
    validation: see the module doc)."""
    on_test = split.name == "test"
    vectors = vectors if vectors is not None else title_vectors(split.articles)

    recs, users, candidates = [], [], []
    shown = np.zeros(0)  # in-view count per article id, for novelty
    n_impressions = 0
    for _, sc, beh in iter_checked(scores_path, split, (S.INVIEW, S.IS_BEYOND_ACCURACY) if on_test else (S.INVIEW,)):
        iv, iv_off = flat_lists(beh[S.INVIEW])
        normal = ~beh[S.IS_BEYOND_ACCURACY].to_numpy() if on_test else np.ones(beh.height, dtype=bool)
        grp, _ = list_ids(iv_off)
        counted = iv[normal[grp]].astype(np.int64)
        n_impressions += int(normal.sum())
        if counted.size:
            c = np.bincount(counted)
            if c.size > shown.size:
                c[: shown.size] += shown.astype(np.int64)
                shown = c.astype(np.float64)
            else:
                shown[: c.size] += c
        chosen = ~normal if on_test else np.diff(iv_off) >= k
        ba = beh.filter(pl.Series(chosen))
        if ba.height == 0:
            continue
        s, off = flat_lists(sc.filter(pl.Series(chosen))[S.SCORES])
        if np.diff(off).min() < k:
            raise DataError(f"{scores_path}: a beyond-accuracy row has fewer than {k} candidates")
        ids, _ = flat_lists(ba[S.INVIEW])
        order = descending_order(s, off)
        _, pos = list_ids(off)
        recs.append(ids[order[pos < k]].reshape(-1, k).astype(np.int64))
        users.append(ba[S.USER_ID].to_numpy())
        candidates.append(np.unique(ids))
    if not recs:
        raise DataError(f"{split.behaviors}: no beyond-accuracy rows" if on_test else
                        f"{split.behaviors}: no impression with {k} or more in-view articles")
    rec = np.concatenate(recs)
    user = np.concatenate(users).astype(np.int64)

    rec_sum, rec_squares = _sums(rec, vectors)
    # mean cosine over ordered pairs i != j: (|sum v|^2 - sum |v|^2) / (k (k - 1))
    within = ((rec_sum.astype(np.float64) ** 2).sum(axis=1) - rec_squares) / (k * (k - 1))
    diversity = 1.0 - within
    serendipity = 1.0 - _mean_cosine_to_history(rec_sum, k, user, split.history, vectors)

    p = (np.concatenate([shown, [0.0]])[np.minimum(rec, shown.size)] + 1.0) / (n_impressions + 1.0)
    novelty = -np.log2(p).mean(axis=1)

    recommended = np.unique(rec)
    cands = np.unique(np.concatenate(candidates))
    arts = pl.read_parquet(
        split.articles, columns=[S.ARTICLE_ID, S.CATEGORY_STR, S.SENTIMENT_LABEL, S.SENTIMENT_SCORE, S.TOPICS]
    )
    items = pl.DataFrame({S.ARTICLE_ID: rec.ravel().astype(np.int32)}).join(arts, on=S.ARTICLE_ID, how="left")

    def shares(col: str, explode: bool = False) -> dict[str, float]:
        values = items[col].explode() if explode else items[col]
        counts = values.drop_nulls().value_counts(sort=True)
        total = counts["count"].sum()
        return {str(v): c / total for v, c in counts.iter_rows()} if total else {}

    return {
        "users": int(np.unique(user).size),
        "impressions": int(rec.shape[0]),
        "k": k,
        "intralist_diversity": float(np.nanmean(diversity)),
        "serendipity": float(np.nanmean(serendipity)),
        "novelty": float(novelty.mean()),
        "coverage_count": int(recommended.size),
        "coverage_fraction": float(recommended.size / cands.size),
        "sentiment_score": float(items[S.SENTIMENT_SCORE].mean()),
        "category": shares(S.CATEGORY_STR),
        "sentiment_label": shares(S.SENTIMENT_LABEL),
        "topics": shares(S.TOPICS, explode=True),
    }


def _mean_cosine_to_history(
    rec_sum: np.ndarray, k: int, users: np.ndarray, history_path: Path, vectors: ArticleVectors
) -> np.ndarray:
    """Mean cosine between each user's recommendations and history items (NaN: no history)."""
    wanted = np.unique(users)
    hist_sum = np.zeros((wanted.size, vectors.matrix.shape[1]))
    hist_len = np.zeros(wanted.size)
    for _, hist in iter_batches(history_path, [S.USER_ID, S.HIST_ARTICLE], 200_000):
        uid = hist[S.USER_ID].to_numpy().astype(np.int64)
        at = np.minimum(np.searchsorted(wanted, uid), wanted.size - 1)
        keep = wanted[at] == uid
        if not keep.any():
            continue
        art, off = flat_lists(hist.filter(pl.Series(keep))[S.HIST_ARTICLE])
        row, _ = list_ids(off)
        cols = vectors.rows(art.astype(np.int64))
        known = cols >= 0
        # user x article incidence matrix times the vector table = per-user sums
        m = sp.csr_matrix(
            (np.ones(int(known.sum())), (row[known], cols[known])),
            shape=(off.size - 1, vectors.matrix.shape[0]),
        )
        hist_sum[at[keep]] += m @ vectors.matrix
        hist_len[at[keep]] += np.diff(off)
    idx = np.searchsorted(wanted, users)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rec_sum * hist_sum[idx]).sum(axis=1) / (k * hist_len[idx])
