"""What the report compares: named items, each a scores file and maybe its run folder.

An item is ``NAME=PATH`` or ``PATH`` (named after the file, or the folder). PATH is

- a scores parquet file (``recsys24 baseline``, ``recsys24 predict``);
- a ``recsys24 predict`` output folder holding ``scores.parquet``;
- a training run or ranker folder holding the scores of the split in
  ``RUN/scores/<split>.parquet``, ``RUN/scores/<split>/scores.parquet`` (a
  ``recsys24 rank predict`` folder inside it) or ``RUN/scores.parquet``.

The run folder of an item (for training curves, throughput and parameters) is
the first of PATH, its parent and its grandparent that holds ``metrics.jsonl``;
a scores file written into a run folder is therefore linked to its run. A run
folder holding ``ranker.json`` is a ranker's: its ``step`` is a boosting round.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from recsys24.errors import Recsys24Error
from recsys24.ranking.folder import SPEC_FILE as RANKER_FILE  # marks a ranker folder: metrics.jsonl counts rounds

METRICS_FILE = "metrics.jsonl"


@dataclass(frozen=True)
class Item:
    """One compared entry: its name, scores file, and run folder (None for a bare scores file)."""

    name: str
    scores: Path
    run: Path | None


def resolve_item(spec: str, split: str) -> Item:
    """Turn ``[NAME=]PATH`` into an :class:`Item` (see the module doc)."""
    name, _, raw = spec.rpartition("=") if "=" in spec else ("", "", spec)
    path = Path(raw)
    if path.is_dir():
        candidates = [path / "scores" / f"{split}.parquet", path / "scores" / split / "scores.parquet",
                      path / "scores.parquet"]
        scores = next((c for c in candidates if c.is_file()), None)
        if scores is None:
            raise Recsys24Error(f"{path}: no scores file in it (looked for {', '.join(str(c) for c in candidates)})")
    elif path.is_file():
        scores = path
    else:
        raise Recsys24Error(f"{path}: no such scores file or folder")
    run = next((p for p in (path, path.parent, path.parent.parent) if (p / METRICS_FILE).is_file()), None)
    return Item(name or (path.name if path.is_dir() else path.stem), scores, run)


def is_ranker(run: Path | None) -> bool:
    """Whether ``run`` is a ranker folder, whose ``step`` is a boosting round, not a training step."""
    return run is not None and (run / RANKER_FILE).is_file()


def read_metrics_log(run: Path | None) -> list[dict]:
    """The entries of ``RUN/metrics.jsonl`` in order ([] without a run)."""
    if run is None:
        return []
    lines = (run / METRICS_FILE).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def parameter_count(run: Path | None) -> int | None:
    """Parameters of ``RUN/model``, summed from the safetensors headers (no weights are read)."""
    if run is None or not (run / "model").is_dir():
        return None
    files = sorted((run / "model").glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for f in files:
        with f.open("rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))  # safetensors: u64 header length, then JSON
            header = json.loads(fh.read(size))
        for key, tensor in header.items():
            if key != "__metadata__":
                n = 1
                for dim in tensor["shape"]:
                    n *= dim
                total += n
    return total
