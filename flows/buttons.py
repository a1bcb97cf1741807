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
from dataclasses import MISSING, fields
from typing import Any, ClassVar, Literal

from flows.events import Frozen

MAX_DATA = 64
"""Telegram's limit on a button's callback data, in bytes."""

KINDS: dict[str, type[ButtonData]] = {}
"""Every kind by its prefix, in the order declared; filled as each kind is declared."""


# The kinds are many and small: declared as ``class Comuna(ButtonData, prefix="cm")``, each is
# made a frozen dataclass (by ``Frozen``) and registered by its prefix here, so no kind can be
# left out of ``KINDS`` or share a prefix with another.
class ButtonData(Frozen):
    """Base of every button kind: ``prefix`` then the fields, separated by ``:``.

    Fields are strings (without ``:``) or booleans (``y``/``n``); trailing fields that have
    a default may be left out of the data.
    """

    prefix: ClassVar[str]
    layout: ClassVar[tuple[tuple[str, bool], ...]]
    """Each field's name and whether it is a flag (a bool), in order."""
    required: ClassVar[int]
    """How many fields come first without a default."""

    def __init_subclass__(cls, prefix: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)  # now a dataclass: its fields can be read
        if prefix is None:
            return  # a base that only shares fields between kinds, not a kind itself
        if prefix in KINDS:
            raise TypeError(f"{cls.__name__}: prefix {prefix!r} is {KINDS[prefix].__name__}'s")
        declared = fields(cls)
        cls.prefix = prefix
        cls.layout = tuple((f.name, f.type in ("bool", bool)) for f in declared)
        cls.required = sum(
            1 for f in declared if f.default is MISSING and f.default_factory is MISSING
        )
        KINDS[prefix] = cls

    def encode(self) -> str:
        return _encoded(self)


@functools.lru_cache(maxsize=4096)
def _encoded(button: ButtonData) -> str:
    """``button``'s callback data, kept: buttons are immutable, and the same few hundred are
    offered to every participant (making them was a fifth of the engine's time)."""
    parts = [button.prefix]
    for name, is_flag in button.layout:
        value = getattr(button, name)
        if is_flag:
            parts.append("y" if value else "n")
        else:
            if ":" in value:
                raise ValueError(f"{type(button).__name__}.{name} may not hold ':': {value!r}")
            parts.append(value)
    while len(parts) > 1 + button.required and parts[-1] == "":
        parts.pop()  # an empty optional field: "c:y", not "c:y:"
    data = ":".join(parts)
    if len(data.encode("utf-8")) > MAX_DATA:
        raise ValueError(f"callback data longer than {MAX_DATA} bytes: {data!r}")
    return data


class _OnQuestion(ButtonData):
    """The kinds about one question of the consultation: its id comes first."""

    question: str


class _Option(_OnQuestion):
    """The kinds that pick an option of a question: the option's id comes second."""

    option: str


class _OnAnswer(ButtonData):
    """The kinds about one stored answer (a change, mostly): its key comes first."""

    key: str


# --- before consent, and the reminders -------------------------------------------------------


class Consent(ButtonData, prefix="c"):
    """Accept (with an invitation's token, if any) or decline taking part."""

    accept: bool
    token: str = ""


class StopReminders(ButtonData, prefix="nr"):
    """ "No recordarme más" under a reminder."""


# --- the profile -----------------------------------------------------------------------------


class Province(ButtonData, prefix="pv"):
    """A province (its comunas come next); ``province`` empty: back to the provinces."""

    province: str = ""


class ProfileOption(ButtonData):
    """The kinds that pick an option of a profile field, by its id; ``profile_field`` says
    which field (and which attribute of the state) it sets."""

    profile_field: ClassVar[Literal["comuna", "age_band", "gender"]]
    option: str


class Comuna(ProfileOption, prefix="cm"):
    profile_field = "comuna"


class AgeBand(ProfileOption, prefix="ab"):
    profile_field = "age_band"


class Gender(ProfileOption, prefix="gd"):
    profile_field = "gender"


# --- answering ------------------------------------------------------------------------------


class Skip(ButtonData, prefix="s"):
    """Leave the step ``step`` (about ``target``) without answering it."""

    step: str
    target: str


class Agree(_Option, prefix="ag"):
    """An option of an agreement question."""


class Facts(_OnQuestion, prefix="dt"):
    """«Datos del taller»: the context cards of ``question``."""


class ReasonStill(_OnQuestion, prefix="rz"):
    """After a changed agreement: does the reason given before still hold?"""

    keep: bool


class Toggle(_Option, prefix="o"):
    """An option of a desirable question, chosen or unchosen."""


class Next(_OnQuestion, prefix="n"):
    """ "Siguiente pregunta": done with ``question``."""


class SaveText(_OnQuestion, prefix="ks"):
    """Whether the text just typed (kept in the state) is stored as a new change."""

    save: bool


class System(_OnAnswer, prefix="sy"):
    """Tag the change ``key`` with a system of the regional strategy."""

    system: str


class Judge(_OnAnswer, prefix="f"):
    """Mark the change ``key`` with the verdict ``option`` (possible or not)."""

    option: str


class Done(_OnQuestion, prefix="ok"):
    """ "Listo": the changes of the feasibility question are all marked."""


# --- overlays: /menu, /revisar, /borrar --------------------------------------------------------


class Close(ButtonData, prefix="x"):
    """Close the overlay (/menu, /revisar, /borrar) and resume the step it covered."""


class GoTo(_OnQuestion, prefix="mn"):
    """A question of /menu."""


class ReviewItem(_OnAnswer, prefix="rv"):
    """Open the answer ``key`` of /revisar's list (also «No» to deleting it)."""


class ReviewBack(ButtonData, prefix="rb"):
    """Back to /revisar's list."""


class ReviewEdit(_OnAnswer, prefix="re"):
    """Type the text of the answer ``key`` anew."""


class ReviewGoTo(_OnAnswer, prefix="rg"):
    """Go back to the question of the answer ``key``, to answer it again."""


class ReviewDelete(_OnAnswer, prefix="rd"):
    """Delete the answer ``key``; ``confirmed`` once the participant said yes."""

    confirmed: bool = False


class ProfileEdit(ButtonData, prefix="pe"):
    """A field of the profile, from /revisar: ``place``, ``age_band`` or ``gender``."""

    field: str


class Erase(ButtonData, prefix="bz"):
    """/borrar's confirmation."""

    confirmed: bool


def decode(data: str) -> ButtonData | None:
    """The button that ``data`` encodes; None when it is not one of ours."""
    if len(data.encode("utf-8")) > MAX_DATA:
        return None
    prefix, *values = data.split(":")
    cls = KINDS.get(prefix)
    if cls is None:
        return None
    declared = cls.layout
    if not cls.required <= len(values) <= len(declared):
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
