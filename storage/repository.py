"""The queries the rest of Consulta needs. Every function takes the caller's session and never
commits: one event of one participant is one transaction, owned by the caller, in which the
update id is claimed, the answers are written and the state row is saved together.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Row,
    ScalarSelect,
    Select,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flows import Definition, State, Step
from flows import events as ev
from storage import invitations
from storage.db import insert_if_absent
from storage.errors import ParticipantStored, StaleParticipant
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

    row: Row[Any] | None
    """The ``participants`` row (columns as attributes), as read."""
    state: State | None
    answer_ids: dict[str, int] = field(default_factory=dict)
    """Stored answers' ids by key."""


def claim_update(session: Session, channel: str, update_id: int, now: datetime) -> bool:
    """Record ``update_id`` as processed; False if it already was (a redelivery).

    With several processes, the second INSERT of one id waits for the first transaction
    and then inserts nothing, so exactly one of them applies the update.
    """
    values = {"channel": channel, "update_id": update_id, "processed_at": now}
    return insert_if_absent(session, ProcessedUpdate, values)


# The per-update statements are SQLAlchemy Core on the models' tables, built once and run
# on the session's connection: the ORM's unit of work (identity map, flush, version check)
# cost more CPU than the rest of an update's handling (bench/updates.py --profile). The
# optimistic lock the ORM gave (``state_version``) is kept by hand in ``_write_participant``.
PARTICIPANTS = cast(Table, Participant.__table__)
ANSWERS = cast(Table, Answer.__table__)
_ANSWER_FIELDS = (
    "id", "key", "question", "kind", "consultation_version", "option", "text", "system",
    "refers_to",
)  # fmt: skip
_JSON_FUNCTIONS = {
    "postgresql": ("json_agg", "json_build_array"),
    "sqlite": ("json_group_array", "json_array"),
}


def _answers_of_participant(dialect: str) -> ScalarSelect[Any]:
    """The participant's answers as one JSON array of arrays (``_ANSWER_FIELDS``), read in the
    same statement as the participant: one round trip instead of two, which on a database
    server is most of a read's cost."""
    aggregate, array = _JSON_FUNCTIONS.get(dialect, _JSON_FUNCTIONS["postgresql"])
    fields = getattr(func, array)(*(ANSWERS.c[name] for name in _ANSWER_FIELDS))
    return (
        select(getattr(func, aggregate)(fields))
        .where(ANSWERS.c.participant_id == PARTICIPANTS.c.id)
        .scalar_subquery()
    )


_THE_PARTICIPANT = (PARTICIPANTS.c.channel == bindparam("channel")) & (
    PARTICIPANTS.c.external_id == bindparam("external_id")
)


def _load_statement(dialect: str) -> Select[Any]:
    answers = type_coerce(_answers_of_participant(dialect), JSON).label("answer_list")
    return select(PARTICIPANTS, answers).where(_THE_PARTICIPANT)


def _claim_and_load_statement() -> Select[Any]:
    """PostgreSQL: claim the update and read the participant in one statement. No row: the
    update was claimed before (a redelivery). The read sees the database as the statement
    began: if the claim had to wait for another transaction, what that one wrote is not
    seen, and the version check of the participant's UPDATE sends the step round again."""
    updates = cast(Table, ProcessedUpdate.__table__)
    claimed = (
        postgresql.insert(updates)
        .values(
            channel=bindparam("channel"),
            update_id=bindparam("update_id"),
            processed_at=bindparam("now", type_=updates.c.processed_at.type),
        )
        .on_conflict_do_nothing()
        .returning(updates.c.update_id)
        .cte("claimed")
    )
    answers = type_coerce(_answers_of_participant("postgresql"), JSON).label("answer_list")
    joined = claimed.outerjoin(PARTICIPANTS, _THE_PARTICIPANT)
    return select(claimed.c.update_id, PARTICIPANTS, answers).select_from(joined)


