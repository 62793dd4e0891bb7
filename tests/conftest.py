"""Shared fixtures: one synthetic demo dataset and its prepared splits per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from recsys24.cli import main
from recsys24.data.prepare import prepare
from recsys24.data.synth import synthesize


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """A synthetic EB-NeRD demo (train, validation, test). Treat as read-only."""
    out = tmp_path_factory.mktemp("ebnerd") / "demo"
    synthesize(out, "demo", seed=0)
    return out


@pytest.fixture(scope="session")
def prepared(demo_data, tmp_path_factory) -> dict[str, Path]:
    """Prepared train/validation/test of the demo data (T=20, K=4). Treat as read-only."""
    root = tmp_path_factory.mktemp("prepared")
    for split in ("train", "validation", "test"):
        prepare(demo_data, split, root / split)
    return {split: root / split for split in ("train", "validation", "test")}


@pytest.fixture
def data_copy(demo_data, tmp_path) -> Path:
    """A private copy of the demo data that a test may damage."""
    dst = tmp_path / "data"
    shutil.copytree(demo_data, dst)
    return dst


@pytest.fixture
def cli():
    """Run ``recsys24 ARGS...`` in-process; returns the click Result."""
    runner = CliRunner()

    def run(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return run
