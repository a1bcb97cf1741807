"""Invitations of municipal contacts: tokens, their checks, progress by comuna, reminders.

A token is 192 random bits (``secrets``) in base64url: 32 characters, inside Telegram's
64-character ``start`` parameter. Only its SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from storage.db import insert_if_absent
from storage.errors import InvitationTaken
from storage.models import BadToken, Invitation, Participant, Reminder

TOKEN_BYTES = 24
DEFAULT_TTL = timedelta(days=30)
Verdict = Literal["ok", "unknown", "expired", "revoked", "erased", "used"]


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create(
    session: Session,
    *,
    name: str,
    institution: str,
    comuna: str,
    contact: str | None,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
) -> tuple[Invitation, str]:
    """A new invitation and its token (shown once: only the hash is stored)."""
    token = new_token()
    invitation = Invitation(
        token_hash=hash_token(token),
        name=name,
        institution=institution,
        comuna=comuna,
        contact=contact or None,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(invitation)
    session.flush()
    return invitation, token


def active_by_contact(session: Session, key: Callable[[str], str]) -> dict[tuple[str, str], int]:
    """The invitations not revoked, by (``key(name)``, comuna): what an import must not
    invite again (a list imported twice, or again with a few rows added)."""
    rows = session.execute(
        select(Invitation.id, Invitation.name, Invitation.comuna).where(
            Invitation.revoked_at.is_(None)
        )
    )
    return {(key(name), comuna): invitation_id for invitation_id, name, comuna in rows}


def find(session: Session, token: str) -> Invitation | None:
    if not token or len(token) > 64:
        return None
    return session.scalars(
        select(Invitation).where(Invitation.token_hash == hash_token(token))
    ).one_or_none()


def check(invitation: Invitation | None, external_id: str, now: datetime) -> Verdict:
    """Whether ``external_id`` may use ``invitation`` now. Opening one's own link again is fine."""
    if invitation is None:
        return "unknown"
    if invitation.erased_at is not None:
        return "erased"
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.claimed_by is not None:
        return "ok" if invitation.claimed_by == external_id else "used"
    if aware(invitation.expires_at) <= now:
        return "expired"
    return "ok"


