"""Whole conversations through the real PTB Application, real HTTP and a real database."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import func, select

from reports.export import answers_frame
from storage.models import Answer, Participant
from tests.helpers import harness
from tests.helpers.harness import Participant as Person
from tests.helpers.harness import RunningBot, read
from tests.helpers.updates import photo_update, text_update

ANA = 1001


async def walk_to_question_1(bot: RunningBot, user_id: int = ANA) -> Person:
    return await harness.walk_to_question_1(bot, user_id)


async def test_a_full_consultation(running: RunningBot) -> None:
    p = await walk_to_question_1(running)
    replies = await p.press("Una relación de cooperación con Perú")
    keyboard = running.api.sent_to(ANA)[-1].params["reply_markup"]["inline_keyboard"]
    assert any("✅ Una relación de cooperación con Perú" in b["text"] for row in keyboard
               for b in row)  # fmt: skip
    replies = await p.send("Un convenio con la Región de Atacama por el agua")
    assert "seis sistemas" in replies[-1]  # explained with the first tag
    await p.press("Ambiental")
    await p.press("Siguiente pregunta ➡️")
    await p.send("usar el corredor bioceanico con san juan")  # typed, as the button says
    await p.send("listo")
    await p.send("Una oficina regional que asesore a los municipios")
    await p.press("Institucional")
    await p.press("Siguiente pregunta ➡️")
    await p.send("/omitir")  # question 4
    await p.send("1 2 3 4")  # question 5: every change possible
    await p.press("Listo ✔️")
    await p.press("Omitir ⏭")
    texts = running.api.texts_to(ANA)
    summaries = [t for t in texts if "Su resumen, como la tabla del taller" in t]
    assert len(summaries) == 1, texts[-6:]
    summary = summaries[0]
    assert "Cambios posibles al 2020: Usar el corredor bioceánico con San Juan" in summary
    assert "Muchas gracias" in texts[-1]

    with running.conversation.sessions() as s:
        row = s.scalars(select(Participant)).one()
        assert (row.stage, row.comuna, row.age_band) == ("finished", "ovalle", "e45_59")
        assert row.finished_at is not None
        frame = answers_frame(s, running.conversation.definition, running.settings.zone)
    assert sorted(frame["kind"].value_counts().items()) == [
        ("acuerdo", 1), ("deseable", 4), ("posible", 4)
    ]  # fmt: skip
    assert set(frame["participant"]) == {row.code}
    assert "Un convenio con la Región de Atacama por el agua" in set(frame["text"])


async def test_leave_and_resume_after_a_restart(running: RunningBot) -> None:
    p = await walk_to_question_1(running)
    await p.send("Más lazos con Mendoza")
    await running.restart()
    replies = await p.send("/start")
    assert replies[0].startswith("Bienvenido/a de vuelta")
    assert "Guardado ✅" in replies[-1]  # still at the system tag
    await p.press("Territorial")
    with running.conversation.sessions() as s:
        answer = s.scalars(select(Answer).where(Answer.key == "q1.t1")).one()
        assert (answer.text, answer.system) == ("Más lazos con Mendoza", "territorial")


async def test_a_redelivered_update_changes_nothing_and_sends_nothing(running: RunningBot) -> None:
    p = await walk_to_question_1(running)
    update = text_update(running.next_id(), ANA, "Cooperar con Perú en pesca")
    await p.push(update)
    with running.conversation.sessions() as s:
        before = s.scalar(select(func.count()).select_from(Answer))
    # The process "dies" before Telegram hears the confirmation: it delivers again.
    await running.restart()
    running.api.push_update(update, redeliver=True)
    await running.api.await_for(lambda: running.api.pending_count() == 0, timeout=10)
    assert running.api.sent_to(ANA) == []
    with running.conversation.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Answer)) == before


async def test_forged_button_and_photo_change_nothing(running: RunningBot) -> None:
    p = await walk_to_question_1(running)
    with running.conversation.sessions() as s:
        before = s.scalars(select(Participant)).one().state_version
    from tests.helpers.updates import callback_update

    replies = await p.push(callback_update(running.next_id(), ANA, "o:q9:bomba"))
    assert replies[0].startswith("Ese botón ya no está vigente")
    replies = await p.push(photo_update(running.next_id(), ANA))
    assert replies[0].startswith("Por ahora solo puedo leer mensajes de texto")
    replies = await p.send("x" * 1001)
    assert "1001 caracteres" in replies[0]
    replies = await p.send("/inventado")
    assert "No conozco el comando /inventado" in replies[0]
    with running.conversation.sessions() as s:
        row = s.scalars(select(Participant)).one()
        assert row.state_version == before
        assert [a.key for a in row.answers] == ["a"]


async def test_group_chats_are_told_to_write_in_private(running: RunningBot) -> None:
    running.api.push_update(
        text_update(running.next_id(), ANA, "/start", chat_type="group", chat_id=-100)
    )
    sent = await running.api.await_for(lambda: running.api.sent_to(-100))
    assert sent[0].params["text"].startswith("Esta consulta se responde en un chat privado")
    assert running.api.sent_to(ANA) == []
    with running.conversation.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 0


async def test_erase_leaves_nothing_in_the_export(running: RunningBot) -> None:
    p = await walk_to_question_1(running)
    await p.press("Una relación de cooperación con Perú")
    await p.send("/borrar")
    replies = await p.press("Sí, borrar todo")
    assert replies[0].startswith("Listo: borramos todos sus datos")
    with running.conversation.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 0
        frame = answers_frame(s, running.conversation.definition, running.settings.zone)
    assert frame.empty


async def test_a_blocked_participant_keeps_their_state(
    running: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """Sends fail with 403: the step is kept, the participant is flagged, logged once."""
    await walk_to_question_1(running)
    running.api.fail_next(
        "sendMessage", 403, "Forbidden: bot was blocked by the user", chat_id=ANA, times=10
    )
    caplog.set_level(logging.WARNING, logger="bot.adapter.handlers")
    for text in ("/menu", "/ayuda"):
        running.api.push_update(text_update(running.next_id(), ANA, text))
        await running.api.await_for(lambda: running.api.pending_count() == 0, timeout=10)
        await asyncio.sleep(0.1)

    with running.conversation.sessions() as s:
        row = s.scalars(select(Participant)).one()
        assert row.unreachable_since is not None
        assert row.state["overlay"] == "menu" and [a.key for a in row.answers] == ["a"]
    assert sum("unreachable" in r.getMessage() for r in caplog.records) == 1


async def test_flood_control_and_server_errors_are_retried(running: RunningBot) -> None:
    """A 429 with retry_after is waited out and a 502 is retried with back-off: the
    participant still gets every reply, once."""
    p = running.participant(ANA)
    running.api.fail_next("sendMessage", 429, "Too Many Requests: retry after 1",
                          chat_id=ANA, retry_after=1)  # fmt: skip
    running.api.fail_next("sendMessage", 502, "Bad Gateway", chat_id=ANA)
    replies = await p.send("/start")
    failed = [c.status for c in running.api.sent_to(ANA, include_failed=True) if not c.ok]
    assert sorted(failed) == [429, 502]
    welcome = read(replies)
    assert welcome.startswith("Bienvenido/a a la consulta") and "\n\nSi acepta" in welcome
    sent = running.api.sent_to(ANA, include_failed=True)
    gap = sent[-1].at - sent[0].at
    assert gap >= 1.0  # retry_after was honoured
