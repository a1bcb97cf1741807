"""Closing the consultation: answers refused afterwards, the final summary to every
participant who did not opt out, once; through the real Application, the Bot API stand-in
over HTTP and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.adapter.app import build_application
from bot.adapter.sending import TelegramOutbox
from bot.services import closing, closing_time
from flows import load
from storage import closing as stored
from storage.models import Answer, FinalSummary
from tests.helpers.harness import RunningBot, walk_to_question_1

SANTIAGO = ZoneInfo("America/Santiago")
FINAL = "La consulta «¿Cuál es la política"


async def run_once(bot: RunningBot, now: datetime) -> int:
    """One run of the closing job, by a new Application (as the scheduler's process)."""
    app = build_application(bot.settings, bot.conversation)
    async with app:
        return await closing.run_once(TelegramOutbox(app.bot), bot.conversation, bot.settings, now)


def answers(bot: RunningBot) -> int:
    with bot.conversation.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(Answer)) or 0)


async def test_after_closing_answers_are_refused_and_each_participant_gets_the_summary_once(
    running: RunningBot,
) -> None:
    m = running.conversation.definition.messages
    ana = await walk_to_question_1(running, 3001)  # mid-way
    beto = await walk_to_question_1(running, 3002)  # asks not to be told
    assert await beto.send("/no_avisar") == [m.reminders_stopped]
    carla = running.participant(3003)  # declined consent: nothing of hers is kept
    await carla.send("/start")
    await carla.press("c:n")
    dora = await walk_to_question_1(running, 3004)  # erases herself
    await dora.send("/borrar")
    await dora.press(m.btn_erase_yes)

    now = datetime.now(UTC)
    assert await run_once(running, now) == 0  # not closed: nothing sent
    with running.conversation.sessions.begin() as s:
        stored.record(s, running.conversation.definition.consultation.id, now, now)
    conv = running.conversation
    conv.closing = closing_time.ClosingTime(conv.definition, SANTIAGO)
    before = answers(running)

    (reply,) = await ana.send("Más intercambio con Perú")
    assert (
        reply.startswith("La consulta «¿Cuál es la política") and "ya no recibe respuestas" in reply
    )
    assert answers(running) == before  # nothing stored after the closing
    privacy, notice = await ana.send("/privacidad")  # still hers to read; then the notice
    assert "Qué guardamos" in privacy and notice == reply

    later = now + timedelta(minutes=1)
    assert await run_once(running, later) == 1
    finals = [t for t in running.api.texts_to(3001) if t.startswith(FINAL) and "cerró el" in t]
    assert len(finals) == 3  # the replies to her answer and to /privacidad, the final summary
    assert "Este es el resumen final" in finals[-1] and "Pregunta Nº" not in finals[-1]
    for other in (3002, 3003, 3004):
        assert not any("resumen final de lo que" in t for t in running.api.texts_to(other))
    assert await run_once(running, later + timedelta(minutes=1)) == 0  # never twice
    with running.conversation.sessions() as s:
        assert s.scalar(select(func.count()).select_from(FinalSummary)) == 1


async def test_results_are_shown_after_closing_even_with_few_participants(
    running: RunningBot,
) -> None:
    ana = await walk_to_question_1(running, 3101)
    (before,) = await ana.send("/resultados")
    assert before.startswith("Los resultados se mostrarán cuando")
    now = datetime.now(UTC)
    with running.conversation.sessions.begin() as s:
        stored.record(s, running.conversation.definition.consultation.id, now, now)
    conv = running.conversation
    conv.closing = closing_time.ClosingTime(conv.definition, SANTIAGO)
    (after,) = await ana.send("/resultados")
    assert after.startswith(running.conversation.definition.messages.results_header)
    # one person answered: no share of the agreement question, before or after closing
    assert "Pregunta A: " in after and "%" not in after


def test_the_file_closes_at_the_end_of_its_day_in_the_consultation_zone() -> None:
    definition = load()
    assert closing_time.file_closing(definition, SANTIAGO) is None
    dated = definition.consultation.model_copy(update={"closes_on": date(2026, 12, 31)})
    redated = type(definition)(**{**vars(definition), "consultation": dated})
    moment = closing_time.file_closing(redated, SANTIAGO)
    assert moment == datetime(2027, 1, 1, 0, 0, tzinfo=SANTIAGO)
    assert moment.astimezone(UTC) == datetime(2027, 1, 1, 3, 0, tzinfo=UTC)  # summer: UTC-3
    assert closing_time.last_day(moment, SANTIAGO) == date(2026, 12, 31)  # "cerró el 31-12"
    late = datetime(2026, 12, 31, 23, 59, tzinfo=SANTIAGO)  # `consulta close --at ...`
    assert closing_time.last_day(late, SANTIAGO) == date(2026, 12, 31)


def test_consulta_close_records_once_and_refuses_a_bad_date(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "CONSULTA_"))}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'c.db'}"

    def consulta(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin,
                              capture_output=True, text=True, env=env, timeout=120)  # fmt: skip

    bad = consulta("close", "--at", "el lunes", "--yes")
    assert bad.returncode == 2 and "no es una fecha y hora" in bad.stderr
    declined = consulta("close", stdin="n\n")
    assert declined.returncode == 1 and "No se cerró nada." in declined.stderr
    done = consulta("close", "--at", "2026-12-31 23:59", "--yes")
    assert done.returncode == 0, done.stderr
    assert "Cerrada el 31-12-2026 23:59 (America/Santiago)" in done.stdout
    again = consulta("close", "--yes")
    assert again.returncode == 1 and "ya se cerró el 31-12-2026 23:59" in again.stdout
