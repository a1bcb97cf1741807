"""SQLAlchemy 2 models: participants, their answers, processed updates, consultation versions.

Participants are known outside the conversation only by ``code``; ``external_id`` (the
Telegram user id) is needed to keep talking to them and never leaves this table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


UtcDateTime = DateTime(timezone=True)


class Participant(Base):
    """One person in one channel, with their conversation state.

    ``state_version`` is the optimistic lock: an UPDATE that finds another version means a
    concurrent writer (another replica) got there first, and the step is re-applied.
    """

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    code: Mapped[str | None] = mapped_column(String(16), unique=True)
    stage: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16), default="citizen")
    comuna: Mapped[str | None] = mapped_column(String(32))
    age_band: Mapped[str | None] = mapped_column(String(32))
    gender: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    state_version: Mapped[int] = mapped_column(Integer, default=1)
    consented_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    unreachable_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    notices_opt_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """Asked (/no_avisar) not to receive anything the bot sends on its own: the final summary."""

    answers: Mapped[list[Answer]] = relationship(
        back_populates="participant",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Answer.id",
    )

    __mapper_args__ = {"version_id_col": state_version}  # noqa: RUF012 (SQLAlchemy API)


class Answer(Base):
    """One answer, as the engine recorded it; ``key`` is unique per participant."""

    __tablename__ = "answers"
    __table_args__ = (
        UniqueConstraint("participant_id", "key"),
        # Covers every GROUP BY of the digest (reports/aggregate.py): read from the index
        # alone, 1M answers count in under a second (bench/digest.py).
        Index(
            "ix_answers_kind_question_option",
            "kind", "question", "option", "system", "refers_to", "created_at",
        ),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The unique (participant_id, key) constraint also serves lookups by participant.
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    question: Mapped[str] = mapped_column(String(16), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    option: Mapped[str | None] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    system: Mapped[str | None] = mapped_column(String(16))
    refers_to: Mapped[str | None] = mapped_column(String(64))
    consultation_version: Mapped[str] = mapped_column(String(16))
    update_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    participant: Mapped[Participant] = relationship(back_populates="answers")


class ProcessedUpdate(Base):
    """An update already applied: a redelivered one is recognised and changes nothing."""

    __tablename__ = "processed_updates"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    processed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ConsultationVersion(Base):
    """Every version of the consultation file that ran, so that answers to a question that
    was later removed or reworded can still be labelled in exports."""

    __tablename__ = "consultation_versions"

    version: Mapped[str] = mapped_column(String(16), primary_key=True)
    consultation_id: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Invitation(Base):
    """A municipal contact's personal invitation. Only a hash of the token is kept: a
    database leak does not leak working links."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    institution: Mapped[str] = mapped_column(String(200))
    comuna: Mapped[str] = mapped_column(String(32), index=True)
    contact: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64), index=True)
    """The account (channel external id) that opened the link first: it is single use."""
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("participants.id", ondelete="SET NULL"), index=True
    )
    reminders_opt_out: Mapped[bool] = mapped_column(default=False)
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """When its contact erased their data (/borrar): name, institution and contact are blank
    since, its reminders gone and its link unusable; it still counts as an invitation."""

    participant: Mapped[Participant | None] = relationship()
    reminders: Mapped[list[Reminder]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="Reminder.seq"
    )


class BadToken(Base):
    """An invitation token that did not open anything, tried by an account: what throttles
    guessing (bot.services.conversation.BadTokenThrottle), in the database so that every
    replica counts the same tries and a restart forgets none. Kept only for the throttle's
    window, and erased with the account (/borrar)."""

    __tablename__ = "bad_tokens"
    __table_args__ = (Index("ix_bad_tokens_account", "channel", "external_id", "tried_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    tried_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ScheduledJob(Base):
    """A scheduled job's next run time, by id (bot.services.jobs): a new leader, or the
    process after a restart, runs a missed job once at start. Only data: the job itself
    (what it runs, its schedule) is rebuilt by the code, so nobody who can write to the
    database can make the scheduler run anything else (APScheduler's own database store
    keeps pickles)."""

    __tablename__ = "scheduled_jobs"

    job_id: Mapped[str] = mapped_column(String(191), primary_key=True)
    next_run_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Reminder(Base):
    """A reminder sent to an invited contact; (invitation, seq) is unique, so a reminder
    can never be sent twice, even by two processes."""

    __tablename__ = "reminders"
    __table_args__ = (UniqueConstraint("invitation_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("invitations.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DigestRun(Base):
    """A scheduled digest period already delivered: a period is never sent twice, and the
    next digest counts what is new since ``until``."""

    __tablename__ = "digest_runs"

    period: Mapped[str] = mapped_column(String(32), primary_key=True)
    until: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Closing(Base):
    """The consultation closed by an organiser (``consulta close``): from ``closes_at`` on,
    no answer is taken and every participant gets the final summary once."""

    __tablename__ = "closings"

    consultation_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    closes_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)


class FinalSummary(Base):
    """The final summary sent to a participant: claimed before it is sent, so never twice."""

    __tablename__ = "final_summaries"

    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
