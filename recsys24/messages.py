"""What a command says to its user besides its result: one ``error:`` or ``warning:`` line on stderr.

The commands (``recsys24/commands/``) print warnings through here and
``recsys24.cli`` prints the one error line of a refused command, so no command
module needs to import the CLI that registers it.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

console = Console(stderr=True)


def print_error(message: str) -> None:
    """One red ``error:`` line; the message is printed as it is (its brackets are not markup)."""
    console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)


def print_warning(message: str) -> None:
    """One yellow ``warning:`` line on stderr, printed as it is."""
    console.print(Text.assemble(("warning:", "bold yellow"), " ", message), highlight=False, soft_wrap=True)
