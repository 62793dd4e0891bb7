"""The click models of the synthetic EB-NeRD: what makes a reader click, one class each.

Every model is a softmax over an impression's in-view candidates of a logit
``utility(user, article, time)``; they differ in *what* drives it (docs/data.md,
"Synthetic EB-NeRD", gives each formula):

* ``category`` (the default, the data the demo was built on): the reader's
  category preference, the article's age and its latent popularity;
* ``burst``: short-lived popularity bursts: an article in a burst fills many
  in-view lists for a few hours and is clicked more, while ``total_*`` of
  articles.parquet only know its lasting popularity;
* ``fatigue``: exposure fatigue (an article the reader had in view in the last
  day is clicked less) and interests that drift from one preference to another
  over the 42 days the data spans;
* ``topic``: affinity to topics and named entities (drawn across categories)
  dominates; the category preference carries little.

A model also says how articles get into in-view lists (:meth:`ClickModel.draw_inview`)
and which articles a reader's history holds (:meth:`ClickModel.history_articles`):
for every model but ``category`` a history read is the reader's click on a
random slate of articles from the two days before it, under the same utility,
so the history shows what drives the clicks, as a real reading log would.

Everything works on flat arrays: ``counts`` [B] candidates per impression,
``idx`` [N] article index per candidate (impressions one after another).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from recsys24.data.synth_articles import CATEGORIES, US_PER_DAY

W_PREF, W_AGE, W_POP = 1.0, 1.0, 0.6
INVIEW_WINDOW_DAYS = 3
HISTORY_PICK_DAYS = 2  # a history read picks among the articles of the two days before it
SLATE = 12  # articles a history read chooses from (models with slate histories)
US_PER_HOUR = US_PER_DAY // 24


def segment_ids(counts: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(counts.size), counts)


def draw_inview(w, times: np.ndarray, n_want: np.ndarray, rng, window_days: int = INVIEW_WINDOW_DAYS,
                first: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct popularity-weighted candidates per impression from the last ``window_days`` days.

    ``first``: (impression index, article index) draws that come before the popularity
    draws of their impression (the ``burst`` model's trending slots).
    Returns (counts, flat article indices) in draw order.
    """
    lo = np.searchsorted(w.published_us, times - window_days * US_PER_DAY)
    hi = np.searchsorted(w.published_us, times, side="right")
    draws = n_want + n_want // 2 + 4
    seg = segment_ids(draws)
    c_lo, c_hi = w.pop_cdf[lo][seg], w.pop_cdf[hi][seg]
    u = c_lo + rng.random(seg.size) * (c_hi - c_lo)
    idx = np.clip(np.searchsorted(w.pop_cdf, u, side="right") - 1, 0, w.article_ids.size - 1)
    if first is not None:
        by_row = np.argsort(np.concatenate([first[0], seg]), kind="stable")  # an impression's `first` draws lead
        seg, idx = np.concatenate([first[0], seg])[by_row], np.concatenate([first[1], idx])[by_row]
    # Keep the first occurrence of each article per impression (a hash pass, no sort),
    # then the first n_want.
    keep_first = pl.Series(seg.astype(np.int64) * (1 << 32) + idx).is_first_distinct().to_numpy()
    seg, idx = seg[keep_first], idx[keep_first]
    starts = np.searchsorted(seg, np.arange(n_want.size))
    rank = np.arange(seg.size) - starts[seg]
    keep = rank < n_want[seg]
    seg, idx = seg[keep], idx[keep]
    return np.bincount(seg, minlength=n_want.size), idx


