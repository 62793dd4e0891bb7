"""Architecture name -> class. A new architecture is one new file and one line here."""

from __future__ import annotations

from recsys24.errors import Recsys24Error
from recsys24.models.base import Recommender
from recsys24.models.cg import CG
from recsys24.models.cgc import CGc
from recsys24.models.cgh import CGh
from recsys24.models.qa import QA
from recsys24.models.qa_plus import QAPlus

ARCHITECTURES: dict[str, type[Recommender]] = {
    "cg": CG,
    "cgc": CGc,
    "cgh": CGh,
    "qa": QA,
    "qa+": QAPlus,
}


def architecture(name: str) -> type[Recommender]:
    """The class registered as ``name`` (cg, cgc, cgh, qa, qa+)."""
    try:
        return ARCHITECTURES[name.lower()]
    except KeyError:
        raise Recsys24Error(f"unknown architecture {name!r}: expected one of {', '.join(ARCHITECTURES)}") from None
