"""When the consultation closes, and what a closed consultation still takes.

The closing time is the earlier of the file's ``closes_on`` (the end of that day in the
consultation's time zone) and a closing recorded by ``consulta close``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from flows import Definition, buttons
from flows.events import Choice, Command, Event, Reply
from storage import closing

CHECK_EVERY = timedelta(seconds=30)
"""How stale this process's knowledge of a ``consulta close`` run elsewhere may be."""
STILL_OPEN_TO = frozenset({"privacidad", "borrar", "ayuda", "resultados", "no_avisar"})
"""Commands a participant keeps after the closing: their data stays theirs."""


def file_closing(definition: Definition, zone: ZoneInfo) -> datetime | None:
    """The end of the file's ``closes_on`` day in ``zone``, if the file has one."""
    day = definition.consultation.closes_on
    if day is None:
        return None
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)


@dataclass
class ClosingTime:
    """When the consultation closes, as this process knows it: re-read from the database at
    most every ``CHECK_EVERY``, so checking it on every update costs nothing."""

    definition: Definition
    zone: ZoneInfo
    _checked: datetime | None = field(default=None, init=False)
    _recorded: datetime | None = field(default=None, init=False)

    def at(self, session: Session, now: datetime) -> datetime | None:
        if self._recorded is None and (self._checked is None or now - self._checked >= CHECK_EVERY):
            self._recorded = closing.closes_at(session, self.definition.consultation.id)
            self._checked = now
        found = [t for t in (file_closing(self.definition, self.zone), self._recorded) if t]
        return min(found) if found else None

    def closed(self, session: Session, now: datetime) -> datetime | None:
        """The closing time if it has passed, else None."""
        moment = self.at(session, now)
        return moment if moment is not None and moment <= now else None


def still_allowed(event: Event) -> bool:
    """Whether a closed consultation still takes ``event``: a participant can read the
    privacy notice and erase their data (with its confirmation button), never answer."""
    if isinstance(event, Command):
        return event.name in STILL_OPEN_TO
    return isinstance(event, Choice) and isinstance(buttons.decode(event.data), buttons.Erase)


def closed_reply(definition: Definition, moment: datetime, zone: ZoneInfo) -> Reply:
    text = definition.messages.consultation_closed.format(
        title=definition.consultation.title, date=f"{moment.astimezone(zone):%d-%m-%Y}"
    )
    return Reply(text)
