"""Prompt templates a–e in Danish (default) and English.

Templates a–d ask about one candidate (CG, CGc, QA); e lists all in-view
candidates (QA+). With T = 2 history articles the Danish forms read::

    a  En bruger har for nylig læst disse artikler: <titel 1>, <titel 2>. Vil brugeren læse <titel>? ja / nej
    b  … the same with subtitles
    c  … <kategori>: <titel>, …            (category + title)
    d  … (3 dage før) <titel 1>, (5 timer før) <titel 2>. Vil brugeren læse <titel>? ja / nej
    e  En bruger har for nylig læst disse artikler: <titel 1>, <titel 2>. Hvilke af følgende artikler vil brugeren læse: <kandidat 1>, …, <kandidat N>?

In d, "(3 dage før)" is how long before the candidate the history article was
published ("efter" when it came out after the candidate). In e, an ``age`` field
(not on by default) is measured against the impression time instead. A user
without history reads "(ingen)". English swaps the words: "A user has recently
read these articles: … Will the user read …? yes / no".

The article fields of each template are a default; ``PromptConfig.fields``
overrides them (``title``, ``subtitle``, ``category``, ``age``).
"""

from __future__ import annotations

from dataclasses import dataclass

TEMPLATES = ("a", "b", "c", "d", "e")
PAIR_TEMPLATES = ("a", "b", "c", "d")  # one candidate per prompt
LIST_TEMPLATES = ("e",)  # all in-view candidates in one prompt
LANGUAGES = ("da", "en")
TEXT_FIELDS = ("title", "subtitle", "category")
FIELDS = TEXT_FIELDS + ("age",)

DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "a": ("title",),
    "b": ("subtitle",),
    "c": ("category", "title"),
    "d": ("age", "title"),
    "e": ("title",),
}

# The fixed words of every template. A piece starting with a space begins a new
# word; one without (",", ".", "?") is glued to the token before it.
WORDS: dict[str, dict[str, str]] = {
    "da": {
        "prefix": "En bruger har for nylig læst disse artikler:",
        "sep": ",",
        "end_history": ".",
        "no_history": " (ingen)",
        "question": " Vil brugeren læse",
        "question_list": " Hvilke af følgende artikler vil brugeren læse:",
        "question_end": "?",
        "yes": " ja",
        "or": " /",
        "no": " nej",
        "empty": " -",
    },
    "en": {
        "prefix": "A user has recently read these articles:",
        "sep": ",",
        "end_history": ".",
        "no_history": " (none)",
        "question": " Will the user read",
        "question_list": " Which of the following articles will the user read:",
        "question_end": "?",
        "yes": " yes",
        "or": " /",
        "no": " no",
        "empty": " -",
    },
}

# Publish-time differences are cut into a few phrases, tokenised once per run:
# under an hour, 1–23 hours, 1–30 days, over 30 days; before or after; unknown.
MAX_DAYS = 30
NUM_AGE_BUCKETS = 1 + 23 + MAX_DAYS + 1  # per direction
MISSING_TIME = -(2**63)  # int64 stand-in for a null timestamp or difference


def _age_words(language: str, bucket: int, after: bool) -> str:
    if language == "da":
        when = "efter" if after else "før"
        if bucket == 0:
            amount = "under 1 time"
        elif bucket < 24:
            amount = f"{bucket} time" if bucket == 1 else f"{bucket} timer"
        elif bucket < 24 + MAX_DAYS:
            d = bucket - 23
            amount = f"{d} dag" if d == 1 else f"{d} dage"
        else:
            amount = f"over {MAX_DAYS} dage"
    else:
        when = "after" if after else "before"
        if bucket == 0:
            amount = "under 1 hour"
        elif bucket < 24:
            amount = f"{bucket} hour" if bucket == 1 else f"{bucket} hours"
        elif bucket < 24 + MAX_DAYS:
            d = bucket - 23
            amount = f"{d} day" if d == 1 else f"{d} days"
        else:
            amount = f"over {MAX_DAYS} days"
    return f" ({amount} {when})"


