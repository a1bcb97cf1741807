"""Reminders to invited municipal contacts who opened their link but have not finished.

Scheduled with APScheduler in the consultation's time zone, its jobs kept in the database
(they survive a restart; a run missed while the bot was down runs once at start, not once
per missed slot). Each reminder is claimed in the database before it is sent, so none is
sent twice; never during quiet hours, never after the contact asked to stop.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.base import BaseScheduler

import storage
from bot.infra.config import Settings
from bot.services import jobs
from bot.services.conversation import Conversation
from bot.services.errors import NotDelivered, Unreachable
from bot.services.outbox import Outbox
from flows import buttons
from flows.events import Button, Reply
from storage import closing, invitations

log = logging.getLogger(__name__)

STOP_DATA = buttons.StopReminders().encode()
JOB_ID = "consulta-reminders"
SEND_CONCURRENCY = 32
"""Reminders claimed and being sent at once. Without a bound, every due reminder would be
claimed before the first is sent, and a crash would lose all of them; with it, a crash
loses at most these. Chosen with ``python -m bench.broadcast``."""


@dataclass(frozen=True)
class Policy:
    """When and how often to remind: after ``after`` of silence, at most ``max_count``
    times, never between ``quiet_start`` and ``quiet_end`` local time."""

    after: timedelta
    max_count: int
    quiet_start: time
    quiet_end: time
    zone: ZoneInfo

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        start, end = settings.consulta_quiet_hours.split("-")
        return cls(
            after=timedelta(days=settings.consulta_reminder_days),
            max_count=settings.consulta_reminder_max,
            quiet_start=time.fromisoformat(start.zfill(5)),
            quiet_end=time.fromisoformat(end.zfill(5)),
            zone=settings.zone,
        )

    def quiet(self, now: datetime) -> bool:
        local = now.astimezone(self.zone).time()
        if self.quiet_start <= self.quiet_end:
            return self.quiet_start <= local < self.quiet_end
        return local >= self.quiet_start or local < self.quiet_end


async def send_due(
    outbox: Outbox,
    conv: Conversation,
    policy: Policy,
    now: datetime | None = None,
) -> int:
    """Send every reminder due at ``now``; returns how many were sent."""
    now = now or conv.clock()
    if policy.quiet(now):
        log.info("quiet hours: no reminders now")
        return 0
    with conv.sessions.begin() as session:
        due = invitations.due_reminders(session, now, after=policy.after,
                                        max_count=policy.max_count)  # fmt: skip
    m = conv.definition.messages
    buttons = ((Button(m.btn_stop_reminders, STOP_DATA),),)

    gate = asyncio.Semaphore(SEND_CONCURRENCY)

    async def remind(item: invitations.DueReminder) -> bool:
        async with gate:
            with conv.sessions.begin() as session:
                if not invitations.record_reminder(session, item.invitation_id, item.seq, now):
                    return False  # already sent by another run or process
            text = m.reminder.format(name=item.name, title=conv.definition.consultation.title)
            try:
                await outbox.send(int(item.external_id), [Reply(text, buttons)])
            except Unreachable:
                if conv.mark_unreachable(item.external_id):
                    log.warning("invited contact %s unreachable", item.invitation_id)
                return False
            except NotDelivered:  # retries exhausted: at most once, never twice
                log.exception("reminder %s/%s not delivered", item.invitation_id, item.seq)
                return False
            return True

    sent = await asyncio.gather(*(remind(item) for item in due))
    count = sum(sent)
    log.info("reminders: %d due, %d sent", len(due), count)
    return count


def stop(conv: Conversation, external_id: str, update_id: int | None = None) -> str | None:
    """/no_avisar (or /no_recordar, its older name) or the button on a reminder: no more
    reminders for this account, nor the final summary when the consultation closes. The
    answer for the participant; None if ``update_id`` was already applied (a redelivery)."""
    with conv.sessions.begin() as session:
        if update_id is not None and not storage.claim_update(
            session, conv.channel, update_id, conv.clock()
        ):
            return None
        found = invitations.opt_out(session, external_id)
        found |= closing.opt_out(session, conv.channel, external_id, conv.clock())
    m = conv.definition.messages
    return m.reminders_stopped if found else m.no_reminders


def schedule(scheduler: BaseScheduler, outbox: Outbox, conv: Conversation, policy: Policy) -> None:
    """Add (or keep) the hourly reminder job in a persistent APScheduler, started paused
    (see bot.services.jobs.add: a run missed while the bot was down happens once at start)."""
    jobs.add(scheduler, JOB_ID, lambda: send_due(outbox, conv, policy, conv.clock()), "cron",
             minute=0)  # fmt: skip
