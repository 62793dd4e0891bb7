"""The interface every architecture implements, and saving/loading a model folder.

A model scores candidates and computes its training loss::

    scores = model.score(batch)   # [N] one score per (impression, candidate); higher = more likely clicked
    loss = model.loss(batch)      # scalar: (1 − λ)·NLL + λ·BPR

A model folder (``save_pretrained``) holds everything ``recsys24 predict
--model DIR`` needs to rebuild it: ``recsys24_model.json`` (architecture name,
prompt config, λ, answer token ids), the mT5 backbone (``config.json``,
``model.safetensors``), the small score head (``head.safetensors``) and the
tokenizer.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from recsys24.errors import Recsys24Error
from recsys24.models.batch import Batch
from recsys24.models.loss import combined_loss
from recsys24.prompts.templates import PromptConfig

SPEC_FILE = "recsys24_model.json"
HEAD_FILE = "head.safetensors"


@dataclass(frozen=True)
class ModelSpec:
    """What a model folder needs besides weights: architecture, prompt, λ, answer token ids."""

    architecture: str
    prompt: PromptConfig
    lam: float
    yes_id: int
    no_id: int

    def to_dict(self) -> dict:
        return {
            "architecture": self.architecture,
            "prompt": self.prompt.to_dict(),
            "lambda": self.lam,
            "yes_id": self.yes_id,
            "no_id": self.no_id,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        return cls(d["architecture"], PromptConfig(**d["prompt"]), float(d["lambda"]), int(d["yes_id"]), int(d["no_id"]))


@dataclass
class Output:
    """scores [N]; nll: the architecture's likelihood term (scalar) when labels were given."""

    scores: torch.Tensor
    nll: torch.Tensor | None = None


class Recommender(nn.Module):
    """Base class: an mT5 backbone plus (maybe) a small head; subclasses implement ``forward``."""

    name: ClassVar[str]
    templates: ClassVar[tuple[str, ...]] = ("a", "b", "c", "d")
    backbone_class: ClassVar[type]  # a transformers MT5 class

    def __init__(self, backbone, spec: ModelSpec):
        super().__init__()
        if spec.prompt.template not in self.templates:
            raise Recsys24Error(
                f"architecture {self.name} takes templates {', '.join(self.templates)}, not {spec.prompt.template!r}"
            )
        self.backbone = backbone
        self.spec = spec
        self.head = self.make_head(backbone.config.d_model)

    def make_head(self, d_model: int) -> nn.Module | None:
        """The score head on top of the backbone (None for CG, which reads the LM head)."""
        return None

    def forward(self, batch: Batch, with_nll: bool = True) -> Output:
        raise NotImplementedError

    def make_collator(self, articles, tokenizer, seed: int = 0):
        """The callable that turns a frame of prepared rows into this model's batches.

        Training and ``recsys24 predict`` both build their batches through it, so
        an architecture with other inputs overrides this one method. The result
        may have ``sort_key(frame)`` (a length per row) that predict buckets by.
        """
        from recsys24.models.collate import Collator
        from recsys24.prompts.article_tokens import build_token_table

        return Collator(build_token_table(articles, tokenizer, self.spec.prompt), self.spec.prompt, seed=seed)

    def score(self, batch: Batch) -> torch.Tensor:
        """One score per (impression, candidate), in the batch's candidate order."""
        return self.forward(batch, with_nll=False).scores

    def loss(self, batch: Batch, lam: float | None = None) -> torch.Tensor:
        """(1 − λ)·NLL + λ·BPR on a labelled batch; λ defaults to the model's own."""
        if batch.labels is None:
            raise Recsys24Error("loss needs a batch with labels (train or validation rows)")
        lam = self.spec.lam if lam is None else lam
        out = self.forward(batch, with_nll=lam != 1.0)
        nll = out.nll if out.nll is not None else out.scores.sum() * 0.0
        return combined_loss(nll, out.scores, batch.group, batch.labels, lam)

    # --- building, saving, loading ------------------------------------------
    @classmethod
    def create(cls, spec: ModelSpec, backbone) -> "Recommender":
        """A new model: ``backbone`` is a hub id / folder (pretrained weights) or an MT5Config (random init)."""
        if isinstance(backbone, (str, os.PathLike)):
            return cls(cls.backbone_class.from_pretrained(str(backbone)), spec)
        return cls(cls.backbone_class(backbone), spec)

    def save_pretrained(self, out_dir: str | os.PathLike, tokenizer=None) -> Path:
        """Write the model folder atomically (see module docstring)."""
        from safetensors.torch import save_file

        from recsys24.io import atomic_path  # imported here: recsys24.io needs polars, scoring does not

        with atomic_path(out_dir) as tmp:
            tmp.mkdir()
            self.backbone.save_pretrained(tmp)
            if self.head is not None:
                save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, str(tmp / HEAD_FILE))
            if tokenizer is not None:
                tokenizer.save_pretrained(tmp)
            (tmp / SPEC_FILE).write_text(json.dumps(self.spec.to_dict(), indent=2) + "\n")
        return Path(out_dir)

    @classmethod
    def from_folder(cls, path: str | os.PathLike, spec: ModelSpec) -> "Recommender":
        from safetensors.torch import load_file

        model = cls(cls.backbone_class.from_pretrained(str(path)), spec)
        if model.head is not None:
            model.head.load_state_dict(load_file(str(Path(path) / HEAD_FILE)))
        return model


def first_decoder_state(backbone, batch: Batch) -> torch.Tensor:
    """Encoder over the prompt, one decoder step from the start token: hidden state [R, d_model].

    Shared by CG and CGc, so both see exactly the same computation.
    """
    enc = backbone.encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
    start = torch.full(
        (enc.shape[0], 1), backbone.config.decoder_start_token_id, dtype=torch.long, device=enc.device
    )
    dec = backbone.decoder(
        input_ids=start,
        encoder_hidden_states=enc,
        encoder_attention_mask=batch.attention_mask,
        use_cache=False,
    ).last_hidden_state
    return dec[:, 0]
