"""What the model folder's fingerprint costs on an mt5-base-sized folder (issue 29).

    python benchmarks/bench_fingerprint.py --dir /scratch/me/fp [--gb 2.33] [--keep]

Writes a fake mt5-base model folder under --dir (``model.safetensors`` of random
bytes, 2.33 GB as google/mt5-base's fp32 weights; a 4.3 MB ``spiece.model``; the
small JSON files), then times :func:`recsys24.fingerprints.folder_fingerprint` (what
``predict`` and ``predict-merge`` run once each) with the weights out of the
page cache (``posix_fadvise DONTNEED``: read from disk) and in it, and, for
comparison, one sha256 of the whole weights file, cold and warm. The folder is
deleted afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import time
from pathlib import Path

from recsys24.fingerprints import FULL_HASH_BYTES, folder_fingerprint

CHUNK = 64 << 20


def fake_model(folder: Path, gb: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    left = int(gb * 1e9)
    with (folder / "model.safetensors").open("wb") as f:
        while left > 0:
            f.write(os.urandom(min(CHUNK, left)))
            left -= CHUNK
    (folder / "spiece.model").write_bytes(os.urandom(4_309_802))
    for name in ("config.json", "recsys24_model.json", "tokenizer_config.json"):
        (folder / name).write_text("{}\n" * 50)


def drop_cache(folder: Path) -> None:
    for path in folder.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", required=True, type=Path, help="Where to write the fake model folder.")
    parser.add_argument("--gb", type=float, default=2.33, help="Size of model.safetensors in GB (1e9 bytes).")
    parser.add_argument("--keep", action="store_true", help="Keep the folder afterwards.")
    args = parser.parse_args()
    folder = args.dir / "mt5-base"
    t = timed(lambda: fake_model(folder, args.gb))
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"wrote {folder}: {size / 1e9:.2f} GB in {t:.1f} s (files up to {FULL_HASH_BYTES >> 20} MiB hashed whole)")
    try:
        weights = folder / "model.safetensors"
        for label, cold in (("cold", True), ("warm", False)):
            if cold:
                drop_cache(folder)
            t = timed(lambda: folder_fingerprint(folder))
            print(f"folder_fingerprint, {label}: {t:.3f} s")
        for label, cold in (("cold", True), ("warm", False)):
            if cold:
                drop_cache(folder)
            with weights.open("rb") as f:
                t = timed(lambda: hashlib.file_digest(f, "sha256"))
            print(f"sha256 of the whole {weights.stat().st_size / 1e9:.2f} GB weights, {label}: {t:.2f} s "
                  f"({weights.stat().st_size / 1e6 / t:,.0f} MB/s)")
    finally:
        if not args.keep:
            shutil.rmtree(folder)


if __name__ == "__main__":
    main()
