"""When the consultation closes: the earlier of the file's ``closes_on`` (the end of that
day in the consultation's time zone) and a closing recorded by ``consulta close``.

What a closed consultation still takes is the engine's rule (``flows.step``'s ``closed_on``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from flows import Definition
from storage import closing

CHECK_EVERY = timedelta(seconds=30)
"""How stale this process's knowledge of a ``consulta close`` run elsewhere may be."""


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


def last_day(moment: datetime, zone: ZoneInfo) -> date:
    """The last day the consultation was open, in ``zone``: a closing at midnight (the end
    of the file's ``closes_on``) ends the day before."""
    return (moment - timedelta(microseconds=1)).astimezone(zone).date()