def sample_clicks(logit: np.ndarray, counts: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """True click probabilities (softmax within each impression) and sampled click labels."""
    seg = segment_ids(counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    mx = np.maximum.reduceat(logit, starts)
    e = np.exp(logit - mx[seg])
    prob = e / np.add.reduceat(e, starts)[seg]
    # Gumbel top-k sampling: one click (the noisy maximum), a second one (the runner-up)
    # for 7% of impressions.
    noisy = logit + rng.gumbel(size=logit.size)
    top = noisy == np.maximum.reduceat(noisy, starts)[seg]
    rest = np.where(top, -np.inf, noisy)
    second = (rest == np.maximum.reduceat(rest, starts)[seg]) & ~top
    labels = top | (second & (rng.random(counts.size) < 0.07)[seg])
    return prob.astype(np.float32), labels


def _age_days(w, times: np.ndarray, seg: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return (times[seg] - w.published_us[idx]) / US_PER_DAY


class ClickModel:
    """``category``: softmax of W_PREF·log(32·pref[u, c(a)]) − W_AGE·age_days + W_POP·log(popularity[a])."""

    name = "category"
    fatigue = 0.0  # logit lost per exposure of the reader to the article in the last day (0: none)

    def setup(self, w, rng: np.random.Generator) -> None:
        """Draw the model's own latent state (after the world, from its own generator)."""

    def article_tags(self) -> dict | None:
        """Topics / entities of the articles when the model defines them (``topic``); None: the default ones."""
        return None

    def draw_inview(self, w, times, n_want, rng, window_days: int = INVIEW_WINDOW_DAYS):
        return draw_inview(w, times, n_want, rng, window_days)

    def logits(self, w, users: np.ndarray, times: np.ndarray, counts: np.ndarray, idx: np.ndarray) -> np.ndarray:
        seg = segment_ids(counts)
        pref = w.user_pref[users[seg], w.category_index[idx]].astype(np.float64)
        age_days = (times[seg] - w.published_us[idx]) / US_PER_DAY
        return W_PREF * np.log(pref * len(CATEGORIES)) - W_AGE * age_days + W_POP * np.log(w.popularity[idx])

    def history_articles(self, w, users: np.ndarray, times: np.ndarray, rng) -> np.ndarray:
        """Article index of each history read (``users[i]`` reads at ``times[i]``): a category from the
        reader's preference, then an article of it published in the two days before (today's history)."""
        n_cat = len(CATEGORIES)
        readers, seg = np.unique(users, return_inverse=True)
        cdf = np.cumsum(w.user_pref[readers], axis=1, dtype=np.float64)
        cdf /= cdf[:, -1:]
        # inverse CDF over rows laid end to end (row i's CDF shifted by i keeps the whole array sorted)
        flat = (cdf + np.arange(readers.size)[:, None]).ravel()
        pos = np.searchsorted(flat, seg + rng.random(seg.size) * 0.999999)
        cat = (pos - seg * n_cat).clip(0, n_cat - 1)
        return pick_in_category(w, cat, times, rng)


def pick_in_category(w, cat: np.ndarray, times: np.ndarray, rng) -> np.ndarray:
    """A uniform article of category ``cat[i]`` published in the two days before ``times[i]``
    (its latest earlier one where there is none)."""
    base = cat.astype(np.int64) * (1 << 52)
    a_lo = np.searchsorted(w.cat_time_key, base + times - HISTORY_PICK_DAYS * US_PER_DAY)
    a_hi = np.searchsorted(w.cat_time_key, base + times, side="right")
    pick = a_lo + (rng.random(cat.size) * (a_hi - a_lo)).astype(np.int64)
    empty = a_hi <= a_lo
    pick[empty] = np.maximum(a_lo[empty] - 1, 0)
    return w.cat_time_order[pick]


class SlateHistory(ClickModel):
    """History reads are clicks on slates: :data:`SLATE` popularity-weighted articles of the two days
    before the read (repeats allowed), one chosen by the model's utility (Gumbel-max)."""

    READS_PER_BLOCK = 250_000

    def slate(self, w, times: np.ndarray, rng) -> np.ndarray:
        """Article index [reads, SLATE] of each read's slate."""
        lo = np.searchsorted(w.published_us, times - HISTORY_PICK_DAYS * US_PER_DAY)
        hi = np.searchsorted(w.published_us, times, side="right")
        u = w.pop_cdf[lo][:, None] + rng.random((times.size, SLATE)) * (w.pop_cdf[hi] - w.pop_cdf[lo])[:, None]
        return np.clip(np.searchsorted(w.pop_cdf, u, side="right") - 1, 0, w.article_ids.size - 1)

    def history_articles(self, w, users, times, rng):
        out = np.empty(users.size, dtype=np.int64)
        for lo in range(0, users.size, self.READS_PER_BLOCK):
            u, t = users[lo:lo + self.READS_PER_BLOCK], times[lo:lo + self.READS_PER_BLOCK]
            idx = self.slate(w, t, rng)
            logit = self.logits(w, u, t, np.full(u.size, SLATE), idx.ravel()).reshape(idx.shape)
            out[lo:lo + u.size] = idx[np.arange(u.size), np.argmax(logit + rng.gumbel(size=idx.shape), axis=1)]
        return out


class BurstModel(SlateHistory):
    """``burst``: log(32·pref) − age_days + 0.3·log(popularity) + 1.0·log(1 + h[a]·[t in a's burst]).

    Half the articles get one burst: it starts 0–36 h after publication, lasts 1–6 h, height
    h ~ lognormal(1, 0.5). While it lasts, 30% of every in-view list's slots go to bursting
    articles (one started in the last 6 h, kept with probability min(1, h / 4)); the lasting
    popularity (and ``total_*``) does not know the bursts.
    """

    name = "burst"
    W_POP, W_BURST, TREND_SHARE = 0.3, 1.0, 0.3
    MAX_HOURS = 6

    def setup(self, w, rng):
        n = w.article_ids.size
        bursting = rng.random(n) < 0.5
        start = w.published_us + (rng.random(n) * 36 * US_PER_HOUR).astype(np.int64)
        length = ((1 + rng.random(n) * (self.MAX_HOURS - 1)) * US_PER_HOUR).astype(np.int64)
        self.height = np.where(bursting, rng.lognormal(1.0, 0.5, size=n), 0.0)
        self.start, self.end = start, start + length
        order = np.argsort(start[bursting], kind="stable")
        self.by_start = np.flatnonzero(bursting)[order]  # bursting articles in order of their burst's start
        self.starts_sorted = start[self.by_start]

    def boost(self, times: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """h[a] while the article's burst lasts at ``times``, else 0."""
        return np.where((self.start[idx] <= times) & (times < self.end[idx]), self.height[idx], 0.0)

    def _trending(self, times: np.ndarray, seg: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
        """For each slot (of impression ``seg[i]``): a burst started in the last MAX_HOURS, and whether it
        still lasts and is kept (probability min(1, h / 4))."""
        lo = np.searchsorted(self.starts_sorted, times - self.MAX_HOURS * US_PER_HOUR)[seg]
        hi = np.searchsorted(self.starts_sorted, times, side="right")[seg]
        pick = self.by_start[np.minimum(lo + (rng.random(seg.size) * (hi - lo)).astype(np.int64),
                                        max(self.by_start.size - 1, 0))]
        ok = (hi > lo) & (self.boost(times[seg], pick) > 0) & (rng.random(seg.size) < self.height[pick] / 4)
        return pick, ok

    def draw_inview(self, w, times, n_want, rng, window_days=INVIEW_WINDOW_DAYS):
        seg = segment_ids(rng.binomial(n_want, self.TREND_SHARE))
        pick, ok = self._trending(times, seg, rng)
        return draw_inview(w, times, n_want, rng, window_days, first=(seg[ok], pick[ok]))

    def slate(self, w, times, rng):
        idx = super().slate(w, times, rng)
        row, col = np.nonzero(rng.random(idx.shape) < self.TREND_SHARE)
        pick, ok = self._trending(times, row, rng)
        idx[row[ok], col[ok]] = pick[ok]
        return idx

    def logits(self, w, users, times, counts, idx):
        seg = segment_ids(counts)
        pref = w.user_pref[users[seg], w.category_index[idx]].astype(np.float64)
        return (np.log(pref * len(CATEGORIES)) - _age_days(w, times, seg, idx)
                + self.W_POP * np.log(w.popularity[idx]) + self.W_BURST * np.log1p(self.boost(times[seg], idx)))


class FatigueModel(SlateHistory):
    """``fatigue``: (1 − s)·log(32·p0[u, c]) + s·log(32·p1[u, c]) − age_days + 0.6·log(popularity)
    − 0.8·(the reader's impressions of the last 24 h that had the article in view).

    Interests drift: s runs from 0 at the start of the train history (train window − 21 days)
    to 1 at the end of the test window, from the preference p0 to a second one p1
    (both Dirichlet(0.3)); history reads follow the preference of their day. Exposures count
    within a split's behaviors (not the beyond-accuracy rows).
    """

    name = "fatigue"
    fatigue = 0.8
    DRIFT_FROM = datetime(2023, 5, 18, 7) - timedelta(days=21)
    DRIFT_TO = datetime(2023, 6, 1, 7) + timedelta(days=7)

    def setup(self, w, rng):
        pref = rng.gamma(0.3, size=w.user_pref.shape).astype(np.float32) + 1e-4
        self.late_pref = pref / pref.sum(axis=1, keepdims=True)
        epoch = datetime(1970, 1, 1)
        self.t0, self.t1 = ((t - epoch) // timedelta(microseconds=1) for t in (self.DRIFT_FROM, self.DRIFT_TO))

    def logits(self, w, users, times, counts, idx):
        seg = segment_ids(counts)
        s = np.clip((times[seg] - self.t0) / (self.t1 - self.t0), 0.0, 1.0)
        cat = w.category_index[idx]
        early = np.log(w.user_pref[users[seg], cat].astype(np.float64) * len(CATEGORIES))
        late = np.log(self.late_pref[users[seg], cat].astype(np.float64) * len(CATEGORIES))
        return (1 - s) * early + s * late - _age_days(w, times, seg, idx) + W_POP * np.log(w.popularity[idx])


TOPICS = ("klima", "sundhed", "kongehuset", "skole", "indvandring", "krig", "energi", "boligpriser", "inflation",
          "kriminalitet", "trafik", "dyr", "mad", "rejser", "fodbold", "håndbold", "cykling", "tennis",
          "film", "tv", "musik", "kendte", "royale", "vejr", "valg", "eu", "usa", "rusland", "ukraine", "kina",
          "teknologi", "ai", "elbiler", "job", "skat", "pension", "børn", "ældre", "kærlighed", "sex",
          "retssag", "politi", "brand", "ulykke", "gaming", "mode", "sundhedsvæsen", "uddannelse")


class TopicModel(SlateHistory):
    """``topic``: 1.2·log(0.05 + 48·mean θ[u, topics(a)]) + 0.6·log(0.1 + 10·mean φ[u, entities(a)])
    + 0.15·log(32·pref[u, c]) − age_days + 0.6·log(popularity).

    The 48 topics (1–3 per article, Zipf-like frequencies) and the 10 named entities (0–3)
    are drawn independently of the category; θ ~ Dirichlet(0.15) over topics and
    φ ~ Dirichlet(0.3) over entities per reader. An article without entities scores
    the entity term as log(1.1).
    """

    name = "topic"
    W_TOPIC, W_ENTITY, W_CAT = 1.2, 0.6, 0.15
    N_ENTITIES = 10

    def setup(self, w, rng):
        n, users = w.article_ids.size, w.user_pref.shape[0]
        freq = 1.0 / np.arange(1, len(TOPICS) + 1) ** 0.7
        n_topics = rng.integers(1, 4, size=n)
        self.topics = np.full((n, 3), -1, dtype=np.int64)
        drawn = rng.choice(len(TOPICS), size=(n, 3), p=freq / freq.sum())
        drawn[:, 1] = np.where(drawn[:, 1] == drawn[:, 0], -1, drawn[:, 1])  # an article lists a topic once
        drawn[:, 2] = np.where((drawn[:, 2] == drawn[:, 0]) | (drawn[:, 2] == drawn[:, 1]), -1, drawn[:, 2])
        has = np.arange(3)[None, :] < n_topics[:, None]
        self.topics[has] = drawn[has]
        n_ner = rng.integers(0, 4, size=n)
        self.entities = np.full((n, 3), -1, dtype=np.int64)
        has = np.arange(3)[None, :] < n_ner[:, None]
        self.entities[has] = rng.integers(0, self.N_ENTITIES, size=(n, 3))[has]  # repeats allowed, as in EB-NeRD
        self.theta = _dirichlet(rng, 0.15, (users, len(TOPICS)))
        self.phi = _dirichlet(rng, 0.3, (users, self.N_ENTITIES))

    def article_tags(self):
        def lists(codes):
            counts = (codes >= 0).sum(1)
            return np.concatenate([[0], np.cumsum(counts)]), codes[codes >= 0]

        return {"topics": (*lists(self.topics), np.array(TOPICS, dtype=object)), "entities": lists(self.entities)}

    @staticmethod
    def _mean_affinity(table: np.ndarray, user: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean of ``table[user, code]`` over the valid (>= 0) codes of each row, and whether there is one."""
        flat, width = table.ravel(), table.shape[1]
        total, n = np.zeros(user.size), np.zeros(user.size)
        for j in range(codes.shape[1]):  # a column at a time: 1-d gathers, no [N, 3] index arrays
            has = codes[:, j] >= 0
            total += np.where(has, flat[user * width + np.maximum(codes[:, j], 0)], 0.0)
            n += has
        return total / np.maximum(n, 1), n > 0

    def logits(self, w, users, times, counts, idx):
        seg = segment_ids(counts)
        u = users[seg]
        topic, _ = self._mean_affinity(self.theta, u, self.topics[idx])
        entity, named = self._mean_affinity(self.phi, u, self.entities[idx])
        pref = w.user_pref[u, w.category_index[idx]].astype(np.float64)
        return (self.W_TOPIC * np.log(0.05 + len(TOPICS) * topic)
                + self.W_ENTITY * np.log(0.1 + np.where(named, self.N_ENTITIES * entity, 1.0))
                + self.W_CAT * np.log(pref * len(CATEGORIES)) - _age_days(w, times, seg, idx)
                + W_POP * np.log(w.popularity[idx]))


def _dirichlet(rng, alpha: float, shape: tuple[int, int]) -> np.ndarray:
    x = rng.gamma(alpha, size=shape).astype(np.float32) + 1e-4
    return x / x.sum(axis=1, keepdims=True)


CLICK_MODELS = {m.name: m for m in (ClickModel, BurstModel, FatigueModel, TopicModel)}


def click_model(name: str) -> ClickModel:
    """A new click model by name (:data:`CLICK_MODELS`)."""
    if name not in CLICK_MODELS:
        raise ValueError(f"unknown click model '{name}' (expected one of {', '.join(CLICK_MODELS)})")
    return CLICK_MODELS[name]()


class Exposures:
    """For the ``fatigue`` model: how many of the reader's impressions of the last day had each candidate
    in view. Impressions come in time-ordered chunks; the last day of them is carried to the next chunk,
    so memory holds a day of candidates, not the split."""

    WINDOW_S = 86_400

    def __init__(self, n_articles: int, start_us: int):
        self.n_articles, self.start_us = n_articles, start_us
        self.events = np.zeros(0, dtype=np.int64)  # sorted (user · n_articles + article) << 21 | second

    def count(self, users: np.ndarray, times: np.ndarray, counts: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Earlier exposures (within WINDOW_S, strictly earlier seconds) of each candidate; adds the chunk's."""
        seg = segment_ids(counts)
        second = (times[seg] - self.start_us) // 1_000_000
        pair = (users[seg].astype(np.int64) * self.n_articles + idx) << 21
        events = np.sort(np.concatenate([self.events, pair | second]))
        seen = np.searchsorted(events, pair | second) - np.searchsorted(events, pair | np.maximum(
            second - self.WINDOW_S, 0))
        last = int(second.max(initial=0))
        self.events = events[(events & ((1 << 21) - 1)) > last - self.WINDOW_S]
        return seen
