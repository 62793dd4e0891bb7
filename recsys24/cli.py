"""The ``recsys24`` command: a thin layer that parses options and calls one function."""

from __future__ import annotations

import importlib
import sys

import click
from rich.console import Console

from recsys24.errors import Recsys24Error

console = Console(stderr=True)

# One module per pipeline stage; each exports COMMANDS (a list of click commands).
COMMAND_MODULES = [
    "recsys24.commands.data",
    "recsys24.commands.evaluation",
    "recsys24.commands.prompts",
    "recsys24.commands.training",
    "recsys24.commands.inference",
    "recsys24.commands.recprompt",
    "recsys24.commands.report",
    "recsys24.commands.compare",
    "recsys24.commands.features",
]


class Group(click.Group):
    """A click group that turns Recsys24Error into one red line and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Recsys24Error as err:
            console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            sys.exit(2)


@click.group(cls=Group)
@click.version_option(package_name="recsys24")
def main() -> None:
    """EB-NeRD (RecSys Challenge 2024) to a contest submission."""


for _name in COMMAND_MODULES:
    for _command in importlib.import_module(_name).COMMANDS:
        main.add_command(_command)