def accept(
    session: Session, invitation_id: int, external_id: str, participant_id: int, now: datetime
) -> None:
    """Bind the invitation to the account that accepted it: single use. The UPDATE is
    conditional, so of two accounts racing for one link exactly one gets it."""
    result = session.execute(
        update(Invitation)
        .where(
            Invitation.id == invitation_id,
            or_(Invitation.claimed_by.is_(None), Invitation.claimed_by == external_id),
        )
        .values(claimed_by=external_id, claimed_at=now, participant_id=participant_id)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise InvitationTaken(invitation_id)


def revoke(session: Session, invitation_id: int, now: datetime) -> Invitation | None:
    invitation = session.get(Invitation, invitation_id)
    if invitation is not None and invitation.revoked_at is None:
        invitation.revoked_at = now
    return invitation


def reissue(
    session: Session, invitation_id: int, now: datetime, ttl: timedelta = DEFAULT_TTL
) -> tuple[Invitation, str] | None:
    """A new token for the same contact (lost or expired link); the old one stops working.
    A contact who has not joined yet may then open it from another account."""
    invitation = session.get(Invitation, invitation_id)
    if invitation is None or invitation.erased_at is not None:  # its contact is gone
        return None
    token = new_token()
    invitation.token_hash = hash_token(token)
    invitation.expires_at = now + ttl
    invitation.revoked_at = None
    if invitation.participant_id is None:
        invitation.claimed_by = invitation.claimed_at = None
    return invitation, token


def erase_account(session: Session, channel: str, external_id: str, now: datetime) -> int:
    """After /borrar: what identifies the contact of the invitations this account accepted
    goes (name, institution, contact, the account, the reminders sent); the invitation
    stays as a count of its comuna, and its link can no longer be used by anyone. The
    account's bad tokens go too. Returns how many invitations were erased."""
    session.execute(
        delete(BadToken).where(BadToken.channel == channel, BadToken.external_id == external_id)
    )
    ids = list(session.scalars(select(Invitation.id).where(Invitation.claimed_by == external_id)))
    if not ids:
        return 0
    session.execute(delete(Reminder).where(Reminder.invitation_id.in_(ids)))
    erased = {"name": "", "institution": "", "contact": None, "claimed_by": None,
              "claimed_at": None, "participant_id": None, "reminders_opt_out": False,
              "erased_at": now}  # fmt: skip
    session.execute(
        update(Invitation)
        .where(Invitation.id.in_(ids))
        .values(**erased)
        .execution_options(synchronize_session=False)
    )
    return len(ids)


@dataclass(frozen=True)
class ComunaProgress:
    """Per comuna: municipal contacts invited / joined / finished, and citizens apart."""

    comuna: str
    invited: int
    joined: int
    finished: int
    citizens_joined: int
    citizens_finished: int


def progress(session: Session, comunas: list[str]) -> list[ComunaProgress]:
    """Every comuna in ``comunas`` order (zeros included, so silence shows), then any other."""
    inv = session.execute(
        select(
            Invitation.comuna,
            func.count(Invitation.id),
            func.count(Participant.consented_at),
            func.count(Participant.finished_at),
        )
        .outerjoin(Participant, Participant.id == Invitation.participant_id)
        .where(Invitation.revoked_at.is_(None))
        .group_by(Invitation.comuna)
    ).all()
    cit = session.execute(
        select(
            Participant.comuna,
            func.count(Participant.consented_at),
            func.count(Participant.finished_at),
        )
        .where(Participant.role == "citizen", Participant.comuna.is_not(None))
        .group_by(Participant.comuna)
    ).all()
    by_comuna: dict[str, list[int]] = {c: [0, 0, 0, 0, 0] for c in comunas}
    for comuna, invited, joined, finished in inv:
        by_comuna.setdefault(comuna, [0, 0, 0, 0, 0])[0:3] = [invited, joined, finished]
    for place, joined, finished in cit:
        by_comuna.setdefault(str(place), [0, 0, 0, 0, 0])[3:5] = [joined, finished]
    return [ComunaProgress(c, *counts) for c, counts in by_comuna.items()]


@dataclass(frozen=True)
class DueReminder:
    invitation_id: int
    external_id: str
    seq: int
    name: str


def due_reminders(
    session: Session, now: datetime, *, after: timedelta, max_count: int
) -> list[DueReminder]:
    """Contacts who opened their link but did not finish, quiet for ``after`` since the
    last contact (link opened or reminder sent), with fewer than ``max_count`` reminders,
    who did not opt out. (Contacts who never opened their link cannot be written to on
    Telegram: ``consulta invite list`` shows them for a call or an e-mail.)"""
    sent = (
        select(
            Reminder.invitation_id,
            func.count(Reminder.id).label("n"),
            func.max(Reminder.sent_at).label("last"),
        )
        .group_by(Reminder.invitation_id)
        .subquery()
    )
    rows = session.execute(
        select(Invitation, func.coalesce(sent.c.n, 0), sent.c.last)
        .outerjoin(sent, sent.c.invitation_id == Invitation.id)
        .outerjoin(Participant, Participant.id == Invitation.participant_id)
        .where(
            Invitation.claimed_by.is_not(None),
            Invitation.revoked_at.is_(None),
            Invitation.reminders_opt_out.is_(False),
            Participant.finished_at.is_(None),
        )
        .order_by(Invitation.id)
    ).all()
    due = []
    for invitation, count, last in rows:
        quiet_since = aware(last if last is not None else invitation.claimed_at)
        if count < max_count and now - quiet_since >= after:
            assert invitation.claimed_by is not None
            due.append(DueReminder(invitation.id, invitation.claimed_by, count + 1,
                                   invitation.name))  # fmt: skip
    return due


def record_reminder(session: Session, invitation_id: int, seq: int, now: datetime) -> bool:
    """Claim reminder ``seq`` of an invitation before sending it; False if it was already
    sent (by this or another process): then it must not be sent again."""
    values = {"invitation_id": invitation_id, "seq": seq, "sent_at": now}
    return insert_if_absent(session, Reminder, values)


def opt_out(session: Session, external_id: str) -> bool:
    """Stop reminders for the invitations of this account; True if there was any."""
    found = False
    for invitation in session.scalars(
        select(Invitation).where(Invitation.claimed_by == external_id)
    ):
        invitation.reminders_opt_out = True
        found = True
    return found


def note_bad_token(session: Session, channel: str, external_id: str, now: datetime) -> None:
    """Record that ``external_id`` tried a token that opened nothing."""
    session.add(BadToken(channel=channel, external_id=external_id, tried_at=now))
    session.flush()


def bad_tokens_since(session: Session, channel: str, external_id: str, since: datetime) -> int:
    """How many bad tokens ``external_id`` tried after ``since``."""
    return int(
        session.scalar(
            select(func.count(BadToken.id)).where(
                BadToken.channel == channel,
                BadToken.external_id == external_id,
                BadToken.tried_at > since,
            )
        )
        or 0
    )


def forget_bad_tokens(session: Session, before: datetime) -> int:
    """Drop the bad tokens tried before ``before`` (out of every throttle window)."""
    result = session.execute(delete(BadToken).where(BadToken.tried_at < before))
    return int(result.rowcount)  # type: ignore[attr-defined]


def aware(moment: datetime) -> datetime:
    """SQLite returns naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
