"""The flow engine: a pure function of (definition, participant state, event).

``step(defn, state, event)`` returns a ``Step``: the new state (None: nothing to store, as
before consent or after erasure), the replies to send and the records to store. No I/O
happens here, so any channel can drive it and tests can explore it exhaustively.

Bad participant input never raises: it becomes a reply and the state stays as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flows import buttons as bt
from flows import prompts
from flows.definition import MAX_TEXT, Definition
from flows.events import (
    Answer,
    AnswerRecorded,
    AnswerRemoved,
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
from flows.schema import Question
from flows.state import Role, State


@dataclass(frozen=True)
class Step:
    """What one event did: the new state, the replies and the records to store."""

    state: State | None
    replies: tuple[Reply, ...] = ()
    records: tuple[Record, ...] = ()


@dataclass
class _Out:
    """Replies and records gathered while one event is handled."""

    replies: list[Reply] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)

    def done(self, state: State | None) -> Step:
        return Step(state, tuple(self.replies), tuple(self.records))


def new_state(defn: Definition, role: Role = "citizen", comuna: str | None = None) -> State:
    """The state of someone who has just consented: at the profile, or (municipal contacts,
    whose comuna is known) straight at the first question."""
    if role == "municipal":
        first = defn.consultation.questions[0].id
        return State("questions", "ask", defn.version, question=first, role=role, comuna=comuna)
    return State("profile", "province", defn.version, role=role)


def step(
    defn: Definition, state: State | None, event: Event, invite: InviteCheck | None = None
) -> Step:
    """Handle one event of one participant.

    ``invite`` is the caller's check of an invitation token that came with the event
    (``/start <token>`` or an invitation's consent button); the engine does no I/O itself.
    """
    out = _Out()
    if invite is not None and invite.verdict != "ok":
        out.replies.append(Reply(_invite_problem(defn, invite)))
        invite = None
    invited = invite.invited if invite else None
    if state is not None:
        state = _repair(defn, state, out)
    if state is None or state.stage == "declined":
        return _before_consent(defn, state, event, invited, out)
    if isinstance(event, Start) and invited is not None and state.role != "municipal":
        return _upgrade(defn, state, invited, out)
    if isinstance(event, Start):
        out.replies.append(Reply(defn.messages.welcome_back))
        state = state.evolve(overlay=None, overlay_target=None)
        out.replies += prompts.current(defn, state, context=True)
        return out.done(state)
    if isinstance(event, Command):
        return _command(defn, state, event, out)
    if isinstance(event, Choice):
        return _choice(defn, state, event.data, out)
    if isinstance(event, Text):
        return _text(defn, state, event.text, out)
    if isinstance(event, Edited):
        out.replies.append(Reply(defn.messages.edited))
        return out.done(state)
    assert isinstance(event, Unsupported)
    out.replies.append(Reply(defn.messages.unsupported))
    out.replies += prompts.current(defn, state)
    return out.done(state)


# --- before consent -------------------------------------------------------------------------


def _before_consent(
    defn: Definition, state: State | None, event: Event, invited: Invited | None, out: _Out
) -> Step:
    """Newcomers (state None: nothing stored) and those who declined."""
    m = defn.messages
    pressed = bt.decode(event.data) if isinstance(event, Choice) else None
    if isinstance(pressed, bt.Consent) and pressed.accept:
        out.records.append(ConsentGiven())
        if invited is not None:
            out.records += [InvitationAccepted(invited.invitation_id),
                            ProfileSet("comuna", invited.comuna)]  # fmt: skip
            out.replies.append(Reply(m.consent_thanks_municipal))
            base = new_state(defn, "municipal", invited.comuna)
            return _enter(defn, base, base.question or "", out)
        if pressed.token:  # an invitation's button, whose check failed
            out.records.clear()
            out.replies += prompts.consent(defn)
            return out.done(state)
        out.replies.append(Reply(m.consent_thanks))
        new = new_state(defn)
        out.replies += prompts.current(defn, new)
        return out.done(new)
    if isinstance(pressed, bt.Consent) and state is None:  # declined
        out.records.append(ConsentDeclined())
        out.replies.append(Reply(m.declined))
        return out.done(State("declined", "declined", defn.version))
    if isinstance(event, Command):
        texts = {"ayuda": m.help, "privacidad": defn.consultation.privacy}
        if state is None:
            texts["borrar"] = m.nothing_stored
        fallback = m.consent_required if state is None else m.declined_again
        out.replies.append(Reply(texts.get(event.name, fallback)))
        return out.done(state)
    if isinstance(event, Start) or (state is None and isinstance(event, Text)):
        out.replies += prompts.consent(defn, invited)
        return out.done(state)
    out.replies.append(Reply(m.consent_required if state is None else m.declined_again))
    return out.done(state)


def _upgrade(defn: Definition, state: State, invited: Invited, out: _Out) -> Step:
    """A citizen opens their personal invitation: they keep every answer and from now on
    answer for their comuna; the profile questions are no longer needed."""
    out.records += [InvitationAccepted(invited.invitation_id),
                    ProfileSet("comuna", invited.comuna)]  # fmt: skip
    state = state.evolve(role="municipal", comuna=invited.comuna, overlay=None,
                         overlay_target=None)  # fmt: skip
    comuna = next((o.label for o in defn.consultation.profile.comunas()
                   if o.id == invited.comuna), "")  # fmt: skip
    out.replies.append(Reply(defn.messages.invitation_upgraded.format(
        name=invited.name, institution=invited.institution, comuna=comuna)))  # fmt: skip
    if state.stage == "profile":
        return _enter(defn, state, defn.consultation.questions[0].id, out)
    out.replies += prompts.current(defn, state, context=True)
    return out.done(state)


def _invite_problem(defn: Definition, invite: InviteCheck) -> str:
    m = defn.messages
    return {
        "used": m.invitation_used,
        "expired": m.invitation_expired,
        "revoked": m.invitation_revoked,
        "throttled": m.invitation_throttled,
    }.get(invite.verdict, m.invitation_unknown)


# --- commands -------------------------------------------------------------------------------


def _command(defn: Definition, state: State, cmd: Command, out: _Out) -> Step:
    m = defn.messages
    if cmd.name == "ayuda":
        out.replies.append(Reply(m.help))
        return out.done(state)
    if cmd.name == "privacidad":
        out.replies.append(Reply(defn.consultation.privacy))
        return out.done(state)
    if cmd.name in ("menu", "revisar", "borrar"):
        overlay = {"menu": "menu", "revisar": "review", "borrar": "erase"}[cmd.name]
        if overlay == "review" and not state.answers:
            out.replies.append(Reply(m.review_empty))
            return out.done(state)
        state = state.evolve(overlay=overlay, overlay_target=None)
        out.replies += prompts.current(defn, state)
        return out.done(state)
    if cmd.name == "cancelar":
        return _cancel(defn, state, out)
    if cmd.name == "omitir":
        if state.overlay is not None:
            return _cancel(defn, state, out)
        return _skip(defn, state, out)
    out.replies.append(Reply(m.unknown_command.format(name=cmd.name)))
    return out.done(state)


def _cancel(defn: Definition, state: State, out: _Out) -> Step:
    m = defn.messages
    if state.overlay is not None:
        state = state.evolve(overlay=None, overlay_target=None)
        out.replies.append(Reply(m.cancelled))
        out.replies += prompts.current(defn, state)
        return out.done(state)
    if state.step == "write":
        state = state.evolve(step="ask")
        out.replies.append(Reply(m.cancelled))
        out.replies += prompts.current(defn, state)
        return out.done(state)
    out.replies.append(Reply(m.nothing_to_cancel))
    return out.done(state)


def _skip(defn: Definition, state: State, out: _Out) -> Step:
    """Leave the current step without answering it."""
    s = state.step
    if s == "province" or s == "comuna":
        return _goto(defn, state.evolve(step="age_band", target=None), out)
    if s == "age_band":
        return _goto(defn, state.evolve(step="gender"), out)
    if s == "gender":
        return _end_profile(defn, state, out)
    if s == "system":
        return _goto(defn, state.evolve(step="more", target=None), out)
    if s in ("judge", "enabler"):
        return _next_target(defn, state, out)
    if s == "done":
        out.replies.append(Reply(defn.messages.finished_again))
        return out.done(state)
    # "Pregunta omitida" would be wrong after an answer (the agreement before its "why?")
    answered = bool(state.answers_to(state.question or ""))
    m = defn.messages
    out.replies.append(Reply(m.reason_saved if answered else m.skipped))
    return _leave_question(defn, state, out)


# --- buttons --------------------------------------------------------------------------------


def _choice(defn: Definition, state: State, data: str, out: _Out) -> Step:
    button = bt.decode(data)
    if button is None or data not in prompts.buttons_of(prompts.current(defn, state)):
        out.replies.append(Reply(defn.messages.stale_button))
        out.replies += prompts.current(defn, state)
        return out.done(state)
    if state.overlay is not None:
        return _overlay_choice(defn, state, button, out)
    match button:
        case bt.Skip():
            return _skip(defn, state, out)
        case bt.Province(province=province):
            step = "comuna" if province else "province"
            return _goto(defn, state.evolve(step=step, target=province or None), out)
        case bt.Comuna(comuna=comuna):
            out.records.append(ProfileSet("comuna", comuna))
            return _goto(defn, state.evolve(step="age_band", target=None, comuna=comuna), out)
        case bt.AgeBand(band=band):
            out.records.append(ProfileSet("age_band", band))
            return _goto(defn, state.evolve(step="gender", age_band=band), out)
        case bt.Gender(gender=gender):
            out.records.append(ProfileSet("gender", gender))
            return _end_profile(defn, state.evolve(gender=gender), out)
    q = _question(defn, state)
    match button:
        case bt.Agree(option=option):
            previous = state.answer(q.id)
            answer = Answer(q.id, q.id, "acuerdo", defn.version, option=option,
                            text=previous.text if previous else None)  # fmt: skip
            state = _record(state, answer, out)
            if q.follow_up is None:  # the file asks no "why?"
                return _leave_question(defn, state, out)
            return _goto(defn, state.evolve(step="reason"), out)
        case bt.Toggle(option=option):
            return _toggle(defn, state, q, option, out)
        case bt.Write() | bt.More(what="y"):
            return _goto(defn, state.evolve(step="write", target=None), out)
        case bt.More(what="o"):
            return _goto(defn, state.evolve(step="ask", target=None), out)
        case bt.Next() | bt.More():
            return _leave_question(defn, state, out)
        case bt.System(key=key, system=system):
            old = state.answer(key)
            if old is not None:
                state = _record(state, _with(old, defn, system=system), out)
            return _goto(defn, state.evolve(step="more", target=None), out)
        case bt.Judge(key=key, option=option):
            old = state.answer(f"p.{key}")
            answer = Answer(f"p.{key}", q.id, "posible", defn.version, option=option,
                            text=old.text if old else None, refers_to=key)  # fmt: skip
            state = _record(state, answer, out)
            if q.follow_up is None:  # the file asks no "what would make it possible?"
                return _next_target(defn, state, out)
            return _goto(defn, state.evolve(step="enabler"), out)
    raise AssertionError(f"a button offered at step {state.step!r} was not handled: {data}")


def _toggle(defn: Definition, state: State, q: Question, option: str, out: _Out) -> Step:
    key = f"{q.id}.o.{option}"
    old = state.answer(key)
    if old is not None:
        state = _remove(state, old, out)
    else:
        state = _record(state, Answer(key, q.id, "deseable", defn.version, option=option), out)
    (reply,) = prompts.current(defn, state)
    out.replies.append(Reply(reply.text, reply.buttons, replace=True))
    return out.done(state)


def _overlay_choice(defn: Definition, state: State, button: bt.ButtonData, out: _Out) -> Step:
    m = defn.messages
    closed = state.evolve(overlay=None, overlay_target=None)
    match button:
        case bt.Close() | bt.Erase(confirmed=False):
            said = m.closed if isinstance(button, bt.Close) else m.erase_cancelled
            out.replies.append(Reply(said))
            out.replies += prompts.current(defn, closed)
            return out.done(closed)
        case bt.Erase():
            out.records.append(ParticipantErased())
            out.replies.append(Reply(m.erased))
            return out.done(None)
        case bt.GoTo(question=question):
            return _enter(defn, closed, question, out)
        case bt.ReviewItem(key=key):
            return _goto(defn, state.evolve(overlay="review_item", overlay_target=key), out)
        case bt.ReviewEdit(key=key):
            return _goto(defn, state.evolve(overlay="review_edit", overlay_target=key), out)
        case bt.ReviewBack():
            return _goto(defn, state.evolve(overlay="review", overlay_target=None), out)
        case bt.ReviewGoTo(key=key):
            answer = state.answer(key)
            assert answer is not None
            return _enter(defn, closed, answer.question, out)
        case bt.ReviewDelete(key=key):
            answer = state.answer(key)
            assert answer is not None
            state = _repair(defn, _remove(state, answer, out), out)  # the step may be about it
            out.replies.append(Reply(m.review_deleted))
            if not state.answers:
                return _goto(defn, state.evolve(overlay=None, overlay_target=None), out)
            return _goto(defn, state.evolve(overlay="review", overlay_target=None), out)
    raise AssertionError(f"a button offered in overlay {state.overlay!r} was not handled")


# --- free text ------------------------------------------------------------------------------


def _text(defn: Definition, state: State, raw: str, out: _Out) -> Step:
    m = defn.messages
    text = raw.strip()
    if len(text) > MAX_TEXT:
        out.replies.append(Reply(m.text_too_long.format(length=len(text), limit=MAX_TEXT)))
        return out.done(state)
    if not text:
        out.replies.append(Reply(m.text_empty))
        return out.done(state)
    if state.overlay == "review_edit":
        old = state.answer(state.overlay_target or "")
        if old is not None:
            state = _record(state, _with(old, defn, text=text), out)
        out.replies.append(Reply(m.review_updated))
        return _goto(defn, state.evolve(overlay="review", overlay_target=None), out)
    if state.overlay is None and state.step in ("province", "comuna"):
        comuna = defn.consultation.profile.find_comuna(text)
        if comuna is not None:
            out.records.append(ProfileSet("comuna", comuna))
            return _goto(defn, state.evolve(step="age_band", target=None, comuna=comuna), out)
    if state.overlay is not None or state.step not in ("ask", "write", "more", "reason", "enabler"):
        out.replies.append(Reply(m.finished_again if state.step == "done" else m.use_buttons))
        if state.step != "done" or state.overlay is not None:
            out.replies += prompts.current(defn, state)
        return out.done(state)
    q = _question(defn, state)
    if state.step == "reason" or (state.step == "ask" and q.kind == "agreement"):
        if state.step == "ask":
            out.replies.append(Reply(m.use_buttons))
            out.replies += prompts.current(defn, state)
            return out.done(state)
        old = state.answer(q.id)
        answer = (
            _with(old, defn, text=text)
            if old
            else Answer(q.id, q.id, "acuerdo", defn.version, text=text)
        )
        state = _record(state, answer, out)
        out.replies.append(Reply(m.reason_saved))
        return _leave_question(defn, state, out)
    if state.step == "enabler":
        old = state.answer(f"p.{state.target}")
        if old is not None:
            state = _record(state, _with(old, defn, text=text), out)
        return _next_target(defn, state, out)
    if q.kind == "feasibility":  # 'ask' is never the step of a feasibility question
        out.replies.append(Reply(m.use_buttons))
        return out.done(state)
    key = f"{q.id}.t{state.seq + 1}"
    state = _record(state, Answer(key, q.id, "deseable", defn.version, text=text), out)
    return _goto(defn, state.evolve(step="system", target=key, seq=state.seq + 1), out)


# --- moving between steps and questions ----------------------------------------------------


def _goto(defn: Definition, state: State, out: _Out) -> Step:
    out.replies += prompts.current(defn, state)
    return out.done(state)


def _end_profile(defn: Definition, state: State, out: _Out) -> Step:
    out.replies.append(Reply(defn.messages.profile_done))
    return _enter(defn, state, defn.consultation.questions[0].id, out)


def _enter(defn: Definition, state: State, question_id: str, out: _Out) -> Step:
    """Start a question: its context card, then its first step."""
    q = defn.consultation.question(question_id)
    assert q is not None
    state = state.evolve(stage="questions", question=q.id, target=None)
    if q.kind != "feasibility":
        out.replies += prompts.current(defn, state.evolve(step="ask"), context=True)
        return out.done(state.evolve(step="ask"))
    targets = prompts.feasibility_targets(state)
    if q.context:
        out.replies.append(prompts.card(defn, q))
    if not targets:
        out.replies.append(Reply(defn.messages.no_desirable))
        return _leave_question(defn, state.evolve(step="judge"), out)
    out.replies.append(Reply(defn.messages.feasibility_intro))
    return _goto(defn, state.evolve(step="judge", target=targets[0].key), out)


def _next_target(defn: Definition, state: State, out: _Out) -> Step:
    keys = [a.key for a in prompts.feasibility_targets(state)]
    after = keys[keys.index(state.target) + 1 :] if state.target in keys else []
    if after:
        return _goto(defn, state.evolve(step="judge", target=after[0]), out)
    return _leave_question(defn, state, out)


def _leave_question(defn: Definition, state: State, out: _Out) -> Step:
    """Mark the current question as visited and go to the next one not yet visited."""
    visited = state.visited
    if state.question and state.question not in visited:
        visited = (*visited, state.question)
    state = state.evolve(visited=visited, target=None)
    following = _next_question(defn, state)
    if following is not None:
        return _enter(defn, state, following, out)
    state = state.evolve(stage="finished", step="done", question=None)
    out.records.append(Finished())
    out.replies += prompts.summary(defn, state)
    out.replies.append(Reply(defn.consultation.thanks))
    return out.done(state)


def _next_question(defn: Definition, state: State) -> str | None:
    ids = [q.id for q in defn.consultation.questions]
    start = ids.index(state.question) + 1 if state.question in ids else 0
    for qid in ids[start:] + ids[:start]:
        if qid not in state.visited:
            return qid
    return None


def _question(defn: Definition, state: State) -> Question:
    q = defn.consultation.question(state.question or "")
    assert q is not None, "a question step always has a question (see _repair)"
    return q


# --- answers --------------------------------------------------------------------------------


def _record(state: State, answer: Answer, out: _Out) -> State:
    previous = state.answer(answer.key)
    if previous == answer:  # the same choice again: nothing to store
        return state
    out.records.append(AnswerRecorded(answer, previous))
    if previous is None:
        return state.evolve(answers=(*state.answers, answer))
    return state.evolve(answers=tuple(answer if a.key == answer.key else a for a in state.answers))


def _remove(state: State, answer: Answer, out: _Out) -> State:
    """Delete an answer, and the feasibility judgements of it."""
    gone = [a for a in state.answers if a.key == answer.key or a.refers_to == answer.key]
    out.records += [AnswerRemoved(a) for a in gone]
    keys = {a.key for a in gone}
    return state.evolve(answers=tuple(a for a in state.answers if a.key not in keys))


def _with(old: Answer, defn: Definition, **changes: str | None) -> Answer:
    fields = {**old.__dict__, **changes, "version": defn.version}
    return Answer(**fields)


# --- keeping stored states valid -----------------------------------------------------------


def _repair(defn: Definition, state: State, out: _Out) -> State:
    """Bring a stored state in line with the (possibly edited) consultation.

    A question removed, an answer deleted or a changed kind must never leave a participant
    stuck: they continue on the new version at the nearest sensible step.
    """
    if state.version != defn.version:
        out.replies.append(Reply(defn.messages.version_changed))
        state = state.evolve(version=defn.version)
    if (
        state.overlay in ("review_item", "review_edit")
        and state.answer(state.overlay_target or "") is None
    ):
        state = state.evolve(overlay="review" if state.answers else None, overlay_target=None)
    if state.overlay == "review" and not state.answers:
        state = state.evolve(overlay=None)
    if state.stage != "questions":
        if state.step == "comuna" and not any(
            p.id == state.target for p in defn.consultation.profile.provinces
        ):
            state = state.evolve(step="province", target=None)
        return state
    q = defn.consultation.question(state.question or "")
    if q is None:
        nxt = _next_question(defn, state.evolve(question=None))
        if nxt is None:
            return state.evolve(stage="finished", step="done", question=None, target=None)
        if _kind(defn, nxt) == "feasibility":
            return _first_target(defn, state, nxt)
        return state.evolve(step="ask", question=nxt, target=None)
    valid_steps = {
        "agreement": {"ask", "reason"},
        "desirable": {"ask", "write", "system", "more"},
        "feasibility": {"judge", "enabler"},
    }[q.kind]
    if state.step not in valid_steps:
        return (
            _first_target(defn, state, q.id)
            if q.kind == "feasibility"
            else state.evolve(step="ask", target=None)
        )
    if state.step in ("system", "judge", "enabler") and state.answer(state.target or "") is None:
        if q.kind == "feasibility":
            return _first_target(defn, state, q.id)
        return state.evolve(step="more", target=None)
    if state.step == "enabler" and state.answer(f"p.{state.target}") is None:
        return state.evolve(step="judge")  # the judgement was deleted: judge again
    if state.step == "reason" and state.answer(q.id) is None:
        return state.evolve(step="ask")
    return state


def _kind(defn: Definition, question_id: str) -> str:
    q = defn.consultation.question(question_id)
    return q.kind if q else ""


def _first_target(defn: Definition, state: State, question_id: str) -> State:
    targets = prompts.feasibility_targets(state)
    if targets:
        return state.evolve(step="judge", question=question_id, target=targets[0].key)
    # Nothing to judge: treat the question as visited and stop at the end of the consultation
    visited = state.visited if question_id in state.visited else (*state.visited, question_id)
    nxt = _next_question(defn, state.evolve(question=question_id, visited=visited))
    if nxt is None or _kind(defn, nxt) == "feasibility":
        return state.evolve(stage="finished", step="done", question=None, target=None,
                            visited=visited)  # fmt: skip
    return state.evolve(step="ask", question=nxt, target=None, visited=visited)
