"""Two replicas storing the same new participant at once: the second INSERT meets the first
one's row (a unique violation) and the step is applied again on it, like a stale version,
instead of failing the update (500, a redelivery)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.services.conversation import Conversation
from flows import load
from flows.buttons import Consent
from flows.events import Choice
from storage import new_code
from storage.models import Participant, ProcessedUpdate
from tests.helpers.databases import POSTGRES_ONLY

ACCOUNT = "2001"


def racing(other: Conversation) -> Callable[[], str]:
    """A code maker that, the first time (inside the first replica's transaction, just
    before its INSERT), lets the other replica store the same participant first."""
    calls = []

    def code() -> str:
        if not calls:
            other.apply_sync(ACCOUNT, Choice(Consent(True).encode()), update_id=2)
        calls.append(1)
        return new_code()

    return code


def stored(sessions: sessionmaker[Session]) -> tuple[int, list[int]]:
    with sessions() as s:
        people = s.scalar(select(func.count()).select_from(Participant)) or 0
        return people, sorted(s.scalars(select(ProcessedUpdate.update_id)))


@POSTGRES_ONLY
def test_a_first_insert_that_lost_the_race_is_applied_again(
    sessions: sessionmaker[Session],
) -> None:
    defn = load()
    first = Conversation(defn, sessions)
    first.codes = racing(Conversation(defn, sessions))
    step = first.apply_sync(ACCOUNT, Choice(Consent(True).encode()), update_id=1)
    assert step is not None  # applied again on the stored participant, not an error
    assert stored(sessions) == (1, [1, 2])


@POSTGRES_ONLY
async def test_the_same_on_the_event_loop(sessions: sessionmaker[Session]) -> None:
    defn = load()
    first = Conversation(defn, sessions)
    first.codes = racing(Conversation(defn, sessions))
    step = await first.apply(ACCOUNT, Choice(Consent(True).encode()), update_id=1)
    await first.aclose()
    assert step is not None
    assert stored(sessions) == (1, [1, 2])


def test_a_conflict_that_does_not_go_away_fails_the_update(
    sessions: sessionmaker[Session],
) -> None:
    """A bug (the same code every time) is not retried forever: it fails the update."""
    defn = load()
    conv = Conversation(defn, sessions, codes=lambda: "SAMECODE")
    assert conv.apply_sync("1", Choice(Consent(True).encode()), update_id=1) is not None
    with pytest.raises(RuntimeError, match="kept changing"):
        conv.apply_sync("2", Choice(Consent(True).encode()), update_id=2)
    assert stored(sessions) == (1, [1])
