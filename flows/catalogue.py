"""Catalogues of texts: YAML files of ``key: text`` packaged beside the code that says them
(``flows/messages_es.yaml``, ``bot/cli/messages_es.yaml``, ``reports/texts_es.yaml``), read
once and looked up by key."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import yaml


@cache
def load(package: str, name: str) -> dict[str, Any]:
    """The catalogue ``name`` of ``package`` (read once: do not change it)."""
    raw = (resources.files(package) / name).read_text(encoding="utf-8")
    data = yaml.safe_load(raw)
    if not isinstance(data, dict):
        raise ValueError(f"{package}/{name}: a catalogue maps keys to texts")
    return data


def lookup(package: str, name: str, key: str, values: Mapping[str, object]) -> str:
    """The text ``key`` of the catalogue, its {placeholders} filled with ``values``; without
    values it is returned as written."""
    found = load(package, name)[key]
    if not isinstance(found, str):  # a bare No or 5 in YAML is not a text
        raise TypeError(f"{package}/{name}: {key} is not a text")
    return found.format(**values) if values else found
