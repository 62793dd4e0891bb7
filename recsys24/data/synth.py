"""A synthetic EB-NeRD with the official schema, real sizes and planted signal.

``synthesize(out, preset)`` writes::

    OUT/articles.parquet
    OUT/{train,validation,test}/{behaviors,history}.parquet   official schema
    OUT/synth_truth/{split}.parquet    row, impression_id, propensities, labels

The signal a model can learn depends on the click model (``click_model``, see
:mod:`recsys24.data.synth_clicks`); by default (``category``) each user has a
category preference (Dirichlet), their history is drawn from it; in-view lists
favour popular articles published in the last three days; the click is drawn
from a softmax over the candidates of
``W_PREF·log(preference) − W_AGE·age_in_days + W_POP·log(popularity)``. The
history files are drawn per split or cut from one timeline per user, as
EB-NeRD's (``history``, see :mod:`recsys24.data.synth_history`). The true
click probabilities of every candidate go to ``synth_truth/`` (outside the
EB-NeRD files), so the oracle AUC of the data is known. Test behaviors carry no
clicks, but the truth file has the simulated ones, so test-split scoring can be
checked too.

Everything is generated in chunks of impressions with numpy over flat arrays
(no Python loop per impression) and written with pyarrow, one row group per
chunk, so ``large`` (13.5M test impressions) stays within a few GB of memory.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recsys24.data import schema as S
from recsys24.data.synth_articles import CATEGORIES, US_PER_DAY, list_array, nullable, write_articles
from recsys24.data.synth_clicks import ClickModel, Exposures, click_model, sample_clicks, segment_ids
from recsys24.data.synth_history import (HISTORY_DAYS, HISTORY_MODES, USER_ID_BASE, Clicks, write_independent,
                                         write_overlapping)
from recsys24.errors import Recsys24Error
from recsys24.io import atomic_path, write_json

BA_CANDIDATES = 250
TRUTH_DIR = "synth_truth"
SUMMARY_FILE = "synth.json"


@dataclass(frozen=True)
class Preset:
    """Sizes of one synthetic dataset."""

    articles: int
    users: int
    impressions: dict  # split -> behaviors rows (test: beyond-accuracy rows included)
    beyond_accuracy: int
    history_mean: float
    chunk_rows: int = 500_000


PRESETS = {
    # For fast tests of model scoring; not a realistic size.
    "tiny": Preset(3_000, 300, {"train": 1_500, "validation": 1_500, "test": 1_500}, 20, 20.0),
    "demo": Preset(11_800, 2_000, {"train": 25_000, "validation": 25_000, "test": 25_000}, 370, 30.0),
    "small": Preset(
        20_000, 15_000, {"train": 233_000, "validation": 244_000, "test": 262_000}, 3_900, 40.0
    ),
    "large": Preset(
        125_541,
        850_000,
        {"train": 12_063_890, "validation": 12_566_385, "test": 13_536_710},
        200_000,
        40.0,
    ),
}

@dataclass(frozen=True)
class SplitSize:
    impressions: int  # behaviors rows
    users: int  # distinct users among them


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`synthesize` wrote, as ``OUT/synth.json`` records it (written and read here)."""

    preset: str
    seed: int
    click_model: str
    history: str  # independent or overlapping history files
    sizes: dict  # the preset's sizes (:class:`Preset` as a dict)
    splits: dict[str, SplitSize]  # the splits written, in split order

    def to_dict(self) -> dict:
        return {"preset": self.preset, "seed": self.seed, "click_model": self.click_model, "history": self.history,
                "sizes": self.sizes, "splits": {s: asdict(size) for s, size in self.splits.items()}}

    @classmethod
    def read(cls, out: str | Path) -> "SynthSummary":
        """The summary of a ``recsys24 synth`` folder; refuses a folder without one."""
        path = Path(out) / SUMMARY_FILE
        if not path.is_file():
            raise Recsys24Error(f"{out}: not a `recsys24 synth` folder (no {SUMMARY_FILE})")
        d = json.loads(path.read_text())
        return cls(d["preset"], int(d["seed"]), d["click_model"], d["history"], d["sizes"],
                   {s: SplitSize(**size) for s, size in d["splits"].items()})


# Behaviors window start of each split (each lasts 7 days); history: 21 days before.
WINDOWS = {
    "train": datetime(2023, 5, 18, 7),
    "validation": datetime(2023, 5, 25, 7),
    "test": datetime(2023, 6, 1, 7),
}
_EPOCH = datetime(1970, 1, 1)
FIRST_PUBLISHED = WINDOWS["train"] - timedelta(days=HISTORY_DAYS + 7)
LAST_TIME = WINDOWS["test"] + timedelta(days=7)


