"""What goes into the engine (events), and what comes out (replies and records).

All of these are small frozen dataclasses, free of any channel: the Telegram adapter and the
terminal rehearsal both translate their input into these and deliver the replies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, dataclass_transform


# Some twenty kinds here and as many buttons (flows.buttons), all alike: declared as
# ``class Text(Frozen)``, each is made a frozen dataclass; ``frozen_default`` tells type
# checkers as much.
@dataclass_transform(frozen_default=True)
class Frozen:
    """Base of every event, reply and record, and of the buttons' data: a frozen dataclass."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclass(frozen=True)(cls)


# --- Events: what the participant did ---------------------------------------------------------


class Start(Frozen):
    """The participant opened the conversation, e.g. ``/start`` or ``/start <payload>``."""

    payload: str = ""


class Text(Frozen):
    """A plain text message, e.g. ``Text("Más intercambio con San Juan")``."""

    text: str


class Choice(Frozen):
    """A button was pressed; ``data`` is the button's data, e.g. ``Choice("o:q1:peru")``.

    It may come from an old message or be forged: the engine checks it against the step.
    """

    data: str


class Command(Frozen):
    """A command other than start, e.g. ``Command("revisar")``; unknown names are answered."""

    name: str
    args: str = ""


class Unsupported(Frozen):
    """Something the consultation cannot take: ``Unsupported("photo")``, ``"sticker"``..."""

    kind: str


class Edited(Frozen):
    """The participant edited a message they had sent; answers are changed with /revisar."""


Event = Start | Text | Choice | Command | Unsupported | Edited


class Invited(Frozen):
    """A valid personal invitation of a municipal contact (checked by the caller)."""

    invitation_id: int
    token: str
    name: str
    institution: str
    comuna: str


InviteVerdict = Literal["ok", "unknown", "expired", "revoked", "erased", "used", "throttled"]


class InviteCheck(Frozen):
    """What the caller found for an invitation token that came with an event: ``/start
    <token>`` or the consent button of an invitation. ``invited`` is set when ``ok``."""

    verdict: InviteVerdict
    invited: Invited | None = None


# --- Replies: what to send back -------------------------------------------------------------


class Button(Frozen):
    """A button: ``Button("Sí", "c:yes")``. ``data`` is at most 64 bytes."""

    label: str
    data: str


class Reply(Frozen):
    """A message to the participant, plain text (never markup), with rows of buttons.

    ``replace`` asks the channel to update the message whose button was pressed instead of
    sending a new one (used when toggling options), where the channel can. ``alone`` marks a
    message that such an update may later rewrite: the engine joins no other reply to it.
    """

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    replace: bool = False
    alone: bool = False


# --- Records: facts to store ----------------------------------------------------------------

AnswerKind = Literal["acuerdo", "deseable", "posible"]


class Answer(Frozen):
    """One stored answer.

    ``key`` is unique per participant and stable: ``"q1.o.peru"`` for a chosen option,
    ``"q1.t3"`` for the third free-text change, ``"a"`` for the agreement question,
    ``"q5.q1.t3"`` for the feasibility of change ``q1.t3`` (``refers_to``).
    """

    key: str
    question: str
    kind: AnswerKind
    version: str
    option: str | None = None
    text: str | None = None
    system: str | None = None
    refers_to: str | None = None


class ConsentGiven(Frozen):
    """The participant accepted to take part: from now on their answers are stored."""


class ConsentDeclined(Frozen):
    """The participant declined: only the fact is kept, so that they are not asked again."""


class ProfileSet(Frozen):
    """``ProfileSet("comuna", "ovalle")``; ``value`` None means skipped."""

    field: Literal["comuna", "age_band", "gender"]
    value: str | None


class AnswerRecorded(Frozen):
    """An answer was given or changed; ``previous`` is what it replaced, if anything."""

    answer: Answer
    previous: Answer | None = None


class AnswerRemoved(Frozen):
    """An answer was deleted by the participant (``/revisar`` → eliminar)."""

    previous: Answer


class InvitationAccepted(Frozen):
    """The participant consented through their invitation (or upgraded to it): from now on
    they answer for their comuna, with the role ``municipal``."""

    invitation_id: int


class Finished(Frozen):
    """The participant reached the end of the consultation (possibly again)."""


class ParticipantErased(Frozen):
    """``/borrar`` confirmed: everything about the participant must be deleted."""


Record = (
    ConsentGiven
    | ConsentDeclined
    | ProfileSet
    | AnswerRecorded
    | AnswerRemoved
    | InvitationAccepted
    | Finished
    | ParticipantErased
)
