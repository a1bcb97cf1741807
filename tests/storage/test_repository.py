"""Storage on a real SQLite file and a real PostgreSQL server: migrations, the dedup of
updates, answers written with the state in one transaction, erasure, optimistic locking."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.orm import Session, sessionmaker

import storage
from flows import Definition, load, step
from flows.events import Choice, Start, Text
from storage.models import Answer, Base, Participant, ProcessedUpdate

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def defn() -> Definition:
    return load()


def apply(sessions: sessionmaker[Session], defn: Definition, who: str, event, update_id: int):
    with sessions.begin() as s:
        loaded = storage.claim_and_load(s, "telegram", who, update_id, NOW)
        if loaded is None:
            return None
        result = step(defn, loaded.state, event)
        storage.save(s, "telegram", who, loaded, result, now=NOW, update_id=update_id)
        return result


def test_migrations_match_models(engine: Engine) -> None:
    assert storage.at_head(engine)
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_nothing_stored_before_consent(sessions, defn) -> None:
    apply(sessions, defn, "1", Start(), 1)
    apply(sessions, defn, "1", Text("hola"), 2)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 0


def test_decline_keeps_only_the_fact(sessions, defn) -> None:
    apply(sessions, defn, "1", Start(), 1)
    apply(sessions, defn, "1", Choice("c:n"), 2)
    with sessions() as s:
        row = s.scalars(select(Participant)).one()
        assert (row.stage, row.code, row.comuna, row.consented_at) == ("declined", None, None, None)
        assert row.answers == []


def test_answers_and_state_are_stored_together_and_reload(sessions, defn) -> None:
    for i, ev in enumerate(
        [Start(), Choice("c:y"), Choice("pv:elqui"), Choice("cm:vicuna"), Choice("s:age_band:"),
         Choice("gd:mujer"), Choice("ag:a:de_acuerdo"), Text("Por el agua")], start=1
    ):  # fmt: skip
        apply(sessions, defn, "7", ev, i)
    with sessions() as s:
        row = s.scalars(select(Participant)).one()
        assert (row.comuna, row.age_band, row.gender) == ("vicuna", None, "mujer")
        assert row.code is not None and len(row.code) == 8
        assert [(a.key, a.option, a.text) for a in row.answers] == [
            ("a", "de_acuerdo", "Por el agua")
        ]
        loaded = storage.load(s, "telegram", "7")
    assert loaded.state is not None
    assert (loaded.state.step, loaded.state.question) == ("ask", "q1")
    assert loaded.state.answers[0].text == "Por el agua"


def test_redelivered_update_changes_nothing(sessions, defn) -> None:
    apply(sessions, defn, "7", Choice("c:y"), 10)
    apply(sessions, defn, "7", Choice("pv:limari"), 11)
    assert apply(sessions, defn, "7", Choice("pv:limari"), 11) is None
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(ProcessedUpdate)) == 2
        row = s.scalars(select(Participant)).one()
        version = row.state_version
    assert apply(sessions, defn, "7", Choice("c:y"), 10) is None
    with sessions() as s:
        assert s.scalars(select(Participant)).one().state_version == version


def test_a_failed_transaction_leaves_no_trace(sessions, defn) -> None:
    apply(sessions, defn, "7", Choice("c:y"), 1)
    with pytest.raises(RuntimeError), sessions.begin() as s:
        assert storage.claim_update(s, "telegram", 2, NOW)
        loaded = storage.load(s, "telegram", "7")
        result = step(defn, loaded.state, Choice("cm:ovalle"))
        storage.save(s, "telegram", "7", loaded, result, now=NOW, update_id=2)
        s.flush()
        raise RuntimeError("crash before commit")
    with sessions() as s:
        assert s.get(ProcessedUpdate, ("telegram", 2)) is None
        assert s.scalars(select(Participant)).one().comuna is None
    # the redelivered update is then applied normally
    assert apply(sessions, defn, "7", Choice("cm:ovalle"), 2) is not None


def test_erase_removes_participant_and_answers(sessions, defn) -> None:
    for i, ev in enumerate([Choice("c:y"), Choice("s:province:"), Choice("s:age_band:"),
                            Choice("s:gender:"), Choice("ag:a:no_se")], 1):  # fmt: skip
        apply(sessions, defn, "9", ev, i)
    apply(sessions, defn, "9", Choice("x"), 99)  # a stale button: nothing changes
    from flows.events import Command

    apply(sessions, defn, "9", Command("borrar"), 100)
    apply(sessions, defn, "9", Choice("bz:y"), 101)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 0
        assert s.scalar(select(func.count()).select_from(Answer)) == 0


def test_concurrent_writers_are_detected(sessions, defn) -> None:
    """The version column: a writer that read an old state cannot overwrite a newer one."""
    from storage.errors import StaleParticipant

    apply(sessions, defn, "5", Choice("c:y"), 1)
    s1, s2 = sessions(), sessions()
    try:
        l1 = storage.load(s1, "telegram", "5")
        l2 = storage.load(s2, "telegram", "5")
        storage.save(s1, "telegram", "5", l1, step(defn, l1.state, Choice("pv:elqui")), now=NOW)
        s1.commit()
        with pytest.raises(StaleParticipant):
            storage.save(
                s2, "telegram", "5", l2, step(defn, l2.state, Choice("pv:choapa")), now=NOW
            )
    finally:
        s1.close()
        s2.close()


def test_a_claim_waits_for_the_same_update_in_another_transaction(sessions, defn) -> None:
    """Two replicas given one update: the second claim waits for the first transaction and
    then finds the update taken (on SQLite, behind the write lock; on PostgreSQL, behind the
    row being inserted), so the step is applied once."""
    from concurrent.futures import ThreadPoolExecutor

    apply(sessions, defn, "8", Choice("c:y"), 1)
    first = sessions()
    try:
        loaded = storage.claim_and_load(first, "telegram", "8", 2, NOW)
        assert loaded is not None and loaded.state is not None and loaded.row is not None

        def second() -> object:
            with sessions.begin() as s:
                return storage.claim_and_load(s, "telegram", "8", 2, NOW)

        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(second)
            with pytest.raises(TimeoutError):
                waiting.result(timeout=0.5)  # blocked behind the first transaction
            storage.save(
                first,
                "telegram",
                "8",
                loaded,
                step(defn, loaded.state, Choice("pv:elqui")),
                now=NOW,
                update_id=2,
            )
            first.commit()
            assert waiting.result(timeout=10) is None
    finally:
        first.close()
    with sessions() as s:
        assert s.scalar(select(Participant.state_version)) == 2  # consent, then the province once
        assert s.scalar(select(func.count()).select_from(ProcessedUpdate)) == 2


def test_two_replicas_starting_together_keep_the_version_once(sessions, defn) -> None:
    """Both record the consultation's version at start; neither fails (the second waits
    for the first and inserts nothing)."""
    from concurrent.futures import ThreadPoolExecutor

    from storage.models import ConsultationVersion

    first = sessions()
    try:
        storage.repository.remember_version(first, defn, NOW)

        def second() -> None:
            with sessions.begin() as s:
                storage.repository.remember_version(s, defn, NOW)

        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(second)
            first.commit()
            waiting.result(timeout=10)
    finally:
        first.close()
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(ConsultationVersion)) == 1
