"""Synthetic articles: categories, Danish-looking text and articles.parquet.

Each category has its own content words (a few real Danish seed words plus
words built from Danish syllables), so article text carries its category and a
model can learn topic preferences from titles alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recsys24.data import schema as S
from recsys24.io import atomic_path

US_PER_DAY = 86_400_000_000

# (category id, category_str, seed words) — 32 categories, as in EB-NeRD.
CATEGORIES: list[tuple[int, str, tuple[str, ...]]] = [
    (118, "nyheder", ("regeringen", "politiet", "borgere", "kommune", "minister", "valg")),
    (142, "sport", ("fodbold", "landsholdet", "kamp", "mål", "træner", "superligaen")),
    (414, "underholdning", ("kendis", "skuespiller", "serie", "premiere", "stjerne", "fest")),
    (140, "krimi", ("drab", "anholdt", "retten", "tyveri", "efterforskning", "fængsel")),
    (2077, "forbrug", ("tilbud", "priser", "butik", "forbrugere", "varer", "rabat")),
    (2975, "musik", ("koncert", "album", "sanger", "festival", "band", "hitliste")),
    (2889, "nationen", ("læsere", "debat", "mening", "danskerne", "holdning", "afstemning")),
    (512, "side9", ("pige", "sommer", "smil", "solskin", "fotograf", "model")),
    (1563, "biler", ("elbil", "motor", "trafik", "bilister", "benzin", "motorvej")),
    (565, "sex_og_samliv", ("kærlighed", "parforhold", "kæreste", "dating", "forelsket", "brud")),
    (457, "penge", ("aktier", "renten", "banken", "skat", "opsparing", "lån")),
    (2, "dagsorden", ("samfund", "analyse", "baggrund", "udvikling", "tendens", "forskere")),
    (539, "vejret", ("regn", "storm", "varme", "sne", "prognose", "temperatur")),
    (2456, "om_ekstra_bladet", ("redaktionen", "avisen", "journalist", "læser", "rettelse", "abonnenter")),
    (1, "abonnement", ("medlem", "fordele", "tilmelding", "pris", "adgang", "konto")),
    (5, "haandvaerkeren", ("håndværker", "renovering", "tag", "badeværelse", "værktøj", "byggeri")),
    (29, "podcast", ("episode", "lyt", "vært", "samtale", "gæst", "afsnit")),
    (8, "incoming", ("nyhed", "opdatering", "melding", "besked", "seneste", "live")),
    (1001, "tilavis", ("tilbudsavis", "ugens", "kupon", "indkøb", "supermarked", "kampagne")),
    (1094, "webtv", ("video", "klip", "optagelse", "udsendelse", "kamera", "direkte")),
    (2300, "plus", ("eksklusiv", "afsløring", "historie", "interview", "portræt", "reportage")),
    (99, "migration_catalog", ("arkiv", "katalog", "samling", "oversigt", "register", "liste")),
    (1541, "auto", ("bilsalg", "test", "model", "hestekræfter", "forhandler", "værksted")),
    (1323, "rejser", ("ferie", "strand", "hotel", "fly", "rejsemål", "udlandet")),
    (315, "eblive", ("livestream", "studie", "vært", "seere", "udsendelse", "program")),
    (2080, "video", ("optagelser", "skærm", "film", "klippet", "viser", "se")),
    (1320, "ferie", ("sommerhus", "campingplads", "badeland", "charter", "bagage", "sol")),
    (123, "bolig", ("hus", "lejlighed", "boligmarked", "ejendom", "husleje", "køber")),
    (2901, "opinionen", ("kronik", "leder", "kommentar", "synspunkt", "kritik", "debattør")),
    (776, "horoskoper", ("stjernetegn", "horoskop", "vædder", "tyren", "skæbne", "fremtid")),
    (1711, "krydsord", ("krydsord", "opgave", "løsning", "gåde", "spil", "vinder")),
    (2013, "kultur", ("teater", "bog", "forfatter", "museum", "udstilling", "kunst")),
]

COMMON_WORDS = (
    "og i det at en den til er som på de med han af for ikke der var mig sig men "
    "et har om vi min havde ham hun nu over da fra du ud sin dem os op man hans "
    "hvor eller hvad skal selv her alle vil blev kunne ind når være dog noget ville "
    "jo deres efter ned skulle denne end dette mit også under have dig anden hende "
    "mine alt meget sit sine vor mod disse hvis din nogle hos blive mange ad bliver "
    "hendes været thi jer sådan nyt stor ny første sidste dag år tid danske dansk "
    "københavn aarhus odense aalborg jylland fyn sjælland efter nu igen aldrig altid"
).split()

_ONSETS = ("b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "sk", "st", "kr", "tr", "bl", "fr")
_VOWELS = ("a", "e", "i", "o", "u", "y", "æ", "ø", "å")
_CODAS = ("", "n", "r", "l", "d", "t", "s", "ng", "nd", "rt", "lse", "hed", "ning", "else")


def category_vocabularies(rng: np.random.Generator, words_per_category: int = 60) -> list[list[str]]:
    """One list of content words per category: its seed words plus syllable words."""
    vocabs = []
    for _, _, seeds in CATEGORIES:
        words = list(seeds)
        while len(words) < words_per_category:
            n_syll = int(rng.integers(2, 4))
            word = "".join(
                rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(n_syll)
            ) + str(rng.choice(_CODAS))
            if word not in words:
                words.append(word)
        vocabs.append(words)
    return vocabs


def make_texts(
    rng: np.random.Generator,
    categories: np.ndarray,
    vocabs: list[list[str]],
    lengths: tuple[int, int],
    topical_share: float,
    capitalize: bool = True,
) -> list[str]:
    """One text per article: ``lengths`` words, ``topical_share`` of them from its category."""
    n = categories.size
    n_words = rng.integers(lengths[0], lengths[1] + 1, size=n)
    width = int(n_words.max())
    topical = rng.random((n, width)) < topical_share
    common_idx = rng.integers(0, len(COMMON_WORDS), size=(n, width))
    topic_idx = rng.integers(0, min(len(v) for v in vocabs), size=(n, width))
    texts = []
    for i in range(n):
        vocab = vocabs[categories[i]]
        words = [
            vocab[topic_idx[i, j]] if topical[i, j] else COMMON_WORDS[common_idx[i, j]]
            for j in range(n_words[i])
        ]
        text = " ".join(words)
        texts.append(text[:1].upper() + text[1:] if capitalize else text)
    return texts


def nullable(values: np.ndarray, null_share: float, rng: np.random.Generator, type_) -> pa.Array:
    mask = rng.random(values.size) < null_share
    return pa.array(values, type=type_, mask=mask)


def list_array(offsets: np.ndarray, values: pa.Array | np.ndarray, type_=None) -> pa.ListArray:
    if not isinstance(values, pa.Array):
        values = pa.array(values, type=type_)
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values)


def write_articles(w, rng: np.random.Generator, path: Path, tags: dict | None = None) -> None:
    """Write articles.parquet for the articles of ``w`` (a synth.World), in the official schema.

    ``tags``: topics and entities a click model defines (``synth_clicks.TopicModel``):
    ``{"topics": (offsets, codes, names), "entities": (offsets, codes into the 10 entity names)}``.
    """
    n = w.article_ids.size
    vocabs = category_vocabularies(rng)
    cat_ids = np.array([c[0] for c in CATEGORIES], dtype=np.int16)
    cat_strs = np.array([c[1] for c in CATEGORIES], dtype=object)
    titles = make_texts(rng, w.category_index, vocabs, (4, 10), 0.6)
    subtitles = make_texts(rng, w.category_index, vocabs, (8, 18), 0.5)
    bodies = make_texts(rng, w.category_index, vocabs, (30, 80), 0.4)
    # 263 subcategories: ~8 per category; each article lists 0-2 of its category's.
    n_sub = rng.integers(0, 3, size=n)
    sub_off = np.concatenate([[0], np.cumsum(n_sub)])
    sub_vals = (w.category_index.repeat(n_sub) * 8 + rng.integers(0, 8, size=n_sub.sum()) + 200)
    topic_vocab = [f"{c[1]}_{t}" for c in CATEGORIES for t in ("aktuelt", "baggrund", "portræt")]
    n_topics = rng.integers(1, 4, size=n)
    top_off = np.concatenate([[0], np.cumsum(n_topics)])
    top_vals = np.array(topic_vocab, dtype=object)[
        w.category_index.repeat(n_topics) * 3 + rng.integers(0, 3, size=n_topics.sum())
    ]
    n_ner = rng.integers(0, 4, size=n)
    ner_off = np.concatenate([[0], np.cumsum(n_ner)])
    names = np.array(["Mette Frederiksen", "FC København", "Brøndby", "Aarhus", "Politiet",
                      "Lars Løkke", "Novo Nordisk", "DSB", "Tivoli", "Christian Eriksen"], dtype=object)
    groups = np.array(["PER", "ORG", "ORG", "LOC", "ORG", "PER", "ORG", "ORG", "LOC", "PER"], dtype=object)
    ner_idx = rng.integers(0, names.size, size=n_ner.sum())
    if tags is not None:  # drawn above all the same, so every other column stays as without tags
        top_off, top_codes, top_names = tags["topics"]
        top_vals = top_names[top_codes]
        ner_off, ner_idx = tags["entities"]
    n_img = rng.integers(0, 4, size=n)
    img_off = np.concatenate([[0], np.cumsum(n_img)])
    sentiment = rng.choice(np.array(["Negative", "Neutral", "Positive"], dtype=object), size=n, p=[0.4, 0.35, 0.25])
    inviews = (w.popularity * 5000 * rng.lognormal(0, 0.3, size=n)).astype(np.int32)
    pageviews = (inviews * rng.uniform(0.05, 0.3, size=n)).astype(np.int32)
    table = pa.table(
        {
            S.ARTICLE_ID: pa.array(w.article_ids, pa.int32()),
            S.TITLE: pa.array(titles, pa.string()),
            S.SUBTITLE: pa.array(subtitles, pa.string()),
            "last_modified_time": pa.array(
                w.published_us + rng.integers(0, 3 * US_PER_DAY, size=n), pa.timestamp("us")
            ),
            "premium": pa.array(rng.random(n) < 0.15),
            S.BODY: pa.array(bodies, pa.string()),
            S.PUBLISHED_TIME: pa.array(w.published_us, pa.timestamp("us")),
            "image_ids": list_array(img_off, rng.integers(10**6, 10**7, size=n_img.sum()), pa.int64()),
            "article_type": pa.array(
                rng.choice(np.array(["article_default", "article_video_standalone"], dtype=object), size=n, p=[0.93, 0.07]),
                pa.string(),
            ),
            "url": pa.array([f"https://ekstrabladet.dk/a/{i}" for i in w.article_ids], pa.string()),
            "ner_clusters": list_array(ner_off, names[ner_idx], pa.string()),
            "entity_groups": list_array(ner_off, groups[ner_idx], pa.string()),
            S.TOPICS: list_array(top_off, top_vals, pa.string()),
            S.CATEGORY: pa.array(cat_ids[w.category_index], pa.int16()),
            S.SUBCATEGORY: list_array(sub_off, sub_vals.astype(np.int16), pa.int16()),
            S.CATEGORY_STR: pa.array(cat_strs[w.category_index], pa.string()),
            S.TOTAL_INVIEWS: nullable(inviews, 0.3, rng, pa.int32()),
            S.TOTAL_PAGEVIEWS: nullable(pageviews, 0.3, rng, pa.int32()),
            S.TOTAL_READ_TIME: nullable((pageviews * 40.0).astype(np.float32), 0.3, rng, pa.float32()),
            S.SENTIMENT_SCORE: pa.array(rng.uniform(0.5, 1.0, size=n).astype(np.float32), pa.float32()),
            S.SENTIMENT_LABEL: pa.array(sentiment, pa.string()),
        }
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
