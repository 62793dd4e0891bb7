"""The ``recsys24`` command: a thin layer that parses options and calls one function."""

from __future__ import annotations

import importlib
import sys

import click
from rich.console import Console
from rich.text import Text

from recsys24.errors import Recsys24Error, os_error_message

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
    "recsys24.commands.rank",
]


def print_error(message: str) -> None:
    """One red ``error:`` line; the message is printed as it is (its brackets are not markup)."""
    console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)


def print_warning(message: str) -> None:
    """One yellow ``warning:`` line on stderr, printed as it is."""
    console.print(Text.assemble(("warning:", "bold yellow"), " ", message), highlight=False, soft_wrap=True)


class Group(click.Group):
    """A click group that turns Recsys24Error and OS failures into one red line and exit code 2.

    An OSError that reaches here (permission denied, disk full, read-only file
    system outside :func:`recsys24.io.atomic_path`) is a fault of the machine,
    not of the code: the user gets the path and the cause, not a traceback.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Recsys24Error as err:
            print_error(str(err))
            sys.exit(2)
        except OSError as err:
            print_error(os_error_message(err))
            sys.exit(2)


@click.group(cls=Group)
@click.version_option(package_name="recsys24")
def main() -> None:
    """EB-NeRD (RecSys Challenge 2024) to a contest submission."""
    from recsys24.progress import quiet_library_bars

    quiet_library_bars()


for _name in COMMAND_MODULES:
    for _command in importlib.import_module(_name).COMMANDS:
        main.add_command(_command)
