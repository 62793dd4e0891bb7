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
import os
import random
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from recsys24.errors import Recsys24Error
from recsys24.io import atomic_path, write_failure, write_json
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
    """Save a checkpoint of the current step on every rank; prune old ones on rank 0.

    A save that fails (a full disk: torch reports it as a RuntimeError) is one
    Recsys24Error line; the half-written step folder is removed and ``latest``
    still names the previous checkpoint, so a rerun resumes from there.
    """
    tag = f"step{state.step}"
    try:
        # Our files first: DeepSpeed writes `latest` at the end of save_checkpoint.
        (ckpt_dir / tag).mkdir(parents=True, exist_ok=True)
        with atomic_path(ckpt_dir / tag / f"rng_rank{rank}.pt") as tmp:
            torch.save(_rng_state(), tmp)
        if rank == 0:
            write_json(asdict(state), ckpt_dir / tag / STATE_FILE)
        barrier()
        engine.save_checkpoint(str(ckpt_dir), tag=tag)
    except Recsys24Error:
        _drop_unfinished(ckpt_dir, tag, rank)
        raise
    except (OSError, RuntimeError) as err:
        _drop_unfinished(ckpt_dir, tag, rank)
        code = write_failure(err, ckpt_dir)
        cause = os.strerror(code) if code is not None else _torch_reason(err)
        raise Recsys24Error(f"{ckpt_dir / tag}: cannot write the checkpoint ({cause}); the run resumes from "
                            f"{latest_tag(ckpt_dir) or 'the start'} when rerun") from None
    barrier()
    if rank == 0:
        keep = {tag, state.best_tag}
        for old in ckpt_dir.glob("step*"):
            if old.is_dir() and old.name not in keep:
                shutil.rmtree(old, ignore_errors=True)
    barrier()
    return tag


def _torch_reason(err: Exception) -> str:
    """torch's words for a failed write, without its source location: a full disk reads as
    ``[enforce fail at inline_container.cc:672] . unexpected pos 1826624 vs 1826520``."""
    text = re.sub(r"\[enforce fail at [^\]]*\]\s*\.?\s*", "", " ".join(str(err).split()))[:200]
    return f"the write stopped short: {text}; is the disk full?"


def _drop_unfinished(ckpt_dir: Path, tag: str, rank: int) -> None:
    """Remove a step folder whose save failed, unless ``latest`` names it (an earlier, finished save)."""
    if rank == 0 and latest_tag(ckpt_dir) != tag:
        shutil.rmtree(ckpt_dir / tag, ignore_errors=True)


def resume(engine, ckpt_dir: Path, rank: int) -> TrainerState:
    """Load the latest checkpoint if there is one; return the trainer state to continue from.

    A checkpoint that does not fit the engine's model (another architecture or
    size) is one Recsys24Error line, not the state_dict's list of keys.
    """
    tag = latest_tag(ckpt_dir)
    if tag is None:
        return TrainerState()
    try:
        engine.load_checkpoint(str(ckpt_dir), tag=tag)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise Recsys24Error(f"{ckpt_dir / tag}: does not fit this model ({first}); give --output NEW to start "
                            "another run") from None
    state = TrainerState(**json.loads((ckpt_dir / tag / STATE_FILE).read_text()))
    rng = ckpt_dir / tag / f"rng_rank{rank}.pt"
    if rng.is_file():
        _set_rng_state(torch.load(rng, weights_only=False))
    return state
