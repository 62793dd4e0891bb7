"""What a ranker run will hold in memory, known before any feature is read; refuse one that cannot fit.

The rows a run trains and early-stops on are chosen from the behaviors files
alone (:func:`recsys24.ranking.data.select`), so their candidate counts are
exact before the features folders are opened. The estimate is linear in them;
its constants were measured on the synthetic ``small`` and ``large`` splits
(``benchmarks/bench_features.py`` prints estimate against peak RSS):

- LightGBM never holds the raw float32 matrix: it bins one features piece at a
  time (``lightgbm.Sequence``), about one byte per value, and while boosting
  keeps per row gradients, hessians, scores and bagging indices, and, with its
  default sparse storage, a row-wise copy of the bundled mostly-zero features
  for its column-wise histograms; stored dense, that copy is not made (13 bytes
  less per candidate, rounds about 25% slower on the features' real pieces:
  ``benchmarks/bench_lgbm_memory.py --from``), so a run over its budget is
  stored dense before it is refused;
- CatBoost takes the whole matrix at once (its ``Pool`` copies it before
  quantizing), so it needs the raw float32 matrix about twice over.
"""

from __future__ import annotations

from dataclasses import dataclass

from recsys24.errors import Recsys24Error

GB = 1e9
BASE_BYTES = 1.0 * GB  # the interpreter and libraries, the selection's per-row arrays
BIN_BYTES = 1.0  # per value of LightGBM's binned copy (one byte per bin index) ...
LABEL_BYTES = 4  # ... and per row (its float label)
LIGHTGBM_ROW_BYTES = 60  # per training candidate while boosting: gradients, hessians, scores, bagging, partitions
LIGHTGBM_DENSE_SAVES = 13  # ... of which the row-wise copy of the sparse features (none with dense storage)
LIGHTGBM_DENSE_BIN_BYTES = 2  # per candidate: the dense bins of the mostly-zero features, beyond the sparse ones
LIGHTGBM_VALID_ROW_BYTES = 72  # per early-stopping candidate: scores, the per-round AUC's arrays, the best copy
PIECE_COPIES = 3  # a piece being read: Arrow's columns, polars' frame, the float32 matrix
CATBOOST_VALUE_BYTES = 9  # per value: our float32 matrix, CatBoost's float32 copy, its quantized byte
CATBOOST_ROW_BYTES = 64


@dataclass(frozen=True)
class Footprint:
    """The sizes a ranker run's memory depends on."""

    learner: str
    train: int  # training candidates (of the largest fit: the refit's, when there is one)
    valid: int  # early-stopping candidates
    features: int  # columns, stacked scores included
    piece: int  # candidates of the largest features piece (read whole)
    dense: bool = False  # LightGBM stores every feature's bins dense (``is_enable_sparse=false``)

    def bytes(self) -> float:
        """Estimated peak resident bytes: what is held, plus the larger of reading a piece and boosting.

        Measured on the synthetic large train split (133M training and 7M
        early-stopping candidates, 52 features; ``benchmarks/bench_features.py``):
        7.0 GB binned, 8.3 GB more while boosting, 17.5 GB at the peak.
        """
        rows = self.train + self.valid
        reading = self.piece * self.features * 4 * PIECE_COPIES
        if self.learner == "catboost":
            return BASE_BYTES + reading + rows * (self.features * CATBOOST_VALUE_BYTES + CATBOOST_ROW_BYTES)
        row_bytes = LIGHTGBM_ROW_BYTES - (LIGHTGBM_DENSE_SAVES if self.dense else 0)
        boosting = self.train * row_bytes + self.valid * LIGHTGBM_VALID_ROW_BYTES
        binned = self.features * BIN_BYTES + LABEL_BYTES + (LIGHTGBM_DENSE_BIN_BYTES if self.dense else 0)
        return BASE_BYTES + rows * binned + max(reading, boosting)


SHARE_OF_MACHINE = 2 / 3  # of its total memory a run takes by default


def available_bytes() -> float:
    """Memory a run may take by default: what the machine reports available, at most two thirds of its total.

    The estimate is within a tenth of the measured peak, but an overshoot gets
    the run killed, not slowed, and the page cache of the features pieces it
    reads and the rest of the machine need room: on a 24 GB machine the full
    large train split is then stored dense (14.8 GB at the peak) rather than
    sparse (17.3 GB).
    """
    import psutil

    memory = psutil.virtual_memory()
    return float(min(memory.available, SHARE_OF_MACHINE * memory.total))


def require_fit(footprint: Footprint, sample: float, limit: float | None = None) -> float:
    """The estimate in bytes; refuses (one line naming the ``--sample`` that fits) when over ``limit``.

    ``limit``: bytes the run may use (default: :func:`available_bytes`). The
    candidate counts scale with the impression sample, the rest does not.
    """
    limit = available_bytes() if limit is None else limit
    need = footprint.bytes()
    if need <= limit:
        return need
    fixed = Footprint(footprint.learner, 0, 0, footprint.features, footprint.piece, footprint.dense).bytes()
    fits = sample * (limit - fixed) / (need - fixed) if limit > fixed else 0.0
    fits = int(fits * 100) / 100  # floored to a hundredth, so that it does fit
    advice = (f"--sample {fits:.2f} fits" if fits >= 0.01 else
              "even --sample 0.01 does not fit; free memory or use a larger machine")
    raise Recsys24Error(
        f"rank train: {footprint.learner} needs about {need / GB:.1f} GB for {footprint.train:,} training and "
        f"{footprint.valid:,} early-stopping candidates × {footprint.features} features, but "
        f"the run may use {limit / GB:.1f} GB (--memory); {advice}")
