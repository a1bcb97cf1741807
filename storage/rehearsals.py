"""Rehearsal participants: people who tried the consultation in a terminal (``consulta
chat``). They are stored like everyone else, so a rehearsal shows the real thing, but the
figures of the consultation (digests, exports, /resultados, the finished threshold) leave
them out unless asked to count them."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select, true

from storage.models import Answer, Participant

CHANNEL = "terminal"
"""The channel of ``consulta chat``: every participant of it is a rehearsal."""


def participants_counted(rehearsals: bool = False) -> ColumnElement[bool]:
    """A condition on ``Participant``: the ones the consultation's figures count."""
    return true() if rehearsals else Participant.channel != CHANNEL


def answers_counted(rehearsals: bool = False) -> ColumnElement[bool]:
    """A condition on ``Answer``: those of counted participants (rehearsals are few, so
    the list of their ids is short)."""
    if rehearsals:
        return true()
    rehearsing = select(Participant.id).where(Participant.channel == CHANNEL)
    return Answer.participant_id.not_in(rehearsing)
