"""Invitations of municipal contacts at the storage level, on a real SQLite file and a real
PostgreSQL server: tokens, their checks, single use under a race, progress by comuna and
the reminders that are due."""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

import storage
from flows import Definition, load, step
from flows.events import Choice, InviteCheck, Invited
from storage import invitations
from storage.errors import InvitationTaken
from storage.models import Invitation, Participant, Reminder

NOW = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
DAY = timedelta(days=1)
COMUNAS = [
    "la_serena", "coquimbo", "andacollo", "la_higuera", "paihuano", "vicuna", "ovalle",
    "combarbala", "monte_patria", "punitaqui", "rio_hurtado", "illapel", "canela", "los_vilos",
    "salamanca",
]  # fmt: skip


@pytest.fixture(scope="module")
def defn() -> Definition:
    return load()


def invite(
    sessions: sessionmaker[Session],
    name: str = "Ana Rojas",
    comuna: str = "ovalle",
    *,
    now: datetime = NOW,
    ttl: timedelta = invitations.DEFAULT_TTL,
) -> tuple[int, str]:
    with sessions.begin() as s:
        invitation, token = invitations.create(
            s, name=name, institution=f"Municipalidad de {comuna}", comuna=comuna,
            contact="ana@example.cl", now=now, ttl=ttl,
        )  # fmt: skip
        return invitation.id, token


def join(
    sessions: sessionmaker[Session],
    defn: Definition,
    who: str,
    invitation_id: int,
    token: str,
    at: datetime,
    comuna: str = "ovalle",
) -> None:
    """The contact presses the consent button of their invitation (checked by the caller)."""
    invited = Invited(invitation_id, token, "Ana Rojas", "Municipalidad", comuna)
    with sessions.begin() as s:
        loaded = storage.load(s, "telegram", who)
        result = step(defn, loaded.state, Choice(f"c:y:{token}"), InviteCheck("ok", invited))
        storage.save(s, "telegram", who, loaded, result, now=at)


def finish(sessions: sessionmaker[Session], who: str, at: datetime) -> None:
    with sessions.begin() as s:
        row = s.scalars(select(Participant).where(Participant.external_id == who)).one()
        row.finished_at = at


def citizen(s: Session, who: str, comuna: str, *, finished: bool) -> None:
    s.add(
        Participant(
            channel="telegram", external_id=who, code=f"C{who:0>7}", stage="questions",
            role="citizen", comuna=comuna, state={}, consented_at=NOW,
            finished_at=NOW if finished else None, created_at=NOW, updated_at=NOW,
        )
    )  # fmt: skip


# --- tokens ---------------------------------------------------------------------------------


def test_tokens_are_long_random_base64url_and_fit_telegram() -> None:
    tokens = [invitations.new_token() for _ in range(2000)]
    assert len(set(tokens)) == len(tokens)
    for token in tokens[:200]:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", token), token
        assert len(token) <= 64  # Telegram's limit on the start parameter
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        assert len(raw) * 8 >= 128
    # Every position takes many values: no fixed prefix, no counter, no timestamp.
    for position in range(len(tokens[0])):
        assert len({t[position] for t in tokens}) > 40, position
    # About half of the bits are set, as for random bytes.
    raw_bits = "".join(
        f"{b:08b}" for t in tokens for b in base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))
    )
    assert 0.48 < raw_bits.count("1") / len(raw_bits) < 0.52


def test_only_a_hash_of_the_token_is_stored(sessions: sessionmaker[Session]) -> None:
    _, token = invite(sessions)
    with sessions() as s:
        row = s.execute(text("SELECT * FROM invitations")).mappings().one()
        assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
        for column, value in row.items():
            assert token not in str(value), column
        assert invitations.find(s, token) is not None


