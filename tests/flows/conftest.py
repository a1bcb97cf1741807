"""Fixtures for the flow engine tests: the bundled consultation and a scripted participant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

import flows
from flows.definition import Definition
from flows.engine import Step
from flows.events import Choice, Command, Event, Reply, Start, Text
from flows.state import State


class Chat:
    """One participant talking to the engine, keeping the state as storage would.

    ``press`` finds a button by its label in the latest message that has buttons, as a person
    would tap it; ``data`` sends raw callback data (stale or forged buttons).
    """

    def __init__(
        self, defn: Definition, state: State | None = None, keyboards: list[Reply] | None = None
    ) -> None:
        self.defn = defn
        self.state = state
        self.last = Step(state)
        self.keyboards: list[Reply] = list(keyboards or [])

    def fork(self) -> Chat:
        """Another participant who has reached the same place."""
        return Chat(self.defn, self.state, self.keyboards)

    def send(self, event: Event) -> Step:
        self.last = flows.step(self.defn, self.state, event)
        self.state = self.last.state
        self.keyboards += [r for r in self.last.replies if r.buttons]
        return self.last

    def start(self, payload: str = "") -> Step:
        return self.send(Start(payload))

    def text(self, text: str) -> Step:
        return self.send(Text(text))

    def command(self, name: str) -> Step:
        return self.send(Command(name))

    def data(self, data: str) -> Step:
        return self.send(Choice(data))

    def press(self, label: str) -> Step:
        return self.data(self.data_of(label))

    def data_of(self, label: str) -> str:
        """The data of the button labelled ``label`` (or ``✅ label``) in the latest keyboard."""
        assert self.keyboards, "no message with buttons was sent yet"
        for button in (b for row in self.keyboards[-1].buttons for b in row):
            if label in (button.label, button.label.removeprefix("✅ ")):
                return button.data
        raise AssertionError(f"no button {label!r} in {self.labels()}")

    def labels(self) -> list[str]:
        """The labels of the latest keyboard, row after row."""
        return (
            [b.label for row in self.keyboards[-1].buttons for b in row] if self.keyboards else []
        )

    @property
    def texts(self) -> list[str]:
        """The texts of the replies to the last event."""
        return [r.text for r in self.last.replies]

    # --- shortcuts to a place in the consultation ------------------------------------------

    def consent(self) -> Chat:
        self.start()
        self.data("c:y")
        return self

    def skip_profile(self) -> Chat:
        """Consent and skip the three profile questions: the chat is at the first question."""
        self.consent()
        for _ in range(3):
            self.command("omitir")
        assert self.state is not None and self.state.stage == "questions"
        return self

    def go_to(self, question_id: str) -> Chat:
        """Open ``question_id`` through /menu (the participant must have consented)."""
        self.command("menu")
        self.data(f"mn:{question_id}")
        assert self.state is not None and self.state.question == question_id
        return self


@pytest.fixture(scope="session")
def defn() -> Definition:
    """The bundled consultation (the Coquimbo 2020 workshop)."""
    return flows.load()


@pytest.fixture
def chat(defn: Definition) -> Chat:
    """A newcomer talking to the bundled consultation."""
    return Chat(defn)


@pytest.fixture(scope="session")
def new_chat() -> type[Chat]:
    """``new_chat(defn, state=None)``: a participant talking to any consultation."""
    return Chat


@pytest.fixture
def edited(defn: Definition) -> Callable[[Callable[[dict[str, Any]], None]], Definition]:
    """A copy of the bundled consultation changed by ``edit(data)``, as a new version."""

    def make(edit: Callable[[dict[str, Any]], None]) -> Definition:
        data = yaml.safe_load(defn.text)
        edit(data)
        return flows.parse(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "edited")

    return make


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))
