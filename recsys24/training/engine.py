"""The DeepSpeed engine around a recommender: optimiser, schedule, config.

Kept free of the data stack (polars) so benchmarks can build the same engine
on a machine that has only torch, transformers and deepspeed.
"""

from __future__ import annotations

import json
import math

import torch
from torch import nn

from recsys24.errors import Recsys24Error
from recsys24.resources import deepspeed_file


class _LossModule(nn.Module):
    """Lets ``engine(batch)`` return the training loss, so DeepSpeed drives forward and backward."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, batch):
        return self.model.loss(batch)


def warmup_cosine(warmup: int, total: int, min_ratio: float):
    """LR multiplier: linear warmup to 1, then cosine decay to ``min_ratio`` at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def deepspeed_config(name: str, micro_batch: int, grad_accum: int, grad_clip: float, bf16: bool) -> dict:
    """A DeepSpeed JSON config (``configs/deepspeed/<name>.json`` or a path) with our numbers filled in."""
    path = deepspeed_file(name)
    if not path.is_file():
        raise Recsys24Error(f"train.deepspeed: no DeepSpeed config {path}")
    cfg = json.loads(path.read_text())
    cfg.update(train_micro_batch_size_per_gpu=micro_batch, gradient_accumulation_steps=grad_accum,
               gradient_clipping=grad_clip, bf16={"enabled": bf16})
    return cfg


def compile_blocks(model: nn.Module) -> int:
    """Regional ``torch.compile``: every transformer block of the backbone, compiled in place.

    ``nn.Module.compile`` keeps parameter names, so checkpoints and exported
    folders are the same as an eager run's. Blocks share one compiled graph per
    kind (first encoder block, other encoder blocks, the same for the decoder),
    so compiling costs a few graphs, not one per layer. Returns how many blocks
    were compiled; a model without mT5 blocks (the neural models) is
    compiled whole.
    """
    config = torch._dynamo.config
    limit = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    setattr(config, limit, max(getattr(config, limit), 64))  # train/eval x block kinds x shapes
    blocks = model.transformer_blocks()
    for block in blocks:
        block.compile(dynamic=True)
    if not blocks:
        model.compile(dynamic=True)
    return len(blocks)


def make_engine(model: nn.Module, tc, bf16: bool):
    """``deepspeed.initialize`` with torch AdamW and warmup + cosine; ``engine(batch)`` returns the loss.

    ``tc`` is a :class:`recsys24.config.TrainConfig`; with ``tc.compile``
    the backbone's blocks are compiled first (:func:`compile_blocks`); with
    ``tc.gradient_checkpointing`` they recompute their activations in the
    backward pass. Returns
    (engine, optimizer, scheduler).
    """
    config = deepspeed_config(tc.deepspeed, tc.micro_batch, tc.grad_accum, tc.grad_clip, bf16)
    if tc.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    if tc.compile:
        if config.get("zero_optimization", {}).get("stage", 0) >= 3:
            raise Recsys24Error(f"train.compile works with ZeRO stages 0-2, not {tc.deepspeed}: ZeRO-3 gathers "
                                "parameters in module hooks that compiled blocks skip")
        compile_blocks(model)
    import deepspeed

    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(tc.warmup_steps, tc.steps, tc.min_lr_ratio))
    engine, _, _, _ = deepspeed.initialize(
        model=_LossModule(model), optimizer=optimizer, lr_scheduler=scheduler,
        config=config,
    )
    return engine, optimizer, scheduler
