"""One event of one participant, applied durably: claim the update, load the state, run the
engine, store records and state, all in one transaction. Channel-neutral: the Telegram
handlers and the terminal rehearsal (``consulta chat``) both go through here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

import storage
from flows import Definition, Step, step
from flows.events import Event

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
"""How often a step is re-applied when another process changed the same participant."""


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Conversation:
    """Applies participants' events to the consultation, one transaction per event."""

    definition: Definition
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime] = utcnow
    codes: Callable[[], str] = storage.new_code
    channel: str = "telegram"

    def remember_version(self) -> None:
        """Store this consultation version's text (once), for labelling old answers later."""
        with self.sessions.begin() as session:
            storage.remember_version(session, self.definition, self.clock())

    def handle(self, external_id: str, event: Event, update_id: int | None = None) -> Step | None:
        """Apply ``event``; None when ``update_id`` was already applied (a redelivery).

        The replies in the returned step are to be sent after this returns, i.e. after the
        commit: a crash before sending loses a reply, never an answer.
        """
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self.sessions.begin() as session:
                    return self._apply(session, external_id, event, update_id)
            except StaleDataError:
                # Another process saved this participant in between: re-apply on its state.
                log.info("concurrent update of participant, retrying (attempt %d)", attempt)
        raise RuntimeError(f"participant state kept changing under us ({MAX_ATTEMPTS} attempts)")

    def _apply(
        self, session: Session, external_id: str, event: Event, update_id: int | None
    ) -> Step | None:
        now = self.clock()
        if update_id is not None and not storage.claim_update(
            session, self.channel, update_id, now
        ):
            return None
        loaded = storage.load(session, self.channel, external_id)
        result = step(self.definition, loaded.state, event)
        storage.save(
            session, self.channel, external_id, loaded, result,
            now=now, update_id=update_id, codes=self.codes,
        )  # fmt: skip
        return result

    def mark_unreachable(self, external_id: str) -> bool:
        """Note that the participant cannot be reached; True the first time (log it then)."""
        with self.sessions.begin() as session:
            return storage.mark_unreachable(session, self.channel, external_id, self.clock())
