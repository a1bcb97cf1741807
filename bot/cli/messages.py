"""The command line's texts (``bot/cli/messages_es.yaml``), looked up by key."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml


@cache
def _catalogue() -> dict[str, str]:
    raw = (resources.files("bot.cli") / "messages_es.yaml").read_text(encoding="utf-8")
    data: dict[str, str] = yaml.safe_load(raw)
    return data


def say(key: str, /, **values: object) -> str:
    """The text ``key``, its {placeholders} filled with ``values``."""
    text = _catalogue()[key]
    return text.format(**values) if values else text
