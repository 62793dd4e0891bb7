"""recsys24 as a user installs it: a wheel of this checkout in a fresh environment, run from another folder.

The fresh environment gets the wheel and nothing else; a ``.pth`` line lets it
import the dependencies (torch, deepspeed, ...) from this test's environment,
so nothing is downloaded. A ``.pth`` line only adds a folder: the ``.pth``
files inside it (an editable install of the checkout) are not run, so the
package imported is the installed wheel, which the test checks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import polars as pl
import pytest

from recsys24.errors import Recsys24Error
from recsys24.resources import CONFIGS, config_file

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list, cwd: Path, env: dict) -> str:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment holding a wheel built from this checkout; returns its bin folder."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"  # the build writes build/ and *.egg-info into the tree: not into the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("recsys24", "configs"):  # recsys24/configs links to ../configs: kept a link, resolved by the build
        shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", root / "wheel", source], root,
        dict(os.environ))
    wheel = next((root / "wheel").glob("recsys24-*.whl"))
    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], root, dict(os.environ))
    python = venv / "bin" / "python"
    run([*pip, "--python", python, "install", "--no-deps", "--no-index", wheel], root, dict(os.environ))
    fresh = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                capture_output=True, text=True, check=True).stdout.strip())
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (fresh / "dependencies.pth").write_text("".join(f"{path}\n" for path in sorted(ours)))
    return venv / "bin"


def user_env() -> dict:
    """A user's shell: no checkout on PYTHONPATH, one CPU process; DeepSpeed's C++ op reused from this
    environment's build (a fresh one would build it again, 20-60 s)."""
    env = dict(os.environ, DS_ACCELERATOR="cpu", OMP_NUM_THREADS="1")
    for var in ("PYTHONPATH", "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    if "TORCH_EXTENSIONS_DIR" not in env and os.access(sys.prefix, os.W_OK):
        env["TORCH_EXTENSIONS_DIR"] = str(Path(sys.prefix) / "torch_extensions")
    return env


def test_an_installed_wheel_runs_synth_prepare_train_predict_from_another_folder(installed, tmp_path):
    env, here = user_env(), tmp_path / "elsewhere"
    here.mkdir()
    where = run([installed / "python", "-c", "import recsys24; print(recsys24.__file__)"], here, env)
    assert Path(where.strip()).is_relative_to(installed.parent), where  # the wheel, not the checkout

    recsys24 = installed / "recsys24"
    run([recsys24, "synth", "data", "--preset", "tiny", "--seed", "1", "--splits", "train,validation"], here, env)
    for split in ("train", "validation"):
        run([recsys24, "prepare", "--data", "data", "--split", split, "--out", f"prepared/{split}"], here, env)
    said = run([recsys24, "train", "--config", "configs/tiny/cgh_d.yaml", "--output", "run",  # as docs/models.md
                "train.train_data=prepared/train", "train.valid_data=prepared/validation", "train.steps=2",
                "train.micro_batch=4", "train.warmup_steps=1", "train.eval_every=2", "train.save_every=2",
                "train.log_every=1", "train.eval_impressions=16"], here, env)
    assert "trained 2 steps" in said
    config = (here / "run" / "config.yaml").read_text()
    assert "deepspeed: zero2" in config  # the default DeepSpeed config, shipped in the wheel
    assert "git_commit" not in json.loads((here / "run" / "version.json").read_text())  # no checkout here

    for step in (["predict", "--model", "run"], ["predict-merge"]):
        run([recsys24, *step, "--prepared", "prepared", "--split", "validation", "--out", "scores"], here, env)
    scores = pl.read_parquet(here / "scores" / "scores.parquet")
    assert scores.height == json.loads((here / "prepared" / "validation" / "manifest.json").read_text())[
        "num_impressions"]


def test_a_shipped_config_is_found_by_path_or_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the checkout: configs/ here does not exist
    shipped = CONFIGS / "tiny" / "cgh_d.yaml"
    assert config_file("configs/tiny/cgh_d.yaml") == config_file("tiny/cgh_d") == config_file("tiny/cgh_d.yaml") \
        == shipped
    (tmp_path / "mine.yaml").write_text("model: {architecture: cgh}\n")
    assert config_file("mine.yaml") == Path("mine.yaml")  # a file by path wins
    with pytest.raises(Recsys24Error, match="tiny/cgh_x: no such config file"):
        config_file("tiny/cgh_x")


def test_a_run_without_git_records_the_version_and_no_commit(monkeypatch):
    from recsys24 import __version__
    from recsys24.resources import code_version

    monkeypatch.setenv("PATH", "")  # no git to ask
    assert code_version() == {"recsys24": __version__}
