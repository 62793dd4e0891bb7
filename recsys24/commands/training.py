"""``recsys24 train``."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import click

from recsys24.resources import CONFIGS


def shipped_configs() -> list[tuple[str, str]]:
    """(folder, config names) of the training configs shipped under configs/ (files with a ``model:`` section)."""
    groups = []
    for folder in [CONFIGS, *sorted(p for p in CONFIGS.iterdir() if p.is_dir())] if CONFIGS.is_dir() else []:
        names = sorted(p.stem for p in folder.glob("*.yaml") if re.search(r"^model:", p.read_text(), re.M))
        if names:
            groups.append(("configs/" + ("" if folder == CONFIGS else f"{folder.name}/"), ", ".join(names)))
    return groups


class _TrainCommand(click.Command):
    """``train`` whose --help lists the training configs shipped under configs/ (found when asked)."""

    def format_epilog(self, ctx, formatter):
        with formatter.section("Shipped configs (--config configs/tiny/cgh_d.yaml, or tiny/cgh_d from any folder)"):
            formatter.write_dl(shipped_configs() or [("configs/", "none next to this installation")])
            formatter.write_paragraph()
            formatter.write_text("configs/tiny/: the offline models of the demo and the tests (a random tiny "
                                 "mT5 or small word vectors, minutes on a CPU). configs/: google/mt5-small and "
                                 "the neural baselines at the papers' sizes.")


@click.command(cls=_TrainCommand, context_settings={"ignore_unknown_options": False})
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="A YAML file, e.g. configs/tiny/cgh_d.yaml, or a shipped config's name, e.g. tiny/cgh_d "
                   "(see Shipped configs below).")
@click.option("--output", type=click.Path(file_okay=False), help="Run folder (default: runs/<config name>).")
@click.argument("overrides", nargs=-1)
def train(config_path, output, overrides):
    """Fine-tune a recommender with DeepSpeed; rerun with the same --output to resume.

    OVERRIDES are section.key=value pairs, e.g. train.steps=50 model.backbone=tiny;
    each is checked against the key's type, like the file's keys.
    Exits 75 after saving a checkpoint when stopped by SIGTERM/SIGUSR1.
    """
    from recsys24.config import load_config
    from recsys24.training.loop import EXIT_STOPPED, train as run_training

    config = load_config(config_path, list(overrides))
    run = Path(output) if output else Path("runs") / Path(config_path).stem
    summary = run_training(config, run)
    if summary.stopped:
        code = EXIT_STOPPED
    else:
        code = 0
        if int(os.environ.get("RANK", "0")) == 0:
            best = summary.best_val_auc
            where = str(summary.best_checkpoint).replace("step", "step ")
            click.echo(f"trained {summary.step} steps -> {summary.model} ("
                       + (f"best validation AUC {best:.4f} at {where})" if best is not None else "no validation data)"))
    # DeepSpeed's process group can abort at interpreter exit after a finished run
    # ("terminate called without an active exception"); leave without tearing it down.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


COMMANDS = [train]
