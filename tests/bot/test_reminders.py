"""Reminders to invited contacts who joined but did not finish, with a controllable clock:
through the real Application, the Bot API stand-in over HTTP and a real database (SQLite and
PostgreSQL), and the persisted APScheduler job across a restart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobEvent
from sqlalchemy import select

from bot.adapter.app import build_application, build_scheduler, serve
from bot.adapter.sending import TelegramOutbox
from bot.services import reminders
from bot.services.reminders import Policy, send_due
from storage import invitations
from storage.models import Invitation, Reminder
from tests.helpers.harness import Participant, RunningBot

SANTIAGO = ZoneInfo("America/Santiago")


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant given in Santiago's time (March 2026: UTC-3), as UTC."""
    return datetime(2026, 3, day, hour, minute, tzinfo=SANTIAGO).astimezone(UTC)


JOINED = local(2, 10)  # Monday 2 March 2026, 10:00 in Santiago


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


async def joined(bot: RunningBot, user_id: int, name: str) -> tuple[int, Participant]:
    """An invited contact who opened their link and consented at ``JOINED``."""
    bot.conversation.clock = Clock(JOINED)
    with bot.conversation.sessions.begin() as s:
        invitation, token = invitations.create(
            s, name=name, institution="Municipalidad de Ovalle", comuna="ovalle", contact=None,
            now=JOINED,
        )  # fmt: skip
        invitation_id = invitation.id
    p = bot.participant(user_id)
    await p.send(f"/start {token}")
    await p.press("Sí, acepto participar")
    return invitation_id, p


async def run(bot: RunningBot, now: datetime) -> int:
    """One run of the reminder job, by a new Application (as the scheduler's process)."""
    app = build_application(bot.settings, bot.conversation)
    async with app:
        return await send_due(
            TelegramOutbox(app.bot), bot.conversation, Policy.from_settings(bot.settings), now
        )


def reminders_to(bot: RunningBot, user_id: int) -> list[str]:
    return [t for t in bot.api.texts_to(user_id) if t.startswith("Hola, ")]


def sent_reminders(bot: RunningBot) -> list[tuple[int, int]]:
    with bot.conversation.sessions() as s:
        rows = s.execute(select(Reminder.invitation_id, Reminder.seq).order_by(Reminder.id))
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_the_default_policy() -> None:
    from bot.infra.config import Settings

    policy = Policy.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    assert (policy.after, policy.max_count) == (timedelta(days=3), 2)
    assert policy.zone == SANTIAGO
    assert [policy.quiet(local(5, h, m)) for h, m in [(8, 59), (9, 0), (20, 59), (21, 0)]] == [
        True, False, False, True
    ]  # fmt: skip


async def test_never_at_night_and_at_most_m_times(running: RunningBot) -> None:
    inv_id, _ = await joined(running, 2001, "Ana Rojas")
    assert await run(running, local(5, 9)) == 0  # not three days yet
    assert await run(running, local(5, 23)) == 0  # due, but 23:00 in Santiago (02:00 UTC)
    assert await run(running, local(6, 8)) == 0  # 08:00 in Santiago, although 11:00 UTC
    assert reminders_to(running, 2001) == []

    assert await run(running, local(6, 20, 30)) == 1  # 20:30 in Santiago, 23:30 UTC
    (text,) = reminders_to(running, 2001)
    assert text.startswith("Hola, Ana Rojas: le recordamos la consulta «¿Cuál es la política")
    markup = running.api.sent_to(2001)[-1].params["reply_markup"]
    assert markup["inline_keyboard"] == [[{"text": "No recordarme más", "callback_data": "nr"}]]

    assert await run(running, local(7, 10)) == 0  # three days from the last reminder
    assert await run(running, local(9, 20, 30)) == 1
    for day in (12, 15, 25):
        assert await run(running, local(day, 10)) == 0  # at most two
    assert len(reminders_to(running, 2001)) == 2
    assert sent_reminders(running) == [(inv_id, 1), (inv_id, 2)]


async def test_no_reminders_after_no_recordar_or_the_button(running: RunningBot) -> None:
    ana_id, ana = await joined(running, 2001, "Ana Rojas")
    beto_id, beto = await joined(running, 2002, "Beto Díaz")
    replies = await ana.send("/no_recordar")
    assert replies == [running.conversation.definition.messages.reminders_stopped]

    assert await run(running, local(6, 10)) == 1
    assert reminders_to(running, 2001) == []
    assert len(reminders_to(running, 2002)) == 1
    replies = await beto.press("No recordarme más")  # the button on the reminder
    assert replies == [running.conversation.definition.messages.reminders_stopped]

    assert await run(running, local(20, 10)) == 0
    assert sent_reminders(running) == [(beto_id, 1)]
    with running.conversation.sessions() as s:
        flags = s.execute(select(Invitation.id, Invitation.reminders_opt_out)).all()
        assert sorted(tuple(f) for f in flags) == [(ana_id, True), (beto_id, True)]
    # Someone without an invitation is told there is nothing to stop.
    replies = await running.participant(3001).send("/no_recordar")
    assert replies == [running.conversation.definition.messages.no_reminders]
    # Both can still go on with the consultation.
    welcome_back = running.conversation.definition.messages.welcome_back
    assert (await ana.send("/start"))[0].startswith(welcome_back)


async def test_a_restart_between_two_runs_sends_nothing_twice(running: RunningBot) -> None:
    inv_id, _ = await joined(running, 2001, "Ana Rojas")
    assert await run(running, local(6, 10)) == 1
    await running.restart()  # the bot's process restarts; the API forgets what was sent
    assert await run(running, local(6, 10)) == 0  # the same slot again
    assert await run(running, local(6, 11)) == 0
    assert reminders_to(running, 2001) == []
    assert await run(running, local(9, 10)) == 1
    assert len(reminders_to(running, 2001)) == 1
    assert sent_reminders(running) == [(inv_id, 1), (inv_id, 2)]


async def test_a_run_missed_while_down_happens_once_at_start(running: RunningBot) -> None:
    """The job lives in the database: after five hourly slots missed while the bot was down,
    the bot's start (``serve``) runs it once (coalesced), then hourly again."""
    await joined(running, 2001, "Ana Rojas")
    running.conversation.clock = Clock(local(6, 10))  # a reminder is due
    policy = Policy.from_settings(running.settings)
    real_now = datetime.now(UTC)

    # An earlier process stored the job; then the bot was down for five slots.
    app = build_application(running.settings, running.conversation)
    earlier = build_scheduler(running.settings)
    earlier.start(paused=True)
    reminders.schedule(earlier, TelegramOutbox(app.bot), running.conversation, policy)
    job = earlier.get_job(reminders.JOB_ID)
    assert job is not None and job.next_run_time > real_now
    earlier.modify_job(reminders.JOB_ID, next_run_time=real_now - timedelta(hours=5, minutes=1))
    earlier.shutdown(wait=False)

    await running.stop()
    scheduler = build_scheduler(running.settings)
    events: list[JobEvent] = []
    scheduler.add_listener(
        lambda e: events.append(e) if e.job_id == reminders.JOB_ID else None,
        EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, stop, lambda: scheduler, policy))
    try:
        await running.api.await_for(lambda: events, timeout=5)
        await asyncio.sleep(0.3)  # a second run would come now
        job = scheduler.get_job(reminders.JOB_ID)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    assert [e.code for e in events] == [EVENT_JOB_EXECUTED]
    assert len(reminders_to(running, 2001)) == 1
    assert job is not None and job.next_run_time > datetime.now(UTC)
    assert job.next_run_time.minute == 0 and str(job.trigger.timezone) == "America/Santiago"
