"""The consultation file's schema: what a consultation is, validated when it is read.

A consultation file is YAML (see ``flows/coquimbo2020.yaml``). Everything a participant reads
about the consultation lives in it; generic interface texts live in ``flows/messages_es.yaml``
and a file may override any of them under ``messages:``.

Ids are short lowercase strings because they travel in Telegram callback data (64 bytes at
most) and are stored with every answer: they must stay stable while the texts change.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from flows.matching import fold

Id = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,16}$")]
"""A stable identifier: lowercase letters, digits and '_', at most 16 characters."""

ButtonLabel = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
MessageText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=700)]
"""Whatever is sent as one message must be readable on a phone: 700 characters at most."""

QuestionKind = Literal["agreement", "desirable", "feasibility"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(_Strict):
    """One choice offered as a button."""

    id: Id
    label: ButtonLabel


class Province(_Strict):
    """A group of comunas, shown as one button before its comunas."""

    id: Id
    label: ButtonLabel
    comunas: list[Option] = Field(min_length=1)


class Profile(_Strict):
    """The short, skippable profile asked after consent."""

    provinces: list[Province] = Field(min_length=1)
    outside: Option
    age_bands: list[Option] = Field(min_length=1)
    genders: list[Option] = Field(min_length=1)

    def comunas(self) -> list[Option]:
        """Every comuna of every province, in file order, then the 'outside' option."""
        return [c for p in self.provinces for c in p.comunas] + [self.outside]

    def find_comuna(self, text: str) -> str | None:
        """The id of the comuna named (or identified) by ``text``, ignoring case and accents."""
        wanted = fold(text)
        return next((c.id for c in self.comunas() if wanted in (fold(c.label), c.id)), None)

    def province_of(self, comuna_id: str) -> Province | None:
        return next((p for p in self.provinces if any(c.id == comuna_id for c in p.comunas)), None)


class Question(_Strict):
    """One debate question.

    - ``agreement``: one choice among ``options``, then an optional reason in free text.
    - ``desirable``: any number of ``options`` plus free-text changes, each taggable with a
      system of the regional strategy.
    - ``feasibility``: every desirable change the participant gave, marked possible (the
      first of ``options``) or not (the last), then, once, what would make them possible.
    """

    id: Id
    number: Annotated[str, StringConstraints(min_length=1, max_length=3)]
    kind: QuestionKind
    title: ButtonLabel
    text: ShortText
    prompts: list[ShortText] = []
    note: MessageText | None = None
    """Under the sub-questions: a one-line definition of a term they use first."""
    intro: MessageText | None = None
    """Shown before the question when it is entered (the debate's theme, before A)."""
    context: list[MessageText] = []
    """Figures for the question, one message each (a single text is one card), shown when
    the participant taps «Datos del taller»: on a phone they are optional reading."""
    options: list[Option] = []
    follow_up: ShortText | None = None
    """Agreement: the reason prompt. Feasibility: 'what would make it possible?', asked once."""

    @field_validator("context", mode="before")
    @classmethod
    def _one_card(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class Term(_Strict):
    """A word of the glossary (/glosario)."""

    term: ButtonLabel
    definition: ShortText


class Consultation(_Strict):
    """A whole consultation, as read from its file."""

    schema_version: Literal[1]
    id: Id
    title: ShortText
    organiser: ShortText
    welcome: MessageText
    consent: MessageText
    privacy: MessageText
    thanks: MessageText
    minors: MessageText | None = None
    """What applies to participants under 18: shown at the age step (and said in privacy)."""
    systems_intro: MessageText | None = None
    """The systems explained, shown the first time a change is tagged with one."""
    glossary: list[Term] = []
    closes_on: date | None = None
    systems: list[Option] = Field(min_length=1)
    profile: Profile
    questions: list[Question] = Field(min_length=1)
    messages: dict[str, str] = {}

    @model_validator(mode="after")
    def _check_references(self, info: ValidationInfo) -> Consultation:
        # flows.definition.parse asks for the problems itself, to report each at its place
        if not (info.context or {}).get("defer_references"):
            found = reference_problems(self)
            if found:
                raise ValueError("; ".join(message for _, message in found))
        return self

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.id == question_id), None)

    def system_label(self, system_id: str | None) -> str | None:
        return next((s.label for s in self.systems if s.id == system_id), None)


Loc = tuple[str | int, ...]
"""A place in the file, e.g. ``("questions", 3, "options", 2, "id")``."""


def reference_problems(c: Consultation) -> list[tuple[Loc, str]]:
    """What is wrong between the parts of a consultation (ids used twice, a misplaced
    question), each problem with its place."""
    p = c.profile
    found = _duplicates([(("questions", i, "id"), q.id) for i, q in enumerate(c.questions)])
    found += _duplicates([(("systems", i, "id"), s.id) for i, s in enumerate(c.systems)])
    comunas: list[tuple[Loc, str]] = [
        (("profile", "provinces", i, "comunas", j, "id"), cm.id)
        for i, pv in enumerate(p.provinces)
        for j, cm in enumerate(pv.comunas)
    ]
    found += _duplicates([*comunas, (("profile", "outside", "id"), p.outside.id)])
    found += _duplicates(
        [(("profile", "provinces", i, "id"), pv.id) for i, pv in enumerate(p.provinces)]
    )
    for i, q in enumerate(c.questions):
        found += _duplicates(
            [(("questions", i, "options", j, "id"), o.id) for j, o in enumerate(q.options)]
        )
        if q.kind in ("agreement", "feasibility") and len(q.options) < 2:
            message = f"a question of kind {q.kind!r} needs at least two options"
            found.append((("questions", i, "options"), message))
    feasibility = [i for i, q in enumerate(c.questions) if q.kind == "feasibility"]
    for i in feasibility[1:]:
        found.append((("questions", i, "kind"), "at most one question may be 'feasibility'"))
    if feasibility and not any(q.kind == "desirable" for q in c.questions[: feasibility[0]]):
        message = "the 'feasibility' question must come after a 'desirable' one"
        found.append((("questions", feasibility[0], "kind"), message))
    return found


def _duplicates(ids: list[tuple[Loc, str]]) -> list[tuple[Loc, str]]:
    seen: set[str] = set()
    found: list[tuple[Loc, str]] = []
    for loc, i in ids:
        if i in seen:
            found.append((loc, f"id {i!r} is used twice"))
        seen.add(i)
    return found
