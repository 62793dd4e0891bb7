"""DeepSpeed checkpoints with everything a resumed run needs to continue exactly.

A checkpoint ``RUN/checkpoints/step<N>/`` holds DeepSpeed's model, optimiser and
scheduler states plus ``trainer_state.json`` (step, data position, best
validation score) and each rank's RNG states (``rng_rank<R>.pt``). DeepSpeed
updates ``RUN/checkpoints/latest`` only after a save has completed, so a run
killed while saving resumes from the previous checkpoint. Only the latest and
the best checkpoints are kept.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from recsys24.training.distributed import barrier

STATE_FILE = "trainer_state.json"


@dataclass
class TrainerState:
    step: int = 0  # optimiser steps done
    position: int = 0  # training pairs consumed globally
    best_tag: str | None = None
    best_auc: float | None = None
    history: list = field(default_factory=list)  # validation AUC per eval step


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def latest_tag(ckpt_dir: Path) -> str | None:
    latest = ckpt_dir / "latest"
    if not latest.is_file():
        return None
    tag = latest.read_text().strip()
    return tag if (ckpt_dir / tag / STATE_FILE).is_file() else None


def save(engine, ckpt_dir: Path, state: TrainerState, rank: int) -> str:
    """Save a checkpoint of the current step on every rank; prune old ones on rank 0."""
    tag = f"step{state.step}"
    # Our files first: DeepSpeed writes `latest` at the end of save_checkpoint.
    (ckpt_dir / tag).mkdir(parents=True, exist_ok=True)
    torch.save(_rng_state(), ckpt_dir / tag / f"rng_rank{rank}.pt")
    if rank == 0:
        (ckpt_dir / tag / STATE_FILE).write_text(json.dumps(asdict(state), indent=2) + "\n")
    barrier()
    engine.save_checkpoint(str(ckpt_dir), tag=tag)
    barrier()
    if rank == 0:
        keep = {tag, state.best_tag}
        for old in ckpt_dir.glob("step*"):
            if old.is_dir() and old.name not in keep:
                shutil.rmtree(old, ignore_errors=True)
    barrier()
    return tag


def resume(engine, ckpt_dir: Path, rank: int) -> TrainerState:
    """Load the latest checkpoint if there is one; return the trainer state to continue from."""
    tag = latest_tag(ckpt_dir)
    if tag is None:
        return TrainerState()
    engine.load_checkpoint(str(ckpt_dir), tag=tag)
    state = TrainerState(**json.loads((ckpt_dir / tag / STATE_FILE).read_text()))
    rng = ckpt_dir / tag / f"rng_rank{rank}.pt"
    if rng.is_file():
        _set_rng_state(torch.load(rng, weights_only=False))
    return state
