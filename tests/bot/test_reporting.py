"""Digests delivered through the Bot API stand-in: to every organiser and only to them,
once per period, in the consultation's time zone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from telegram.ext import Application

import storage
from bot.adapter.app import build_application
from bot.adapter.sending import TelegramOutbox
from bot.infra.config import Settings
from bot.services import reporting
from bot.services.conversation import Conversation
from flows import load
from flows.events import Choice
from tests.helpers.botapi import BotApiStandIn
from tests.helpers.harness import RunningBot, walk_to_question_1
from tests.helpers.updates import text_update

SANTIAGO = ZoneInfo("America/Santiago")
ORGANISERS = (111, 222)
NOW = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)  # 09:30 in Santiago (UTC-3 in summer)


def test_the_period_is_the_last_scheduled_time_in_santiago() -> None:
    daily = CronTrigger.from_crontab("0 8 * * *", timezone=SANTIAGO)
    assert reporting.period_of(daily, NOW) == datetime(2026, 11, 25, 8, 0, tzinfo=SANTIAGO)
    early = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)  # 07:30 local: yesterday's period
    assert reporting.period_of(daily, early) == datetime(2026, 11, 24, 8, 0, tzinfo=SANTIAGO)
    winter = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)  # 08:30 local (UTC-4)
    assert reporting.period_of(daily, winter).utcoffset() == timedelta(hours=-4)


def test_a_schedule_with_seconds_has_periods_to_the_second() -> None:
    """Six fields, the seconds first: periods under a minute (the election's tests)."""
    settings = Settings(consulta_digest_cron="*/5 * * * * *", _env_file=None)  # type: ignore[call-arg]
    moment = datetime(2026, 11, 25, 12, 30, 7, 500_000, tzinfo=UTC)
    period = reporting.period_of(settings.digest_trigger(), moment)
    assert period == datetime(2026, 11, 25, 12, 30, 5, tzinfo=UTC)
    assert reporting.period_key(settings, period) == "2026-11-25T09:30:05"  # Santiago
    daily = Settings(_env_file=None)  # type: ignore[call-arg]
    assert reporting.period_key(daily, period) == "2026-11-25T09:30"  # as stored before
    with pytest.raises(ValueError):
        Settings(consulta_digest_cron="* * * * * * *", _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
async def organiser_app(
    api: BotApiStandIn, database_url: str
) -> AsyncIterator[tuple[Application, Conversation, Settings]]:  # type: ignore[type-arg]
    settings = Settings(
        telegram_bot_token=api.token, telegram_base_url=api.base_url, database_url=database_url,
        consulta_rate_limit=0, consulta_organisers=frozenset(ORGANISERS), _env_file=None,
    )  # type: ignore[call-arg]  # fmt: skip
    engine = storage.make_engine(database_url)
    clock = {"now": NOW - timedelta(days=1)}
    conv = Conversation(load(), storage.make_sessions(engine), clock=lambda: clock["now"])
    for who in ("1", "2", "3"):
        for data in ("c:y", "s:province:", "s:age_band:", "s:gender:", "ag:a:de_acuerdo",
                     "s:reason:a", "o:q1:peru"):  # fmt: skip
            conv.apply_sync(who, Choice(data))
    app = build_application(settings, conv)
    async with app:
        yield app, conv, settings
    engine.dispose()


async def test_each_organiser_gets_text_album_and_table_once(
    api: BotApiStandIn,
    organiser_app: tuple[Application, Conversation, Settings],  # type: ignore[type-arg]
) -> None:
    app, conv, settings = organiser_app
    assert await reporting.scheduled(TelegramOutbox(app.bot), conv, settings, NOW)
    for organiser in ORGANISERS:
        methods = [c.method for c in api.sent_to(organiser)]
        assert methods == ["sendMessage", "sendMediaGroup", "sendDocument"]
        summary, album, table = api.sent_to(organiser)
        assert "Participantes: 5" in summary.params["text"]  # 3 people, rounded to base 5
        assert len(album.params["media"]) >= 4
        assert table.files and next(iter(table.files.values())).data[:2] == b"PK"  # XLSX
    assert {c.params.get("chat_id") for c in api.calls if c.method.startswith("send")} == set(
        ORGANISERS
    )  # and only there

    api.clear_calls()
    assert not await reporting.scheduled(
        TelegramOutbox(app.bot), conv, settings, NOW + timedelta(hours=1)
    )
    assert api.calls_of("sendMessage") == []  # the same period is never sent twice

    next_day = NOW + timedelta(days=1)
    assert await reporting.scheduled(TelegramOutbox(app.bot), conv, settings, next_day)
    texts = api.texts_to(ORGANISERS[0])
    assert len(texts) == 1 and "sin respuestas nuevas" in texts[0]
    assert api.calls_of("sendMediaGroup") == []


async def test_organiser_commands_are_refused_to_strangers(running: RunningBot) -> None:
    await walk_to_question_1(running, 555)
    for command in ("/digest", "/resumen", "/exportar", "/avance"):
        before = len(running.api.texts_to(555))
        running.api.push_update(text_update(running.next_id(), 555, command))
        await running.api.await_for(lambda n=before: len(running.api.texts_to(555)) > n)
        assert "solo para el equipo organizador" in running.api.texts_to(555)[-1]
    assert (
        running.api.calls_of("sendDocument") == [] and running.api.calls_of("sendMediaGroup") == []
    )


async def test_a_digest_missed_while_down_is_sent_once_at_start(running: RunningBot) -> None:
    """The digest job lives in the database: after three daily slots missed while the bot
    was down, the bot's start runs it once (coalesced), and the next run is tomorrow 08:00."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED

    from bot.adapter.app import build_scheduler, serve
    from bot.services.reminders import Policy

    settings = running.settings.model_copy(update={"consulta_organisers": frozenset({111})})
    running.settings = settings
    await walk_to_question_1(running, 777)
    real_now = datetime.now(UTC)
    earlier = build_scheduler(settings)
    earlier.start(paused=True)
    outbox = TelegramOutbox(build_application(settings, running.conversation).bot)
    reporting.schedule(earlier, outbox, running.conversation, settings)
    earlier.modify_job(reporting.JOB_ID, next_run_time=real_now - timedelta(days=3, minutes=1))
    earlier.shutdown(wait=False)

    await running.stop()
    running.api.clear_calls()
    scheduler = build_scheduler(settings)
    events: list[object] = []
    scheduler.add_listener(
        lambda e: events.append(e.code) if e.job_id == reporting.JOB_ID else None,
        EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED,
    )
    stop = asyncio.Event()
    app = build_application(settings, running.conversation)
    task = asyncio.create_task(serve(app, stop, lambda: scheduler, Policy.from_settings(settings)))
    try:
        await running.api.await_for(lambda: events, timeout=30)
        await asyncio.sleep(0.3)  # a second run would come now
        job = scheduler.get_job(reporting.JOB_ID)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    assert events == [EVENT_JOB_EXECUTED]
    assert [c.method for c in running.api.sent_to(111)] == [
        "sendMessage", "sendMediaGroup", "sendDocument",
    ]  # fmt: skip
    assert job is not None and job.next_run_time > datetime.now(UTC)
    local_next = job.next_run_time.astimezone(SANTIAGO)
    assert (local_next.hour, local_next.minute) == (8, 0)
