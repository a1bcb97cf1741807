"""bot.services.conversation: one event, one transaction, whatever happens to the connection."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from bot.services.conversation import Conversation
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
    assert conv.apply_sync("7", Start(), update_id=1) is not None  # the pool now holds a connection
    with engine.connect() as conn:
        pooled = conn.scalar(text("SELECT pg_backend_pid()"))
    with engine.pool._creator() as killer:  # type: ignore[attr-defined]  # outside the pool
        killer.execute("SELECT pg_terminate_backend(%s)", (pooled,))
    step = conv.apply_sync("7", Start(), update_id=2)
    assert step is not None and step.replies
    with sessions() as session:
        ids = set(session.scalars(select(ProcessedUpdate.update_id)))
        assert ids == {1, 2}
        assert session.scalar(select(Participant.id)) is None  # /start stores no one


async def test_on_the_event_loop_a_dead_connection_is_replaced(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """The same on a database server through ``apply``, whose transactions run on the event
    loop with a pool of their own; ``aclose`` then closes that pool."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server connection to lose")
    conv = Conversation(load(), sessions)
    try:
        assert await conv.apply("7", Start(), update_id=1) is not None
        server = conv._server  # the pool apply used, holding one idle connection now
        assert server is not None
        async with server() as session:
            pooled = await session.scalar(text("SELECT pg_backend_pid()"))
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pooled})
        step = await conv.apply("7", Start(), update_id=2)
        assert step is not None and step.replies
        assert await conv.apply("7", Start(), update_id=2) is None  # stored: a redelivery
        async with server() as session:
            replaced = await session.scalar(text("SELECT pg_backend_pid()"))
        assert replaced != pooled
    finally:
        await conv.aclose()
    assert conv._server is None
    alive = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
    for _ in range(50):  # aclose closed the pool's connection; its server process then ends
        with engine.connect() as conn:
            if conn.scalar(alive, {"pid": replaced}) == 0:
                break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the event loop's connection was left open after aclose")
    with sessions() as session:
        assert set(session.scalars(select(ProcessedUpdate.update_id))) == {1, 2}
