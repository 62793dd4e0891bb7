"""Files that ship with recsys24, found the same way in a checkout and in an installed package,
and the version of the code that runs.

The run configs and DeepSpeed JSONs live in the checkout's top-level
``configs/``; ``recsys24/configs`` is a link to it, and a wheel carries the
files themselves there as package data. So ``CONFIGS`` (next to this module)
holds them in both cases, and nothing climbs out of the package to find a file.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from recsys24 import __version__
from recsys24.errors import Recsys24Error

PACKAGE = Path(__file__).resolve().parent
CONFIGS = Path(__file__).parent / "configs"  # not resolved: in a checkout, the link keeps this path


def config_file(name: str | os.PathLike) -> Path:
    """The YAML config that ``name`` means: a file by path, else a shipped config by name.

    ``configs/tiny/cgh_d.yaml`` is read relative to the working folder first;
    from any other folder it, ``tiny/cgh_d.yaml`` and ``tiny/cgh_d`` all name
    the shipped ``CONFIGS/tiny/cgh_d.yaml``.

    >>> config_file("tiny/cgh_d").relative_to(CONFIGS).as_posix()
    'tiny/cgh_d.yaml'
    """
    path = Path(name)
    if path.is_file():
        return path
    shipped = Path(*path.parts[1:]) if path.parts[:1] == ("configs",) else path
    if shipped.suffix not in (".yaml", ".yml"):
        shipped = shipped.with_name(shipped.name + ".yaml")
    if not path.is_absolute() and (CONFIGS / shipped).is_file():
        return CONFIGS / shipped
    raise Recsys24Error(f"{path}: no such config file (nor a shipped config {shipped.with_suffix('')}; "
                        "`recsys24 train --help` lists them)")


def deepspeed_file(name: str) -> Path:
    """A DeepSpeed JSON: a path ending in ``.json``, else ``CONFIGS/deepspeed/<name>.json`` (zero0, zero2, zero3)."""
    return Path(name) if name.endswith(".json") else CONFIGS / "deepspeed" / f"{name}.json"


def checkout_root() -> Path | None:
    """The git checkout this package is imported from, or None (installed package, no git, not a checkout).

    A package installed into a virtual environment that happens to sit inside
    some repository is not that repository's code: the checkout must be the
    folder right above the package.
    """
    root = PACKAGE.parent
    try:
        top = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root:
        return None
    return root


def code_version() -> dict:
    """recsys24's version and, when imported from a git checkout, its commit (an installed package has none)."""
    info = {"recsys24": __version__}
    root = checkout_root()
    if root is None:
        return info
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if commit.returncode == 0:
            info["git_commit"] = commit.stdout.strip()
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10)
            info["git_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return info
