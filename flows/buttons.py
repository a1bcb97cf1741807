"""The button grammar: what a button's callback data says, encoded and decoded in one place.

Each kind of button is a small frozen dataclass with a short, stable prefix: ``Agree("a",
"de_acuerdo").encode() == "ag:a:de_acuerdo"`` and ``decode("ag:a:de_acuerdo")`` gives it
back. Data that is not a button of ours (forged, cut, from an older grammar) decodes to None,
so the engine answers it politely. The wire format is the one buttons already sent use, so a
button still on a participant's screen keeps working while it is current; a button that is no
longer offered is refused as stale by the engine, whatever its kind.

Telegram allows 64 bytes of callback data: ids are at most 16 characters (``flows.schema``)
and answer keys about 30, so every button fits; ``encode`` checks it all the same.
"""

from __future__ import annotations

import functools
from dataclasses import MISSING, dataclass, fields
from typing import ClassVar, Literal

MAX_DATA = 64
"""Telegram's limit on a button's callback data, in bytes."""


@dataclass(frozen=True)
class ButtonData:
    """Base of every button kind: ``prefix`` then the fields, separated by ``:``.

    Fields are strings (without ``:``) or booleans (``y``/``n``); trailing fields that have
    a default may be left out of the data.
    """

    prefix: ClassVar[str]

    def encode(self) -> str:
        parts = [self.prefix]
        for name, is_flag in _fields_of(type(self)):
            value = getattr(self, name)
            if is_flag:
                parts.append("y" if value else "n")
            else:
                if ":" in value:
                    raise ValueError(f"{type(self).__name__}.{name} may not hold ':': {value!r}")
                parts.append(value)
        while len(parts) > 1 + _required(type(self)) and parts[-1] == "":
            parts.pop()  # an empty optional field: "c:y", not "c:y:"
        data = ":".join(parts)
        if len(data.encode("utf-8")) > MAX_DATA:
            raise ValueError(f"callback data longer than {MAX_DATA} bytes: {data!r}")
        return data


def _fields_of(cls: type[ButtonData]) -> tuple[tuple[str, bool], ...]:
    """Each field's name and whether it is a flag (a bool)."""
    return _layout(cls.prefix)[0]


def _required(cls: type[ButtonData]) -> int:
    """How many fields come first without a default."""
    return _layout(cls.prefix)[1]


@functools.cache
def _layout(prefix: str) -> tuple[tuple[tuple[str, bool], ...], int]:
    """Read once per kind (by its prefix, a kind's key in ``KINDS``): buttons are made for
    every reply."""
    declared = fields(KINDS[prefix])
    required = sum(1 for f in declared if f.default is MISSING and f.default_factory is MISSING)
    return tuple((f.name, f.type in ("bool", bool)) for f in declared), required


# --- before consent, and the reminders -------------------------------------------------------


@dataclass(frozen=True)
class Consent(ButtonData):
    """Accept (with an invitation's token, if any) or decline taking part."""

    prefix = "c"
    accept: bool
    token: str = ""


@dataclass(frozen=True)
class StopReminders(ButtonData):
    """ "No recordarme más" under a reminder."""

    prefix = "nr"


# --- the profile -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Province(ButtonData):
    """A province (its comunas come next); ``province`` empty: back to the provinces."""

    prefix = "pv"
    province: str = ""


@dataclass(frozen=True)
class Comuna(ButtonData):
    prefix = "cm"
    comuna: str


@dataclass(frozen=True)
class AgeBand(ButtonData):
    prefix = "ab"
    band: str


@dataclass(frozen=True)
class Gender(ButtonData):
    prefix = "gd"
    gender: str


# --- answering ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Skip(ButtonData):
    """Leave the step ``step`` (about ``target``) without answering it."""

    prefix = "s"
    step: str
    target: str


@dataclass(frozen=True)
class Agree(ButtonData):
    """An option of an agreement question."""

    prefix = "ag"
    question: str
    option: str


@dataclass(frozen=True)
class Facts(ButtonData):
    """«Datos del taller»: the context cards of ``question``."""

    prefix = "dt"
    question: str


