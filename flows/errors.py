"""Errors raised to calling code. Bad participant input is never an exception: the engine
answers it with a reply. These are for a definition that cannot be used, or misuse."""

from __future__ import annotations

from dataclasses import dataclass


class ConsultaError(Exception):
    """Base of every error Consulta raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a consultation file, e.g. ``questions[3].options[2].id``, line 88."""

    place: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.place}: {self.message}" if self.place else f"{where}{self.message}"


class DefinitionError(ConsultaError):
    """A consultation file could not be read or is not valid; lists every problem found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {source}: {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")
