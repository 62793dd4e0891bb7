"""What long steps print: the commands' console and one progress helper.

On a terminal, :class:`Progress` draws a rich bar with the count, the total,
the rate and the time left. Anywhere else (a SLURM log, a pipe, a file) it
prints plain timestamped lines instead: no markup, no carriage returns, never
wrapped, one each time another 10% is done or 30 s have passed, and the last
at the end (a step done within 2 s prints none)::

    14:02:07 predict shard 0/1: 2,500/25,000 impressions (10%), 41 impressions/s, 9m09s left

Every command prints through :data:`console`: stdout, so a log keeps the
progress lines in order with the command's other output; ``soft_wrap``, so a
long path stays on one line when the output is not a terminal (and tables get
160 columns there, not 80); no automatic highlighting, so numbers and paths are
not coloured mid-line.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, ProgressColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from rich.text import Text

console = Console(soft_wrap=True, highlight=False)
if not console.is_terminal:  # a log file has no width: tables take what they need instead of 80 columns
    console.width = max(console.width, 160)

EVERY_SHARE = 0.1  # a plain line each time another 10% is done ...
EVERY_S = 30.0  # ... or when this long has passed since the last one ...
QUIET_S = 2.0  # ... but none in a step's first seconds: a step done by then prints no progress at all


def quiet_library_bars() -> None:
    """Turn off the Hugging Face libraries' tqdm bars ("Loading weights") when stderr is not a terminal.

    tqdm redraws with carriage returns, which a log file keeps as one long
    garbled line. The environment variable reaches child processes and
    libraries imported later; the calls reach those already imported. A user's
    own ``HF_HUB_DISABLE_PROGRESS_BARS=0`` is kept.
    """
    if sys.stderr.isatty() or os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1") != "1":
        return
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].utils.disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()


def log(message: str, out: Console | None = None) -> None:
    """Print ``message`` as one plain line after the time of day (``14:02:07 message``)."""
    (out or console).print(Text(f"{time.strftime('%H:%M:%S')} {message}"), soft_wrap=True)


def plural(count: int, word: str, words: str | None = None) -> str:
    """``1 shard``, ``3 shards``, ``12,000 impressions``.

    >>> plural(1, "shard"), plural(3, "shard"), plural(2, "entry", "entries")
    ('1 shard', '3 shards', '2 entries')
    """
    return f"{count:,} {word if count == 1 else (words or word + 's')}"


def duration(seconds: float) -> str:
    """``42s``, ``9m09s``, ``2h05m``: short enough for a progress line.

    >>> duration(42.4), duration(549), duration(7500)
    ('42s', '9m09s', '2h05m')
    """
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def rate_text(rate: float) -> str:
    """A rate with the digits that matter: ``0.42``, ``8.3``, ``1,250``."""
    return f"{rate:,.2f}" if rate < 1 else f"{rate:,.1f}" if rate < 100 else f"{rate:,.0f}"


class _Counts(ProgressColumn):
    """``2,500/25,000 impressions, 41/s`` (``?`` while the total is unknown), on one line."""

    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        total = f"{int(task.total):,}" if task.total is not None else "?"
        rate = task.fields.get("rate")
        speed = f", {rate_text(rate)}/s" if rate else ""
        return Text(f"{int(task.completed):,}/{total} {self.unit}{speed}", no_wrap=True)


class Progress:
    """Progress of one long step; call it with ``(done, total)`` as the work advances.

    label: what runs (``predict shard 0/1``); unit: what is counted
    (``impressions``, ``steps``); total: known up front, or given with each call;
    enabled: False draws and prints nothing (e.g. on ranks other than 0);
    bar: False prints the plain lines even on a terminal (a step inside another bar).
    The rate counts from the first call, so work skipped by a resumed run
    (reported in that first call) does not inflate it. Use as a context manager::

        with Progress("predict shard 0/1", "impressions") as progress:
            progress(done, total)
    """

    def __init__(self, label: str, unit: str = "rows", total: int | None = None, *, enabled: bool = True,
                 bar: bool = True, out: Console | None = None, every_share: float | None = None, every_s: float | None = None,
                 quiet_s: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.label, self.unit, self.total, self.enabled = label, unit, total, enabled
        self.console = out or console
        # None: the module's settings as they are when the step starts
        self.every_share = EVERY_SHARE if every_share is None else every_share
        self.every_s = EVERY_S if every_s is None else every_s
        self.quiet_s = QUIET_S if quiet_s is None else quiet_s
        self.clock = clock
        self.terminal = enabled and bar and self.console.is_terminal
        self.done = 0
        self._start: tuple[float, int] | None = None  # (time, done) of the first call
        self._printed: tuple[float, int] | None = None  # (time, share step) of the last plain line
        self._finished = False  # the plain line of the end is out: no other progress line
        self._bar = self._task = None

    def __enter__(self) -> "Progress":
        if self.terminal:
            columns = (f"[bold]{escape(self.label)}[/]", BarColumn(bar_width=30), _Counts(self.unit),
                       TimeRemainingColumn())
            self._bar = RichProgress(*columns, console=self.console)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self.total, rate=0.0)
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
            self._bar = None

    def rate(self) -> float:
        """Units per second since the first call (0 before there is anything to measure)."""
        if self._start is None:
            return 0.0
        seconds = self.clock() - self._start[0]
        return (self.done - self._start[1]) / seconds if seconds > 0 else 0.0

    def __call__(self, done: int, total: int | None = None, message: str = "") -> None:
        """``done`` of ``total`` (or of the total given before); ``message``: news printed with it, always."""
        if not self.enabled:
            return
        self.done = done
        self.total = total if total is not None else self.total
        if self._start is None:
            self._start = (self.clock(), done)
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=self.total, rate=self.rate())
            if message:
                self._bar.console.print(Text(message), soft_wrap=True)
            return
        now, step, last = self.clock(), self._share_step(), self._printed
        was_finished, self._finished = self._finished, self.total is not None and done >= self.total
        due = (not was_finished and now - self._start[0] >= self.quiet_s
               and (self._finished or last is None or step > last[1] or now - last[0] >= self.every_s))
        if message or due:
            self._print_line(now, step, message)

    def note(self, message: str) -> None:
        """A line of news (metrics of a step, a phase that starts): above the bar, or a plain line
        that carries the progress too (and counts as this interval's progress line)."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.console.print(Text(message), soft_wrap=True)
            return
        if self._start is None:  # nothing counted yet: the message alone
            log(f"{self.label}: {message}", self.console)
            return
        self._print_line(self.clock(), self._share_step(), message)

    def _share_step(self) -> int:
        if not self.total:
            return 0
        return int(min(self.done / self.total, 1.0) / self.every_share + 1e-9)

    def _print_line(self, now: float, step: int, message: str = "") -> None:
        self._printed = (now, step)
        log(f"{self.label}: {self.status()}" + (f" | {message}" if message else ""), self.console)

    def status(self) -> str:
        """``2,500/25,000 impressions (10%), 41 impressions/s, 9m09s left``."""
        rate = self.rate()
        if self.total is None:
            text = f"{self.done:,} {self.unit}"
        else:
            text = f"{self.done:,}/{self.total:,} {self.unit} ({self.done / max(self.total, 1):.0%})"
        if rate > 0:
            text += f", {rate_text(rate)} {self.unit}/s"
            if self.total is not None and self.done < self.total:
                text += f", {duration((self.total - self.done) / rate)} left"
        return text


class Phases:
    """Progress of a command with several phases, one bar (or series of plain lines) at a time."""

    def __init__(self):
        self.current: Progress | None = None

    def step(self, label: str, unit: str):
        """The ``(done, total)`` callback of one phase; its first call ends the phase before it."""
        def call(done: int, total: int) -> None:
            if self.current is None or self.current.label != label:
                self.close()
                self.current = Progress(label, unit).__enter__()
            self.current(done, total)
        return call

    def note(self, message: str) -> None:
        if self.current is None:
            log(message)
        else:
            self.current.note(message)

    def close(self) -> None:
        if self.current is not None:
            self.current.__exit__(None, None, None)

    def __enter__(self) -> "Phases":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
