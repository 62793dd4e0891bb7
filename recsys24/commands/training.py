"""``recsys24 train``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click


@click.command(context_settings={"ignore_unknown_options": False})
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="YAML under configs/.")
@click.option("--output", type=click.Path(file_okay=False), help="Run folder (default: runs/<config name>).")
@click.argument("overrides", nargs=-1)
def train(config_path, output, overrides):
    """Fine-tune a recommender with DeepSpeed; rerun with the same --output to resume.

    OVERRIDES are section.key=value pairs, e.g. train.steps=50 model.backbone=tiny.
    Exits 75 after saving a checkpoint when stopped by SIGTERM/SIGUSR1.
    """
    from recsys24.config import load_config
    from recsys24.training.loop import EXIT_STOPPED, train as run_training

    config = load_config(config_path, list(overrides))
    run = Path(output) if output else Path("runs") / Path(config_path).stem
    summary = run_training(config, run)
    if summary.get("stopped"):
        code = EXIT_STOPPED
    else:
        code = 0
        if int(os.environ.get("RANK", "0")) == 0:
            click.echo(f"trained {summary['step']} steps -> {summary['model']} "
                       f"(best validation AUC {summary['best_val_auc']} at {summary['best_checkpoint']})")
    # DeepSpeed's process group can abort at interpreter exit after a finished run
    # ("terminate called without an active exception"); leave without tearing it down.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


COMMANDS = [train]
