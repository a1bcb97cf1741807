"""Logs carry update ids, kinds and outcomes, never a person: no Telegram id, name or text,
neither in Consulta's own lines nor in the database errors they include."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

import storage
from bot.infra import logs
from storage import invitations
from storage.models import Participant
from tests.bot.test_webhook import Served, served  # noqa: F401 (the fixture)
from tests.helpers.harness import RunningBot

ACCOUNT = 777123
TEXT = "Soy Ana Rojas, vivo en Ovalle"


def test_database_errors_carry_no_parameters(database_url: str) -> None:
    engine = storage.make_engine(database_url)
    now = datetime.now(UTC)
    row = {"channel": "telegram", "external_id": str(ACCOUNT), "stage": "profile",
           "role": "citizen", "state": {"text": TEXT}, "state_version": 1, "created_at": now,
           "updated_at": now}  # fmt: skip
    try:
        with engine.begin() as conn:
            conn.execute(insert(Participant), row)
        with pytest.raises(IntegrityError) as raised, engine.begin() as conn:
            conn.execute(insert(Participant), row)  # the same account twice
    finally:
        engine.dispose()
    record = logging.LogRecord("consulta", logging.ERROR, __file__, 1, "update 9 failed", None,
                               (IntegrityError, raised.value, raised.tb))  # fmt: skip
    for formatter in (logs.TextFormatter(), logs.JsonFormatter()):
        line = formatter.format(record)
        assert "IntegrityError" in line and "update 9 failed" in line
        assert str(ACCOUNT) not in line and "Ana" not in line


async def test_bad_tokens_are_logged_without_the_account(
    running: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # what the commands log (bot.infra.logs.configure)
    p = running.participant(ACCOUNT)
    for _ in range(5):
        await p.send(f"/start {invitations.new_token()}")
    assert any("bad invitation tokens" in r.getMessage() for r in caplog.records)
    assert str(ACCOUNT) not in caplog.text


async def test_an_unreadable_update_is_logged_without_its_content(
    served: Served,  # noqa: F811 (the fixture imported above)
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)  # what the commands log (bot.infra.logs.configure)
    body = {"update_id": 5, "message": {"text": TEXT, "from": {"id": ACCOUNT, "is_bot": False,
                                                               "first_name": "Ana"}}}  # fmt: skip
    assert (await served.post(json.dumps(body))).status_code == 400
    assert "refused update 5" in caplog.text
    assert str(ACCOUNT) not in caplog.text and "Ana" not in caplog.text
