"""Storage: SQLAlchemy models, engine/session setup, migrations and the queries others need."""

from storage.db import (
    at_head,
    make_async_engine,
    make_engine,
    make_sessions,
    normalise_url,
    upgrade,
)
from storage.repository import (
    Loaded,
    claim_and_load,
    claim_update,
    load,
    mark_unreachable,
    new_code,
    remember_version,
    save,
)

__all__ = [
    "Loaded",
    "at_head",
    "claim_and_load",
    "claim_update",
    "load",
    "make_async_engine",
    "make_engine",
    "make_sessions",
    "mark_unreachable",
    "new_code",
    "normalise_url",
    "remember_version",
    "save",
    "upgrade",
]
