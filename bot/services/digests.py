"""Delivering digests: scheduled to every organiser, on request (/digest, /resumen,
/exportar), and the participants' /resultados.

A scheduled digest is claimed in the database for its period before it is sent, so a
period is never sent twice, even after a restart or with two schedulers; a run missed
while the bot was down happens once at start (APScheduler's coalesce).
"""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.triggers.cron import CronTrigger
from telegram import InputFile, InputMediaPhoto, Update
from telegram.ext import Application, CommandHandler, ContextTypes, filters

import storage
from bot.adapter.sending import deliver, with_retries
from bot.infra.config import Settings
from bot.services.conversation import Conversation, utcnow
from bot.services.organisers import SETTINGS, _allowed
from flows.events import Reply

if TYPE_CHECKING:  # reports/ brings pandas and matplotlib: loaded when a digest is made
    from reports import digest as digests

log = logging.getLogger(__name__)

JOB_ID = "consulta-digest"
MIN_FINISHED_FOR_RESULTS = 20


LOOKBACKS = (timedelta(minutes=1), timedelta(hours=1), timedelta(days=2), timedelta(days=32),
             timedelta(days=400))  # fmt: skip
"""How far back the last firing is looked for, shortest first: walking 32 days of a
schedule every few seconds would take a million steps."""


def period_of(trigger: CronTrigger, now: datetime) -> datetime:
    """The most recent time the schedule fired at or before ``now`` (the period's key)."""
    for lookback in LOOKBACKS:
        moment = trigger.get_next_fire_time(None, now - lookback)
        last = None
        while moment is not None and moment <= now:
            last = moment
            moment = trigger.get_next_fire_time(moment, moment + timedelta(seconds=1))
        if last is not None:
            return last
    raise ValueError(f"the schedule {trigger} did not fire in the last {LOOKBACKS[-1]}")


def period_key(settings: Settings, period: datetime) -> str:
    """The period's key in DigestRun: local time to the minute, to the second when the
    schedule has seconds (two periods may then share a minute)."""
    seconds = len(settings.consulta_digest_cron.split()) == 6
    return period.astimezone(settings.zone).strftime(
        "%Y-%m-%dT%H:%M:%S" if seconds else "%Y-%m-%dT%H:%M"
    )


def build(conv: Conversation, settings: Settings, *, since: datetime | None, until: datetime,
          charts: bool = True) -> digests.Digest:  # fmt: skip
    from reports import digest as digests

    with conv.sessions() as session:
        return digests.build(session, conv.definition, since=since, until=until,
                             zone=settings.zone, charts=charts)  # fmt: skip


async def send(app: Application, chat_id: int, digest: digests.Digest) -> None:
    """Text summary, the charts as one album, and the result table as an XLSX document."""
    bot = app.bot
    if not digest.has_news:
        await deliver(bot, chat_id, [Reply(f"{digest.period}: sin respuestas nuevas.")])
        return
    await deliver(bot, chat_id, [Reply(f"{digest.title}\n{digest.period}\n\n{digest.summary}")])
    media = [InputMediaPhoto(img.png, caption=img.caption) for img in digest.images[:10]]
    if media:
        await with_retries(lambda: bot.send_media_group(chat_id, media))
    document = InputFile(io.BytesIO(digest.xlsx()), filename="resultado.xlsx")
    await with_retries(lambda: bot.send_document(chat_id, document, caption=digest.period))


async def scheduled(app: Application, conv: Conversation, settings: Settings,
                    now: datetime | None = None) -> bool:  # fmt: skip
    """The scheduled digest for the period ``now`` falls in; False if already sent."""
    now = now or conv.clock()
    key = period_key(settings, period_of(settings.digest_trigger(), now))
    with conv.sessions.begin() as session:
        previous = storage.repository.last_digest(session)
        since = previous.until if previous else None
        if not storage.repository.claim_digest(session, key, now, now):
            log.info("digest %s already sent", key)
            return False
    digest = await asyncio.to_thread(build, conv, settings, since=since, until=now)
    delivered = 0
    for organiser in sorted(settings.consulta_organisers):
        try:
            await send(app, organiser, digest)
            delivered += 1
        except Exception:  # one organiser's failure must not stop the others
            log.exception("could not deliver digest %s to organiser %s", key, organiser)
    # which process sent which period: with replicas, the log says who led when
    log.info("digest %s sent to %d organisers", key, delivered)
    return True


_RUNTIME: dict[str, object] = {}


async def scheduled_run() -> None:
    app, conv, settings = _RUNTIME["app"], _RUNTIME["conv"], _RUNTIME["settings"]
    await scheduled(app, conv, settings)  # type: ignore[arg-type]