def _us(t: datetime) -> int:
    return int((t - _EPOCH) / timedelta(microseconds=1))


@dataclass
class World:
    """Articles and users shared by all splits (kept in memory: ~0.2 GB at large)."""

    article_ids: np.ndarray  # i32, sorted by published time
    published_us: np.ndarray  # i64, ascending
    category_index: np.ndarray  # 0..31
    popularity: np.ndarray  # f64 > 0
    pop_cdf: np.ndarray  # cumulative popularity, len n+1
    cat_time_key: np.ndarray  # sorted (category, published) keys
    cat_time_order: np.ndarray  # article index for each key
    user_pref: np.ndarray  # [users, 32] f32, rows sum to 1
    user_activity_cdf: np.ndarray
    user_demo: dict  # per-user demographic columns


def _make_world(preset: Preset, rng: np.random.Generator, out: Path, model: ClickModel | None = None,
                model_rng: np.random.Generator | None = None) -> World:
    """The articles and users (articles.parquet written to ``out``); ``model`` draws its own latent
    state from ``model_rng`` after them, so every click model shares the same world."""
    n = preset.articles
    published = np.sort(rng.integers(_us(FIRST_PUBLISHED), _us(LAST_TIME), size=n))
    article_ids = (3_000_000 + np.cumsum(rng.integers(1, 60, size=n))).astype(np.int32)
    n_cat = len(CATEGORIES)
    cat_weights = 1.0 / np.arange(1, n_cat + 1) ** 0.9
    cat_weights = rng.permutation(cat_weights / cat_weights.sum())
    category_index = rng.choice(n_cat, size=n, p=cat_weights)
    popularity = rng.lognormal(0.0, 1.0, size=n)
    pop_cdf = np.concatenate([[0.0], np.cumsum(popularity)])
    key = category_index.astype(np.int64) * (1 << 52) + published
    order = np.argsort(key, kind="stable")

    pref = rng.gamma(0.3, size=(preset.users, n_cat)).astype(np.float32) + 1e-4
    pref /= pref.sum(axis=1, keepdims=True)
    activity = rng.lognormal(0.0, 1.0, size=preset.users)
    users = preset.users
    demo = {
        "is_sso_user": rng.random(users) < 0.6,
        "gender": rng.integers(0, 2, size=users).astype(np.int8),
        "postcode": rng.integers(0, 5, size=users).astype(np.int8),
        "age": (rng.integers(1, 9, size=users) * 10).astype(np.int8),
        "is_subscriber": rng.random(users) < 0.3,
        "demo_known": rng.random(users) < 0.1,
    }
    world = World(
        article_ids, published, category_index, popularity, pop_cdf, key[order], order,
        pref, np.cumsum(activity) / activity.sum(), demo,
    )
    if model is not None:
        model.setup(world, model_rng)
    write_articles(world, rng, out / "articles.parquet", model.article_tags() if model is not None else None)
    return world


def _clicks(w, model: ClickModel, users, times, counts, idx, rng, exposures: Exposures | None):
    """True click probabilities and sampled labels of the candidates (``exposures``: the fatigue model's
    earlier exposures, counted within the split; not on beyond-accuracy rows)."""
    logit = model.logits(w, users, times, counts, idx)
    if exposures is not None:
        logit = logit - model.fatigue * exposures.count(users, times, counts, idx)
    return sample_clicks(logit, counts, rng)


def _unrecorded_clicks(w: World, model: ClickModel, preset: Preset, start: int, rng) -> Clicks:
    """The clicks of a week before the first behaviors window (the impressions nobody recorded): made
    exactly as a split's, as many impressions as the train split has, so every week of a timeline looks alike."""
    n = preset.impressions["train"]
    users = np.minimum(np.searchsorted(w.user_activity_cdf, rng.random(n)), w.user_pref.shape[0] - 1)
    times = np.sort(rng.integers(start, start + 7 * US_PER_DAY, size=n))
    exposures = Exposures(w.article_ids.size, start) if model.fatigue else None
    parts = []
    for lo in range(0, n, preset.chunk_rows):
        u, t = users[lo:lo + preset.chunk_rows], times[lo:lo + preset.chunk_rows]
        counts, idx = model.draw_inview(w, t, np.minimum(5 + rng.geometric(1 / 7.6, size=u.size) - 1, 100), rng)
        _, labels = _clicks(w, model, u, t, counts, idx, rng, exposures)
        clicked = segment_ids(counts)[labels]
        parts.append(Clicks(u[clicked].astype(np.int64), t[clicked], idx[labels]))
    return Clicks.concat(parts)


