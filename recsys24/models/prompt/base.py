"""The prompt family's base: an mT5 backbone plus (maybe) a small score head.

Its model folder holds, besides the spec and tokenizer of every family
(:mod:`recsys24.models.contract`), the mT5 backbone (``config.json``,
``model.safetensors``) and the score head (``head.safetensors``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from recsys24.config import Config, TinySize
from recsys24.errors import Recsys24Error
from recsys24.model_inputs.batches import Batch
from recsys24.models.contract import Model, ModelSpec, TrainFit
from recsys24.prompts.templates import WORDS
from recsys24.prompts.tokenizer import single_token_id

HEAD_FILE = "head.safetensors"


def tiny_config(vocab_size: int, size: TinySize = TinySize()):
    """A small randomly initialisable MT5Config with mT5's special ids (pad 0 = decoder start, eos 1).

    transformers 5.x: MT5Config always sets ``tie_word_embeddings=True``, so a
    randomly initialised CG shares its LM head with the input embedding. A
    checkpoint that stores both matrices (google/mt5-*) stays untied on load and
    on ``save_pretrained`` (tested).
    """
    from transformers import MT5Config

    return MT5Config(
        vocab_size=vocab_size,
        d_model=size.d_model,
        d_ff=size.d_ff,
        d_kv=size.d_kv,
        num_heads=size.num_heads,
        num_layers=size.num_layers,
        num_decoder_layers=size.num_decoder_layers,
        dropout_rate=size.dropout_rate,
        feed_forward_proj="gated-gelu",
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )


class PromptModel(Model):
    """Base of CG, CGc, CGh, QA and QA+; subclasses implement ``forward`` (and maybe ``make_head``)."""

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

    def transformer_blocks(self) -> list[nn.Module]:
        """The mT5 encoder and decoder blocks."""
        return [b for stack in ("encoder", "decoder") for b in getattr(getattr(self.backbone, stack, None), "block", [])]

    def enable_gradient_checkpointing(self) -> None:
        self.backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    def make_collator(self, articles, tokenizer, seed: int = 0, features=None):
        from recsys24.model_inputs.prompt_collator import PromptCollator
        from recsys24.prompts.article_tokens import build_token_table

        return PromptCollator(build_token_table(articles, tokenizer, self.spec.prompt), self.spec.prompt, seed=seed)

    # --- building, saving, loading ------------------------------------------
    @classmethod
    def from_config(cls, config: Config, tokenizer, fit: TrainFit = TrainFit()) -> "PromptModel":
        """A new model: the answer words of ``config.prompt.language`` must be single tokens of ``tokenizer``;
        ``model.backbone`` is a hub id / folder (pretrained weights) or ``tiny`` (random, sized by ``model.tiny``).
        """
        return cls.create(cls.spec_from_config(config, tokenizer, fit), cls.backbone_from_config(config, tokenizer))

    @classmethod
    def spec_from_config(cls, config: Config, tokenizer, fit: TrainFit = TrainFit()) -> ModelSpec:
        words = WORDS[config.prompt.language]
        return ModelSpec(
            architecture=cls.name,
            prompt=config.prompt,
            lam=config.loss.lam,
            yes_id=single_token_id(tokenizer, words["yes"].strip()),
            no_id=single_token_id(tokenizer, words["no"].strip()),
        )

    @staticmethod
    def backbone_from_config(config: Config, tokenizer):
        """What :meth:`create` takes: the hub id / folder, or the MT5Config of a tiny random model."""
        if config.model.backbone == "tiny":
            return tiny_config(len(tokenizer), config.model.tiny)
        return config.model.backbone

    @classmethod
    def create(cls, spec: ModelSpec, backbone) -> "PromptModel":
        """A new model: ``backbone`` is a hub id / folder (pretrained weights) or an MT5Config (random init)."""
        if isinstance(backbone, (str, os.PathLike)):
            return cls(cls.backbone_class.from_pretrained(str(backbone)), spec)
        return cls(cls.backbone_class(backbone), spec)

    def save_weights(self, folder: Path) -> None:
        from safetensors.torch import save_file

        self.backbone.save_pretrained(folder)
        if self.head is not None:
            save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, str(folder / HEAD_FILE))

    @classmethod
    def from_folder(cls, path: str | os.PathLike, spec: ModelSpec) -> "PromptModel":
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
