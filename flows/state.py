"""A participant's place in the consultation: the engine's input and output.

The state row stored per participant is ``State.to_dict()``; the answers live in their own
table (they are what reports read) and are handed back in ``State.answers`` when loaded.
Steps have stable string names, never positions, so a stored state survives a reordering
of the consultation file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from flows.events import Answer

Stage = Literal["declined", "profile", "questions", "finished"]
Role = Literal["citizen", "municipal"]

STEPS = frozenset(
    {
        # stage "declined"
        "declined",
        # stage "profile"
        "province", "comuna", "age_band", "gender",
        # stage "questions"
        "ask", "reason", "reason_check", "confirm", "system", "judge", "enabler",
        "write", "more",  # no longer entered; a stored state at them resumes at "ask"
        # stage "finished"
        "done",
    }
)  # fmt: skip
OVERLAYS = frozenset(
    {"menu", "review", "review_item", "review_edit", "review_delete", "profile", "erase"}
)


@dataclass(frozen=True)
class State:
    """Where one participant is. ``question``/``target`` give the step its object:
    the question being answered, and the answer key (or province id) the step works on."""

    stage: Stage
    step: str
    version: str
    question: str | None = None
    target: str | None = None
    overlay: str | None = None
    overlay_target: str | None = None
    visited: tuple[str, ...] = ()
    seq: int = 0
    role: Role = "citizen"
    comuna: str | None = None
    age_band: str | None = None
    gender: str | None = None
    pending: str | None = None
    """A typed text waiting for «¿Guardar … como un cambio nuevo?» (step ``confirm``)."""
    answers: tuple[Answer, ...] = field(default=(), compare=True)

    def __post_init__(self) -> None:
        if self.step not in STEPS:
            raise ValueError(f"unknown step {self.step!r}")
        if self.overlay is not None and self.overlay not in OVERLAYS:
            raise ValueError(f"unknown overlay {self.overlay!r}")

    def evolve(self, **changes: Any) -> State:
        return replace(self, **changes)

    def answer(self, key: str) -> Answer | None:
        return next((a for a in self.answers if a.key == key), None)

    def answers_to(self, question_id: str) -> tuple[Answer, ...]:
        return tuple(a for a in self.answers if a.question == question_id)

    def to_dict(self) -> dict[str, Any]:
        """The stored form, without the answers (stored apart)."""
        # not asdict(): it would deep-copy every answer only to drop them
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "answers"}
        data["visited"] = list(self.visited)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], answers: tuple[Answer, ...] = ()) -> State:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["visited"] = tuple(known.get("visited", ()))
        return cls(**known, answers=answers)