def _behaviors_chunk(w, model: ClickModel, split, users, times, first_id, session0, rng, ba_list=None,
                     exposures: Exposures | None = None):
    """One chunk of behaviors rows as (official table, truth table, clicks)."""
    n = users.size
    if ba_list is None:
        n_want = np.minimum(5 + rng.geometric(1 / 7.6, size=n) - 1, 100)
        counts, idx = model.draw_inview(w, times, n_want, rng)
        impression_ids = np.arange(first_id, first_id + n, dtype=np.uint32)
        sessions = (session0 + np.cumsum(rng.random(n) < 0.3)).astype(np.uint32)
    else:
        counts = np.full(n, ba_list.size)
        idx = np.tile(ba_list, n)
        impression_ids = np.zeros(n, dtype=np.uint32)
        sessions = np.zeros(n, dtype=np.uint32)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    prob, labels = _clicks(w, model, users, times, counts, idx, rng, exposures)
    inview_ids = w.article_ids[idx]
    d = w.user_demo
    known = d["demo_known"][users]
    cols = {
        S.IMPRESSION_ID: pa.array(impression_ids, pa.uint32()),
        S.ARTICLE_ID: pa.array(
            w.article_ids[rng.integers(0, w.article_ids.size, size=n)], pa.int32(),
            mask=rng.random(n) < 0.7,
        ),
        S.IMPRESSION_TIME: pa.array(times, pa.timestamp("us")),
        S.READ_TIME: pa.array(np.minimum(rng.exponential(40, size=n), 1800).round().astype(np.float32)),
        S.SCROLL_PERCENTAGE: nullable(rng.uniform(0, 100, size=n).astype(np.float32), 0.3, rng, pa.float32()),
        S.DEVICE_TYPE: pa.array(rng.choice(np.array([1, 2, 3], dtype=np.int8), size=n, p=[0.3, 0.6, 0.1])),
        S.INVIEW: list_array(offsets, inview_ids, pa.int32()),
        S.CLICKED: list_array(np.concatenate([[0], np.cumsum(np.add.reduceat(labels.astype(np.int64), offsets[:-1]))]), inview_ids[labels], pa.int32()),
        S.USER_ID: pa.array(users.astype(np.uint32) + USER_ID_BASE, pa.uint32()),
        S.IS_SSO_USER: pa.array(d["is_sso_user"][users]),
        S.GENDER: pa.array(d["gender"][users], pa.int8(), mask=~known),
        S.POSTCODE: pa.array(d["postcode"][users], pa.int8(), mask=~known),
        S.AGE: pa.array(d["age"][users], pa.int8(), mask=~known),
        S.IS_SUBSCRIBER: pa.array(d["is_subscriber"][users]),
        S.SESSION_ID: pa.array(sessions, pa.uint32()),
        S.NEXT_READ_TIME: nullable(np.minimum(rng.exponential(40, size=n), 1800).round().astype(np.float32), 0.1, rng, pa.float32()),
        S.NEXT_SCROLL_PERCENTAGE: nullable(rng.uniform(0, 100, size=n).astype(np.float32), 0.35, rng, pa.float32()),
        S.IS_BEYOND_ACCURACY: pa.array(np.full(n, ba_list is not None)),
    }
    schema = S.behaviors_schema(split)
    table = pa.table({k: cols[k] for k in schema})
    truth = pa.table(
        {
            "impression_id": cols[S.IMPRESSION_ID],
            "propensities": list_array(offsets, prob, pa.float32()),
            S.LABELS: list_array(offsets, labels.astype(np.int8), pa.int8()),
        }
    )
    clicked = segment_ids(counts)[labels]
    return table, truth, Clicks(users[clicked].astype(np.int64), times[clicked], idx[labels])


