"""Architecture name -> class. A new architecture is one new file and one line here."""

from __future__ import annotations

from recsys24.errors import Recsys24Error
from recsys24.models.base import Recommender
from recsys24.models.cg import CG
from recsys24.models.cgc import CGc
from recsys24.models.cgh import CGh
from recsys24.models.neural.dkn import DKN
from recsys24.models.neural.lstur import LSTUR
from recsys24.models.neural.naml import NAML
from recsys24.models.neural.npa import NPA
from recsys24.models.neural.nrms import NRMS
from recsys24.models.qa import QA
from recsys24.models.qa_plus import QAPlus

ARCHITECTURES: dict[str, type[Recommender]] = {
    "cg": CG,
    "cgc": CGc,
    "cgh": CGh,
    "qa": QA,
    "qa+": QAPlus,
    # neural news-recommendation baselines (recsys24/models/neural/)
    "nrms": NRMS,
    "naml": NAML,
    "lstur": LSTUR,
    "npa": NPA,
    "dkn": DKN,
}


def architecture(name: str) -> type[Recommender]:
    """The class registered as ``name`` (cg, cgc, cgh, qa, qa+, nrms, naml, lstur, npa, dkn)."""
    try:
        return ARCHITECTURES[name.lower()]
    except KeyError:
        raise Recsys24Error(f"unknown architecture {name!r}: expected one of {', '.join(ARCHITECTURES)}") from None
