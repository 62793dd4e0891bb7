"""MIND news.tsv / behaviors.tsv into the EB-NeRD-named tables, and synthetic MIND."""

import polars as pl
import pytest

from recsys24.data import schema as S
from recsys24.data.mind import mind_tables, write_synthetic_mind
from recsys24.errors import DataError

NEWS = (
    "N55528\tlifestyle\tlifestyleroyals\tThe Brands Queen Elizabeth Prince Charles Love\tShop the royal favourites.\thttps://assets.msn.com/N55528\t[]\t[]\n"
    "N19639\thealth\tweightloss\t50 Worst Habits For Belly Fat\tThese seemingly harmless habits...\thttps://assets.msn.com/N19639\t[]\t[]\n"
    "N61837\tnews\tnewsworld\tThe Cost of Trump's Aid Freeze\t\thttps://assets.msn.com/N61837\t[]\t[]\n"
)
BEHAVIORS = (
    "1\tU13740\t11/11/2019 9:05:58 AM\tN55528 N19639\tN61837-0 N55528-1 N19639-0\n"
    "2\tU91836\t11/12/2019 6:11:30 PM\t\tN19639-1 N61837-1\n"
    "3\tU13740\t11/13/2019 12:01:02 AM\tN55528 N19639\tN61837-0 N19639-1\n"
)


def write(dir_, news=NEWS, behaviors=BEHAVIORS):
    dir_.mkdir(exist_ok=True)
    (dir_ / "news.tsv").write_text(news)
    (dir_ / "behaviors.tsv").write_text(behaviors)
    return dir_


def test_mind_reads_into_ebnerd_names_and_keeps_the_id_mapping(tmp_path):
    t = mind_tables(write(tmp_path / "mind"))
    articles = t.articles.collect()
    assert articles[S.ARTICLE_ID].dtype == pl.Int32
    assert articles.select(S.ARTICLE_ID, "news_id").rows() == [(55528, "N55528"), (19639, "N19639"), (61837, "N61837")]
    assert articles[S.TITLE][2] == "The Cost of Trump's Aid Freeze"
    assert articles[S.CATEGORY_STR].to_list() == ["lifestyle", "health", "news"]

    b = t.behaviors.collect()
    assert dict(b.schema) == {S.IMPRESSION_ID: pl.UInt32, S.USER_ID: pl.UInt32, S.IMPRESSION_TIME: S.DT,
                              S.INVIEW: pl.List(pl.Int32), S.CLICKED: pl.List(pl.Int32)}
    assert b[S.USER_ID].to_list() == [13740, 91836, 13740]
    assert b[S.INVIEW][0].to_list() == [61837, 55528, 19639]
    assert b[S.CLICKED].to_list() == [[55528], [19639, 61837], [19639]]
    assert str(b[S.IMPRESSION_TIME][1]) == "2019-11-12 18:11:30"

    h = t.history.collect().sort(S.USER_ID)
    assert h.rows() == [(13740, [55528, 19639], "U13740"), (91836, [], "U91836")]


def test_mind_test_split_without_labels_has_null_clicks(tmp_path):
    t = mind_tables(write(tmp_path / "mind", behaviors="1\tU1\t11/15/2019 8:55:22 AM\tN55528\tN61837 N19639\n"))
    b = t.behaviors.collect()
    assert b[S.INVIEW][0].to_list() == [61837, 19639] and b[S.CLICKED][0] is None


def test_mind_refuses_ids_it_cannot_map(tmp_path):
    with pytest.raises(DataError, match="news_id.*X55528"):
        mind_tables(write(tmp_path / "mind", news=NEWS.replace("N55528", "X55528", 1)))
    with pytest.raises(DataError, match="missing file"):
        mind_tables(tmp_path / "nowhere")


def test_synthetic_mind_has_english_titles_and_clicks_follow_history_topics(tmp_path):
    t = mind_tables(write_synthetic_mind(tmp_path / "synth", seed=1))
    articles = t.articles.collect()
    b = t.behaviors.collect()
    assert b.height == 600 and (b[S.CLICKED].list.len() >= 1).all()
    assert articles[S.TITLE].str.contains(r"^[A-Z][a-z]+ [a-z ]+$").all()
    # planted signal: clicked articles share their topic with the user's history more than the rest
    topic = dict(articles.select(S.ARTICLE_ID, S.CATEGORY_STR).iter_rows())
    hist = {u: {topic[a] for a in ids} for u, ids in t.history.collect().select(S.USER_ID, S.HIST_ARTICLE).iter_rows()}
    rows = b.select(S.USER_ID, S.INVIEW, S.CLICKED).iter_rows()
    hit_clicked, hit_other = [], []
    for u, inview, clicked in rows:
        for a in inview:
            (hit_clicked if a in clicked else hit_other).append(topic[a] in hist[u])
    assert sum(hit_clicked) / len(hit_clicked) > 1.5 * sum(hit_other) / len(hit_other)  # 0.80 vs 0.40


def test_mind_converted_to_ebnerd_layout_prepares_and_samples_like_mind(cli, tmp_path):
    from recsys24.data.prepared import open_prepared
    from recsys24.data.split import open_split
    from recsys24.data.tables import ebnerd_tables
    from recsys24.recprompt.sampling import sample_impressions

    mind = write_synthetic_mind(tmp_path / "mind", seed=4)
    assert cli("mind-convert", "--mind", mind, "--split", "train", "--out", tmp_path / "eb").exit_code == 0
    assert cli("mind-convert", "--mind", write(tmp_path / "hand"), "--split", "validation",
               "--out", tmp_path / "eb").exit_code == 0
    assert open_split(tmp_path / "eb", "train").num_rows == 600  # official names and dtypes
    articles = pl.read_parquet(tmp_path / "eb" / "articles.parquet")
    assert articles.filter(pl.col("news_id") == "N55528")[S.TITLE][0].startswith("The Brands")  # both splits kept

    result = cli("prepare", "--data", tmp_path / "eb", "--split", "train", "--out", tmp_path / "prep")
    assert result.exit_code == 0, result.output
    assert open_prepared(tmp_path / "prep").num_impressions == 600

    via_ebnerd = sample_impressions(ebnerd_tables(tmp_path / "eb", "train"), 20, 30, seed=5)
    via_mind = sample_impressions(mind_tables(mind), 20, 30, seed=5)
    assert all(a.equals(b) for a, b in zip(via_ebnerd, via_mind))
