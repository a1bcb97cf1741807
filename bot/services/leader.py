"""One scheduler among replicas: digests and reminders run in exactly one process.

On PostgreSQL, the replicas hold an election with an advisory lock: each asks for it
(``pg_try_advisory_lock``) on a connection of its own; the one that gets it leads and runs
the scheduler for as long as it holds that connection; the others ask again every
``CONSULTA_LEADER_RETRY`` seconds (10). The lock belongs to the leader's database session,
so it is released when the leader dies: a ``kill -9`` closes the socket and the server
frees the lock at once; a machine that vanishes is noticed by the server's TCP keepalives
(set on that session to about 25 s). A standby then takes over within its retry interval.

A leader that cannot show that it still holds the lock (its connection broke, the check
failed or hung) stops its scheduler at once and stands for election again. It checks twice
per retry interval, with a timeout of one interval, so it gives up (within 15 s by default)
before the server frees the lock of a session it can no longer reach. One window remains:
between two checks (5 s by default), a leader whose session was just cut (the server
restarted, or an administrator ended it) may still start a job.

The jobs' next run times live in the database (bot.services.jobs: the jobs themselves are
rebuilt by the code, never unpickled), so a new leader finds them: a run missed during the
handover happens once at its start (``coalesce``, no ``misfire_grace_time``). What must not
happen twice is claimed in the database before it is done (a digest's period, each
reminder), so even a leader in that window cannot repeat what its successor did.

SQLite deployments have one process: the scheduler simply runs in it, as before.

Usage, by any runner (polling or the webhook server)::

    async with app:
        await app.start()
        async with leadership(outbox, conv, settings, lambda: build_scheduler(settings)):
            ...  # serve updates until asked to stop
        await app.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Connection, Engine, create_engine, pool, text
from sqlalchemy.engine import make_url

from bot.infra.config import Settings
from bot.services import closing, housekeeping, jobs, reminders, reporting
from bot.services.conversation import Conversation
from bot.services.outbox import Outbox
from storage import normalise_url
from storage.db import SCHEDULER_LOCK, holds_advisory_lock, try_advisory_lock

log = logging.getLogger(__name__)

APPLICATION_NAME = "consulta-scheduler"
"""The lock's session shows as ``consulta-scheduler:<pid>`` in ``pg_stat_activity``: which
process of which machine leads is one query away."""
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
             "keepalives_count": 3}  # fmt: skip
"""TCP keepalives of the lock's connection, on the client (libpq) and, set in the session,
on the server: a peer that vanished without closing the connection is noticed in about
10 + 3 × 5 = 25 s, instead of the two hours of the usual defaults."""

T = TypeVar("T")


def build_scheduler(settings: Settings) -> AsyncIOScheduler:
    """APScheduler in the consultation's time zone, its jobs' next run times kept in the
    database (bot.services.jobs.Scheduler: no pickles)."""
    return jobs.Scheduler(settings.database_url, timezone=settings.zone)


def elects(settings: Settings) -> bool:
    """Whether replicas elect the scheduler's process: on PostgreSQL only."""
    return make_url(normalise_url(settings.database_url)).get_backend_name() == "postgresql"


