"""The run folder: resolved config, code version, metrics.jsonl and TensorBoard events.

    RUN/config.yaml        the resolved config (after overrides)
    RUN/version.json       recsys24 version, git commit (and whether the tree was dirty)
    RUN/metrics.jsonl      one JSON object per logged step: loss, lr, samples/s, validation metrics
    RUN/tensorboard/       the same scalars as TensorBoard events
    RUN/checkpoints/       DeepSpeed checkpoints (the last and the best are kept)
    RUN/model/             the exported model folder (from_pretrained-loadable)
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from recsys24.io import atomic_path
from recsys24.resources import code_version


def write_run_header(run: Path, resolved_config: dict) -> None:
    with atomic_path(run / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(resolved_config, sort_keys=False, allow_unicode=True))
    with atomic_path(run / "version.json") as tmp:
        tmp.write_text(json.dumps(code_version(), indent=2) + "\n")


class RunLog:
    """Appends metrics to metrics.jsonl and TensorBoard (rank 0 only).

    On resume from step S, entries after S (work lost with the killed run) are
    dropped first, so the log holds each step once.
    """

    def __init__(self, run: Path, resume_step: int, enabled: bool):
        self.enabled = enabled
        self.path = run / "metrics.jsonl"
        self.tb = None
        if not enabled:
            return
        if self.path.exists():
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= resume_step]
            with atomic_path(self.path) as tmp:
                tmp.write_text("".join(line + "\n" for line in kept))
        from tensorboardX import SummaryWriter

        self.tb = SummaryWriter(str(run / "tensorboard"), purge_step=resume_step + 1 if resume_step else None)

    def log(self, step: int, values: dict) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        for key, value in values.items():
            if isinstance(value, (int, float)):
                self.tb.add_scalar(key, value, step)
        self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