def test_check_verdicts(sessions: sessionmaker[Session], defn: Definition) -> None:
    live_id, live = invite(sessions, "Ana")
    _, old = invite(sessions, "Beto", now=NOW - 31 * DAY)  # default: 30 days
    short_id, short = invite(sessions, "Carla", ttl=timedelta(hours=2))
    revoked_id, revoked = invite(sessions, "Dora")
    with sessions.begin() as s:
        assert invitations.revoke(s, revoked_id, NOW) is not None
    join(sessions, defn, "111", live_id, live, NOW)

    with sessions() as s:

        def verdict(token: str, who: str = "222", now: datetime = NOW) -> str:
            return invitations.check(invitations.find(s, token), who, now)

        assert verdict(short) == "ok"
        assert verdict(short, now=NOW + timedelta(hours=2)) == "expired"
        assert verdict(old) == "expired"
        assert verdict(revoked) == "revoked"
        assert verdict(live) == "used"  # another account
        assert verdict(live, "111") == "ok"  # its owner, opening it again
        assert verdict(live, "111", NOW + 60 * DAY) == "ok"  # once joined, expiry is moot
        assert verdict(invitations.new_token()) == "unknown"  # forged
        assert verdict(short[:-1]) == "unknown"  # truncated
        assert invitations.find(s, "") is None
        assert invitations.find(s, short + "x" * 64) is None  # longer than Telegram allows
        assert s.get(Invitation, short_id) is not None


def test_revoke_and_reissue(sessions: sessionmaker[Session], defn: Definition) -> None:
    inv_id, old = invite(sessions)
    with sessions.begin() as s:
        reissued = invitations.reissue(s, inv_id, NOW + DAY)
        assert reissued is not None
        new = reissued[1]
        assert invitations.reissue(s, 9999, NOW) is None
        assert invitations.revoke(s, 9999, NOW) is None
    assert new != old
    with sessions() as s:
        assert invitations.find(s, old) is None
        assert invitations.check(invitations.find(s, new), "1", NOW + DAY) == "ok"
    with sessions.begin() as s:
        invitations.revoke(s, inv_id, NOW + 2 * DAY)
    with sessions() as s:
        assert invitations.check(invitations.find(s, new), "1", NOW + 2 * DAY) == "revoked"


def test_two_accounts_racing_for_one_link(sessions: sessionmaker[Session]) -> None:
    """The conditional UPDATE: the second account waits for the first transaction, then
    finds the invitation taken; nothing of it is stored."""
    inv_id, _ = invite(sessions)
    with sessions.begin() as s:
        for who in ("1", "2"):
            s.add(Participant(channel="telegram", external_id=who, stage="questions",
                              state={}, created_at=NOW, updated_at=NOW))  # fmt: skip
    with sessions() as s:
        p1, p2 = (
            s.scalars(select(Participant.id).where(Participant.external_id == w)).one()
            for w in ("1", "2")
        )
    outcome: list[object] = []

    def second() -> None:
        try:
            with sessions.begin() as s2:
                invitations.accept(s2, inv_id, "2", p2, NOW)
            outcome.append("accepted")
        except InvitationTaken as exc:
            outcome.append(exc)

    first = sessions()
    try:
        with first.begin():
            invitations.accept(first, inv_id, "1", p1, NOW)
            racer = threading.Thread(target=second)
            racer.start()
            racer.join(0.3)
            assert racer.is_alive(), "the second account did not wait for the first"
        racer.join(10)
    finally:
        first.close()
    assert len(outcome) == 1 and isinstance(outcome[0], InvitationTaken)
    with sessions.begin() as s:
        row = s.get(Invitation, inv_id)
        assert row is not None and (row.claimed_by, row.participant_id) == ("1", p1)
        invitations.accept(s, inv_id, "1", p1, NOW + DAY)  # the owner again: fine
        with pytest.raises(InvitationTaken):
            invitations.accept(s, inv_id, "2", p2, NOW + DAY)


# --- progress by comuna ---------------------------------------------------------------------


