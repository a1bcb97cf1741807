"""Closing the consultation: from its closing time on, answers are refused politely, and
every participant who did not opt out receives the final summary once.

The closing time is the earlier of the file's ``closes_on`` (the end of that day in the
consultation's time zone) and a closing recorded by ``consulta close``. The final summaries
go out from the scheduler (one elected process, see bot.services.leader), paced by the application's
rate limiter; each one is claimed in the database before it is sent, so a restart or a
second process never sends it twice, and a crash loses at most the few in flight.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session
from telegram.error import Forbidden, TelegramError
from telegram.ext import Application

from flows import Definition
from flows.events import Choice, Command, Event, Reply

if TYPE_CHECKING:
    from bot.infra.config import Settings
    from bot.services.conversation import Conversation
    from storage.closing import Recipient

log = logging.getLogger(__name__)

JOB_ID = "consulta-final-summaries"
SEND_CONCURRENCY = 32
"""Summaries claimed and being sent at once (see bot.services.reminders.SEND_CONCURRENCY)."""
CHECK_EVERY = timedelta(seconds=30)
"""How stale this process's knowledge of a ``consulta close`` run elsewhere may be."""
STILL_OPEN_TO = frozenset({"privacidad", "borrar", "ayuda", "resultados", "no_avisar"})
"""Commands a participant keeps after the closing: their data stays theirs."""


def file_closing(definition: Definition, zone: ZoneInfo) -> datetime | None:
    """The end of the file's ``closes_on`` day in ``zone``, if the file has one."""
    day = definition.consultation.closes_on
    if day is None:
        return None
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)


@dataclass
class ClosingTime:
    """When the consultation closes, as this process knows it: re-read from the database at
    most every ``CHECK_EVERY``, so checking it on every update costs nothing."""

    definition: Definition
    zone: ZoneInfo
    _checked: datetime | None = field(default=None, init=False)
    _recorded: datetime | None = field(default=None, init=False)

    def at(self, session: Session, now: datetime) -> datetime | None:
        from storage import closing

        if self._recorded is None and (self._checked is None or now - self._checked >= CHECK_EVERY):
            self._recorded = closing.closes_at(session, self.definition.consultation.id)
            self._checked = now
        found = [t for t in (file_closing(self.definition, self.zone), self._recorded) if t]
        return min(found) if found else None

    def closed(self, session: Session, now: datetime) -> datetime | None:
        """The closing time if it has passed, else None."""
        moment = self.at(session, now)
        return moment if moment is not None and moment <= now else None


def still_allowed(event: Event) -> bool:
    """Whether a closed consultation still takes ``event``: a participant can read the
    privacy notice and erase their data (with its confirmation button), never answer."""
    if isinstance(event, Command):
        return event.name in STILL_OPEN_TO
    return isinstance(event, Choice) and event.data.startswith("bz:")


def closed_reply(definition: Definition, moment: datetime, zone: ZoneInfo) -> Reply:
    text = definition.messages.consultation_closed.format(
        title=definition.consultation.title, date=f"{moment.astimezone(zone):%d-%m-%Y}"
    )
    return Reply(text)


async def send_final_summaries(
    app: Application, conv: Conversation, due: list[Recipient], text: str, now: datetime
) -> int:
    """Send ``text`` to each participant in ``due`` whose summary is not claimed yet;
    returns how many were delivered."""
    from bot.adapter.sending import deliver
    from storage import closing

    gate = asyncio.Semaphore(SEND_CONCURRENCY)

    async def send(item: Recipient) -> bool:
        async with gate:
            with conv.sessions.begin() as session:
                if not closing.claim_summary(session, item.participant_id, now):
                    return False  # sent by another run or process
            try:
                await deliver(app.bot, int(item.external_id), [Reply(text)])
            except Forbidden:
                conv.mark_unreachable(item.external_id)
                return False
            except TelegramError:  # retries exhausted: at most once, never twice
                log.exception("final summary to participant %s not delivered", item.participant_id)
                return False
            return True

    sent = sum(await asyncio.gather(*(send(item) for item in due)))
    log.info("final summary: %d due, %d delivered", len(due), sent)
    return sent


async def run_once(app: Application, conv: Conversation, settings: Settings,
                   now: datetime | None = None) -> int:  # fmt: skip
    """If the consultation has closed, send the final summary to whoever is still due one
    (all of them the first time, nobody afterwards); returns how many were delivered."""
    from bot.services.digests import build, public_results
    from storage import closing

    now = now or conv.clock()
    with conv.sessions() as session:
        moment = conv.closing.closed(session, now)
        due = closing.recipients(session, conv.channel) if moment is not None else []
    if moment is None or not due:  # the digest is built only when someone is due
        return 0
    digest = await asyncio.to_thread(build, conv, settings, since=None, until=moment,
                                     charts=False)  # fmt: skip
    d = conv.definition
    header = d.messages.final_summary.format(
        title=d.consultation.title, date=f"{moment.astimezone(settings.zone):%d-%m-%Y}"
    )
    text = f"{header}\n\n{public_results(conv, digest)}"
    return await send_final_summaries(app, conv, due, text, now)


_RUNTIME: dict[str, object] = {}


async def scheduled_run() -> None:
    app, conv, settings = _RUNTIME["app"], _RUNTIME["conv"], _RUNTIME["settings"]
    await run_once(app, conv, settings)  # type: ignore[arg-type]


def schedule(scheduler: object, app: Application, conv: Conversation,
             settings: Settings) -> None:  # fmt: skip
    """Check every minute whether the consultation has closed (and anyone is still due the
    final summary); the first check runs at once."""
    _RUNTIME.update(app=app, conv=conv, settings=settings)
    scheduler.add_job(  # type: ignore[attr-defined]
        scheduled_run, "interval", minutes=1, id=JOB_ID, replace_existing=True,
        next_run_time=datetime.now(settings.zone), coalesce=True, max_instances=1,
    )  # fmt: skip
