"""The queries the rest of Consulta needs. Every function takes the caller's session and never
commits: one event of one participant is one transaction, owned by the caller, in which the
update id is claimed, the answers are written and the state row is saved together.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from flows import Definition, State, Step
from flows import events as ev
from storage import invitations
from storage.db import insert_if_absent
from storage.models import (
    Answer,
    ConsultationVersion,
    DigestRun,
    Participant,
    ProcessedUpdate,
)

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud
CODE_LENGTH = 8


def new_code() -> str:
    """A random participant code, e.g. ``K7QX2MPA`` (40 bits)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


@dataclass
class Loaded:
    """A participant as read at the start of a transaction (``row`` None: nobody stored)."""

    row: Participant | None
    state: State | None


def claim_update(session: Session, channel: str, update_id: int, now: datetime) -> bool:
    """Record ``update_id`` as processed; False if it already was (a redelivery).

    With several processes, the second INSERT of one id waits for the first transaction
    and then inserts nothing, so exactly one of them applies the update.
    """
    values = {"channel": channel, "update_id": update_id, "processed_at": now}
    return insert_if_absent(session, ProcessedUpdate, values)


_LOAD = select(Participant).where(
    Participant.channel == bindparam("channel"),
    Participant.external_id == bindparam("external_id"),
)
_LOAD_ANSWERS = (
    select(Answer).where(Answer.participant_id == bindparam("participant")).order_by(Answer.id)
)
"""Built once, run with parameters: building (and keying) them on every update cost more
than running them (bench/updates.py --profile); so did ``selectinload``'s machinery."""


def load(session: Session, channel: str, external_id: str) -> Loaded:
    """The participant's row and engine state (answers in the order they were first given)."""
    params = {"channel": channel, "external_id": external_id}
    row = session.scalars(_LOAD, params).one_or_none()
    if row is None:
        return Loaded(None, None)
    # The collection as the relationship would load it (order_by Answer.id), set as loaded.
    found = list(session.scalars(_LOAD_ANSWERS, {"participant": row.id}))
    set_committed_value(row, "answers", found)
    answers = tuple(_to_event_answer(a) for a in row.answers)
    return Loaded(row, State.from_dict(row.state, answers))


def save(
    session: Session,
    channel: str,
    external_id: str,
    loaded: Loaded,
    result: Step,
    *,
    now: datetime,
    update_id: int | None = None,
    codes: Callable[[], str] = new_code,
) -> Participant | None:
    """Store what one engine step produced: its records, then the new state.

    A step that changed nothing (bad input, help texts) writes nothing: not even the
    participant's ``updated_at`` or state version moves.
    """
    row = loaded.row
    if not result.records and result.state == loaded.state:
        return row
    by_key = {a.key: a for a in row.answers} if row is not None else {}
    accepted: list[int] = []
    for record in result.records:
        if isinstance(record, ev.ParticipantErased):
            if row is not None:
                invitations.forget_account(session, external_id)
                session.delete(row)
            return None
        if isinstance(record, ev.InvitationAccepted):
            accepted.append(record.invitation_id)  # once the row is complete (below)
            continue
        if row is None and isinstance(record, ev.ConsentGiven | ev.ConsentDeclined):
            row = Participant(channel=channel, external_id=external_id, created_at=now, state={})
            session.add(row)
        if row is None:
            raise ValueError(f"{record!r} for a participant who has not answered the consent")
        _apply(row, record, by_key, now=now, update_id=update_id, codes=codes)
    if row is not None and result.state is not None:
        state = result.state
        row.state = state.to_dict()
        row.stage = state.stage
        row.role = state.role
        row.updated_at = now
        if row.unreachable_since is not None:
            row.unreachable_since = None  # they wrote to us: they can be reached again
    if accepted:
        if row is None:
            raise ValueError("an invitation accepted by a participant who is not stored")
        session.flush()  # the participant's id, for the invitation
        for invitation_id in accepted:
            invitations.accept(session, invitation_id, external_id, row.id, now)
    return row


def _apply(
    row: Participant,
    record: ev.Record,
    by_key: dict[str, Answer],
    *,
    now: datetime,
    update_id: int | None,
    codes: Callable[[], str],
) -> None:
    if isinstance(record, ev.ConsentGiven):
        row.consented_at = row.consented_at or now
        row.code = row.code or codes()
    elif isinstance(record, ev.ConsentDeclined):
        row.consented_at = None
    elif isinstance(record, ev.ProfileSet):
        setattr(row, record.field, record.value)
    elif isinstance(record, ev.AnswerRecorded):
        a = record.answer
        stored = by_key.get(a.key)
        if stored is None:
            stored = Answer(key=a.key, created_at=now)
            row.answers.append(stored)
            by_key[a.key] = stored
        stored.question, stored.kind, stored.option = a.question, a.kind, a.option
        stored.text, stored.system, stored.refers_to = a.text, a.system, a.refers_to
        stored.consultation_version, stored.update_id, stored.updated_at = a.version, update_id, now
    elif isinstance(record, ev.AnswerRemoved):
        gone = by_key.pop(record.previous.key, None)
        if gone is not None:
            row.answers.remove(gone)
    elif isinstance(record, ev.Finished):
        row.finished_at = row.finished_at or now


def _to_event_answer(a: Answer) -> ev.Answer:
    return ev.Answer(
        key=a.key,
        question=a.question,
        kind=a.kind,  # type: ignore[arg-type]
        version=a.consultation_version,
        option=a.option,
        text=a.text,
        system=a.system,
        refers_to=a.refers_to,
    )


def remember_version(session: Session, defn: Definition, now: datetime) -> None:
    """Keep the text of every consultation version that ran (once per version)."""
    if session.get(ConsultationVersion, defn.version) is None:
        session.add(
            ConsultationVersion(
                version=defn.version,
                consultation_id=defn.consultation.id,
                source=defn.text,
                first_seen_at=now,
            )
        )


def versions(session: Session) -> list[ConsultationVersion]:
    """Every stored version, oldest first."""
    return list(session.scalars(select(ConsultationVersion).order_by("first_seen_at")))


def mark_unreachable(session: Session, channel: str, external_id: str, now: datetime) -> bool:
    """Note that a participant cannot be reached (e.g. blocked the bot); True the first time."""
    result = session.execute(
        update(Participant)
        .where(
            Participant.channel == channel,
            Participant.external_id == external_id,
            Participant.unreachable_since.is_(None),
        )
        .values(unreachable_since=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def forget_processed_updates(session: Session, channel: str, before: datetime) -> int:
    """Drop dedup entries older than ``before`` (Telegram redelivers for 24 hours at most)."""
    result = session.execute(
        delete(ProcessedUpdate).where(
            ProcessedUpdate.channel == channel, ProcessedUpdate.processed_at < before
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def last_digest(session: Session) -> DigestRun | None:
    """The most recent digest delivered, if any."""
    return session.scalars(select(DigestRun).order_by(DigestRun.until.desc()).limit(1)).first()


def claim_digest(session: Session, period: str, until: datetime, now: datetime) -> bool:
    """Record that the digest of ``period`` is being sent; False if it already was."""
    return insert_if_absent(session, DigestRun, {"period": period, "until": until, "sent_at": now})