class Leadership:
    """This process's part in the election. ``leading`` is True while its scheduler runs
    (``scheduler``); on SQLite it leads from start to end."""

    def __init__(
        self,
        outbox: Outbox,
        conv: Conversation,
        settings: Settings,
        scheduler_factory: Callable[[], AsyncIOScheduler],
        policy: reminders.Policy,
        retry: float,
    ) -> None:
        self.outbox, self.conv, self.settings, self.policy = outbox, conv, settings, policy
        self.scheduler_factory = scheduler_factory
        self.retry = retry
        self.check = retry / 2
        # A query that takes longer counts as a lost lock; not under 5 s, so that a busy
        # machine does not make the leader give up a lock it still holds.
        self.timeout = max(retry, 5.0)
        self.scheduler: AsyncIOScheduler | None = None
        self.terms = 0
        """How many times this process became leader (tests watch it)."""
        self._engine: Engine | None = None
        self._conn: Connection | None = None

    @property
    def leading(self) -> bool:
        return self.scheduler is not None

    # --- the scheduler -------------------------------------------------------------------

    def lead(self) -> None:
        """Start a scheduler with the stored jobs (see reminders.schedule: started paused,
        so that the stored next run times are read before the jobs are replaced)."""
        scheduler = self.scheduler_factory()
        outbox, conv = self.outbox, self.conv
        try:
            scheduler.start(paused=True)
            reminders.schedule(scheduler, outbox, conv, self.policy)
            reporting.schedule(scheduler, outbox, conv, self.settings)
            closing.schedule(scheduler, outbox, conv, self.settings)
            housekeeping.schedule(scheduler, conv)
            scheduler.resume()
        except Exception:
            if scheduler.running:
                scheduler.shutdown(wait=False)
            raise
        self.scheduler = scheduler
        self.terms += 1

    async def step_down(self) -> None:
        """Stop the scheduler now; jobs running on it are cancelled (what they claimed in
        the database stays claimed)."""
        scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)
            # AsyncIOScheduler shuts down in a callback of the event loop: let it run now,
            # before anything else (a job due this instant) can.
            await asyncio.sleep(0)

    # --- the election (PostgreSQL) -------------------------------------------------------

    async def campaign(self) -> None:
        """Stand for election until cancelled; lead while the lock is held."""
        while True:
            try:
                await self._connect_in_time()
                while not await self._call(self._try_lock):
                    await asyncio.sleep(self.retry)
                self.lead()
                log.info("leading: this process runs the scheduler (digests, reminders)")
                while await self._call(self._holds_lock):
                    await asyncio.sleep(self.check)
                raise ConnectionError("the scheduler's lock is no longer held")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.leading:
                    log.error("scheduler stopped: its lock cannot be shown to be held (%r)", exc)
                else:
                    log.warning("election failed (%r); trying again in %.0f s", exc, self.retry)
                await self.step_down()
                self._abandon()
                await asyncio.sleep(self.retry)

    async def _call(self, function: Callable[[], T]) -> T:
        """Blocking database work off the event loop, bounded by ``timeout``: the updates
        keep flowing while the database is slow, and a hung query counts as a failure.

        ``asyncio.timeout``, not ``wait_for``: on Python 3.11, ``wait_for`` swallows a
        cancellation that arrives as its inner call finishes, and the election task went on
        standing (a shutdown hung on it in tests/bot/test_leader.py)."""
        async with asyncio.timeout(self.timeout):
            return await asyncio.to_thread(function)

    async def _connect_in_time(self) -> None:
        """``_connect`` as ``_call`` runs it. A connection that comes after the wait ended
        (a timeout, a shutdown) is closed when it comes: left to the garbage collector, its
        session would stay open on the server until then."""
        made = asyncio.ensure_future(asyncio.to_thread(self._connect))
        try:
            async with asyncio.timeout(self.timeout):
                self._engine, self._conn = await asyncio.shield(made)
        except BaseException:
            made.add_done_callback(_close_when_made)
            raise

    def _connect(self) -> tuple[Engine, Connection]:
        """A connection of its own for the lock."""
        url = normalise_url(self.settings.database_url)
        connect_args: dict[str, Any] = {
            "application_name": f"{APPLICATION_NAME}:{os.getpid()}",
            **KEEPALIVE,
        }
        # A pool would reconnect behind our back; a new session does not hold the lock.
        engine = create_engine(url, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT",
                               connect_args=connect_args, hide_parameters=True)  # fmt: skip
        conn = engine.connect()
        for name in ("idle", "interval", "count"):
            value = KEEPALIVE[f"keepalives_{name}"]
            conn.execute(text(f"SET tcp_keepalives_{name} = {value}"))
        return engine, conn

    def _try_lock(self) -> bool:
        assert self._conn is not None
        return try_advisory_lock(self._conn, SCHEDULER_LOCK)

    def _holds_lock(self) -> bool:
        assert self._conn is not None
        return holds_advisory_lock(self._conn, SCHEDULER_LOCK)

    def _abandon(self) -> asyncio.Future[None] | None:
        """Drop the lock's connection (closing the session releases the lock); in a thread
        of its own, because closing a connection to an unreachable server may hang."""
        conn, engine, self._conn, self._engine = self._conn, self._engine, None, None
        if conn is None and engine is None:
            return None
        return asyncio.get_running_loop().run_in_executor(None, _close, conn, engine)


def _close(conn: Connection | None, engine: Engine | None) -> None:
    with contextlib.suppress(Exception):
        if conn is not None:
            conn.close()
    if engine is not None:
        engine.dispose()


def _close_when_made(made: asyncio.Future[tuple[Engine, Connection]]) -> None:
    """Close a connection nobody waited for (``Leadership._connect_in_time``)."""
    if made.cancelled() or made.exception() is not None:
        return
    engine, conn = made.result()
    asyncio.get_running_loop().run_in_executor(None, _close, conn, engine)


@contextlib.asynccontextmanager
async def leadership(
    outbox: Outbox,
    conv: Conversation,
    settings: Settings,
    scheduler_factory: Callable[[], AsyncIOScheduler] | None = None,
    *,
    policy: reminders.Policy | None = None,
    retry: float | None = None,
) -> AsyncIterator[Leadership]:
    """Run the scheduled jobs (digests, reminders) in this process whenever it leads, for
    the duration of the ``async with`` block; see the module's docstring.

    The jobs send through ``outbox`` (for Telegram, an initialised application's bot) and
    act on ``conv``. ``scheduler_factory`` makes a new, unstarted scheduler for each term
    (default ``build_scheduler(settings)``);
    ``policy`` defaults to the reminders' policy from ``settings``; ``retry`` to
    ``settings.consulta_leader_retry`` seconds.
    """
    role = Leadership(
        outbox,
        conv,
        settings,
        scheduler_factory or (lambda: build_scheduler(settings)),
        policy or reminders.Policy.from_settings(settings),
        retry if retry is not None else settings.consulta_leader_retry,
    )
    if not elects(settings):
        role.lead()  # one process on SQLite: no election
        try:
            yield role
        finally:
            await role.step_down()
        return
    task = asyncio.create_task(role.campaign(), name="scheduler-election")
    try:
        yield role
    finally:
        await _stop(task)
        await role.step_down()
        closing = role._abandon()
        if closing is not None:  # release the lock now: a standby can take over at once
            with contextlib.suppress(Exception):
                await asyncio.wait_for(closing, timeout=role.timeout)


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it to end; cancel again if a cancellation was lost
    (a library that catches ``CancelledError`` by mistake must not hang the shutdown)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    with contextlib.suppress(asyncio.CancelledError):
        task.result()