def schedule(scheduler: object, app: Application, conv: Conversation,
             settings: Settings) -> None:  # fmt: skip
    """Add the digest job to a persistent scheduler, on ``CONSULTA_DIGEST_CRON``."""
    _RUNTIME.update(app=app, conv=conv, settings=settings)
    trigger = settings.digest_trigger()
    # Keep the stored next run time (see reminders.schedule): a missed digest runs at start.
    stored = scheduler.get_job(JOB_ID)  # type: ignore[attr-defined]
    keep = {"next_run_time": stored.next_run_time} if stored and stored.next_run_time else {}
    scheduler.add_job(  # type: ignore[attr-defined]
        scheduled_run, trigger, id=JOB_ID, replace_existing=True,
        coalesce=True, misfire_grace_time=None, max_instances=1, **keep,
    )  # fmt: skip


def _context(context: ContextTypes.DEFAULT_TYPE) -> tuple[Conversation, Settings]:
    data = context.application.bot_data
    return data["conversation"], data[SETTINGS]


async def on_digest(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/digest: the full digest now, to the organiser who asked (not a scheduled period)."""
    if not await _allowed(update, context):
        return
    conv, settings = _context(context)
    digest = await asyncio.to_thread(build, conv, settings, since=None, until=utcnow())
    assert update.effective_chat is not None
    await send(context.application, update.effective_chat.id, digest)


async def on_summary(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/resumen: the text summary alone."""
    if not await _allowed(update, context):
        return
    conv, settings = _context(context)
    digest = await asyncio.to_thread(build, conv, settings, since=None, until=utcnow(),
                                     charts=False)  # fmt: skip
    assert update.effective_chat is not None
    text = f"{digest.title}\n{digest.period}\n\n{digest.summary}"
    await deliver(context.bot, update.effective_chat.id, [Reply(text)])


async def on_export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/exportar: the full pseudonymous export, as a CSV document."""
    if not await _allowed(update, context):
        return
    conv, settings = _context(context)

    def export() -> bytes:
        from reports.export import answers_frame

        with conv.sessions() as session:
            frame = answers_frame(session, conv.definition, settings.zone)
        return frame.to_csv(index=False).encode("utf-8-sig")

    data = await asyncio.to_thread(export)
    assert update.effective_chat is not None
    chat_id = update.effective_chat.id
    name = f"consulta-{utcnow().astimezone(settings.zone):%Y%m%d-%H%M}.csv"
    await with_retries(
        lambda: context.bot.send_document(chat_id, InputFile(io.BytesIO(data), filename=name))
    )


async def on_results(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/resultados, for anyone: the result table so far, once enough people finished;
    themes by their words only, no verbatim free text, small numbers hidden."""
    conv, settings = _context(context)
    m = conv.definition.messages
    finished = _finished(conv)
    with conv.sessions() as session:
        closed = conv.closing.closed(session, conv.clock())
    if finished < MIN_FINISHED_FOR_RESULTS and closed is None:
        text = m.results_not_yet.format(needed=MIN_FINISHED_FOR_RESULTS, finished=finished)
    else:  # the digest is built only when it is shown
        digest = await asyncio.to_thread(build, conv, settings, since=None, until=utcnow(),
                                         charts=False)  # fmt: skip
        text = m.results_header + "\n\n" + public_results(conv, digest)
    assert update.effective_chat is not None
    await deliver(context.bot, update.effective_chat.id, [Reply(text)])


def public_results(conv: Conversation, digest: digests.Digest) -> str:
    """What any participant may read: the summary and the result table without verbatim
    free text, changes named by fewer than 5 people left out."""
    m = conv.definition.messages
    rows = []
    for number, desirable, possible in digest.public_table.itertuples(index=False):
        also = f"\n   {m.summary_possible}: {possible}" if possible not in ("", "—") else ""
        rows.append(f"{number} · {desirable}{also}")
    return "\n\n".join([digest.public_summary, *rows])


def _finished(conv: Conversation) -> int:
    from sqlalchemy import func, select

    from storage.models import Participant

    with conv.sessions() as session:
        return int(session.scalar(select(func.count(Participant.finished_at))) or 0)


def handlers() -> list[CommandHandler]:
    private = filters.ChatType.PRIVATE
    return [
        CommandHandler("digest", on_digest, filters=private),
        CommandHandler("resumen", on_summary, filters=private),
        CommandHandler("exportar", on_export, filters=private),
        CommandHandler("resultados", on_results, filters=private),
    ]