_LOADS: dict[str, Select[Any]] = {}
_CLAIM_AND_LOAD = _claim_and_load_statement()
_VERSION_IS = (PARTICIPANTS.c.id == bindparam("pid")) & (
    PARTICIPANTS.c.state_version == bindparam("version")
)
_DELETE_PARTICIPANT = delete(PARTICIPANTS).where(_VERSION_IS)
_INSERT_PARTICIPANT = insert(PARTICIPANTS).returning(PARTICIPANTS.c.id)
_UPDATE_PARTICIPANT = update(PARTICIPANTS).where(_VERSION_IS)  # SET: the columns given
_DELETE_ANSWER = delete(ANSWERS).where(ANSWERS.c.id == bindparam("answer_id"))
_UPDATE_ANSWER = update(ANSWERS).where(ANSWERS.c.id == bindparam("answer_id"))
_INSERT_ANSWER = insert(ANSWERS)


def load(session: Session, channel: str, external_id: str) -> Loaded:
    """The participant's row and engine state (answers in the order they were first given)."""
    conn = session.connection()
    dialect = conn.dialect.name
    statement = _LOADS.get(dialect)
    if statement is None:
        statement = _LOADS[dialect] = _load_statement(dialect)
    row = conn.execute(statement, {"channel": channel, "external_id": external_id}).one_or_none()
    return _loaded(row)


def claim_and_load(
    session: Session, channel: str, external_id: str, update_id: int, now: datetime
) -> Loaded | None:
    """``claim_update`` then ``load``; None if the update was claimed before. On PostgreSQL
    in one round trip (see ``_claim_and_load_statement``)."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        if not claim_update(session, channel, update_id, now):
            return None
        return load(session, channel, external_id)
    params = {"channel": channel, "external_id": external_id, "update_id": update_id, "now": now}
    row = conn.execute(_CLAIM_AND_LOAD, params).one_or_none()
    if row is None:
        return None
    return _loaded(row if row.id is not None else None)


def _loaded(row: Row[Any] | None) -> Loaded:
    if row is None:
        return Loaded(None, None)
    found = sorted(row.answer_list or ())  # by id: the order they were first given
    answers = tuple(_to_event_answer(dict(zip(_ANSWER_FIELDS, a, strict=True))) for a in found)
    return Loaded(row, State.from_dict(row.state, answers), {a[1]: a[0] for a in found})


@dataclass
class _Changes:
    """What one step writes: participant columns, and answers by key."""

    columns: dict[str, Any] = field(default_factory=dict)
    new_answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    changed_answers: dict[int, dict[str, Any]] = field(default_factory=dict)
    removed_answers: list[int] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)
    creates: bool = False


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
) -> int | None:
    """Store what one engine step produced: its records, then the new state; the
    participant's id is returned (None if nobody is stored, e.g. after /borrar).

    A step that changed nothing (bad input, help texts) writes nothing: not even the
    participant's ``updated_at`` or state version moves. Raises ``StaleParticipant`` if another
    transaction saved this participant since ``loaded`` was read.
    """
    row = loaded.row
    if not result.records and result.state == loaded.state:
        return row.id if row is not None else None
    if any(isinstance(r, ev.ParticipantErased) for r in result.records):
        if row is None:
            return None
        invitations.erase_account(session, channel, external_id, now)
        _expect_one(session.connection().execute(_DELETE_PARTICIPANT, _version(row)))
        return None  # its answers go with it (ON DELETE CASCADE)
    changes = _changes(row, loaded.answer_ids, result, now=now, update_id=update_id, codes=codes)
    if row is None and not changes.creates:
        kinds = sorted({type(r).__name__ for r in result.records})  # not their content: logged
        raise ValueError(f"{kinds} for a participant who has not answered the consent")
    pid = _write_participant(session, channel, external_id, row, changes.columns, now)
    _write_answers(session, pid, changes)
    for invitation_id in changes.accepted:
        invitations.accept(session, invitation_id, external_id, pid, now)
    return pid


def _changes(
    row: Row[Any] | None,
    answer_ids: dict[str, int],
    result: Step,
    *,
    now: datetime,
    update_id: int | None,
    codes: Callable[[], str],
) -> _Changes:
    """The step's records and new state as column values and answer writes."""
    out = _Changes()
    cols = out.columns

    def current(name: str) -> Any:
        return cols[name] if name in cols else (getattr(row, name) if row is not None else None)

    ids = dict(answer_ids)
    for record in result.records:
        if isinstance(record, ev.InvitationAccepted):
            out.accepted.append(record.invitation_id)
        elif isinstance(record, ev.ConsentGiven):
            out.creates = True
            cols["consented_at"] = current("consented_at") or now
            cols["code"] = current("code") or codes()
        elif isinstance(record, ev.ConsentDeclined):
            out.creates = True
            cols["consented_at"] = None
        elif isinstance(record, ev.ProfileSet):
            cols[record.field] = record.value
        elif isinstance(record, ev.Finished):
            cols["finished_at"] = current("finished_at") or now
        elif isinstance(record, ev.AnswerRecorded):
            a = record.answer
            values = {
                "question": a.question, "kind": a.kind, "option": a.option, "text": a.text,
                "system": a.system, "refers_to": a.refers_to, "consultation_version": a.version,
                "update_id": update_id, "updated_at": now,
            }  # fmt: skip
            if a.key in ids:
                out.changed_answers[ids[a.key]] = values
            elif a.key in out.new_answers:
                out.new_answers[a.key].update(values)
            else:
                out.new_answers[a.key] = {"key": a.key, "created_at": now, **values}
        elif isinstance(record, ev.AnswerRemoved):
            key = record.previous.key
            if key in ids:
                gone = ids.pop(key)
                out.removed_answers.append(gone)
                out.changed_answers.pop(gone, None)
            else:
                out.new_answers.pop(key, None)
    if result.state is not None:
        state = result.state
        cols.update(state=state.to_dict(), stage=state.stage, role=state.role, updated_at=now)
        if current("unreachable_since") is not None:
            cols["unreachable_since"] = None  # they wrote to us: they can be reached again
    return out


