"""recsys24 features: each family against a hand computation on a small hand-made split."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from recsys24.data import schema as S
from recsys24.features.build import build_features
from recsys24.features.folder import open_features

T0 = datetime(2023, 5, 25, 7, 0)  # a multiple of the 5-minute bucket
H = timedelta(hours=1)


def _articles() -> pl.DataFrame:
    n = 5
    cols = {
        S.ARTICLE_ID: [10, 11, 12, 13, 14],
        S.TITLE: ["fodbold derby sejr", "fodbold derby nederlag", "valg regering skat", "kongehus fest",
                  "valg skat regering"],
        S.SUBTITLE: ["derby", "derby", "skat", "fest", "skat"],
        "last_modified_time": [T0] * n,
        "premium": [False, True, False, False, None],
        S.BODY: ["a b", "a b c", "", "d", "e f g h"],
        S.PUBLISHED_TIME: [T0 - 48 * H, T0 - 2 * H, T0 - H, T0 - H / 2, T0 - 240 * H],
        "image_ids": [[1]] * n,
        "article_type": ["article_default", "article_default", "video", "article_default", None],
        "url": ["u"] * n,
        "ner_clusters": [["X"], [], ["Y"], ["X", "Y"], []],
        "entity_groups": [["PER"], [], ["ORG"], ["PER", "ORG"], []],
        S.TOPICS: [["a"], ["a", "b"], ["c"], [], ["c"]],
        S.CATEGORY: [1, 1, 2, 3, 2],
        S.SUBCATEGORY: [[100], [100, 101], [102], [], [102]],
        S.CATEGORY_STR: ["sport", "sport", "politik", "kongehus", "politik"],
        S.TOTAL_INVIEWS: [100, None, 50, 10, 5],
        S.TOTAL_PAGEVIEWS: [10, None, 5, 1, 1],
        S.TOTAL_READ_TIME: [1.5, None, 2.0, 3.0, 4.0],
        S.SENTIMENT_SCORE: [0.9, 0.5, 0.6, 0.7, 0.8],
        S.SENTIMENT_LABEL: ["Positive"] * n,
    }
    return pl.DataFrame(cols, schema=S.ARTICLES_SCHEMA)


# (user, time, in-view); clicks are the first in-view article
BEHAVIORS = [
    (1, T0 + timedelta(seconds=30), [10, 11, 12]),
    (2, T0 + timedelta(minutes=7), [11, 12, 13]),
    (1, T0 + timedelta(minutes=20), [12, 11, 14]),
    (3, T0 + timedelta(minutes=90), [13, 10]),
    (1, T0 + timedelta(hours=25), [10, 11]),
]
HISTORY = {1: ([10, 12, 14, 13], [10.0, 20.0, 30.0, 40.0]), 2: ([11, 13], [5.0, 6.0])}


def _behaviors(split: str, rows=BEHAVIORS) -> pl.DataFrame:
    n = len(rows)
    cols = {
        S.IMPRESSION_ID: list(range(1, n + 1)), S.ARTICLE_ID: [None] * n,
        S.IMPRESSION_TIME: [r[1] for r in rows], S.READ_TIME: [1.0] * n, S.SCROLL_PERCENTAGE: [None] * n,
        S.DEVICE_TYPE: [1, 2, 1, 3, 2], S.INVIEW: [r[2] for r in rows], S.CLICKED: [r[2][:1] for r in rows],
        S.USER_ID: [r[0] for r in rows], S.IS_SSO_USER: [True, False, True, False, True],
        S.GENDER: [None] * n, S.POSTCODE: [None] * n, S.AGE: [None] * n,
        S.IS_SUBSCRIBER: [False, True, False, True, False], S.SESSION_ID: list(range(n)),
        S.NEXT_READ_TIME: [None] * n, S.NEXT_SCROLL_PERCENTAGE: [None] * n, S.IS_BEYOND_ACCURACY: [False] * n,
    }
    schema = S.behaviors_schema(split)
    return pl.DataFrame({k: cols[k] for k in schema}, schema=schema)


def _history() -> pl.DataFrame:
    users = sorted(HISTORY)
    return pl.DataFrame({
        S.USER_ID: users,
        S.HIST_TIME: [[T0 - 30 * H] * len(HISTORY[u][0]) for u in users],
        S.HIST_SCROLL: [[None] * len(HISTORY[u][0]) for u in users],
        S.HIST_ARTICLE: [HISTORY[u][0] for u in users],
        S.HIST_READ_TIME: [HISTORY[u][1] for u in users],
    }, schema=S.HISTORY_SCHEMA)


def write_split(root, split: str, behaviors: pl.DataFrame | None = None):
    (root / split).mkdir(parents=True, exist_ok=True)
    _articles().write_parquet(root / "articles.parquet")
    (behaviors if behaviors is not None else _behaviors(split)).write_parquet(root / split / "behaviors.parquet")
    _history().write_parquet(root / split / "history.parquet")
    return root


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    """Features of the hand-made validation split, one frame (row, candidate) in order."""
    root = write_split(tmp_path_factory.mktemp("hand") / "data", "validation")
    out = root.parent / "features"
    build_features(root, "validation", out)
    return pl.concat(open_features(out).iter_pieces())


def cell(frame: pl.DataFrame, row: int, article_pos: int, name: str):
    """The feature ``name`` of the candidate at in-view position ``article_pos`` of behaviors row ``row``."""
    return frame.filter(pl.col(S.ROW) == row)[name][article_pos]


def test_one_row_per_candidate_in_behaviors_and_inview_order(hand):
    assert hand.height == sum(len(r[2]) for r in BEHAVIORS)
    assert hand[S.ROW].to_list() == [i for i, r in enumerate(BEHAVIORS) for _ in r[2]]
    assert hand[S.IMPRESSION_ID].to_list() == [i + 1 for i, r in enumerate(BEHAVIORS) for _ in r[2]]


def test_candidate_time(hand):
    # row 0 at T0+30s: ages 48h, 2h, 1h (+30 s); the newest ranks 1
    assert cell(hand, 0, 0, "age_hours") == pytest.approx(48 + 30 / 3600)
    assert [cell(hand, 0, i, "age_rank") for i in range(3)] == [3, 2, 1]
    assert [cell(hand, 0, i, "age_gap_hours") for i in range(3)] == pytest.approx([47, 1, 0], abs=1e-4)


def test_inview_popularity_windows(hand):
    # row 2 (T0+20min, bucket 4): the hour before = buckets 0..3 = rows 0 and 1
    assert [cell(hand, 2, i, "inview_past_1h") for i in range(3)] == [2, 2, 0]   # 12, 11, 14
    assert [cell(hand, 2, i, "inview_past_1h_share") for i in range(3)] == [1, 1, 0]
    assert [cell(hand, 2, i, "inview_past_10m") for i in range(3)] == [0, 0, 0]  # buckets 2..3: nothing
    # row 0 (bucket 0): the next 10 minutes = buckets 0..1 = rows 0 and 1 (itself included)
    assert [cell(hand, 0, i, "inview_next_10m") for i in range(3)] == [1, 2, 2]  # 10, 11, 12
    # row 4 (next day, bucket 300): the day before = buckets 12..299 = row 3 only
    assert [cell(hand, 4, i, "inview_past_1d") for i in range(2)] == [1, 0]
    assert cell(hand, 3, 1, "inview_split") == 3  # article 10: rows 0, 3, 4
    # article 11 first in view in bucket 0; by bucket 4 seen twice: 2 / 4 buckets = 6 per hour
    assert cell(hand, 2, 1, "inview_rate_past") == pytest.approx(6.0)
    assert np.isnan(cell(hand, 0, 0, "inview_rate_past"))  # nothing before its first appearance


def test_read_popularity_and_article(hand):
    # article 13 is in the histories of users 1 and 2, read 40 + 6 seconds
    assert cell(hand, 1, 2, "read_users") == 2
    assert cell(hand, 1, 2, "read_seconds") == pytest.approx(46.0)
    assert cell(hand, 0, 1, "read_users") == 1  # article 11: user 2
    assert np.isnan(cell(hand, 0, 1, "total_inviews"))  # null stays missing
    assert cell(hand, 0, 0, "total_inviews") == 100
    assert cell(hand, 0, 1, "premium") == 1
    assert cell(hand, 0, 0, "title_len") == len("fodbold derby sejr")


def test_user_candidate_shares(hand):
    # user 1 read 10 (cat 1), 12 (cat 2), 14 (cat 2), 13 (cat 3)
    assert [cell(hand, 0, i, "category_share") for i in range(3)] == pytest.approx([0.25, 0.25, 0.5], abs=1e-3)
    # article 11 has subcategories 100 and 101: 100 is in 1 of 4 history articles, 101 in none
    assert cell(hand, 0, 1, "subcategory_share") == pytest.approx(0.25, abs=1e-3)
    assert cell(hand, 0, 2, "topic_share") == pytest.approx(0.5, abs=1e-3)  # topic c: 12 and 14
    assert cell(hand, 0, 0, "entity_share") == pytest.approx(0.5, abs=1e-3)  # entity X: 10 and 13
    assert [cell(hand, 0, i, "already_read") for i in range(3)] == [1, 0, 1]
    # user 3 has no history: shares 0, similarity missing
    assert cell(hand, 3, 0, "category_share") == 0
    assert np.isnan(cell(hand, 3, 0, "text_similarity"))


def test_text_similarity_is_cosine_to_mean_history_vector(hand, tmp_path):
    from recsys24.features.articles import build_article_table

    root = write_split(tmp_path / "data", "validation")
    table = build_article_table(root / "articles.parquet")
    mean = table.text[table.rows(np.array(HISTORY[2][0]))].mean(axis=0)
    want = float(mean @ table.text[table.rows(np.array([12]))[0]] / np.linalg.norm(mean))
    assert cell(hand, 1, 1, "text_similarity") == pytest.approx(want, abs=1e-5)


def test_repeats_and_context(hand):
    # user 1: row 2 sees 12 and 11 again (row 0), row 4 sees 10 (row 0) and 11 (rows 0, 2)
    assert [cell(hand, 2, i, "seen_before") for i in range(3)] == [1, 1, 0]
    assert [cell(hand, 4, i, "seen_before") for i in range(2)] == [1, 2]
    assert [cell(hand, 0, i, "seen_after") for i in range(3)] == [1, 2, 1]  # 10: row 4; 11: rows 2, 4; 12: row 2
    assert [cell(hand, 2, i, "seen_after") for i in range(3)] == [0, 1, 0]
    assert cell(hand, 2, 0, "prev_impression_gap_s") == 20 * 60 - 30
    assert cell(hand, 0, 0, "next_impression_gap_s") == 20 * 60 - 30
    assert np.isnan(cell(hand, 0, 0, "prev_impression_gap_s"))
    assert cell(hand, 4, 0, "prev_impression_gap_s") == 25 * 3600 - 20 * 60
    assert cell(hand, 0, 0, "num_candidates") == 3
    assert cell(hand, 0, 0, "history_per_day") == pytest.approx(4 / ((30 * 3600 + 30) / 86400))  # 4 reads, 30 h
    assert cell(hand, 1, 0, "device_type") == 2
    assert cell(hand, 1, 0, "is_subscriber") == 1
    assert cell(hand, 3, 0, "hour") == 8


def _history_file(path, reads: dict) -> None:
    """reads: {user: [(article, time), ...]}, every read 10 s long."""
    users = sorted(reads)
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({
        S.USER_ID: users,
        S.HIST_TIME: [[t for _, t in reads[u]] for u in users],
        S.HIST_SCROLL: [[None] * len(reads[u]) for u in users],
        S.HIST_ARTICLE: [[a for a, _ in reads[u]] for u in users],
        S.HIST_READ_TIME: [[10.0] * len(reads[u]) for u in users],
    }, schema=S.HISTORY_SCHEMA).write_parquet(path)


def test_other_splits_histories_add_their_earlier_reads(tmp_path):
    root = write_split(tmp_path / "data", "validation")  # first impression: T0 + 30 s
    # an older file: user 1 read 11 before (new) and 10 at T0 - 30 h (already in the split's file);
    # user 9 is not in the split
    _history_file(root / "train" / "history.parquet", {1: [(11, T0 - 40 * H), (10, T0 - 30 * H)], 9: [(12, T0 - 40 * H)]})
    # a later file: user 2's read of 12 at T0 + 1 h is after the split began; 13 is a repeat
    _history_file(root / "test" / "history.parquet", {2: [(12, T0 + H), (13, T0 - 30 * H)]})
    build_features(root, "validation", tmp_path / "all")
    build_features(root, "validation", tmp_path / "own", split_history=True)
    both = pl.concat(open_features(tmp_path / "all").iter_pieces())
    own = pl.concat(open_features(tmp_path / "own").iter_pieces())
    # user 1 (row 0): 10, 12, 14, 13 and now 11 -> category 1 (10, 11) is 2 of 5
    span_both, span_own = (40 * 3600 + 30) / 86400, (30 * 3600 + 30) / 86400  # earliest read to first impression
    assert cell(both, 0, 0, "history_per_day") == pytest.approx(5 / span_both)
    assert cell(own, 0, 0, "history_per_day") == pytest.approx(4 / span_own)
    assert cell(both, 0, 0, "category_share") == pytest.approx(0.4, abs=1e-3)
    assert [cell(both, 0, i, "already_read") for i in range(3)] == [1, 1, 1]
    assert cell(both, 0, 1, "read_users") == 2 and cell(own, 0, 1, "read_users") == 1  # 11: users 2 and 1
    assert cell(both, 0, 2, "read_users") == 1  # 12: user 2's read came after the split began, user 9 is out
    # user 2 (row 1): nothing new, and the repeated read of 13 is not counted twice
    assert cell(both, 1, 0, "history_per_day") == pytest.approx(2 / span_both)
    assert cell(both, 1, 2, "read_seconds") == pytest.approx(46.0)
    assert open_features(tmp_path / "all").plan.inputs.keys() > {"train/history.parquet", "test/history.parquet"}
    # the plan records the span history_per_day divides by, so a reader can turn it back into a count of reads
    assert [open_features(tmp_path / name).plan.history_span_days for name in ("all", "own")] == \
        pytest.approx([span_both, span_own])
    # the split's own rows are untouched where no other file adds a read
    for name in ("age_hours", "inview_past_1h", "seen_before"):
        assert both[name].to_list() == own[name].to_list()


def test_history_per_day_means_the_same_however_many_files_are_read(tmp_path):
    """As on EB-NeRD: an older file repeats the split's file's overlap and adds older reads at the same rate;
    reading it lengthens the history but leaves the reads per day of history as they were."""
    day = timedelta(days=1)
    root = write_split(tmp_path / "data", "validation")

    def reads(first, last):  # user 1 reads once a day, user 2 twice, from `first` to `last` days before T0
        return {u: [(10 + k % 5, T0 - (k + 0.5) / n * day) for k in range(first * n, last * n)] for u, n in ((1, 1), (2, 2))}

    _history_file(root / "validation" / "history.parquet", reads(0, 3))
    _history_file(root / "train" / "history.parquet", reads(2, 6))  # a day of overlap, three older days
    build_features(root, "validation", tmp_path / "all")
    build_features(root, "validation", tmp_path / "own", split_history=True)
    per_day = {name: [cell(pl.concat(open_features(tmp_path / name).iter_pieces()), row, 0, "history_per_day")
                      for row in (0, 1)] for name in ("all", "own")}
    assert per_day["all"] == pytest.approx(per_day["own"], rel=0.05)  # edges of the spans differ a little
    assert per_day["all"] == pytest.approx([1.0, 2.0], rel=0.1)


def test_a_read_repeated_in_another_file_counts_once():
    """Against a Python set: a read is left out when an earlier one has the same user, time and article."""
    from recsys24.features.history import NO_TIME, _first_reads

    rng = np.random.default_rng(1)
    for trial in range(100):
        n = int(rng.integers(2, 60))
        owner, time, art = rng.integers(0, 3, n), rng.integers(0, 4, n) * (1 << 43 if trial % 2 else 1), rng.integers(0, 3, n)
        time[rng.random(n) < 0.1] = NO_TIME  # no time: never a repeat
        seen, want = set(), []
        for key in zip(owner, time, art):
            want.append(key[1] == NO_TIME or key not in seen)
            seen.add(key)
        assert _first_reads(owner, time, art).tolist() == want


def test_repeats_do_not_depend_on_how_users_are_cut_into_sort_blocks(monkeypatch):
    """seen_before / seen_after against their definition, with users sorted a few candidates at a time."""
    from recsys24.features import activity

    rng = np.random.default_rng(2)
    n_rows = 80
    count = rng.integers(0, 5, n_rows)
    inview = [rng.choice(8, size=c, replace=False) for c in count]
    scan = activity._Scan(user=rng.integers(0, 6, n_rows) * 1000, time_s=1_700_000_000 + rng.integers(0, 20, n_rows),
                          count=count, beyond=rng.random(n_rows) < 0.2,
                          article=np.concatenate(inview).astype(np.int32))
    _, user_index = np.unique(scan.user, return_inverse=True)
    monkeypatch.setattr(activity, "SORT_EVENTS", 7)
    before, after = activity._seen(scan, user_index.astype(np.int64), 8, later=True)
    want_before, want_after = [], []
    for r in range(n_rows):
        real = [q for q in range(n_rows) if scan.user[q] == scan.user[r] and not scan.beyond[q]]
        for a in inview[r]:
            want_before.append(sum(a in inview[q] for q in real if scan.time_s[q] < scan.time_s[r]))
            want_after.append(sum(a in inview[q] for q in real if scan.time_s[q] > scan.time_s[r]))
    assert before.tolist() == want_before and after.tolist() == want_after
