"""/resultados is built once per state of the consultation (how many finished, closed or
not) and served from the cache meanwhile; each account may ask once per 30 seconds."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from bot.infra.config import Settings
from bot.services import closing_time
from bot.services.conversation import Conversation
from bot.services.reporting import PublicResults
from flows import load
from flows.buttons import Consent
from flows.events import Choice, Text
from storage import closing
from storage.models import Participant
from tests.helpers.harness import RunningBot


class Clock:
    def __init__(self, conv: Conversation) -> None:
        self.at = conv.clock()

    def __call__(self) -> datetime:
        return self.at


def finish(conv: Conversation, account: str, update_id: int) -> None:
    """A participant who consented and answered, marked finished."""
    conv.apply_sync(account, Choice(Consent(True).encode()), update_id=update_id)
    conv.apply_sync(account, Text("Más intercambio con Argentina"), update_id=update_id + 1)
    with conv.sessions.begin() as s:
        s.execute(update(Participant).where(Participant.external_id == account)
                  .values(finished_at=conv.clock()))  # fmt: skip


async def test_results_are_built_once_per_new_finished_participant(
    sessions: sessionmaker[Session], database_url: str
) -> None:
    conv = Conversation(load(), sessions)
    clock = conv.clock = Clock(conv)
    settings = Settings(database_url=database_url, _env_file=None)  # type: ignore[call-arg]
    results = PublicResults(min_finished=1)
    m = conv.definition.messages
    finish(conv, "1", 100)

    texts = await asyncio.gather(*(results.text(conv, settings, str(a)) for a in range(2, 12)))
    assert results.builds == 1  # ten accounts at once: one build, the others wait for it
    assert len(set(texts)) == 1 and texts[0].startswith(m.results_header)

    assert await results.text(conv, settings, "2") == m.results_too_soon.format(seconds=30)
    clock.at += timedelta(seconds=31)
    assert await results.text(conv, settings, "2") == texts[0]
    assert results.builds == 1  # nobody new finished: from the cache

    finish(conv, "20", 200)
    clock.at += timedelta(seconds=31)
    assert (await results.text(conv, settings, "2")).startswith(m.results_header)
    assert results.builds == 2


async def test_asking_twice_in_a_row_is_answered_without_work(running: RunningBot) -> None:
    m = running.conversation.definition.messages
    p = running.participant(2001)
    first = await p.send("/resultados")
    assert first == [m.results_not_yet.format(needed=20, finished=0)]
    now = running.conversation.clock()
    with running.conversation.sessions.begin() as s:
        closing.record(s, running.conversation.definition.consultation.id, now, now)
    conv = running.conversation  # forget the closing time it had checked
    conv.closing = closing_time.ClosingTime(conv.definition, conv.zone)
    (shown,) = await p.send("/resultados")
    assert shown.startswith(m.results_header)
    assert await p.send("/resultados") == [m.results_too_soon.format(seconds=30)]