@dataclass(frozen=True)
class ReasonStill(ButtonData):
    """After a changed agreement: does the reason given before still hold?"""

    prefix = "rz"
    question: str
    keep: bool


@dataclass(frozen=True)
class Toggle(ButtonData):
    """An option of a desirable question, chosen or unchosen."""

    prefix = "o"
    question: str
    option: str


@dataclass(frozen=True)
class Next(ButtonData):
    """ "Siguiente pregunta": done with ``question``."""

    prefix = "n"
    question: str


@dataclass(frozen=True)
class SaveText(ButtonData):
    """Whether the text just typed (kept in the state) is stored as a new change."""

    prefix = "ks"
    question: str
    save: bool


@dataclass(frozen=True)
class System(ButtonData):
    """Tag the change ``key`` with a system of the regional strategy."""

    prefix = "sy"
    key: str
    system: str


@dataclass(frozen=True)
class Judge(ButtonData):
    """Mark the change ``key`` with the verdict ``option`` (possible or not)."""

    prefix = "f"
    key: str
    option: str


@dataclass(frozen=True)
class Done(ButtonData):
    """ "Listo": the changes of the feasibility question are all marked."""

    prefix = "ok"
    question: str


# --- overlays: /menu, /revisar, /borrar --------------------------------------------------------


@dataclass(frozen=True)
class Close(ButtonData):
    prefix = "x"


@dataclass(frozen=True)
class GoTo(ButtonData):
    """A question of /menu."""

    prefix = "mn"
    question: str


@dataclass(frozen=True)
class ReviewItem(ButtonData):
    prefix = "rv"
    key: str


@dataclass(frozen=True)
class ReviewBack(ButtonData):
    prefix = "rb"


@dataclass(frozen=True)
class ReviewEdit(ButtonData):
    prefix = "re"
    key: str


@dataclass(frozen=True)
class ReviewGoTo(ButtonData):
    prefix = "rg"
    key: str


@dataclass(frozen=True)
class ReviewDelete(ButtonData):
    """Delete the answer ``key``; ``confirmed`` once the participant said yes."""

    prefix = "rd"
    key: str
    confirmed: bool = False


@dataclass(frozen=True)
class ProfileEdit(ButtonData):
    """A field of the profile, from /revisar: ``place``, ``age_band`` or ``gender``."""

    prefix = "pe"
    field: str


@dataclass(frozen=True)
class Erase(ButtonData):
    """/borrar's confirmation."""

    prefix = "bz"
    confirmed: bool


KINDS: dict[str, type[ButtonData]] = {
    cls.prefix: cls
    for cls in (
        Consent, StopReminders, Province, Comuna, AgeBand, Gender, Skip, Agree, Facts, ReasonStill,
        Toggle, Next, SaveText, System, Judge, Done, Close, GoTo, ReviewItem,
        ReviewBack, ReviewEdit, ReviewGoTo, ReviewDelete, ProfileEdit, Erase,
    )
}  # fmt: skip


def decode(data: str) -> ButtonData | None:
    """The button that ``data`` encodes; None when it is not one of ours."""
    if len(data.encode("utf-8")) > MAX_DATA:
        return None
    prefix, *values = data.split(":")
    cls = KINDS.get(prefix)
    if cls is None:
        return None
    declared = _fields_of(cls)
    if not _required(cls) <= len(values) <= len(declared):
        return None
    kwargs: dict[str, str | bool] = {}
    for (name, is_flag), value in zip(declared, values, strict=False):
        if is_flag:
            if value not in ("y", "n"):
                return None
            kwargs[name] = value == "y"
        else:
            kwargs[name] = value
    button = cls(**kwargs)
    return button if button.encode() == data else None  # one spelling per button


def role(data: str) -> Literal["yes", "no", "done"] | None:
    """What a button means beside its label, for typed answers: "sí" presses a yes button,
    "no" a no button, "listo" a done button."""
    match decode(data):
        case (
            Consent(accept=yes) | SaveText(save=yes) | ReasonStill(keep=yes) | Erase(confirmed=yes)
        ):
            return "yes" if yes else "no"
        case ReviewDelete(confirmed=True):
            return "yes"
        case Next() | Done():
            return "done"
    return None
