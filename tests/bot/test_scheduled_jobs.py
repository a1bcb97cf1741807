"""The scheduler keeps no pickles: only job ids and next run times are in the database, and
what runs is whatever the code registers for an id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect, select

from bot.adapter.app import build_application
from bot.adapter.sending import TelegramOutbox
from bot.services import reminders, reporting
from bot.services.leader import build_scheduler, leadership
from storage.models import ScheduledJob
from tests.helpers.databases import SQLITE_ONLY
from tests.helpers.harness import RunningBot


async def test_the_database_holds_job_ids_and_times_only(running: RunningBot) -> None:
    app = build_application(running.settings, running.conversation)
    async with app, leadership(TelegramOutbox(app.bot), running.conversation, running.settings,
                               lambda: build_scheduler(running.settings)) as role:  # fmt: skip
        await running.api.await_for(lambda: role.leading, timeout=10)
    tables = set(inspect(running.engine).get_table_names())
    assert "scheduler_jobs" not in tables  # APScheduler's store of pickled jobs
    for table in tables:  # no column of any table holds bytes
        for column in inspect(running.engine).get_columns(table):
            assert "BLOB" not in str(column["type"]) and "BYTEA" not in str(column["type"])
    with running.conversation.sessions() as s:
        stored = {row.job_id: row.next_run_at for row in s.scalars(select(ScheduledJob))}
    assert {reminders.JOB_ID, reporting.JOB_ID} <= set(stored)


@SQLITE_ONLY  # what is loaded does not depend on the database; no election to wait for
async def test_a_row_written_by_someone_else_runs_nothing_new(running: RunningBot) -> None:
    """An attacker with write access can at most move a known job's next run; an unknown id
    is never loaded: there is nothing in a row to execute."""
    past = datetime.now(UTC) - timedelta(hours=1)
    with running.conversation.sessions.begin() as s:
        s.add(ScheduledJob(job_id="os.system:rm -rf /", next_run_at=past, updated_at=past))
    scheduler = build_scheduler(running.settings)
    app = build_application(running.settings, running.conversation)
    async with app, leadership(TelegramOutbox(app.bot), running.conversation, running.settings,
                               lambda: scheduler) as role:  # fmt: skip
        await running.api.await_for(lambda: role.leading, timeout=10)
        assert "os.system:rm -rf /" not in {job.id for job in scheduler.get_jobs()}
        assert {job.func.__qualname__ for job in scheduler.get_jobs()} == {"run"}