def age_phrases(language: str) -> list[str]:
    """All time-difference phrases: ``NUM_AGE_BUCKETS`` "before", as many "after", then "unknown"."""
    unknown = " (ukendt tid)" if language == "da" else " (unknown time)"
    return (
        [_age_words(language, b, after=False) for b in range(NUM_AGE_BUCKETS)]
        + [_age_words(language, b, after=True) for b in range(NUM_AGE_BUCKETS)]
        + [unknown]
    )


def age_phrase_index(diff_us):
    """Phrase index (into :func:`age_phrases`) of each time difference in µs (numpy int64).

    Positive = the article came out before the reference time. Differences
    marked missing (``None`` rows become ``MISSING_TIME``) map to "unknown".
    """
    import numpy as np

    diff_us = np.asarray(diff_us, dtype=np.int64)
    missing = diff_us == MISSING_TIME
    hours = np.abs(diff_us) // 3_600_000_000
    days = hours // 24
    bucket = np.where(hours < 24, hours, np.where(days <= MAX_DAYS, 23 + days, 24 + MAX_DAYS))
    index = bucket + np.where(diff_us < 0, NUM_AGE_BUCKETS, 0)
    return np.where(missing, 2 * NUM_AGE_BUCKETS, index)



@dataclass(frozen=True)
class PromptConfig:
    """How prompts are built: the ``prompt`` section of a config file.

    template: a–e. language: ``da`` or ``en``. history_size: T, the user's last
    T articles (oldest dropped first when the prompt is too long). clip_chars:
    each title/subtitle is cut to this many characters before tokenising.
    fields: article fields shown (``None`` = the template's default).
    max_length: prompt length in tokens, end-of-sequence included.
    """

    template: str = "d"
    language: str = "da"
    history_size: int = 4
    clip_chars: int = 60
    fields: tuple[str, ...] | None = None
    max_length: int = 256

    def __post_init__(self):
        from recsys24.errors import Recsys24Error

        if self.template not in TEMPLATES:
            raise Recsys24Error(f"prompt template {self.template!r}: expected one of {', '.join(TEMPLATES)}")
        if self.language not in LANGUAGES:
            raise Recsys24Error(f"prompt language {self.language!r}: expected one of {', '.join(LANGUAGES)}")
        if self.fields is not None:
            object.__setattr__(self, "fields", tuple(self.fields))
            bad = [f for f in self.fields if f not in FIELDS]
            if bad or not self.fields:
                raise Recsys24Error(f"prompt fields {list(self.fields)}: each must be one of {', '.join(FIELDS)}")
        if self.history_size < 0 or self.clip_chars < 1 or self.max_length < 16:
            raise Recsys24Error(
                "prompt: need history_size >= 0, clip_chars >= 1 and max_length >= 16 "
                f"(got {self.history_size}, {self.clip_chars}, {self.max_length})"
            )

    @property
    def article_fields(self) -> tuple[str, ...]:
        """Fields shown for a history article."""
        return self.fields or DEFAULT_FIELDS[self.template]

    @property
    def candidate_fields(self) -> tuple[str, ...]:
        """Fields shown for a candidate. In a–d the age is relative to the candidate, so it is left out."""
        if self.is_list:
            return self.article_fields
        fields = tuple(f for f in self.article_fields if f != "age")
        return fields or ("title",)

    @property
    def is_list(self) -> bool:
        """True for template e: one prompt lists all candidates of an impression."""
        return self.template in LIST_TEMPLATES

    def to_dict(self) -> dict:
        return {
            "template": self.template,
            "language": self.language,
            "history_size": self.history_size,
            "clip_chars": self.clip_chars,
            "fields": list(self.fields) if self.fields is not None else None,
            "max_length": self.max_length,
        }


def template_texts(language: str) -> list[str]:
    """Every fixed text of the templates in ``language`` (for training an offline tokenizer)."""
    return [w.strip() for w in WORDS[language].values()] + [p.strip() for p in age_phrases(language)]
