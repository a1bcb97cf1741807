"""Closing the consultation: when it closes, who gets the final summary, and the claim that
sends it to each participant at most once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from storage.db import insert_if_absent
from storage.invitations import aware
from storage.models import Closing, FinalSummary, Invitation, Participant


def closes_at(session: Session, consultation_id: str) -> datetime | None:
    """When an organiser closed (or will close) the consultation, if they did."""
    moment = session.scalar(
        select(Closing.closes_at).where(Closing.consultation_id == consultation_id)
    )
    return aware(moment) if moment is not None else None


def record(session: Session, consultation_id: str, at: datetime, now: datetime) -> datetime:
    """Record the closing at ``at``; a consultation already closed keeps its first closing
    time, which is returned."""
    # In UTC, as every stored time: SQLite would keep a local wall time and drop its offset.
    values = {"consultation_id": consultation_id, "closes_at": at.astimezone(UTC),
              "recorded_at": now.astimezone(UTC)}  # fmt: skip
    insert_if_absent(session, Closing, values)
    found = closes_at(session, consultation_id)
    assert found is not None
    return found


@dataclass(frozen=True)
class Recipient:
    participant_id: int
    external_id: str


def recipients(session: Session, channel: str) -> list[Recipient]:
    """Participants who consented, can be reached, did not opt out (of notices, or of
    reminders as invited contacts) and have not had the final summary yet."""
    stopped_reminders = exists().where(
        Invitation.participant_id == Participant.id, Invitation.reminders_opt_out.is_(True)
    )
    sent = exists().where(FinalSummary.participant_id == Participant.id)
    rows = session.execute(
        select(Participant.id, Participant.external_id)
        .where(Participant.channel == channel, Participant.code.is_not(None))
        .where(Participant.unreachable_since.is_(None))
        .where(Participant.notices_opt_out_at.is_(None))
        .where(~stopped_reminders, ~sent)
        .order_by(Participant.id)
    ).all()
    return [Recipient(pid, external) for pid, external in rows]


def claim_summary(session: Session, participant_id: int, now: datetime) -> bool:
    """Claim the final summary of one participant; False if it was already sent."""
    return insert_if_absent(
        session, FinalSummary, {"participant_id": participant_id, "sent_at": now}
    )


def opt_out(session: Session, channel: str, external_id: str, now: datetime) -> bool:
    """No more notices for this participant; False if they are not one (or already out)."""
    result = session.execute(
        update(Participant)
        .where(Participant.channel == channel, Participant.external_id == external_id)
        .where(Participant.code.is_not(None), Participant.notices_opt_out_at.is_(None))
        .values(notices_opt_out_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
