"""Housekeeping run by the leader: what the database no longer needs is pruned.

- ``processed_updates``: the claims of update ids, kept for ``UPDATE_RETENTION`` (48 h).
  Telegram keeps an unconfirmed update for 24 hours at most, so no update older than that
  can be delivered again; the other 24 hours are a margin for clocks and for a process that
  was down while Telegram still held its batch.
- ``bad_tokens``: tries of invitation tokens, once out of the throttle's window.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from apscheduler.schedulers.base import BaseScheduler

from bot.services import jobs
from bot.services.conversation import Conversation
from storage import invitations
from storage.repository import forget_processed_updates

log = logging.getLogger(__name__)

JOB_ID = "consulta-housekeeping"
UPDATE_RETENTION = timedelta(hours=48)


def prune(conv: Conversation, now: datetime | None = None) -> tuple[int, int]:
    """Delete what is kept no longer; returns (update claims, bad tokens) deleted."""
    now = now or conv.clock()
    with conv.sessions.begin() as session:
        updates = forget_processed_updates(session, conv.channel, now - UPDATE_RETENTION)
        tokens = invitations.forget_bad_tokens(session, now - conv.throttle.window)
    log.info("housekeeping: %d update claims and %d bad tokens pruned", updates, tokens)
    return updates, tokens


def schedule(scheduler: BaseScheduler, conv: Conversation) -> None:
    """Prune every hour, the first time at once (a leader that just took over)."""
    jobs.add(
        scheduler, JOB_ID, lambda: asyncio.to_thread(prune, conv), "interval",
        keep_next_run=False, hours=1, next_run_time=datetime.now(conv.zone),
    )  # fmt: skip
