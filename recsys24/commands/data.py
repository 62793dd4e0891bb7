"""``recsys24 synth`` and ``recsys24 prepare``."""

from __future__ import annotations

COMMANDS: list = []
