"""Architecture name -> class, for every family behind :class:`recsys24.models.contract.Model`.

A new architecture is one new file in its family's folder and one line here; a
new family is one new folder and its lines here.
"""

from __future__ import annotations

from recsys24.errors import Recsys24Error
from recsys24.models.contract import Model, use_registry
from recsys24.models.neural.dkn import DKN
from recsys24.models.neural.lstur import LSTUR
from recsys24.models.neural.naml import NAML
from recsys24.models.neural.npa import NPA
from recsys24.models.neural.nrms import NRMS
from recsys24.models.prompt.cg import CG
from recsys24.models.prompt.cgc import CGc
from recsys24.models.prompt.cgh import CGh
from recsys24.models.prompt.qa import QA
from recsys24.models.prompt.qa_plus import QAPlus

ARCHITECTURES: dict[str, type[Model]] = {
    # the prompt family: mT5 over templates a–e (recsys24/models/prompt/)
    "cg": CG,
    "cgc": CGc,
    "cgh": CGh,
    "qa": QA,
    "qa+": QAPlus,
    # the neural family: news-recommendation networks on word embeddings (recsys24/models/neural/)
    "nrms": NRMS,
    "naml": NAML,
    "lstur": LSTUR,
    "npa": NPA,
    "dkn": DKN,
}

# Scorers of another kind: not trained by `recsys24 train` on prepared rows, so not a Model.
OTHER_SCORERS: dict[str, str] = {
    "lgbm": "the LightGBM ranker scores a features folder (recsys24 features), not prepared rows: "
            "train and apply it with `recsys24 rank train` and `recsys24 rank predict` (recsys24/ranking/)",
}


def architecture(name: str) -> type[Model]:
    """The class registered as ``name`` (cg, cgc, cgh, qa, qa+, nrms, naml, lstur, npa, dkn)."""
    try:
        return ARCHITECTURES[name.lower()]
    except KeyError:
        if name.lower() in OTHER_SCORERS:
            raise Recsys24Error(f"architecture {name!r}: {OTHER_SCORERS[name.lower()]}") from None
        raise Recsys24Error(f"unknown architecture {name!r}: expected one of {', '.join(ARCHITECTURES)}") from None


use_registry(architecture)  # Model.from_pretrained(DIR) finds the folder's class here