def _write_participant(
    session: Session,
    channel: str,
    external_id: str,
    row: Row[Any] | None,
    columns: dict[str, Any],
    now: datetime,
) -> int:
    """INSERT the participant, or UPDATE it if its version is still the one read."""
    conn = session.connection()
    if row is None:
        values = {"channel": channel, "external_id": external_id, "created_at": now, **columns}
        values.setdefault("updated_at", now)
        try:
            return int(conn.execute(_INSERT_PARTICIPANT, values).scalar_one())
        except IntegrityError as exc:  # a unique key: (channel, external_id) or the code
            raise ParticipantStored("participant stored by another transaction") from exc
    bumped = {**columns, "state_version": row.state_version + 1, **_version(row)}
    _expect_one(conn.execute(_UPDATE_PARTICIPANT, bumped))
    return int(row.id)


def _write_answers(session: Session, pid: int, changes: _Changes) -> None:
    """Removed answers first (a key may be given again), then changed ones, then new ones
    in the order given (their ids keep that order)."""
    conn = session.connection()
    if changes.removed_answers:
        conn.execute(_DELETE_ANSWER, [{"answer_id": i} for i in changes.removed_answers])
    for answer_id, values in changes.changed_answers.items():
        conn.execute(_UPDATE_ANSWER, {"answer_id": answer_id, **values})
    if changes.new_answers:
        rows = [{"participant_id": pid, **v} for v in changes.new_answers.values()]
        conn.execute(_INSERT_ANSWER, rows)


def _version(row: Row[Any]) -> dict[str, int]:
    return {"pid": row.id, "version": row.state_version}


def _expect_one(result: Any) -> None:
    """The participant was written by someone else since it was read: re-apply the step."""
    if result.rowcount != 1:
        raise StaleParticipant("participant changed by another transaction")


def _to_event_answer(a: dict[str, Any]) -> ev.Answer:
    return ev.Answer(
        key=a["key"],
        question=a["question"],
        kind=a["kind"],
        version=a["consultation_version"],
        option=a["option"],
        text=a["text"],
        system=a["system"],
        refers_to=a["refers_to"],
    )


def remember_version(session: Session, defn: Definition, now: datetime) -> None:
    """Keep the text of every consultation version that ran (once per version; replicas
    starting together each try, and the second insert does nothing)."""
    values = {"version": defn.version, "consultation_id": defn.consultation.id,
              "source": defn.text, "first_seen_at": now}  # fmt: skip
    insert_if_absent(session, ConsultationVersion, values)


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
