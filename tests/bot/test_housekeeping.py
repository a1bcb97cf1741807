"""The leader prunes what the database no longer needs: claims of update ids after 48 hours
(Telegram redelivers for 24 at most), bad invitation tokens after the throttle's window."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import storage
from bot.adapter.app import build_application
from bot.adapter.sending import TelegramOutbox
from bot.services import housekeeping
from bot.services.conversation import Conversation
from bot.services.leader import build_scheduler, leadership
from flows import load
from storage import invitations
from storage.models import BadToken, ProcessedUpdate
from tests.helpers.botapi import BotApiStandIn
from tests.helpers.harness import RunningBot


def test_claims_older_than_48_hours_and_stale_bad_tokens_are_pruned(
    sessions: sessionmaker[Session],
) -> None:
    conv = Conversation(load(), sessions)
    now = conv.clock()
    with sessions.begin() as s:
        for update_id, age in (
            (1, timedelta(hours=49)),
            (2, timedelta(hours=47)),
            (3, 0 * now.resolution),
        ):
            storage.claim_update(s, conv.channel, update_id, now - age)
        invitations.note_bad_token(s, conv.channel, "2001", now - timedelta(minutes=20))
        invitations.note_bad_token(s, conv.channel, "2001", now - timedelta(minutes=5))
    assert housekeeping.prune(conv, now) == (1, 1)
    with sessions() as s:
        assert sorted(s.scalars(select(ProcessedUpdate.update_id))) == [2, 3]
        assert len(s.scalars(select(BadToken.id)).all()) == 1
    # a redelivery within the retention is still recognised
    with sessions.begin() as s:
        assert not storage.claim_update(s, conv.channel, 2, now)


async def test_the_leader_runs_the_pruning(running: RunningBot, api: BotApiStandIn) -> None:
    with running.conversation.sessions.begin() as s:
        storage.claim_update(s, "telegram", 99, running.conversation.clock() - timedelta(days=3))
    app = build_application(running.settings, running.conversation)
    async with app, leadership(TelegramOutbox(app.bot), running.conversation, running.settings,
                               lambda: build_scheduler(running.settings)) as role:  # fmt: skip
        await api.await_for(lambda: role.leading, timeout=10)  # PostgreSQL: once elected
        assert role.scheduler is not None
        assert role.scheduler.get_job(housekeeping.JOB_ID) is not None

        def pruned() -> bool:
            with running.conversation.sessions() as s:
                return s.get(ProcessedUpdate, ("telegram", 99)) is None

        await api.await_for(pruned, timeout=10)
