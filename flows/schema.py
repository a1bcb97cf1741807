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

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Id = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,16}$")]
"""A stable identifier: lowercase letters, digits and '_', at most 16 characters."""

ButtonLabel = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
CardText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=900)]
"""A context card must be readable on a phone: 900 characters at most."""

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

    def province_of(self, comuna_id: str) -> Province | None:
        return next((p for p in self.provinces if any(c.id == comuna_id for c in p.comunas)), None)


class Question(_Strict):
    """One debate question.

    - ``agreement``: one choice among ``options``, then an optional reason in free text.
    - ``desirable``: any number of ``options`` plus free-text changes, each taggable with a
      system of the regional strategy.
    - ``feasibility``: for each desirable change the participant gave, one of ``options``
      (sí / en parte / no), then optionally what would make it possible.
    """

    id: Id
    number: Annotated[str, StringConstraints(min_length=1, max_length=3)]
    kind: QuestionKind
    title: ButtonLabel
    text: ShortText
    prompts: list[ShortText] = []
    context: CardText | None = None
    options: list[Option] = []
    follow_up: ShortText | None = None
    """Agreement: the reason prompt. Feasibility: 'what would make it possible?'."""


class Consultation(_Strict):
    """A whole consultation, as read from its file."""

    schema_version: Literal[1]
    id: Id
    title: ShortText
    organiser: ShortText
    welcome: ShortText
    consent: ShortText
    privacy: ShortText
    thanks: ShortText
    closes_on: date | None = None
    systems: list[Option] = Field(min_length=1)
    profile: Profile
    questions: list[Question] = Field(min_length=1)
    messages: dict[str, str] = {}

    @model_validator(mode="after")
    def _check_references(self) -> Consultation:
        _unique("questions", [q.id for q in self.questions])
        _unique("systems", [s.id for s in self.systems])
        _unique("profile comunas", [c.id for c in self.profile.comunas()])
        _unique("profile provinces", [p.id for p in self.profile.provinces])
        for q in self.questions:
            _unique(f"question {q.id!r} options", [o.id for o in q.options])
            if q.kind in ("agreement", "feasibility") and len(q.options) < 2:
                raise ValueError(f"question {q.id!r} ({q.kind}) needs at least two options")
        feasibility = [i for i, q in enumerate(self.questions) if q.kind == "feasibility"]
        if len(feasibility) > 1:
            raise ValueError("at most one question may be of kind 'feasibility'")
        if feasibility and not any(q.kind == "desirable" for q in self.questions[: feasibility[0]]):
            raise ValueError("the 'feasibility' question must come after a 'desirable' question")
        return self

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.id == question_id), None)

    def system_label(self, system_id: str | None) -> str | None:
        return next((s.label for s in self.systems if s.id == system_id), None)


def _unique(what: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"{what}: id {i!r} is used twice")
        seen.add(i)