def _write_behaviors(w: World, model: ClickModel, preset: Preset, split: str, out: Path, rng,
                     next_id: int) -> tuple[np.ndarray, Clicks]:
    """Write OUT/split/behaviors.parquet and the truth file; return the users seen and the clicks."""
    total = preset.impressions[split]
    n_ba = preset.beyond_accuracy if split == "test" else 0
    start = _us(WINDOWS[split])
    users = np.searchsorted(w.user_activity_cdf, rng.random(total - n_ba))
    users = np.minimum(users, w.user_pref.shape[0] - 1)
    times = np.sort(rng.integers(start, start + 7 * US_PER_DAY, size=total - n_ba))
    exposures = Exposures(w.article_ids.size, start) if model.fatigue else None
    clicks = []
    beh_path, truth_path = out / split / "behaviors.parquet", out / TRUTH_DIR / f"{split}.parquet"
    with atomic_path(beh_path) as tb, atomic_path(truth_path) as tt:
        bw = tw = None
        session = 0
        row = 0
        for lo in range(0, users.size, preset.chunk_rows):
            hi = min(lo + preset.chunk_rows, users.size)
            table, truth, chunk_clicks = _behaviors_chunk(w, model, split, users[lo:hi], times[lo:hi], next_id + lo,
                                                          session, rng, exposures=exposures)
            clicks.append(chunk_clicks)
            session = int(table[S.SESSION_ID][-1].as_py())
            bw, tw = _write_chunk(bw, tw, tb, tt, table, truth, row)
            row += table.num_rows
        ba_users = np.empty(0, dtype=np.int64)
        if n_ba:
            end = start + 7 * US_PER_DAY
            recent = np.flatnonzero(w.published_us > end - 7 * US_PER_DAY)
            recent = recent[w.published_us[recent] <= end]
            ba_list = rng.choice(recent, size=BA_CANDIDATES, replace=False)
            ba_users = rng.choice(w.user_pref.shape[0], size=n_ba, replace=False)
            ba_times = np.sort(rng.integers(start, end, size=n_ba))
            for lo in range(0, n_ba, max(1, preset.chunk_rows // 25)):
                hi = min(lo + preset.chunk_rows // 25, n_ba)
                table, truth, _ = _behaviors_chunk(w, model, split, ba_users[lo:hi], ba_times[lo:hi], 0, 0, rng,
                                                   ba_list)
                bw, tw = _write_chunk(bw, tw, tb, tt, table, truth, row)
                row += table.num_rows
        bw.close()
        tw.close()
    return np.unique(np.concatenate([users, ba_users])), Clicks.concat(clicks)


def _write_chunk(bw, tw, beh_path, truth_path, table, truth, row0):
    truth = truth.add_column(0, S.ROW, pa.array(np.arange(row0, row0 + truth.num_rows, dtype=np.uint64)))
    if bw is None:
        bw = pq.ParquetWriter(beh_path, table.schema, compression="zstd")
        tw = pq.ParquetWriter(truth_path, truth.schema, compression="zstd")
    bw.write_table(table)
    tw.write_table(truth)
    return bw, tw


def synthesize(out: str | Path, preset: str = "demo", seed: int = 0, splits=S.SPLITS,
               click_model_name: str = "category", history: str = "independent") -> SynthSummary:
    """Write a synthetic EB-NeRD under ``out``; return what it wrote (also in OUT/synth.json).

    ``click_model_name``: what drives clicks (:data:`recsys24.data.synth_clicks.CLICK_MODELS`);
    ``history``: ``independent`` history files per split, or ``overlapping`` ones cut from one
    reading timeline per user, as EB-NeRD's (then every split is written).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset '{preset}' (expected one of {', '.join(PRESETS)})")
    if history not in HISTORY_MODES:
        raise ValueError(f"unknown history mode '{history}' (expected one of {', '.join(HISTORY_MODES)})")
    if history == "overlapping" and tuple(splits) != S.SPLITS:
        raise Recsys24Error("--history overlapping writes every split (their history files share one timeline, "
                            "and the validation and test files hold the earlier splits' clicks)")
    model = click_model(click_model_name)
    p = PRESETS[preset]
    out = Path(out)
    rng = np.random.default_rng(seed)
    world = _make_world(p, rng, out, model, np.random.default_rng([seed, len(S.SPLITS), 1]))
    next_id = 1
    users, clicks, written = {}, {}, {}
    for split in S.SPLITS:
        split_rng = np.random.default_rng([seed, S.SPLITS.index(split)])
        if split in splits:
            users[split], clicks[split] = _write_behaviors(world, model, p, split, out, split_rng, next_id)
            if history == "independent":
                write_independent(world, p, model, users[split], _us(WINDOWS[split]),
                                  out / split / "history.parquet", split_rng)
            written[split] = SplitSize(p.impressions[split], int(users[split].size))
        next_id += p.impressions[split]
    if history == "overlapping":
        first = _us(WINDOWS["train"]) - HISTORY_DAYS * US_PER_DAY
        for week in range(HISTORY_DAYS // 7):
            week_rng = np.random.default_rng([seed, len(S.SPLITS), 3, week])
            clicks[f"week{week}"] = _unrecorded_clicks(world, model, p, first + week * 7 * US_PER_DAY, week_rng)
        write_overlapping(world, p, model, users, Clicks.concat(list(clicks.values())),
                          {s: _us(WINDOWS[s]) for s in S.SPLITS}, out, np.random.default_rng([seed, len(S.SPLITS), 2]))
    summary = SynthSummary(preset, seed, model.name, history, asdict(p), written)
    write_json(summary.to_dict(), out / SUMMARY_FILE)
    return summary
