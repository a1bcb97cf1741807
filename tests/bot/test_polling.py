"""Our polling loop confirms an update only after it is stored: an update whose handling
fails (the database was down) is fetched again and then applied exactly once."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import select

from bot.infra import logs
from bot.services.conversation import Conversation
from flows.engine import Step
from flows.events import Event
from storage.models import Answer, ProcessedUpdate
from tests.helpers.harness import RunningBot, walk_to_question_1
from tests.helpers.updates import text_update

ANA = 1001


class FlakyConversation(Conversation):
    """Fails the first attempt at each update id listed in ``fail_once``."""

    fail_once: set[int]

    async def apply(
        self, external_id: str, event: Event, update_id: int | None = None
    ) -> Step | None:
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
