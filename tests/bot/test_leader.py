"""The scheduler's election (bot.services.leader), in one process: candidates with their own
connections on one database. The election across real processes killed with SIGKILL is
tests/e2e/test_election.py."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, text
from telegram.ext import Application

import storage
from bot.adapter import context as running
from bot.adapter.app import build_application
from bot.adapter.sending import TelegramOutbox
from bot.infra.config import Settings
from bot.services import leader, reporting
from bot.services.conversation import Conversation
from flows import load
from tests.helpers.botapi import BotApiStandIn
from tests.helpers.databases import POSTGRES_ONLY, SQLITE_ONLY

RETRY = 0.3  # seconds; production waits 10


@pytest.fixture
async def apps(api: BotApiStandIn, database_url: str) -> AsyncIterator[list[Application]]:
    """Two initialised applications on one database, as two replicas would be."""
    engine = storage.make_engine(database_url)
    built = [build_application(settings(api, database_url),
                               Conversation(load(), storage.make_sessions(engine)))
             for _ in range(2)]  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        for app in built:
            await stack.enter_async_context(app)
        yield built
    engine.dispose()


def role_of(app: Application) -> tuple[TelegramOutbox, Conversation]:  # type: ignore[type-arg]
    """What a replica's leadership acts with: its outbox and its conversation."""
    return running.outbox(app), running.conversation(app)


def settings(api: BotApiStandIn, database_url: str) -> Settings:
    return Settings(telegram_bot_token=api.token, telegram_base_url=api.base_url,
                    database_url=database_url, consulta_rate_limit=0,
                    _env_file=None)  # type: ignore[call-arg]  # fmt: skip


async def until(condition: object, api: BotApiStandIn, timeout: float = 10) -> None:
    await api.await_for(condition, timeout=timeout)  # type: ignore[arg-type]


@POSTGRES_ONLY
async def test_one_leads_and_the_other_takes_over_when_it_leaves(
    api: BotApiStandIn, apps: list[Application], database_url: str
) -> None:
    config = running.settings(apps[0])
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(
            leader.leadership(*role_of(apps[0]), config, retry=RETRY)
        )
        await until(lambda: first.leading, api)
        async with leader.leadership(*role_of(apps[1]), config, retry=RETRY) as second:
            await asyncio.sleep(4 * RETRY)  # several attempts, all refused
            assert first.leading and not second.leading and second.terms == 0
            await stack.aclose()  # the leader shuts down: its lock is released
            assert not first.leading
            await until(lambda: second.leading, api, timeout=10 * RETRY + 5)
            assert second.terms == 1


@POSTGRES_ONLY
async def test_a_leader_that_loses_its_session_stops_its_scheduler(
    api: BotApiStandIn, apps: list[Application], database_url: str
) -> None:
    """The lock's session is killed on the server (as when the network between the leader
    and the database breaks): the leader stops its scheduler, the standby takes over, and
    the old leader stands again as a standby. The digest job keeps its stored next run."""
    config = running.settings(apps[0])
    async with leader.leadership(*role_of(apps[0]), config, retry=RETRY) as first:
        await until(lambda: first.leading, api)
        assert first.scheduler is not None
        next_digest = datetime.now(UTC) + timedelta(hours=5)
        first.scheduler.modify_job(reporting.JOB_ID, next_run_time=next_digest)
        async with leader.leadership(*role_of(apps[1]), config, retry=RETRY) as second:
            await asyncio.sleep(2 * RETRY)
            assert not second.leading
            admin = storage.make_engine(database_url)
            try:
                with admin.begin() as conn:
                    pids = conn.scalars(text(
                        "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                        " WHERE l.locktype = 'advisory' AND l.classid = :ns AND l.granted"
                        " AND a.application_name LIKE 'consulta-scheduler:%'"
                        # this test's schema only: other tests may lead in theirs meanwhile
                        " AND l.objid::bigint = (hashtext(current_schema())::bigint & 4294967295)"
                    ), {"ns": leader.SCHEDULER_LOCK}).all()  # fmt: skip
                    assert len(pids) == 1  # one leader, found by its application name
                    conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pids[0]})
            finally:
                admin.dispose()
            await until(lambda: not first.leading and second.leading, api)
            assert second.scheduler is not None
            job = second.scheduler.get_job(reporting.JOB_ID)
            assert job is not None and job.next_run_time == next_digest  # not recomputed
            await asyncio.sleep(4 * RETRY)
            assert not first.leading and first.terms == 1  # a standby now, not a rival


@SQLITE_ONLY
async def test_on_sqlite_the_scheduler_runs_in_process(apps: list[Application]) -> None:
    config = running.settings(apps[0])
    assert not leader.elects(config)
    async with leader.leadership(*role_of(apps[0]), config) as role:
        assert role.leading and role.scheduler is not None and role.scheduler.running
        scheduler = role.scheduler
    assert not role.leading and not scheduler.running


@SQLITE_ONLY
async def test_an_unreachable_database_leaves_the_bot_serving_as_a_standby(
    apps: list[Application],
) -> None:
    """No PostgreSQL server answers: the election fails, is retried, and the rest of the
    bot is not disturbed (no exception leaves the context, nothing leads)."""
    config = running.settings(apps[0]).model_copy(
        update={"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"}
    )
    assert leader.elects(config)
    async with leader.leadership(*role_of(apps[0]), config, retry=0.1) as role:
        await asyncio.sleep(0.5)  # a few failed attempts
        assert not role.leading and role.terms == 0


@POSTGRES_ONLY
async def test_a_connection_made_after_the_election_stopped_is_closed(
    apps: list[Application], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shutdown (or a timeout) while the lock's connection is being made: the connection
    arrives once nobody waits for it, and must be closed then, not left to the garbage
    collector (a session open on the server until then; a ResourceWarning in the tests)."""
    made: list[Connection] = []
    connect = leader.Leadership._connect

    def slow_connect(role: leader.Leadership) -> tuple[Engine, Connection]:
        time.sleep(0.5)  # a slow server: the shutdown comes first
        engine, conn = connect(role)
        made.append(conn)
        return engine, conn

    monkeypatch.setattr(leader.Leadership, "_connect", slow_connect)
    config = running.settings(apps[0])
    async with leader.leadership(*role_of(apps[0]), config, retry=RETRY) as role:
        await asyncio.sleep(0.1)
    assert not role.leading
    for _ in range(50):  # the connection arrives, then is closed in a thread of its own
        if made and made[0].closed:
            break
        await asyncio.sleep(0.1)
    assert made and made[0].closed


async def test_stopping_the_election_survives_a_lost_cancellation() -> None:
    """Python 3.11's ``wait_for`` can swallow a cancellation that arrives as its inner call
    ends; the election task then went on and a shutdown waited for it forever."""
    swallowed = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            swallowed.set()  # lost, as in wait_for's race
        await asyncio.sleep(30)

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(leader._stop(task), timeout=5)
    assert swallowed.is_set() and task.cancelled()
