"""The reports' texts (``reports/texts_es.yaml``), looked up by key: the digest, its charts,
the result table and the export, as organisers and participants read them."""

from __future__ import annotations

from flows import catalogue


def text(key: str, /, **values: object) -> str:
    """The text ``key``, its {placeholders} filled with ``values``."""
    return catalogue.lookup("reports", "texts_es.yaml", key, values)
