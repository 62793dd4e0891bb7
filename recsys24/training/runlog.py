"""The run folder: resolved config, code version, metrics.jsonl and TensorBoard events.

    RUN/config.yaml        the resolved config (after overrides)
    RUN/inputs.json        the identity of each data folder of the config (what a resumed run must find again)
    RUN/version.json       recsys24 version, git commit (and whether the tree was dirty)
    RUN/summary.json       what a finished run did (:class:`TrainSummary`): steps, best checkpoint, its AUC
    RUN/metrics.jsonl      one JSON object per logged step: loss, lr, samples/s, validation metrics
    RUN/tensorboard/       the same scalars as TensorBoard events
    RUN/checkpoints/       DeepSpeed checkpoints (the last and the best are kept)
    RUN/model/             the exported model folder (from_pretrained-loadable)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from recsys24.data.prepared import prepared_identity
from recsys24.errors import Recsys24Error
from recsys24.features.folder import features_identity
from recsys24.io import atomic_path, write_json
from recsys24.resources import code_version

CONFIG_FILE = "config.yaml"
INPUTS_FILE = "inputs.json"
SUMMARY_FILE = "summary.json"
# What a resumed run must share with the run it continues: another value would mix two models in one.
SAME_RUN_KEYS = ("model.", "prompt.", "loss.", "train.train_data", "train.valid_data", "train.train_features",
                 "train.valid_features", "train.seed")
DATA_KEYS = ("train.train_data", "train.valid_data", "train.train_features", "train.valid_features")


def write_run_header(run: Path, resolved_config: dict) -> None:
    with atomic_path(run / CONFIG_FILE) as tmp:
        tmp.write_text(yaml.safe_dump(resolved_config, sort_keys=False, allow_unicode=True))
    with atomic_path(run / "version.json") as tmp:
        tmp.write_text(json.dumps(code_version(), indent=2) + "\n")
    write_json(data_identities(resolved_config), run / INPUTS_FILE)


@dataclass(frozen=True)
class TrainSummary:
    """What a run of ``recsys24 train`` did; a finished run writes it as ``RUN/summary.json``.

    A run asked to stop (SIGTERM/SIGUSR1) saved ``last_checkpoint`` to be
    resumed and exported nothing: the fields after it are None.
    """

    stopped: bool
    step: int  # optimiser steps done
    last_checkpoint: str | None  # its tag (``step24``)
    pairs_seen: int | None = None  # training pairs read
    best_checkpoint: str | None = None  # by validation AUC (None: no validation data)
    best_val_auc: float | None = None
    model: Path | None = None  # the exported model folder, RUN/model

    def to_dict(self) -> dict:
        return {"stopped": self.stopped, "step": self.step, "pairs_seen": self.pairs_seen,
                "best_checkpoint": self.best_checkpoint, "best_val_auc": self.best_val_auc,
                "last_checkpoint": self.last_checkpoint, "model": None if self.model is None else str(self.model)}

    def write(self, run: Path) -> None:
        write_json(self.to_dict(), Path(run) / SUMMARY_FILE)

    @classmethod
    def read(cls, run: Path) -> "TrainSummary | None":
        """The summary of run folder ``run``; None while it has none (not finished)."""
        path = Path(run) / SUMMARY_FILE
        if not path.is_file():
            return None
        d = json.loads(path.read_text())
        return cls(bool(d["stopped"]), int(d["step"]), d.get("last_checkpoint"), d.get("pairs_seen"),
                   d.get("best_checkpoint"), d.get("best_val_auc"), None if d.get("model") is None else Path(d["model"]))


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` is a training run's folder (it holds the resolved config)."""
    return (Path(folder) / CONFIG_FILE).is_file()


def run_train_data(run: Path) -> str | None:
    """The prepared split run ``run`` trained on (its config's ``train.train_data``); None when the folder
    has no config or the config names none."""
    if not is_run_folder(run):
        return None
    config = yaml.safe_load((Path(run) / CONFIG_FILE).read_text()) or {}
    return (config.get("train") or {}).get("train_data")


def data_identity(folder: str | None) -> str | None:
    """What a data folder of the config holds, whatever its path: a prepared split by its manifest's inputs
    and options (not its timing), a features folder by its features.json; None when there is none."""
    if not folder:
        return None
    found = prepared_identity(folder)
    if found is None:
        found = features_identity(folder)
    return None if found is None else hashlib.sha256(json.dumps(found, sort_keys=True).encode()).hexdigest()[:16]


def data_identities(resolved_config: dict) -> dict:
    flat = _dotted(resolved_config)
    return {key: data_identity(flat.get(key)) for key in DATA_KEYS}


def check_same_run(run: Path, resolved_config: dict) -> None:
    """Refuse to continue the started run ``run`` with another model, prompt, loss, data or seed.

    One line names the first key that differs, its value in the run and now,
    and ``--output NEW``. A data folder given by another path but holding the
    same data is the same; one at the same path that was made again from other
    inputs or options is not.
    """
    saved_path = run / CONFIG_FILE
    if not saved_path.is_file():
        return
    saved = _dotted(yaml.safe_load(saved_path.read_text()) or {})
    now = _dotted(yaml.safe_load(yaml.safe_dump(resolved_config)))
    inputs = run / INPUTS_FILE
    saved_ids = json.loads(inputs.read_text()) if inputs.is_file() else {}
    new_ids = data_identities(resolved_config)
    fix = f"give --output NEW to start another run (or resume with the run's config, {saved_path})"
    for key in sorted(set(saved) | set(now)):
        if not key.startswith(SAME_RUN_KEYS):
            continue
        old, new = saved.get(key), now.get(key)
        same_data = key in saved_ids and saved_ids[key] is not None and saved_ids[key] == new_ids.get(key)
        if old != new and not same_data:
            raise Recsys24Error(f"{run}: this run was started with {key}={_show(old)}, not {_show(new)}; {fix}")
        if key in saved_ids and old == new and saved_ids[key] != new_ids.get(key):
            raise Recsys24Error(f"{run}: {key}={_show(new)} holds other data than when this run started (made "
                                f"again from other inputs or options); {fix}")


def _show(value) -> str:
    return "null" if value is None else json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _dotted(tree: dict, prefix: str = "") -> dict:
    """``{"train": {"steps": 5}}`` -> ``{"train.steps": 5}`` (leaves only)."""
    flat = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= _dotted(value, dotted + ".")
        else:
            flat[dotted] = value
    return flat


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
            kept = [line for line in map(_parsed, self.path.read_text().splitlines())
                    if line is not None and line.get("step", 0) <= resume_step]
            with atomic_path(self.path) as tmp:
                tmp.write_text("".join(json.dumps(line) + "\n" for line in kept))
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


def _parsed(line: str) -> dict | None:
    """A metrics line, or None for a blank or cut one (the disk filled while it was appended)."""
    try:
        found = json.loads(line)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None
