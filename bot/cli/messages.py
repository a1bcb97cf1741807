"""The command line's texts (``bot/cli/messages_es.yaml``), looked up by key."""

from __future__ import annotations

from flows import catalogue


def say(key: str, /, **values: object) -> str:
    """The text ``key``, its {placeholders} filled with ``values``."""
    return catalogue.lookup("bot.cli", "messages_es.yaml", key, values)
