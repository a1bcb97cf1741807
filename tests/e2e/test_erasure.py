"""/borrar erases everything that identifies the person, in every table, for every stage:
through the real Application, the Bot API stand-in and a real database (SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.adapter.app import build_application
from bot.adapter.sending import TelegramOutbox
from bot.services.reminders import Policy, send_due
from storage import invitations
from storage.models import Base, Invitation
from tests.helpers.harness import RunningBot

CONTACT, OTHER = 2001, 2002


def everything(bot: RunningBot) -> str:
    """Every row of every table, as one text to search."""
    rows: list[Any] = []
    with bot.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows += [tuple(r) for r in conn.execute(select(table))]
    return repr(rows)


async def test_someone_who_declined_can_erase_the_fact(running: RunningBot) -> None:
    m = running.conversation.definition.messages
    p = running.participant(CONTACT)
    await p.send("/start")
    assert await p.press("c:n") == [m.declined]
    assert f"'{CONTACT}'" in everything(running)
    assert await p.send("/borrar") == [m.erased]
    assert f"'{CONTACT}'" not in everything(running)
    assert await p.send("/borrar") == [m.nothing_stored]


async def test_a_municipal_contact_is_erased_with_their_invitation(running: RunningBot) -> None:
    m = running.conversation.definition.messages
    # A fixed Monday morning: the reminder below falls outside the quiet hours whatever the
    # time the test runs (it failed before 09:00 in Santiago).
    now = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("America/Santiago"))
    running.conversation.clock = lambda: now
    with running.conversation.sessions.begin() as s:
        invitation, token = invitations.create(
            s, name="Ana Rojas", institution="Municipalidad de Ovalle", comuna="ovalle",
            contact="ana.rojas@ovalle.cl", now=now,
        )  # fmt: skip
        invitation_id = invitation.id
    p = running.participant(CONTACT)
    await p.send(f"/start {token}")
    await p.press("Sí, acepto participar")
    app = build_application(running.settings, running.conversation)
    async with app:  # a reminder was sent to them
        policy = Policy.from_settings(running.settings)
        assert await send_due(TelegramOutbox(app.bot), running.conversation, policy,
                              now + 2 * policy.after) == 1  # fmt: skip
    stored = everything(running)
    assert "Ana Rojas" in stored and "ana.rojas@ovalle.cl" in stored and f"'{CONTACT}'" in stored

    await p.send("/borrar")
    assert await p.press("bz:y") == [m.erased]
    stored = everything(running)
    for trace in ("Ana Rojas", "ana.rojas@ovalle.cl", "Municipalidad de Ovalle", f"'{CONTACT}'"):
        assert trace not in stored, trace
    with running.conversation.sessions() as s:
        row = s.get(Invitation, invitation_id)
        assert row is not None and row.comuna == "ovalle" and row.erased_at is not None
        assert row.reminders == []
    # The link is dead, for them and for anyone else.
    for user in (CONTACT, OTHER):
        replies = await running.participant(user).send(f"/start {token}")
        assert replies[0].startswith(m.invitation_erased), user
