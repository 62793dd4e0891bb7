"""MIND (Microsoft News Dataset) in the same tables as EB-NeRD, and a synthetic MIND.

A MIND split folder holds two tab-separated files without header::

    news.tsv       news_id, category, subcategory, title, abstract, url,
                   title_entities, abstract_entities
    behaviors.tsv  impression_id, user_id, time, history, impressions
                   e.g. "1  U13740  11/11/2019 9:05:58 AM  N55189 N42782  N55689-1 N35729-0"

:func:`mind_tables` reads them into :class:`~recsys24.data.tables.NewsTables`.
Ids: MIND's ``N12345`` / ``U123`` become the integers 12345 / 123 (so train
and dev of the same MIND release agree); the original strings stay in the
``news_id`` column of articles and ``mind_user_id`` of history. Test-split
impressions carry no labels ("N1 N2"); their clicked lists are null.

:func:`write_synthetic_mind` writes a small MIND-format split with English
titles and a planted signal (users click articles of their favourite topics).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from recsys24.data import schema as S
from recsys24.data.tables import NewsTables
from recsys24.errors import DataError
from recsys24.io import atomic_path, write_parquet

NEWS_COLUMNS = (
    "news_id", "category", "subcategory", "title", "abstract", "url",
    "title_entities", "abstract_entities",
)
BEHAVIOR_COLUMNS = ("impression_id", "user_id", "time", "history", "impressions")
TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"
NEWS_ID = "news_id"
MIND_USER_ID = "mind_user_id"
SUBCATEGORY_STR = "subcategory_str"


def _read_tsv(path: Path, columns: tuple[str, ...]) -> pl.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: missing file")
    try:
        df = pl.read_csv(
            path, separator="\t", has_header=False, quote_char=None,
            schema={c: pl.String for c in columns}, truncate_ragged_lines=True,
        )
    except pl.exceptions.PolarsError as err:
        raise DataError(f"{path}: not a MIND tsv file ({str(err).splitlines()[0]})") from None
    return df


def _numeric_id(col: str, prefix: str, dtype) -> pl.Expr:
    return pl.col(col).str.extract(rf"^{prefix}(\d+)$", 1).cast(dtype)


def _check_ids(df: pl.DataFrame, raw: str, parsed: str, path: Path) -> None:
    bad = df.filter(pl.col(parsed).is_null() & pl.col(raw).is_not_null())
    if bad.height or df[raw].null_count():
        example = bad[raw][0] if bad.height else "null"
        raise DataError(f"{path}: column '{raw}' has an id that is not N<digits>/U<digits> ({example})")


def mind_tables(mind_dir: str | Path) -> NewsTables:
    """Read ``mind_dir/news.tsv`` and ``mind_dir/behaviors.tsv`` (one MIND split)."""
    mind_dir = Path(mind_dir)
    news_path, behaviors_path = mind_dir / "news.tsv", mind_dir / "behaviors.tsv"
    news = _read_tsv(news_path, NEWS_COLUMNS)
    news = news.with_columns(_numeric_id(NEWS_ID, "N", pl.Int32).alias(S.ARTICLE_ID))
    _check_ids(news, NEWS_ID, S.ARTICLE_ID, news_path)
    categories = news["category"].unique().sort().to_list()
    articles = news.select(
        S.ARTICLE_ID,
        pl.col("title").fill_null("").alias(S.TITLE),
        pl.col("abstract").alias(S.SUBTITLE),
        pl.col("category").replace_strict(categories, range(len(categories)), return_dtype=pl.Int16).alias(S.CATEGORY),
        pl.col("category").alias(S.CATEGORY_STR),
        pl.col("subcategory").alias(SUBCATEGORY_STR),
        "url",
        NEWS_ID,
    ).unique(S.ARTICLE_ID, keep="first", maintain_order=True)

    raw = _read_tsv(behaviors_path, BEHAVIOR_COLUMNS)
    raw = raw.with_columns(_numeric_id("user_id", "U", pl.UInt32).alias("uid"))
    _check_ids(raw, "user_id", "uid", behaviors_path)
    pairs = pl.col("impressions").str.split(" ")
    news_int = pl.element().str.extract(r"^N(\d+)", 1).cast(pl.Int32)
    has_labels = raw.height > 0 and "-" in (raw["impressions"][0] or "")
    clicked = (
        pairs.list.eval(pl.element().filter(pl.element().str.ends_with("-1")).str.extract(r"^N(\d+)", 1).cast(pl.Int32))
        if has_labels
        else pl.lit(None, dtype=pl.List(pl.Int32))
    )
    behaviors = raw.select(
        pl.col("impression_id").cast(pl.UInt32).alias(S.IMPRESSION_ID),
        pl.col("uid").alias(S.USER_ID),
        pl.col("time").str.strptime(S.DT, TIME_FORMAT).alias(S.IMPRESSION_TIME),
        pairs.list.eval(news_int).alias(S.INVIEW),
        clicked.alias(S.CLICKED),
    )
    # MIND repeats the user's (fixed) history on each behaviors row; keep one per user.
    history = (
        raw.group_by("uid", maintain_order=True)
        .agg(pl.col("history").first(), pl.col("user_id").first().alias(MIND_USER_ID))
        .select(
            pl.col("uid").alias(S.USER_ID),
            pl.col("history").fill_null("").str.split(" ").list.eval(news_int.drop_nulls()).alias(S.HIST_ARTICLE),
            MIND_USER_ID,
        )
    )
    return NewsTables(articles.lazy(), behaviors.lazy(), history.lazy(), source="mind")


# --- synthetic MIND ---------------------------------------------------------

TOPIC_WORDS = {
    "sports": ["Coach", "Playoff", "Quarterback", "Championship", "Striker", "Season", "Stadium", "Rookie", "Tournament", "Referee"],
    "finance": ["Stocks", "Inflation", "Mortgage", "Investors", "Earnings", "Dividend", "Bond", "Market", "Budget", "Startup"],
    "health": ["Vaccine", "Diet", "Hospital", "Sleep", "Fitness", "Doctors", "Virus", "Therapy", "Nutrition", "Clinic"],
    "politics": ["Senate", "Election", "Governor", "Congress", "Campaign", "Voters", "Policy", "Ballot", "Debate", "Mayor"],
    "travel": ["Beaches", "Airline", "Island", "Hotel", "Passport", "Cruise", "Mountains", "Resort", "Itinerary", "Tourists"],
    "food": ["Recipe", "Bakery", "Pasta", "Chef", "Dessert", "Barbecue", "Cheese", "Kitchen", "Soup", "Vegan"],
    "autos": ["Pickup", "Sedan", "Engine", "Dealership", "Electric", "Horsepower", "Recall", "Hybrid", "Tires", "Roadster"],
    "weather": ["Storm", "Snowfall", "Heatwave", "Forecast", "Hurricane", "Flooding", "Tornado", "Frost", "Rainfall", "Drought"],
}
_VERBS = ["surprises", "returns to", "faces", "breaks", "wins over", "rethinks", "changes", "tops"]
_ENDINGS = ["this week", "again", "in record time", "after years", "for the first time", "amid doubts"]


def write_synthetic_mind(
    out: str | Path,
    num_news: int = 400,
    num_users: int = 200,
    num_impressions: int = 600,
    seed: int = 0,
) -> Path:
    """Write ``out/news.tsv`` and ``out/behaviors.tsv``: a small labelled MIND split.

    Each user likes one or two topics; 80% of their history and of their
    clicks come from those topics, so a recommender that reads titles can beat
    random. Every impression has 12-20 in-view articles and 1-2 clicks.
    """
    rng = np.random.default_rng(seed)
    topics = list(TOPIC_WORDS)
    news_topic = rng.integers(len(topics), size=num_news)
    ids = np.arange(1, num_news + 1) * 7 + 10000  # MIND-like sparse ids
    w = rng.integers(10, size=(num_news, 2))
    verb = rng.integers(len(_VERBS), size=num_news)
    end = rng.integers(len(_ENDINGS), size=num_news)
    news_rows = []
    for i in range(num_news):
        words = TOPIC_WORDS[topics[news_topic[i]]]
        title = f"{words[w[i, 0]]} {_VERBS[verb[i]]} {words[w[i, 1]].lower()} {_ENDINGS[end[i]]}"
        news_rows.append("\t".join([
            f"N{ids[i]}", topics[news_topic[i]], f"{topics[news_topic[i]]}news", title,
            f"About {title.lower()}.", f"https://example.com/N{ids[i]}", "[]", "[]",
        ]))

    liked = [rng.choice(len(topics), size=rng.integers(1, 3), replace=False) for _ in range(num_users)]

    def pick(u: int, k: int, pool: np.ndarray | None = None) -> np.ndarray:
        pool = np.arange(num_news) if pool is None else pool
        fav = np.isin(news_topic[pool], liked[u])
        p = np.where(fav, 0.8 / max(fav.sum(), 1), 0.2 / max((~fav).sum(), 1))
        return pool[rng.choice(len(pool), size=k, replace=False, p=p / p.sum())]

    histories = [pick(u, int(rng.integers(5, 16))) for u in range(num_users)]
    behavior_rows = []
    for imp in range(1, num_impressions + 1):
        u = int(rng.integers(num_users))
        inview = rng.choice(num_news, size=int(rng.integers(12, 21)), replace=False)
        clicks = set(pick(u, int(rng.integers(1, 3)), inview).tolist())
        labelled = " ".join(f"N{ids[a]}-{int(a in clicks)}" for a in inview)
        minute = imp % 60
        behavior_rows.append("\t".join([
            str(imp), f"U{u + 1}", f"11/{11 + imp % 5}/2019 {1 + imp % 12}:{minute:02d}:00 {'AM' if imp % 2 else 'PM'}",
            " ".join(f"N{ids[a]}" for a in histories[u]), labelled,
        ]))

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("news.tsv", news_rows), ("behaviors.tsv", behavior_rows)):
        with atomic_path(out / name) as tmp:
            tmp.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out


# --- MIND as an EB-NeRD folder ----------------------------------------------


def _with_schema(df: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """``df`` cast to ``schema``, missing columns as nulls, schema columns first."""
    missing = [pl.lit(None, dtype=t).alias(c) for c, t in schema.items() if c not in df.columns]
    df = df.with_columns(missing).with_columns([pl.col(c).cast(t) for c, t in schema.items()])
    return df.select(*schema, *(c for c in df.columns if c not in schema))


def write_ebnerd_layout(mind_dir: str | Path, out: str | Path, split: str) -> Path:
    """Write a MIND split as ``out/articles.parquet`` and ``out/<split>/{behaviors,history}.parquet``.

    Official EB-NeRD column names and dtypes, so ``recsys24 prepare``, the
    baselines and evaluation run on MIND unchanged. Columns MIND lacks are
    null (history times too: MIND does not record them); ``news_id`` and
    ``mind_user_id`` keep the original ids. Articles of several converted
    splits accumulate in one articles.parquet.
    """
    if split not in S.SPLITS:
        raise DataError(f"unknown split '{split}' (expected one of {', '.join(S.SPLITS)})")
    tables = mind_tables(mind_dir)
    out = Path(out)
    subcats = pl.col(SUBCATEGORY_STR).rank("dense").cast(pl.Int16)
    articles = _with_schema(
        tables.articles.with_columns(pl.concat_list(subcats).alias(S.SUBCATEGORY)).collect(), S.ARTICLES_SCHEMA
    )
    if (out / "articles.parquet").is_file():
        old = pl.read_parquet(out / "articles.parquet")
        articles = pl.concat([old, articles], how="diagonal_relaxed").unique(S.ARTICLE_ID, keep="first", maintain_order=True)
    behaviors = tables.behaviors.collect()
    if split == "test":
        behaviors = behaviors.drop(S.CLICKED).with_columns(pl.lit(False).alias(S.IS_BEYOND_ACCURACY))
    elif behaviors[S.CLICKED].null_count():
        raise DataError(f"{mind_dir}: behaviors have no click labels; convert it as split 'test'")
    history = tables.history.collect().with_columns(
        pl.col(S.HIST_ARTICLE).list.eval(pl.lit(None, dtype=S.DT)).alias(S.HIST_TIME),
    )
    write_parquet(articles, out / "articles.parquet")
    write_parquet(_with_schema(behaviors, S.behaviors_schema(split)), out / split / "behaviors.parquet")
    write_parquet(_with_schema(history, S.HISTORY_SCHEMA), out / split / "history.parquet")
    return out
