"""One event of one participant, applied durably: claim the update, load the state, run the
engine, store records and state, all in one transaction. Channel-neutral: the Telegram
handlers and the terminal rehearsal (``consulta chat``) both go through here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker

import storage
from bot.services.closing_time import ClosingTime, last_day
from flows import Definition, Step, buttons, step
from flows.events import Choice, Event, InviteCheck, Invited, Start
from storage import invitations
from storage.errors import Conflict

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
"""How often a step is re-applied when another process changed the same participant."""
SERVER_CONNECTIONS = 8
"""Transactions on the event loop at once (the asyncio engine's pool; more wait for one)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _token_of(event: Event) -> str | None:
    """The invitation token carried by ``/start <token>`` or an invitation's consent button."""
    if isinstance(event, Start) and event.payload:
        return event.payload
    pressed = buttons.decode(event.data) if isinstance(event, Choice) else None
    if isinstance(pressed, buttons.Consent) and pressed.accept and pressed.token:
        return pressed.token
    return None


def _retry_or_raise(exc: Exception, attempt: int) -> None:
    """Return if the transaction that raised ``exc`` is to be run again; re-raise if not."""
    if isinstance(exc, Conflict):
        # Another process saved this participant (or took this invitation) in between:
        # re-apply the event on the new state.
        log.info("concurrent update, re-applying (attempt %d)", attempt)
    elif isinstance(exc, DBAPIError) and exc.connection_invalidated:
        # A pooled connection had died (database restarted): SQLAlchemy has discarded the
        # pool; the transaction did not happen, so run it again.
        log.warning("database connection lost (%s); retrying", exc.orig)
    else:
        raise exc


def _kept_changing() -> RuntimeError:
    return RuntimeError(f"participant state kept changing under us ({MAX_ATTEMPTS} attempts)")


@dataclass(frozen=True)
class BadTokenThrottle:
    """At most ``limit`` bad invitation tokens per account per ``window``: guessing
    tokens is hopeless (192 bits) but should also be slow and visible in the logs. The tries
    are kept in the database (storage.invitations.note_bad_token), in the transaction of the
    update that brought them: every replica counts the same ones, a restart forgets none,
    and they are pruned once out of the window (bot.services.housekeeping)."""

    limit: int = 5
    window: timedelta = timedelta(minutes=15)

    def note(self, session: Session, channel: str, external_id: str, now: datetime) -> None:
        invitations.note_bad_token(session, channel, external_id, now)
        if invitations.bad_tokens_since(session, channel, external_id, now - self.window) == (
            self.limit
        ):
            log.warning("an account tried %d bad invitation tokens", self.limit)

    def blocked(self, session: Session, channel: str, external_id: str, now: datetime) -> bool:
        since = now - self.window
        return invitations.bad_tokens_since(session, channel, external_id, since) >= self.limit


@dataclass
class Conversation:
    """Applies participants' events to the consultation, one transaction per event."""

    definition: Definition
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime] = utcnow
    codes: Callable[[], str] = storage.new_code
    channel: str = "telegram"
    throttle: BadTokenThrottle = field(default_factory=lambda: BadTokenThrottle())
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("America/Santiago"))
    closing: ClosingTime = field(init=False)
    _server: async_sessionmaker[AsyncSession] | None = field(init=False, default=None)
    """On a database server, ``apply`` runs each transaction on the event loop through
    SQLAlchemy's asyncio engine (psycopg's ``AsyncConnection``), made at first use and closed
    by ``aclose``: a transaction mostly waits for round trips, and a worker thread would
    have to win the GIL back from the busy event loop after each one (measured by
    ``python -m bench.updates --database-url ...``). SQLite's work is all CPU in this
    process: it stays synchronous."""

    _server_bind: Engine | None = field(init=False, default=None)
    """The database server behind ``sessions``; None on SQLite."""

    def __post_init__(self) -> None:
        self.closing = ClosingTime(self.definition, self.zone)
        bind = self.sessions.kw.get("bind")
        if bind is not None and bind.dialect.name != "sqlite":
            self._server_bind = bind

    def remember_version(self) -> None:
        """Store this consultation version's text (once), for labelling old answers later."""
        with self.sessions.begin() as session:
            storage.remember_version(session, self.definition, self.clock())

    async def apply(
        self, external_id: str, event: Event, update_id: int | None = None
    ) -> Step | None:
        """``apply_sync`` from the event loop, without blocking it on a database server."""
        server = self._server_sessions()
        if server is None:
            return self.apply_sync(external_id, event, update_id)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                async with server.begin() as session:
                    return await session.run_sync(self._apply, external_id, event, update_id)
            except (Conflict, DBAPIError) as exc:
                _retry_or_raise(exc, attempt)
        raise _kept_changing()

    async def aclose(self) -> None:
        """Close the database server connections that ``apply`` opened, if any."""
        server, self._server = self._server, None
        if server is not None:
            await server.kw["bind"].dispose()

    def _server_sessions(self) -> async_sessionmaker[AsyncSession] | None:
        if self._server is None and self._server_bind is not None:
            engine = storage.make_async_engine(self._server_bind, connections=SERVER_CONNECTIONS)
            self._server = async_sessionmaker(engine, expire_on_commit=False)
        return self._server

    def apply_sync(
        self, external_id: str, event: Event, update_id: int | None = None
    ) -> Step | None:
        """Apply ``event``, blocking until it is committed (for code outside the event loop:
        the command line, the demo, tests; ``apply`` is the same from the event loop). None
        when ``update_id`` was already applied (a redelivery).

        The replies in the returned step are to be sent after this returns, i.e. after the
        commit: a crash before sending loses a reply, never an answer.
        """
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self.sessions.begin() as session:
                    return self._apply(session, external_id, event, update_id)
            except (Conflict, DBAPIError) as exc:
                _retry_or_raise(exc, attempt)
        raise _kept_changing()

    def _apply(
        self, session: Session, external_id: str, event: Event, update_id: int | None
    ) -> Step | None:
        now = self.clock()
        if update_id is None:
            loaded = storage.load(session, self.channel, external_id)
        else:
            claimed = storage.claim_and_load(session, self.channel, external_id, update_id, now)
            if claimed is None:
                return None  # applied before: a redelivery
            loaded = claimed
        closed = self.closing.closed(session, now)
        closed_on = last_day(closed, self.zone) if closed is not None else None
        invite = self._check_invite(session, external_id, event, now) if closed is None else None
        result = step(self.definition, loaded.state, event, invite, closed_on)
        storage.save(
            session, self.channel, external_id, loaded, result,
            now=now, update_id=update_id, codes=self.codes,
        )  # fmt: skip
        return result

    def _check_invite(
        self, session: Session, external_id: str, event: Event, now: datetime
    ) -> InviteCheck | None:
        """Check the invitation token that came with the event, if any."""
        token = _token_of(event)
        if token is None:
            return None
        if self.throttle.blocked(session, self.channel, external_id, now):
            return InviteCheck("throttled")
        invitation = invitations.find(session, token)
        verdict = invitations.check(invitation, external_id, now)
        if verdict != "ok" or invitation is None:
            if verdict in ("unknown", "revoked", "expired"):
                self.throttle.note(session, self.channel, external_id, now)
            return InviteCheck(verdict)
        invited = Invited(invitation.id, token, invitation.name, invitation.institution,
                          invitation.comuna)  # fmt: skip
        return InviteCheck("ok", invited)

    def claim(self, update_id: int) -> bool:
        """Record ``update_id`` as processed, for a handler that changes nothing else (a
        report, a refusal); False if it was already (a redelivered batch: do not answer
        again). Handlers that change something claim in the transaction of their change."""
        with self.sessions.begin() as session:
            return storage.claim_update(session, self.channel, update_id, self.clock())

    def mark_unreachable(self, external_id: str) -> bool:
        """Note that the participant cannot be reached; True the first time (log it then)."""
        with self.sessions.begin() as session:
            return storage.mark_unreachable(session, self.channel, external_id, self.clock())
