"""Scheduled jobs by id, and the scheduler that keeps them.

The scheduler keeps its jobs in memory and only their next run times in the database
(``Scheduler``; storage.schedules): every job is ``run(job_id)``, the process that leads
registers the work behind each id when it adds the job (``add``), and a job's schedule
comes from the code, never from the database. APScheduler's own database store keeps
pickled jobs, which the leader would unpickle: anyone able to write to the database could
have run code there.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.job import Job
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import Engine, pool
from sqlalchemy.orm import Session, sessionmaker

import storage
from storage import schedules

log = logging.getLogger(__name__)

_WORK: dict[str, Callable[[], Awaitable[object]]] = {}


async def run(job_id: str) -> None:
    """Do the work registered for ``job_id`` in this process."""
    work = _WORK.get(job_id)
    if work is None:
        log.warning("job %s has no work registered in this process; skipped", job_id)
        return
    await work()


class RecordedJobStore(MemoryJobStore):
    """Jobs in memory; each one's next run time written to the database whenever the
    scheduler adds, reschedules or removes it (after every run, too)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        super().__init__()
        self.sessions = sessions

    def stored_next_run(self, job_id: str) -> datetime | None:
        with self.sessions() as session:
            return schedules.next_run(session, job_id)

    def add_job(self, job: Job) -> None:
        super().add_job(job)
        self._record(job)

    def update_job(self, job: Job) -> None:
        super().update_job(job)
        self._record(job)

    def remove_job(self, job_id: str) -> None:
        super().remove_job(job_id)
        with self.sessions.begin() as session:
            schedules.forget(session, job_id)

    def shutdown(self) -> None:
        super().shutdown()  # forgets the jobs in memory, not their stored run times
        bind = self.sessions.kw.get("bind")
        if isinstance(bind, Engine):
            bind.dispose()

    def _record(self, job: Job) -> None:
        with self.sessions.begin() as session:
            schedules.record_next_run(session, job.id, job.next_run_time, datetime.now(UTC))


class Scheduler(AsyncIOScheduler):
    """APScheduler on the event loop, its jobs in a ``RecordedJobStore`` on ``database_url``."""

    def __init__(self, database_url: str, **options: Any) -> None:
        # No pool: a run time is written a few times an hour, and a pooled connection still
        # checked out by a job's thread when the scheduler shuts down would be left open.
        engine = storage.make_engine(database_url, poolclass=pool.NullPool)
        self.store = RecordedJobStore(storage.make_sessions(engine))
        super().__init__(jobstores={"default": self.store}, **options)


def add(
    scheduler: BaseScheduler,
    job_id: str,
    work: Callable[[], Awaitable[object]],
    trigger: Any,
    *,
    keep_next_run: bool = True,
    **options: Any,
) -> None:
    """Add (or replace) the job ``job_id`` doing ``work`` on ``trigger``.

    With ``keep_next_run``, the stored next run time is kept: a run missed while no process
    led happens once at start (``coalesce``, no ``misfire_grace_time``). Start the scheduler
    paused (``start(paused=True)``) and resume it once every job is added.
    """
    _WORK[job_id] = work
    if keep_next_run:
        stored = _stored_next_run(scheduler, job_id)
        if stored is not None:
            options.setdefault("next_run_time", stored)
        options.setdefault("misfire_grace_time", None)
    scheduler.add_job(
        run, trigger, args=[job_id], id=job_id, replace_existing=True, coalesce=True,
        max_instances=1, **options,
    )  # fmt: skip


def _stored_next_run(scheduler: BaseScheduler, job_id: str) -> datetime | None:
    if isinstance(scheduler, Scheduler):
        return scheduler.store.stored_next_run(job_id)
    job = scheduler.get_job(job_id)  # another job store: what it holds
    return job.next_run_time if job is not None else None
