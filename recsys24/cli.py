"""The ``recsys24`` command: a thin layer that parses options and calls one function."""

from __future__ import annotations

import sys

import click

from recsys24.commands import compare, data, evaluation, features, inference, prompts, rank, recprompt, report, training
from recsys24.errors import Recsys24Error, os_error_message
from recsys24.messages import print_error

# One module per pipeline stage; each exports COMMANDS (a list of click commands).
COMMAND_MODULES = [data, evaluation, prompts, training, inference, recprompt, report, compare, features, rank]


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


for _module in COMMAND_MODULES:
    for _command in _module.COMMANDS:
        main.add_command(_command)
