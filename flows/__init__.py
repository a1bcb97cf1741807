"""The consultation as data and the pure flow engine that walks a participant through it."""

from flows.definition import Definition, load, parse
from flows.engine import Step, new_state, step
from flows.errors import ConsultaError, DefinitionError, Problem
from flows.state import State

__all__ = [
    "ConsultaError",
    "Definition",
    "DefinitionError",
    "Problem",
    "State",
    "Step",
    "load",
    "new_state",
    "parse",
    "step",
]
