"""Properties of the engine over random conversations (hypothesis).

A conversation is a list of abstract actions, resolved against what the participant has been
shown so far: "press the 3rd button of the latest keyboard", "press an old button", "send
this text"... Every step of every conversation is checked: it never raises, the state stays
valid, the replies fit Telegram, and the records tell storage everything that changed.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import flows
from flows import buttons as bt
from flows import prompts
from flows.definition import MAX_TEXT, Definition
from flows.engine import Step
from flows.events import (
    Answer,
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
    ParticipantErased,
    ProfileSet,
    Reply,
    Start,
    Text,
    Unsupported,
)
from flows.state import State

DEFN = flows.load()
C = DEFN.consultation
COMMANDS = ["start", "menu", "revisar", "omitir", "cancelar", "privacidad", "borrar", "ayuda"]
MAX_MESSAGE = 4096
MAX_DATA = 64

SETTINGS = settings(max_examples=400, deadline=None)  # about 10 s for this file

# --- what a participant may do -------------------------------------------------------------

texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=" \t\n\r\u00a0\u2028\u3000", max_size=6),  # only whitespace
    st.builds(
        lambda piece, size, pad: pad + (piece * size)[:size] + pad,
        st.text(min_size=1, max_size=3),
        st.sampled_from([MAX_TEXT - 1, MAX_TEXT, MAX_TEXT + 1, 4097]),
        st.sampled_from(["", "  ", "\n"]),
    ),
    st.builds(
        lambda label, upper: label.upper() if upper else label.lower(),
        st.sampled_from([c.label for c in C.profile.comunas()] + ["Rio Hurtado", "Vicuna"]),
        st.booleans(),
    ),
)
forged = st.one_of(
    st.text(max_size=70),
    st.text(min_size=65, max_size=200),
    st.builds(
        lambda prefix, rest: prefix + rest,
        st.sampled_from(
            [
                "o:q1:",
                "ag:a:",
                "f:",
                "f:q1.t1:",
                "sy:q1.t1:",
                "rv:",
                "rd:",
                "re:",
                "rg:",
                "mn:",
                "pv:",
                "cm:",
                "ab:",
                "gd:",
                "s:ask:",
                "n:",
                "ks:q1:",
                "rz:a:",
                "dt:",
                "ok:",
                "pe:",
                "rd:q1.t1:",
                "bz:",
                "c:",
                "x",
                "rb",
            ]
        ),
        st.text(max_size=30),
    ),
)
actions = st.one_of(
    st.tuples(st.just("press"), st.integers(0, 60)),
    st.tuples(st.just("press"), st.integers(0, 60)),
    st.tuples(st.just("press"), st.integers(0, 60)),
    st.tuples(st.just("press"), st.integers(0, 60)),
    st.tuples(st.just("stale"), st.integers(0, 10_000)),
    st.tuples(st.just("forged"), forged),
    st.tuples(st.just("text"), texts),
    st.tuples(st.just("command"), st.sampled_from([*COMMANDS, "nope", "MENU", ""])),
    st.tuples(st.just("command"), st.sampled_from(["revisar", "menu"])),  # overlays, more often
    st.tuples(st.just("start"), st.sampled_from(["", "abc"])),
    st.tuples(st.just("unsupported"), st.sampled_from(["photo", "sticker", "voice"])),
    st.tuples(st.just("edited"), st.none()),
    # /revisar → an answer → delete it, or change its text: three or four events
    st.tuples(st.just("delete"), st.integers(0, 30)),
    st.tuples(st.just("rewrite"), st.tuples(st.integers(0, 30), texts)),
)

# Random walks rarely get far, so conversations also start from places reached by a script.
_PROFILE: list[Event] = [
    Start(),
    Choice("c:y"),
    Command("omitir"),
    Command("omitir"),
    Command("omitir"),
]
_CHANGES: list[Event] = [
    Choice("ag:a:en_parte"),
    Text("Porque sí"),
    Choice("o:q1:peru"),
    Choice("o:q1:san_juan"),
    Text("Becas para estudiar"),
    Choice("sy:q1.t1:social"),
    Choice("n:q1"),
    Choice("o:q2:cuba"),
    Choice("n:q2"),
    Text("Redes de municipios"),
    Choice("s:system:q3.t2"),
    Choice("n:q3"),
    Choice("n:q4"),
]
_JUDGED: list[Event] = [
    Choice("f:q1.o.peru:si"),
    Choice("f:q1.t1:si"),
    Choice("f:q1.t1:no"),
    Choice("f:q2.o.cuba:si"),
    Choice("ok:q5"),
    Text("Fondos"),
]
OPENINGS: list[list[Event]] = [
    [],  # a newcomer
    _PROFILE,  # at question A
    _PROFILE + _CHANGES,  # judging changes at question 5
    _PROFILE + _CHANGES + _JUDGED,  # finished
]
conversations = st.tuples(
    st.sampled_from(range(len(OPENINGS))), st.lists(actions, min_size=5, max_size=100)
)
Conversation = tuple[int, list[tuple[str, Any]]]


class Screen:
    """What the participant has been shown: every keyboard, the latest one last."""

    def __init__(self) -> None:
        self.latest: list[Button] = []
        self.shown: list[Button] = []

    def show(self, replies: tuple[Reply, ...]) -> None:
        for reply in replies:
            if reply.buttons:
                self.latest = [b for row in reply.buttons for b in row]
                self.shown += self.latest

    def events(self, action: tuple[str, Any], state: State | None) -> list[Event]:
        """The events of ``action``: one, or a few for a walk through /revisar."""
        kind, value = action
        if kind not in ("delete", "rewrite"):
            return [self.event(action)]
        if state is None or not state.answers:
            return [Command("revisar")]
        index, text = value if kind == "rewrite" else (value, None)
        key = state.answers[index % len(state.answers)].key
        if text is None:
            return [Command("revisar"), Choice(f"rv:{key}"), Choice(f"rd:{key}"),
                    Choice(f"rd:{key}:y")]  # fmt: skip
        return [Command("revisar"), Choice(f"rv:{key}"), Choice(f"re:{key}"), Text(text)]

    def event(self, action: tuple[str, Any]) -> Event:
        kind, value = action
        if kind == "press":
            return Choice(self.latest[value % len(self.latest)].data) if self.latest else Start()
        if kind == "stale":
            return Choice(self.shown[value % len(self.shown)].data) if self.shown else Start()
        if kind == "forged":
            return Choice(value)
        if kind == "text":
            return Text(value)
        if kind == "command":
            return Command(value)
        if kind == "start":
            return Start(value)
        if kind == "unsupported":
            return Unsupported(value)
        if kind == "event":
            return value
        return Edited()


# --- the checks ----------------------------------------------------------------------------

STAGE_OF = {
    "declined": "declined",
    "province": "profile",
    "comuna": "profile",
    "age_band": "profile",
    "gender": "profile",
    "done": "finished",
}
STEPS_OF = {
    "agreement": {"ask", "reason", "reason_check"},
    "desirable": {"ask", "system", "confirm"},
    "feasibility": {"judge", "enabler"},
}
KIND_OF = {"agreement": "acuerdo", "desirable": "deseable", "feasibility": "posible"}


def accepted(defn: Definition, state: State | None) -> set[str]:
    """The button data the engine should act on in ``state``."""
    if state is None or state.stage == "declined":
        return {bt.Consent(True).encode(), bt.Consent(False).encode()}
    return prompts.buttons_of(prompts.current(defn, state))


def check_replies(step: Step) -> None:
    assert step.replies, "every event is answered"
    for reply in step.replies:
        assert reply.text.strip()
        assert len(reply.text) <= MAX_MESSAGE, len(reply.text)
        data = [b.data for row in reply.buttons for b in row]
        assert len(data) == len(set(data)), data
        for button in (b for row in reply.buttons for b in row):
            assert button.label.strip()
            assert 1 <= len(button.data.encode("utf-8")) <= MAX_DATA, button
            if isinstance(bt.decode(button.data), bt.Toggle | bt.Judge):
                # a tap rewrites this message with the engine's new keyboard: nothing may
                # have been joined to it, or the edit would lose it
                assert reply.alone or reply.replace, reply


def check_answer(defn: Definition, a: Answer, state: State, edited: bool = False) -> None:
    """``a`` is consistent in itself and, unless the consultation was ``edited`` since it was
    given (its question or option may be gone), with ``defn``."""
    assert a.system is None or a.kind == "deseable", a
    assert a.refers_to is None or a.kind == "posible", a
    if a.text is not None:
        assert a.text == a.text.strip() and 1 <= len(a.text) <= MAX_TEXT, a
    if a.kind == "acuerdo":
        assert a.key == a.question and a.option is not None, a
    elif a.kind == "deseable" and a.option is not None:
        assert a.key == f"{a.question}.o.{a.option}" and a.text is None and a.system is None, a
    elif a.kind == "deseable":
        number = re.fullmatch(rf"{re.escape(a.question)}\.t([1-9][0-9]*)", a.key)
        assert number is not None and int(number[1]) <= state.seq and a.text is not None, a
    else:
        target = state.answer(a.refers_to or "")
        assert target is not None and target.kind == "deseable", a
        assert a.key == f"p.{a.refers_to}" and a.option is not None, a
    if edited:
        return
    q = defn.consultation.question(a.question)
    assert q is not None and a.kind == KIND_OF[q.kind], a
    assert a.version == defn.version, a
    assert a.option is None or a.option in {o.id for o in q.options}, a
    assert a.system is None or defn.consultation.system_label(a.system) is not None, a


def check_state(defn: Definition, s: State, edited: bool = False) -> None:
    """``s`` is a state the engine can resume from, consistent with ``defn``.

    After an ``edited`` consultation, ``visited`` may name questions that were removed."""
    c = defn.consultation
    assert s.version == defn.version
    assert STAGE_OF.get(s.step, "questions") == s.stage, (s.stage, s.step)
    keys = [a.key for a in s.answers]
    assert len(keys) == len(set(keys)), keys
    for a in s.answers:
        check_answer(defn, a, s, edited)
    assert len(s.visited) == len(set(s.visited))
    assert edited or all(c.question(q) for q in s.visited), s.visited
    assert s.comuna is None or s.comuna in {o.id for o in c.profile.comunas()}
    assert s.age_band is None or s.age_band in {o.id for o in c.profile.age_bands}
    assert s.gender is None or s.gender in {o.id for o in c.profile.genders}
    if s.stage == "declined":
        assert s.answers == () and s.overlay is None
    if s.stage == "questions":
        q = c.question(s.question or "")
        assert q is not None, s
        assert s.step in STEPS_OF[q.kind], (q.kind, s.step)
        if s.step == "system":
            target = s.answer(s.target or "")
            assert target is not None and target.kind == "deseable", s
            assert target.question == q.id and target.text is not None, s
        else:
            assert s.target is None, s
        assert (s.step == "confirm") == bool(s.pending), s
        if s.step in ("judge", "enabler"):
            assert any(a.kind == "deseable" for a in s.answers), s
        if s.step == "enabler":
            assert any(a.kind == "posible" and a.option == q.options[0].id for a in s.answers), s
        if s.step in ("reason", "reason_check"):
            assert s.answer(q.id) is not None, s
        if s.step == "reason_check":
            assert s.answer(q.id).text, s  # type: ignore[union-attr]
    else:
        assert s.question is None, s
        if s.step == "comuna":
            assert s.target in {p.id for p in c.profile.provinces}, s
        else:
            assert s.target is None, s
    if s.overlay in ("review_item", "review_edit", "review_delete"):
        assert s.answer(s.overlay_target or "") is not None, s
        if s.overlay == "review_edit":
            assert s.answer(s.overlay_target or "").text is not None  # type: ignore[union-attr]
    elif s.overlay == "profile":
        assert s.overlay_target in ("place", "age_band", "gender"), s
    else:
        assert s.overlay_target is None, s


def check_records(before: State | None, step: Step, model: dict[str, Answer]) -> None:
    """Apply the records to ``model`` (the answers as storage keeps them) and check them."""
    after = step.state
    removed: set[str] = set()
    if before is None:
        assert all(isinstance(r, ConsentGiven | ConsentDeclined) for r in step.records)
    for r in step.records:
        if isinstance(r, AnswerRecorded):
            assert r.previous == model.get(r.answer.key), r
            assert r.answer != r.previous, f"nothing changed: {r}"
            model[r.answer.key] = r.answer
        elif isinstance(r, AnswerRemoved):
            assert model.pop(r.previous.key) == r.previous, r
            removed.add(r.previous.key)
        elif isinstance(r, ParticipantErased):
            assert before is not None and after is None
            model.clear()
        elif isinstance(r, ConsentGiven):
            assert before is None or before.stage == "declined"
        elif isinstance(r, ConsentDeclined):
            assert before is None and after is not None and after.stage == "declined"
        elif isinstance(r, ProfileSet):
            assert after is not None and getattr(after, r.field) == r.value, r
        else:
            assert isinstance(r, Finished)
            assert after is not None and after.stage == "finished"
    if after is None:
        assert model == {}
        assert before is None or ParticipantErased() in step.records
        return
    assert model == {a.key: a for a in after.answers}
    if before is not None and ParticipantErased() not in step.records:
        lost = {a.key for a in before.answers} - {a.key for a in after.answers}
        assert lost <= removed, lost


def is_bad_input(event: Event, valid: set[str]) -> bool:
    """Events that must leave everything as it was."""
    if isinstance(event, Choice):
        return event.data not in valid
    if isinstance(event, Text):
        return len(event.text.strip()) > MAX_TEXT or not event.text.strip()
    if isinstance(event, Command):
        return event.name not in COMMANDS
    return isinstance(event, Unsupported | Edited)


def stored(state: State | None) -> State | None:
    """``state`` after a trip through the database: its row as JSON, its answers apart."""
    if state is None:
        return None
    return State.from_dict(json.loads(json.dumps(state.to_dict())), state.answers)


def play(
    conversation: Conversation, defn: Definition = DEFN, edit: tuple[int, Definition] | None = None
) -> list[tuple[Event, Step]]:
    """Run a conversation from a newcomer, checking every step; returns the events and steps.

    With ``edit=(n, new)``, the consultation is replaced by ``new`` before the n-th action."""
    opening, script = conversation
    screen = Screen()
    state: State | None = None
    model: dict[str, Answer] = {}
    played = []
    actions = [*(("event", e) for e in OPENINGS[opening]), *script]
    for number, action in enumerate(actions):
        switched = edit is not None and number == edit[0]
        if edit is not None and switched:
            defn = edit[1]
        for event in screen.events(action, state):
            valid = accepted(defn, state)
            step = flows.step(defn, state, event)
            check_replies(step)
            check_records(state, step, model)
            if step.state is not None:
                check_state(defn, step.state, edited=edit is not None)
                assert stored(step.state) == step.state
            if is_bad_input(event, valid) and not switched:
                assert (step.state, step.records) == (state, ()), event
            shown = prompts.buttons_of(step.replies)
            assert shown <= accepted(defn, step.state), shown - accepted(defn, step.state)
            screen.show(step.replies)
            played.append((event, step))
            state = step.state
            switched = False
    return played


def test_the_openings_reach_their_places() -> None:
    places = []
    for opening in range(len(OPENINGS)):
        played = play((opening, []))
        state = played[-1][1].state if played else None
        places.append(state and (state.stage, state.step, state.question))
    assert places == [
        None,
        ("questions", "ask", "a"),
        ("questions", "judge", "q5"),
        ("finished", "done", None),
    ]


# --- the properties ------------------------------------------------------------------------


@SETTINGS
@given(conversations)
def test_random_conversations_keep_every_promise(conversation: Conversation) -> None:
    play(conversation)


@settings(SETTINGS, max_examples=60)
@given(conversations)
def test_a_stored_state_resumes_exactly_like_the_live_one(conversation: Conversation) -> None:
    state: State | None = None
    for event, expected in play(conversation):
        step = flows.step(DEFN, stored(state), event)
        assert step == expected
        state = step.state


@settings(SETTINGS, max_examples=60)
@given(conversations)
def test_a_closed_consultation_stores_nothing_but_an_erasure(conversation: Conversation) -> None:
    """Every event of a random conversation, replayed as if the consultation had closed:
    the state stays as it was and the closing notice is the last reply, except for /borrar
    and its confirmation, which work as before the closing."""
    last_day = date(2020, 3, 31)
    notice = prompts.closed(DEFN, last_day)
    before: State | None = None
    for event, open_step in play(conversation):
        closed = flows.step(DEFN, before, event, closed_on=last_day)
        pressed = bt.decode(event.data) if isinstance(event, Choice) else None
        if event == Command("borrar") or isinstance(pressed, bt.Erase):
            assert closed == open_step
        else:
            assert (closed.state, closed.records) == (before, ())
            assert closed.replies[-1].text == notice
        before = open_step.state


def _edited(edit: Any) -> Definition:
    data = yaml.safe_load(DEFN.text)
    edit(data)
    return flows.parse(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "edited")


def _without_question(qid: str) -> Any:
    return lambda d: d.update(questions=[q for q in d["questions"] if q["id"] != qid])


def _without_option(qid: str, oid: str) -> Any:
    def edit(d: dict[str, Any]) -> None:
        q = next(q for q in d["questions"] if q["id"] == qid)
        q["options"] = [o for o in q["options"] if o["id"] != oid]

    return edit


def _agreement_last(d: dict[str, Any]) -> None:
    d["questions"] = d["questions"][1:] + d["questions"][:1]


def _q3_becomes_agreement(d: dict[str, Any]) -> None:
    q3 = next(q for q in d["questions"] if q["id"] == "q3")
    q3.update(kind="agreement", options=[{"id": "si", "label": "Sí"}, {"id": "no", "label": "No"}])


def _comunas_regrouped(d: dict[str, Any]) -> None:
    provinces = d["profile"]["provinces"]
    provinces[0]["comunas"] += provinces.pop(1)["comunas"]  # Limarí is gone


EDITS = [
    _edited(_without_question("q2")),
    _edited(_without_question("q5")),
    _edited(_without_question("a")),
    _edited(_without_option("q1", "peru")),
    _edited(_without_option("q5", "en_parte")),
    _edited(_agreement_last),
    _edited(_q3_becomes_agreement),
    _edited(_comunas_regrouped),
]


@settings(SETTINGS, max_examples=250)
@given(conversations, st.integers(0, 60), st.sampled_from(range(len(EDITS))))
def test_an_edited_consultation_strands_no_one(
    conversation: Conversation, when: int, edit: int
) -> None:
    """The file changes while people are half-way: they go on, and nothing is lost."""
    opening, script = conversation
    play(conversation, edit=(min(when, len(OPENINGS[opening]) + len(script) - 1), EDITS[edit]))


@settings(SETTINGS, max_examples=100)
@given(st.text(alphabet=st.sampled_from("ab \n"), max_size=300), st.integers(1, 40))
def test_split_text_keeps_every_word_within_the_limit(text: str, limit: int) -> None:
    pieces = prompts.split_text(text, limit)
    assert all(len(p) <= limit and p.strip() for p in pieces)
    assert "".join("".join(pieces).split()) == "".join(text.split())  # only blanks are dropped
    if all(len(word) <= limit for word in text.split()):
        assert " ".join(pieces).split() == text.split()  # and no word is cut
