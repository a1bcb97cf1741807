"""Our polling loop confirms an update only after it is stored: an update whose handling
fails (the database was down) is fetched again and then applied exactly once."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import select

from bot.adapter.polling import RETRY_PAUSE
from bot.adapter.runtime import MAX_FAILURES
from bot.infra import logs
from bot.services.conversation import Conversation
from flows.engine import Step
from flows.events import Event
from storage.models import Answer, ProcessedUpdate
from tests.helpers.harness import RunningBot, walk_to_question_1
from tests.helpers.updates import text_update

ANA = 1001


class FlakyConversation(Conversation):
    """Fails, before anything is stored, the first attempt at each update id listed in
    ``fail_once`` and every attempt at those in ``poisoned``."""

    fail_once: set[int]
    poisoned: frozenset[int] = frozenset()

    async def apply(
        self, external_id: str, event: Event, update_id: int | None = None
    ) -> Step | None:
        if update_id in self.poisoned:
            raise ValueError("a poisoned update")
        if update_id in self.fail_once:
            self.fail_once.discard(update_id)
            raise ConnectionError("database unavailable")
        return await super().apply(external_id, event, update_id)


async def test_a_failed_update_is_not_confirmed_and_comes_back(running: RunningBot) -> None:
    await walk_to_question_1(running, ANA)
    flaky = FlakyConversation(running.conversation.definition, running.conversation.sessions)
    first, second = running.next_id(), running.next_id()
    flaky.fail_once = {first}
    running.conversation = flaky
    await running.restart()

    running.api.push_update(text_update(first, ANA, "Cooperar con Atacama"))
    running.api.push_update(text_update(second, ANA, "/omitir"))  # skips the system tag
    await running.api.await_for(lambda: running.api.pending_count() == 0, timeout=15)

    assert flaky.fail_once == set()  # the failure happened
    with running.conversation.sessions() as s:
        texts = s.scalars(select(Answer.text).where(Answer.question == "q1")).all()
        assert texts == ["Cooperar con Atacama"]
        claimed = s.scalars(select(ProcessedUpdate.update_id)).all()
        assert {first, second} <= set(claimed)


async def test_a_given_up_update_confirms_itself_not_the_senders_next_update(
    running: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    await walk_to_question_1(running, ANA)
    flaky = FlakyConversation(running.conversation.definition, running.conversation.sessions)
    poisoned, following = running.next_id(), running.next_id()
    flaky.fail_once, flaky.poisoned = set(), frozenset({poisoned})
    running.conversation = flaky
    await running.restart()
    caplog.set_level(logging.ERROR)

    running.api.push_update(text_update(poisoned, ANA, "Nunca se guarda"))
    running.api.push_update(text_update(following, ANA, "Cooperar con Atacama"))
    timeout = MAX_FAILURES * RETRY_PAUSE + 15
    await running.api.await_for(lambda: running.api.pending_count() == 0, timeout=timeout)

    assert running.api.confirmed_up_to == following + 1
    with running.conversation.sessions() as s:
        texts = s.scalars(select(Answer.text).where(Answer.question == "q1")).all()
        assert texts == ["Cooperar con Atacama"]  # the same sender's next update was applied
        claimed = set(s.scalars(select(ProcessedUpdate.update_id)))
        assert following in claimed and poisoned not in claimed
    gave_up = [r for r in caplog.records if r.getMessage().startswith("gave up on update")]
    assert [r.args[:2] for r in gave_up] == [(poisoned, "message")]  # type: ignore[index]
    assert str(ANA) not in gave_up[0].getMessage() and "Nunca" not in gave_up[0].getMessage()


async def test_each_polled_update_is_logged_with_its_latency(
    running: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="consulta.updates")
    ana = running.participant(ANA)
    await ana.send("/start")
    await ana.press("c:y")
    lines = [getattr(r, "fields", None) for r in caplog.records if r.name == "consulta.updates"]
    assert [(f["kind"], f["outcome"]) for f in lines if f] == [
        ("message", "ok"), ("callback_query", "ok")
    ]  # fmt: skip
    assert all(isinstance(f["latency_ms"], float) and f["latency_ms"] >= 0 for f in lines if f)
    line = logs.JsonFormatter().format(caplog.records[-1])
    assert json.loads(line)["outcome"] == "ok" and "latency_ms" in json.loads(line)
