"""The next run time of each scheduled job, by id: all the scheduler keeps in the database
(bot.services.jobs). The code rebuilds every job itself; nothing here is ever executed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.invitations import aware
from storage.models import ScheduledJob


def next_run(session: Session, job_id: str) -> datetime | None:
    """When ``job_id`` was last due to run next, if it was ever scheduled."""
    moment = session.scalar(select(ScheduledJob.next_run_at).where(ScheduledJob.job_id == job_id))
    return aware(moment) if moment is not None else None


def record_next_run(session: Session, job_id: str, at: datetime | None, now: datetime) -> None:
    """Keep ``at`` as the next run time of ``job_id`` (None: it will not run again)."""
    session.merge(ScheduledJob(job_id=job_id, next_run_at=at, updated_at=now))


def forget(session: Session, job_id: str) -> None:
    session.execute(delete(ScheduledJob).where(ScheduledJob.job_id == job_id))
