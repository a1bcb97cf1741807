"""The final summary: once the consultation has closed, every participant who did not opt
out receives it once.

The summaries go out from the scheduler (one elected process, see bot.services.leader),
paced by the outbox; each one is claimed in the database before it is sent, so a restart or
a second process never sends it twice, and a crash loses at most the few in flight.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from apscheduler.schedulers.base import BaseScheduler

from bot.infra.config import Settings
from bot.services import closing_time, jobs, reporting
from bot.services.conversation import Conversation
from bot.services.errors import NotDelivered, Unreachable
from bot.services.outbox import Outbox
from flows.events import Reply
from storage import closing
from storage.closing import Recipient

log = logging.getLogger(__name__)

JOB_ID = "consulta-final-summaries"
SEND_CONCURRENCY = 32
"""Summaries claimed and being sent at once (see bot.services.reminders.SEND_CONCURRENCY)."""


async def send_final_summaries(
    outbox: Outbox, conv: Conversation, due: list[Recipient], text: str, now: datetime
) -> int:
    """Send ``text`` to each participant in ``due`` whose summary is not claimed yet;
    returns how many were delivered."""
    gate = asyncio.Semaphore(SEND_CONCURRENCY)

    async def send(item: Recipient) -> bool:
        async with gate:
            with conv.sessions.begin() as session:
                if not closing.claim_summary(session, item.participant_id, now):
                    return False  # sent by another run or process
            try:
                await outbox.send(int(item.external_id), [Reply(text)])
            except Unreachable:
                conv.mark_unreachable(item.external_id)
                return False
            except NotDelivered:  # retries exhausted: at most once, never twice
                log.exception("final summary to participant %s not delivered", item.participant_id)
                return False
            return True

    sent = sum(await asyncio.gather(*(send(item) for item in due)))
    log.info("final summary: %d due, %d delivered", len(due), sent)
    return sent


async def run_once(outbox: Outbox, conv: Conversation, settings: Settings,
                   now: datetime | None = None) -> int:  # fmt: skip
    """If the consultation has closed, send the final summary to whoever is still due one
    (all of them the first time, nobody afterwards); returns how many were delivered."""
    now = now or conv.clock()
    with conv.sessions() as session:
        moment = conv.closing.closed(session, now)
        due = closing.recipients(session, conv.channel) if moment is not None else []
    if moment is None or not due:  # the digest is built only when someone is due
        return 0
    digest = await asyncio.to_thread(reporting.build, conv, settings, since=None, until=moment,
                                     charts=False)  # fmt: skip
    d = conv.definition
    header = d.messages.final_summary.format(
        title=d.consultation.title, date=f"{closing_time.last_day(moment, settings.zone):%d-%m-%Y}"
    )
    text = f"{header}\n\n{reporting.public_results(conv, digest)}"
    return await send_final_summaries(outbox, conv, due, text, now)


def schedule(scheduler: BaseScheduler, outbox: Outbox, conv: Conversation,
             settings: Settings) -> None:  # fmt: skip
    """Check every minute whether the consultation has closed (and anyone is still due the
    final summary); the first check runs at once."""
    jobs.add(
        scheduler, JOB_ID, lambda: run_once(outbox, conv, settings), "interval",
        keep_next_run=False, minutes=1, next_run_time=datetime.now(settings.zone),
    )  # fmt: skip
