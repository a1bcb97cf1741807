"""The reports' texts (``reports/texts_es.yaml``), looked up by key: the digest, its charts,
the result table and the export, as organisers and participants read them."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml


@cache
def _catalogue() -> dict[str, str]:
    raw = (resources.files("reports") / "texts_es.yaml").read_text(encoding="utf-8")
    data: dict[str, str] = yaml.safe_load(raw)
    return data


def text(key: str, /, **values: object) -> str:
    """The text ``key``, its {placeholders} filled with ``values``."""
    found = _catalogue()[key]
    return found.format(**values) if values else found
