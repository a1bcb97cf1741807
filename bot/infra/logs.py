"""Logging set-up of the long-running commands: text (default) or one JSON object per line
(``CONSULTA_LOG_FORMAT=json``), which log collectors (journald, Loki, CloudWatch) parse
without a pattern."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
UPDATES = logging.getLogger("consulta.updates")
"""One line per processed update, in both modes (webhook and polling)."""
_per_update_level = logging.DEBUG
"""INFO with JSON logs (collectors want every update), DEBUG in text (a terminal does not)."""


def without_values(text: str) -> str:
    """``text`` (a traceback) without the lines in which PostgreSQL quotes a row's values
    (``DETAIL:  Key (channel, external_id)=(telegram, 1001) already exists.``): a Telegram
    id or an answer's text. The statement's parameters are hidden by the engines
    (``hide_parameters``, storage.make_engine)."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("DETAIL:"))


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT``, tracebacks ``without_values``."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatException(self, ei: Any) -> str:
        return without_values(super().formatException(ei))


class JsonFormatter(TextFormatter):
    """``{"time", "level", "logger", "message", ...}``; the dict a record carries in its
    ``fields`` attribute (``log.info("update", extra={"fields": {...}})``) is merged in, so
    that one processed update is one flat object: update_id, kind, outcome, latency_ms."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(log_format: str = "text", level: int = logging.INFO) -> None:
    """Log to standard error in ``log_format`` (text or json); httpx's line per request off."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    global _per_update_level
    _per_update_level = logging.INFO if log_format == "json" else logging.DEBUG
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # PTB's DEBUG lines hold whole updates and requests (ids, names, texts): never those.
    logging.getLogger("telegram").setLevel(max(level, logging.INFO))


def processed(update_id: int, kind: str, outcome: str, started: float) -> None:
    """Log one processed update with its latency since ``started`` (``time.perf_counter``)."""
    fields = {"update_id": update_id, "kind": kind, "outcome": outcome,
              "latency_ms": round((time.perf_counter() - started) * 1000, 1)}  # fmt: skip
    UPDATES.log(_per_update_level, "update %(update_id)s %(kind)s %(outcome)s %(latency_ms)s ms",
                fields, extra={"fields": fields})  # fmt: skip
