"""The demo (``consulta demo``): simulated people answer through the real engine and
database; what they leave behind must look like a consultation and be what the engine
would have stored."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, select
from sqlalchemy.orm import selectinload

import storage
from bot.cli.demo import SimulationStats, run_demo, simulate
from bot.services.conversation import Conversation
from flows import Definition, load, parse, step
from flows.definition import bundled_path
from flows.events import Command
from storage.models import Participant

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAYS = 10


@pytest.fixture(scope="module")
def defn() -> Definition:
    return load()


@pytest.fixture
def conv(engine: Engine, defn: Definition) -> Conversation:
    return Conversation(defn, storage.make_sessions(engine), channel="demo")


def people(conv: Conversation) -> list[Participant]:
    with conv.sessions() as session:
        return list(
            session.scalars(
                select(Participant)
                .where(Participant.channel == conv.channel)
                .options(selectinload(Participant.answers))
                .order_by(Participant.external_id)
            )
        )


def aware(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes (stored in UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def test_sixty_people_leave_a_plausible_consultation(conv: Conversation, defn: Definition):
    stats = simulate(conv, 60, seed=7, start=START, days=DAYS)
    rows = people(conv)
    looks_like_a_consultation(defn, stats, rows)
    is_what_the_engine_stores(conv, defn, rows)


def looks_like_a_consultation(
    defn: Definition, stats: SimulationStats, rows: list[Participant]
) -> None:
    consented = [p for p in rows if p.code is not None]
    c = defn.consultation

    assert len(rows) == stats.participants == 60  # declining is stored too (only the fact)
    assert len(consented) == stats.consented and 50 <= stats.consented <= 60
    assert len([p for p in rows if p.finished_at]) == stats.finished
    assert 0 < stats.finished < stats.consented  # some finish, some stop midway
    assert sum(len(p.answers) for p in rows) == stats.answers
    municipal = [p for p in rows if p.role == "municipal"]  # came with a personal link
    assert len(municipal) == stats.contacts == 2 and all(p.comuna for p in municipal)
    inside = {o.id for p in c.profile.provinces for o in p.comunas}
    heard = Counter(p.comuna for p in consented if p.comuna in inside)
    assert len(heard) >= 7  # many comunas...
    assert heard.most_common(1)[0][0] in ("la_serena", "coquimbo")  # ...the big ones most

    answers = [a for p in rows for a in p.answers]
    kinds = Counter(
        (a.kind, a.option is not None, a.text is not None, a.system is not None) for a in answers
    )
    assert kinds[("acuerdo", True, False, False)]  # agreement only
    assert kinds[("acuerdo", True, True, False)]  # with a reason
    assert kinds[("deseable", True, False, False)]  # an option
    assert kinds[("deseable", False, True, True)]  # a written change, tagged
    assert kinds[("posible", True, False, False)]  # a verdict
    assert kinds[("posible", True, True, False)]  # ...with what would make it possible
    verdicts = Counter(a.option for a in answers if a.kind == "posible")
    assert set(verdicts) == {"si", "no"}  # question 5 marks each change possible or not

    end = START + timedelta(days=DAYS)
    created = sorted(aware(p.created_at) for p in rows)
    assert created[0] >= START and aware(max(p.updated_at for p in rows)) <= end
    assert created[-1] - created[0] > timedelta(days=DAYS / 2)  # spread over the period


def is_what_the_engine_stores(
    conv: Conversation, defn: Definition, rows: list[Participant]
) -> None:
    c = defn.consultation
    questions = {q.id: q for q in c.questions}
    systems = {s.id for s in c.systems}
    comunas = {o.id for o in c.profile.comunas()}
    for p in rows:
        if p.code is None:  # declined: nothing but the fact
            assert (p.stage, p.answers, p.consented_at, p.comuna) == ("declined", [], None, None)
            continue
        assert p.comuna is None or p.comuna in comunas
        assert (p.stage == "finished") == (p.finished_at is not None)
        desirable = {a.key for a in p.answers if a.kind == "deseable"}
        for a in p.answers:
            q = questions[a.question]
            options = {o.id for o in q.options}
            assert aware(a.created_at) >= aware(p.consented_at)  # type: ignore[arg-type]
            if a.kind == "acuerdo":
                assert q.kind == "agreement" and a.key == q.id and a.option in options
            elif a.kind == "deseable":
                assert q.kind == "desirable" and (a.option is None) != (a.text is None)
                if a.option is not None:
                    assert a.key == f"{q.id}.o.{a.option}" and a.option in options
                else:
                    assert re.fullmatch(rf"{q.id}\.t\d+", a.key) and a.text.strip()
                    assert a.system is None or a.system in systems
            else:
                assert a.kind == "posible" and q.kind == "feasibility"
                assert a.refers_to in desirable and a.key == f"p.{a.refers_to}"
                assert a.option in options
        with conv.sessions() as session:
            state = storage.load(session, conv.channel, p.external_id).state
        assert state is not None
        # the engine takes the stored state as it is: nothing to repair
        assert step(defn, state, Command("ayuda")).state == state
        if p.finished_at:
            assert set(state.visited) == set(questions)


def test_same_seed_same_consultation(conv: Conversation) -> None:
    def run(channel: str, seed: int) -> tuple[SimulationStats, list[tuple[object, ...]]]:
        other = replace(conv, channel=channel)
        stats = simulate(other, 12, seed=seed, start=START, days=2)
        rows = [
            (p.external_id, p.stage, p.comuna, p.age_band, p.gender, aware(p.updated_at),
             [(a.key, a.option, a.text, a.system, a.refers_to) for a in p.answers])
            for p in people(other)
        ]  # fmt: skip
        return stats, rows

    first, again, other = run("demo-a", 3), run("demo-b", 3), run("demo-c", 4)
    assert first == again
    assert first[0].answers > 0 and first[1] != other[1]


def test_run_demo_writes_the_report(tmp_path: Path) -> None:
    pytest.importorskip("reports.charts")
    pytest.importorskip("reports.themes")
    stats = run_demo(tmp_path, 30, seed=1)
    assert (tmp_path / "demo.db").exists() and stats.finished > 0
    digest = (tmp_path / "digest.md").read_text(encoding="utf-8")
    assert f"{stats.consented} participantes" in digest


def test_a_changed_consultation_file_still_works(engine: Engine) -> None:
    """Nothing in the demo knows the order of the steps: it follows the buttons offered."""
    data = yaml.safe_load(bundled_path().read_text(encoding="utf-8"))
    questions = data["questions"]
    q1 = questions[1]
    q1["options"] = [o for o in q1["options"] if o["id"] != "peru"]
    q1["options"].append({"id": "bolivia", "label": "Bolivia"})
    del questions[-1]["follow_up"]  # no "what would make it possible?"
    questions[1:5] = [questions[4], questions[2], questions[1]]  # q4, q2, q1; no q3
    changed = parse(yaml.safe_dump(data, allow_unicode=True), "changed.yaml")
    conv = Conversation(changed, storage.make_sessions(engine), channel="demo")
    stats = simulate(conv, 12, seed=2, start=START, days=1, contacts=0)
    assert stats.finished > 0
    rows = people(conv)
    options = {(q.id, o.id) for q in changed.consultation.questions for o in q.options}
    for a in (a for p in rows for a in p.answers):
        assert a.question != "q3" and (a.option is None or (a.question, a.option) in options)
        assert a.kind != "posible" or a.text is None