def test_progress_lists_every_comuna_with_zeros(
    sessions: sessionmaker[Session], defn: Definition
) -> None:
    with sessions() as s:
        empty = invitations.progress(s, COMUNAS)
    assert [r.comuna for r in empty] == COMUNAS
    assert all(
        (r.invited, r.joined, r.finished, r.citizens_joined, r.citizens_finished) == (0,) * 5
        for r in empty
    )

    a_id, a = invite(sessions, "Ana", "ovalle")
    b_id, b = invite(sessions, "Beto", "ovalle")
    invite(sessions, "Carla", "ovalle")  # never opened her link
    d_id, _ = invite(sessions, "Dora", "illapel")
    with sessions.begin() as s:
        invitations.revoke(s, d_id, NOW)
        citizen(s, "c1", "la_serena", finished=True)
        citizen(s, "c2", "la_serena", finished=False)
        citizen(s, "c3", "ovalle", finished=False)
    join(sessions, defn, "a", a_id, a, NOW)
    join(sessions, defn, "b", b_id, b, NOW)
    finish(sessions, "b", NOW + DAY)

    with sessions() as s:
        rows = {r.comuna: r for r in invitations.progress(s, COMUNAS)}
    assert list(rows) == COMUNAS
    ovalle = rows["ovalle"]
    assert (ovalle.invited, ovalle.joined, ovalle.finished) == (3, 2, 1)
    assert (ovalle.citizens_joined, ovalle.citizens_finished) == (1, 0)
    assert (rows["la_serena"].citizens_joined, rows["la_serena"].citizens_finished) == (2, 1)
    assert rows["la_serena"].invited == 0
    assert rows["illapel"].invited == 0  # revoked invitations are not counted
    assert rows["canela"] == empty[COMUNAS.index("canela")]


# --- reminders ------------------------------------------------------------------------------


def due(s: Session, now: datetime, max_count: int = 2) -> list[tuple[str, int]]:
    found = invitations.due_reminders(s, now, after=3 * DAY, max_count=max_count)
    return [(d.external_id, d.seq) for d in found]


def test_due_reminders_after_n_days_at_most_m_times(
    sessions: sessionmaker[Session], defn: Definition
) -> None:
    a_id, a = invite(sessions, "Ana")
    b_id, b = invite(sessions, "Beto")
    invite(sessions, "Carla")  # not joined: cannot be written to on Telegram
    join(sessions, defn, "a", a_id, a, NOW)
    join(sessions, defn, "b", b_id, b, NOW + DAY)
    with sessions.begin() as s:
        assert due(s, NOW + 3 * DAY - timedelta(minutes=1)) == []
        assert due(s, NOW + 3 * DAY) == [("a", 1)]
        assert due(s, NOW + 4 * DAY) == [("a", 1), ("b", 1)]
        assert invitations.record_reminder(s, a_id, 1, NOW + 4 * DAY)
        assert not invitations.record_reminder(s, a_id, 1, NOW + 4 * DAY)  # never twice
        # The next one counts from the last reminder, not from joining.
        assert due(s, NOW + 6 * DAY) == [("b", 1)]
        assert due(s, NOW + 7 * DAY) == [("a", 2), ("b", 1)]
        assert invitations.record_reminder(s, a_id, 2, NOW + 7 * DAY)
        assert due(s, NOW + 30 * DAY) == [("b", 1)]  # at most two for Ana
        assert due(s, NOW + 30 * DAY, max_count=3) == [("a", 3), ("b", 1)]
    with sessions() as s:
        rows = s.execute(select(Reminder.invitation_id, Reminder.seq).order_by(Reminder.seq))
        assert rows.all() == [(a_id, 1), (a_id, 2)]


def test_no_reminders_after_opting_out_finishing_erasing_or_revoking(
    sessions: sessionmaker[Session], defn: Definition
) -> None:
    ids = {}
    for who in ("a", "b", "c", "d", "e"):
        inv_id, token = invite(sessions, who.upper())
        join(sessions, defn, who, inv_id, token, NOW)
        ids[who] = inv_id
    later = NOW + 5 * DAY
    with sessions.begin() as s:
        assert [w for w, _ in due(s, later)] == ["a", "b", "c", "d", "e"]
        assert invitations.opt_out(s, "a")
        assert not invitations.opt_out(s, "nobody")
        invitations.revoke(s, ids["c"], NOW)
    finish(sessions, "b", NOW + DAY)
    with sessions.begin() as s:  # /borrar: the participant goes, the invitation stays
        s.delete(s.scalars(select(Participant).where(Participant.external_id == "d")).one())
        invitations.erase_account(s, "telegram", "d", NOW)
    with sessions() as s:
        assert due(s, later) == [("e", 1)]
        assert s.scalar(select(func.count()).select_from(Invitation)) == 5
