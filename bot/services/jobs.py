"""Scheduled jobs by id, for APScheduler's database job store.

The store keeps a job as a reference to a module-level function and its arguments, not to
live objects: every job is stored as ``run(job_id)``, and the process that leads registers
the work behind each id when it adds the job (``add``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from apscheduler.schedulers.base import BaseScheduler

log = logging.getLogger(__name__)

_WORK: dict[str, Callable[[], Awaitable[object]]] = {}


async def run(job_id: str) -> None:
    """Do the work registered for ``job_id`` in this process."""
    work = _WORK.get(job_id)
    if work is None:
        log.warning("job %s has no work registered in this process; skipped", job_id)
        return
    await work()


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

    With ``keep_next_run``, a stored job's next run time is kept: a run missed while no
    process led happens once at start (``coalesce``, no ``misfire_grace_time``). That needs
    the scheduler started paused (``start(paused=True)``), so that the stored job can be read
    before it is replaced.
    """
    _WORK[job_id] = work
    if keep_next_run:
        stored = scheduler.get_job(job_id)
        if stored is not None and stored.next_run_time is not None:
            options.setdefault("next_run_time", stored.next_run_time)
        options.setdefault("misfire_grace_time", None)
    scheduler.add_job(
        run, trigger, args=[job_id], id=job_id, replace_existing=True, coalesce=True,
        max_instances=1, **options,
    )  # fmt: skip
