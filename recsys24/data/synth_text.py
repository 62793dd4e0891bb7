"""Danish-looking article text for the synthetic EB-NeRD: categories and vocabularies.

Each category has its own content words (a few real Danish seed words plus
words built from Danish syllables), so article text carries its category and a
model can learn topic preferences from titles alone.
"""

from __future__ import annotations

import numpy as np

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
