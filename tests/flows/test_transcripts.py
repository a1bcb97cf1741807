"""Golden transcripts: whole conversations with the bundled consultation, read as a participant
would read them (STYLE.md, "Golden transcripts").

Each ``transcripts/*.yaml`` holds a ``description`` and ``turns``; a turn is one input:

- ``start:`` (optionally a payload), ``text: ...``, ``text_of_length: 1001``,
  ``command: revisar``, ``unsupported: photo``, ``edited:``
- ``invitation: {verdict: ok, name, institution, comuna}`` beside an input: the caller's
  check of the invitation token that came with it (``/start <token>``, the consent button)
- ``closed: 2020-03-31`` beside an input: the consultation closed, that day its last
- ``press: <label or data>``: the button with that label in the latest keyboard, else in an
  earlier one (a stale button, newest first), else the text is sent as raw callback data;

followed by what the engine answered: ``replies`` as the chat shows them (``prompts.as_messages``:
text, button labels row by row, ``replace``)
and ``records``. ``pytest --update-goldens`` rewrites the answers from the engine's output;
review the diff as a conversation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import flows
from flows import prompts
from flows.definition import Definition
from flows.events import (
    AnswerRecorded,
    AnswerRemoved,
    Button,
    Choice,
    Command,
    ConsentDeclined,
    ConsentGiven,
    Edited,
    Event,
    Finished,
    InvitationAccepted,
    InviteCheck,
    Invited,
    ParticipantErased,
    ProfileSet,
    Record,
    Reply,
    Start,
    Text,
    Unsupported,
)
from flows.state import State

HERE = Path(__file__).parent / "transcripts"
FILES = sorted(HERE.glob("*.yaml"))
INPUTS = ("start", "text", "text_of_length", "press", "command", "unsupported", "edited")
ANSWER_FIELDS = ("kind", "option", "text", "system", "refers_to")


# --- reading inputs ------------------------------------------------------------------------


def input_of(turn: dict[str, Any]) -> tuple[str, Any]:
    given = [key for key in INPUTS if key in turn]
    assert len(given) == 1, f"a turn needs exactly one of {INPUTS}: {turn}"
    return given[0], turn[given[0]]


def event_of(kind: str, value: Any, keyboards: list[tuple[Button, ...]]) -> Event:
    if kind == "start":
        return Start(value or "")
    if kind == "text":
        return Text(str(value))
    if kind == "text_of_length":
        return Text("a" * int(value))
    if kind == "command":
        return Command(str(value))
    if kind == "unsupported":
        return Unsupported(str(value))
    if kind == "edited":
        return Edited()
    return Choice(press(str(value), keyboards))


def press(label: str, keyboards: list[tuple[Button, ...]]) -> str:
    for keyboard in reversed(keyboards):
        for button in keyboard:
            if label in (button.label, button.label.removeprefix("✅ ")):
                return button.data
    return label


def invite_of(given: dict[str, Any] | None) -> InviteCheck | None:
    """``invitation: {verdict: ok, name: ..., institution: ..., comuna: ...}``: what the
    caller found for the invitation token that came with the turn."""
    if given is None:
        return None
    if given["verdict"] != "ok":
        return InviteCheck(given["verdict"])
    fields = {k: v for k, v in given.items() if k != "verdict"}
    return InviteCheck("ok", Invited(invitation_id=1, token="tok", **fields))


# --- writing outputs -----------------------------------------------------------------------


def reply_out(reply: Reply) -> dict[str, Any]:
    out: dict[str, Any] = {"text": reply.text}
    if reply.buttons:
        out["buttons"] = [[b.label for b in row] for row in reply.buttons]
    if reply.replace:
        out["replace"] = True
    return out


def record_out(record: Record) -> str | dict[str, Any]:
    """One record, e.g. ``{"new answer": {"key": "q1.t1", "kind": "deseable", "text": ...}}``;
    a changed answer shows the fields that changed, with their new values."""
    if isinstance(record, ConsentGiven):
        return "consent given"
    if isinstance(record, ConsentDeclined):
        return "consent declined"
    if isinstance(record, Finished):
        return "finished"
    if isinstance(record, ParticipantErased):
        return "participant erased"
    if isinstance(record, InvitationAccepted):
        return "invitation accepted"
    if isinstance(record, ProfileSet):
        return {"profile": {record.field: record.value}}
    if isinstance(record, AnswerRemoved):
        return {"removed answer": record.previous.key}
    assert isinstance(record, AnswerRecorded)
    new, old = record.answer, record.previous
    if old is None:
        shown = {name: getattr(new, name) for name in ANSWER_FIELDS if getattr(new, name)}
        return {"new answer": {"key": new.key, **shown}}
    changed = {
        name: getattr(new, name)
        for name in ANSWER_FIELDS
        if getattr(new, name) != getattr(old, name)
    }
    return {"changed answer": {"key": new.key, **changed}}


def play(defn: Definition, turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The turns with the engine's actual replies and records."""
    state: State | None = None
    keyboards: list[tuple[Button, ...]] = []
    played = []
    for turn in turns:
        kind, value = input_of(turn)
        invite = invite_of(turn.get("invitation"))
        closed_on = turn.get("closed")  # YAML reads a bare 2020-03-31 as a date
        step = flows.step(defn, state, event_of(kind, value, keyboards), invite, closed_on)
        state = step.state
        keyboards += [tuple(b for row in r.buttons for b in row) for r in step.replies if r.buttons]
        played.append(
            {
                kind: value,
                **{key: turn[key] for key in ("invitation", "closed") if key in turn},
                "replies": [reply_out(r) for r in prompts.as_messages(step.replies)],
                "records": [record_out(r) for r in step.records],
            }
        )
    return played


class _Dumper(yaml.SafeDumper):
    """Texts with several lines as ``|`` blocks, so a transcript reads like the chat."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


def _dict(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.MappingNode:
    flow = None if "key" in data or (len(data) == 1 and "text" not in data) else False
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=flow)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(dict, _dict)


def dump(document: dict[str, Any]) -> str:
    return yaml.dump(
        document,
        Dumper=_Dumper,
        allow_unicode=True,
        sort_keys=False,
        default_flow_style=None,  # rows of buttons and small records on one line
        width=10_000,  # never fold a text: one line of the file is one line of the chat
    )


# --- the tests -----------------------------------------------------------------------------


def test_there_are_transcripts() -> None:
    assert {f.stem for f in FILES} >= {
        "happy_path", "hurried_typing", "changes_mind_and_erases", "municipal_invitation",
        "resume_later", "declined_then_consents", "bad_input", "after_closing",
    }  # fmt: skip


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_transcript(path: Path, defn: Definition, update_goldens: bool) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    played = play(defn, document["turns"])
    if update_goldens:
        path.write_text(dump({**document, "turns": played}), encoding="utf-8")
        return
    for number, (expected, actual) in enumerate(zip(document["turns"], played, strict=True), 1):
        assert actual == expected, f"{path.name}, turn {number}: {input_of(expected)}"


def test_the_dump_reads_back_unchanged(defn: Definition) -> None:
    turns: list[dict[str, Any]] = [
        {"start": None},
        {"text": "  dos\nlíneas  "},
        {"press": "Sí, acepto participar"},
    ]
    played = play(defn, turns)
    assert yaml.safe_load(dump({"turns": played}))["turns"] == played
    assert "|" in dump({"turns": played})
