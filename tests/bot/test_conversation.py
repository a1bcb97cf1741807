"""bot.conversation: one event, one transaction, whatever happens to the connection."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from bot.conversation import Conversation
from flows.definition import load
from flows.events import Start
from storage.models import Participant, ProcessedUpdate


def test_a_dead_pooled_connection_is_replaced(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """Engines skip pre-ping (a round trip per transaction): a connection killed under the
    pool (a database restart) must cost a retry, not the update."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server connection to lose")
    conv = Conversation(load(), sessions)
    assert conv.handle("7", Start(), update_id=1) is not None  # the pool now holds a connection
    with engine.connect() as conn:
        pooled = conn.scalar(text("SELECT pg_backend_pid()"))
    with engine.pool._creator() as killer:  # type: ignore[attr-defined]  # outside the pool
        killer.execute("SELECT pg_terminate_backend(%s)", (pooled,))
    step = conv.handle("7", Start(), update_id=2)
    assert step is not None and step.replies
    with sessions() as session:
        ids = set(session.scalars(select(ProcessedUpdate.update_id)))
        assert ids == {1, 2}
        assert session.scalar(select(Participant.id)) is None  # /start stores no one
