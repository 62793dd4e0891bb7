"""The ``train`` section of a run config (see ``recsys24/config.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from recsys24.errors import Recsys24Error

PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    """How to train: data, steps, optimiser, schedule, evaluation, checkpoints.

    ``micro_batch`` is pairs per rank per forward pass; one optimiser step sees
    ``micro_batch × grad_accum × world_size`` pairs. ``precision: auto`` means
    bf16 on GPU and fp32 on CPU. ``deepspeed`` names a JSON file under
    ``configs/deepspeed/`` (``zero2`` default, ``zero3``) or a path.
    ``compile`` compiles each mT5 block with ``torch.compile`` (ZeRO 0–2; on a
    GPU it fuses the many small element-wise kernels of eager T5).
    ``gradient_checkpointing`` recomputes each mT5 block's activations in the
    backward pass: about a third more compute for far less activation memory,
    so larger micro-batches fit.
    """

    train_data: str = "demo_run/prepared/train"
    valid_data: str | None = "demo_run/prepared/validation"
    steps: int = 200
    micro_batch: int = 8
    grad_accum: int = 1
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 20
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    precision: str = "auto"
    deepspeed: str = "zero2"
    compile: bool = False
    gradient_checkpointing: bool = False
    eval_every: int = 50
    eval_impressions: int = 200
    eval_batch_impressions: int = 16
    save_every: int = 50
    log_every: int = 10
    seed: int = 0

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise Recsys24Error(f"train.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        for name in ("compile", "gradient_checkpointing"):
            if not isinstance(getattr(self, name), bool):
                raise Recsys24Error(f"train.{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("steps", "micro_batch", "grad_accum", "eval_every", "save_every", "log_every"):
            if getattr(self, name) < 1:
                raise Recsys24Error(f"train.{name} must be >= 1, got {getattr(self, name)}")
