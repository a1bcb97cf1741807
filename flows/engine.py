"""The flow engine: a pure function of (definition, participant state, event).

``step(defn, state, event)`` returns a ``Step``: the new state (None: nothing to store, as
before consent or after erasure), the replies to send and the records to store. No I/O
happens here, so any channel can drive it and tests can explore it exhaustively.

Bad participant input never raises: it becomes a reply and the state stays as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from flows import buttons as bt
from flows import events as ev  # the many kinds of event and record, as bt. for buttons
from flows import matching, prompts
from flows.definition import MAX_TEXT, Definition
from flows.events import Answer, Reply  # built all through the engine
from flows.schema import Question
from flows.state import Role, State


@dataclass(frozen=True)
class Step:
    """What one event did: the new state, the replies and the records to store."""

    state: State | None
    replies: tuple[Reply, ...] = ()
    records: tuple[ev.Record, ...] = ()


@dataclass
class _Out:
    """Replies and records gathered while one event is handled."""

    replies: list[Reply] = field(default_factory=list)
    records: list[ev.Record] = field(default_factory=list)

    def done(self, state: State | None) -> Step:
        return Step(state, tuple(_readable(self.replies)), tuple(self.records))


def _readable(replies: list[Reply]) -> list[Reply]:
    """Every message at most ``prompts.MAX_MESSAGE`` characters; the buttons stay under the
    last piece (a long participant text echoed back can make a reply longer)."""
    out: list[Reply] = []
    for reply in replies:
        if len(reply.text) <= prompts.MAX_MESSAGE:
            out.append(reply)
            continue
        *first, last = prompts.split_text(reply.text, prompts.MAX_MESSAGE)
        out += [Reply(piece) for piece in first]
        out.append(Reply(last, reply.buttons, reply.replace, reply.alone))
    return out


def new_state(defn: Definition, role: Role = "citizen", comuna: str | None = None) -> State:
    """The state of someone who has just consented: at the profile, or (municipal contacts,
    whose comuna is known) straight at the first question."""
    if role == "municipal":
        first = defn.consultation.questions[0].id
        return State("questions", "ask", defn.version, question=first, role=role, comuna=comuna)
    return State("profile", "province", defn.version, role=role)


def step(
    defn: Definition,
    state: State | None,
    event: ev.Event,
    invite: ev.InviteCheck | None = None,
    closed_on: date | None = None,
) -> Step:
    """Handle one event of one participant.

    The engine does no I/O itself; what it needs from outside comes as inputs:

    - ``invite``: the caller's check of an invitation token that came with the event
      (``/start <token>`` or an invitation's consent button);
    - ``closed_on``: the last day of the consultation, once it has closed. A closed
      consultation stores no more answers; a participant can still read the help and the
      privacy notice and erase their data: it stays theirs.
    """
    if closed_on is not None and not _erasing(event):
        return _closed(defn, state, event, closed_on)
    out = _Out()
    if invite is not None and invite.verdict != "ok":
        out.replies.append(Reply(_invite_problem(defn, invite)))
        invite = None
    invited = invite.invited if invite else None
    if state is not None:
        state = _repair(defn, state, out)
    if state is None or state.stage == "declined":
        return _before_consent(defn, state, event, invited, out)
    if isinstance(event, ev.Start) and invited is not None and state.role != "municipal":
        return _upgrade(defn, state, invited, out)
    if isinstance(event, ev.Start):
        out.replies.append(Reply(defn.messages.welcome_back))
        state = state.evolve(overlay=None, overlay_target=None)
        out.replies += prompts.resume(defn, state)
        return out.done(state)
    if isinstance(event, ev.Command):
        return _command(defn, state, event, out)
    if isinstance(event, ev.Choice):
        return _choice(defn, state, event.data, out)
    if isinstance(event, ev.Text):
        return _text(defn, state, event.text, out)
    if isinstance(event, ev.Edited):
        out.replies.append(Reply(defn.messages.edited))
        return out.done(state)
    assert isinstance(event, ev.Unsupported)
    out.replies.append(Reply(defn.messages.unsupported))
    out.replies += prompts.current(defn, state)
    return out.done(state)


def _erasing(event: ev.Event) -> bool:
    """/borrar, or its confirmation button."""
    if isinstance(event, ev.Command):
        return event.name == "borrar"
    return isinstance(event, ev.Choice) and isinstance(bt.decode(event.data), bt.Erase)


def _closed(defn: Definition, state: State | None, event: ev.Event, closed_on: date) -> Step:
    """After the closing: the notice, after the help or privacy text if asked for; the state
    is returned as it came, so nothing is stored."""
    notice = Reply(prompts.closed(defn, closed_on))
    if isinstance(event, ev.Command) and event.name in ("ayuda", "privacidad"):
        asked = defn.messages.help if event.name == "ayuda" else defn.consultation.privacy
        return Step(state, (Reply(asked), notice))
    return Step(state, (notice,))


# --- before consent -------------------------------------------------------------------------


def _before_consent(
    defn: Definition, state: State | None, event: ev.Event, invited: ev.Invited | None, out: _Out
) -> Step:
    """Newcomers (state None: nothing stored) and those who declined."""
    m = defn.messages
    pressed = bt.decode(event.data) if isinstance(event, ev.Choice) else None
    if isinstance(event, ev.Text) and state is None:
        offered = prompts.offered(prompts.consent(defn))
        found = matching.candidates(event.text, offered, _role)
        pressed = bt.decode(found[0].data) if len(found) == 1 else None
        if pressed is None:
            out.replies.append(Reply(defn.messages.consent_hint))
            return out.done(state)
    if isinstance(pressed, bt.Consent) and pressed.accept:
        out.records.append(ev.ConsentGiven())
        if invited is not None:
            out.records += [ev.InvitationAccepted(invited.invitation_id),
                            ev.ProfileSet("comuna", invited.comuna)]  # fmt: skip
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
        out.records.append(ev.ConsentDeclined())
        out.replies.append(Reply(m.declined))
        return out.done(State("declined", "declined", defn.version))
    if isinstance(event, ev.Command) and event.name == "borrar" and state is not None:
        # Who declined is stored only so as not to be asked again: erased at once.
        out.records.append(ev.ParticipantErased())
        out.replies.append(Reply(m.erased))
        return out.done(None)
    if isinstance(event, ev.Command):
        texts = {"ayuda": m.help, "privacidad": defn.consultation.privacy,
                 "glosario": prompts.glossary(defn)}  # fmt: skip
        if state is None:
            texts["borrar"] = m.nothing_stored
        fallback = m.consent_required if state is None else m.declined_again
        out.replies.append(Reply(texts.get(event.name, fallback)))
        return out.done(state)
    if isinstance(event, ev.Start):
        out.replies += prompts.consent(defn, invited)
        return out.done(state)
    out.replies.append(Reply(m.consent_required if state is None else m.declined_again))
    return out.done(state)


def _upgrade(defn: Definition, state: State, invited: ev.Invited, out: _Out) -> Step:
    """A citizen opens their personal invitation: they keep every answer and from now on
    answer for their comuna; the profile questions are no longer needed."""
    out.records += [ev.InvitationAccepted(invited.invitation_id),
                    ev.ProfileSet("comuna", invited.comuna)]  # fmt: skip
    state = state.evolve(role="municipal", comuna=invited.comuna, overlay=None,
                         overlay_target=None)  # fmt: skip
    comuna = next((o.label for o in defn.consultation.profile.comunas()
                   if o.id == invited.comuna), "")  # fmt: skip
    out.replies.append(Reply(defn.messages.invitation_upgraded.format(
        name=invited.name, institution=invited.institution, comuna=comuna)))  # fmt: skip
    if state.stage == "profile":
        return _enter(defn, state, defn.consultation.questions[0].id, out)
    out.replies += prompts.resume(defn, state)
    return out.done(state)


def _invite_problem(defn: Definition, invite: ev.InviteCheck) -> str:
    m = defn.messages
    return {
        "used": m.invitation_used,
        "expired": m.invitation_expired,
        "revoked": m.invitation_revoked,
        "erased": m.invitation_erased,
        "throttled": m.invitation_throttled,
    }.get(invite.verdict, m.invitation_unknown)


# --- commands -------------------------------------------------------------------------------


def _command(defn: Definition, state: State, cmd: ev.Command, out: _Out) -> Step:
    m = defn.messages
    texts = {"ayuda": m.help, "privacidad": defn.consultation.privacy,
             "glosario": prompts.glossary(defn)}  # fmt: skip
    if cmd.name in texts:
        # then where they are, so that nobody has to scroll back up to find it
        out.replies.append(Reply(texts[cmd.name]))
        out.replies += prompts.resume(defn, state)
        return out.done(state)
    if cmd.name in ("menu", "revisar", "borrar"):
        overlay = {"menu": "menu", "revisar": "review", "borrar": "erase"}[cmd.name]
        if overlay == "review" and not state.answers and not prompts.profile_lines(defn, state):
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
    if state.step == "confirm":
        state = state.evolve(step="ask", pending=None)
        out.replies.append(Reply(m.cancelled))
        out.replies += prompts.current(defn, state)
        return out.done(state)
    out.replies.append(Reply(m.nothing_to_cancel))
    return out.done(state)


def _skip(defn: Definition, state: State, out: _Out) -> Step:
    """Leave the current step without answering it; at a question, the whole question."""
    s = state.step
    if s == "province" or s == "comuna":
        return _goto(defn, state.evolve(step="age_band", target=None), out)
    if s == "age_band":
        return _goto(defn, state.evolve(step="gender"), out)
    if s == "gender":
        return _end_profile(defn, state, out)
    if s == "system":  # «No sé»: the change stays, without a system
        return _saved(defn, state, out)
    if s == "done":
        out.replies.append(Reply(defn.messages.finished_again))
        return out.done(state)
    # "Pregunta omitida" would be wrong after an answer (the agreement before its "why?")
    answered = prompts.answered(state, _question(defn, state))
    m = defn.messages
    out.replies.append(Reply(m.reason_saved if answered else m.skipped))
    return _leave_question(defn, state.evolve(pending=None), out)


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
        case bt.Comuna(option=comuna):
            out.records.append(ev.ProfileSet("comuna", comuna))
            return _goto(defn, state.evolve(step="age_band", target=None, comuna=comuna), out)
        case bt.AgeBand(option=band):
            out.records.append(ev.ProfileSet("age_band", band))
            return _goto(defn, state.evolve(step="gender", age_band=band), out)
        case bt.Gender(option=gender):
            out.records.append(ev.ProfileSet("gender", gender))
            return _end_profile(defn, state.evolve(gender=gender), out)
    q = _question(defn, state)
    match button:
        case bt.Agree(option=option):
            return _agree(defn, state, q, option, out)
        case bt.ReasonStill(keep=True):
            out.replies.append(Reply(defn.messages.reason_saved))
            return _leave_question(defn, state, out)
        case bt.ReasonStill():
            old = state.answer(q.id)
            if old is not None:
                state = _record(state, _with(old, defn, text=None), out)
            return _goto(defn, state.evolve(step="reason"), out)
        case bt.Toggle(option=option):
            return _toggle(defn, state, q, option, out)
        case bt.Facts():
            out.replies += prompts.cards(defn, q)
            return out.done(state)
        case bt.Next():
            return _leave_question(defn, state, out)
        case bt.SaveText(save=True):
            return _new_change(defn, state.evolve(pending=None), q, state.pending or "", out)
        case bt.SaveText():
            out.replies.append(Reply(defn.messages.not_saved))
            return _saved(defn, state.evolve(pending=None), out, said=False)
        case bt.System(key=key, system=system):
            old = state.answer(key)
            if old is not None:
                state = _record(state, _with(old, defn, system=system), out)
            return _saved(defn, state, out)
        case bt.Judge(key=key, option=option):
            answer = Answer(f"p.{key}", q.id, "posible", defn.version, option=option,
                            refers_to=key)  # fmt: skip
            state = _record(state, answer, out)
            reply = prompts.judge_prompt(defn, state, q)
            out.replies.append(Reply(reply.text, reply.buttons, replace=True))
            return out.done(state)
        case bt.Done():
            return _judged(defn, state, q, out)
    raise AssertionError(f"a button offered at step {state.step!r} was not handled: {data}")


def _agree(defn: Definition, state: State, q: Question, option: str, out: _Out) -> Step:
    """An agreement chosen; a reason given for another choice before is not kept silently."""
    previous = state.answer(q.id)
    reason = previous.text if previous else None
    answer = Answer(q.id, q.id, "acuerdo", defn.version, option=option, text=reason)
    state = _record(state, answer, out)
    if q.follow_up is None:  # the file asks no "why?"
        return _leave_question(defn, state, out)
    if reason and previous is not None and previous.option != option:
        return _goto(defn, state.evolve(step="reason_check"), out)
    if reason:
        out.replies.append(Reply(defn.messages.reason_saved))
        return _leave_question(defn, state, out)
    return _goto(defn, state.evolve(step="reason"), out)


def _new_change(defn: Definition, state: State, q: Question, text: str, out: _Out) -> Step:
    """A desirable change in the participant's words; then, which system it belongs to."""
    key = f"{q.id}.t{state.seq + 1}"
    state = _record(state, Answer(key, q.id, "deseable", defn.version, text=text), out)
    first = not any(a.kind == "deseable" and a.text for a in state.answers if a.key != key)
    state = state.evolve(step="system", target=key, seq=state.seq + 1)
    out.replies.append(prompts.system_prompt(defn, state, full=first))
    return out.done(state)


def _saved(defn: Definition, state: State, out: _Out, *, said: bool = True) -> Step:
    """Back at the question after a change: a short line, not the whole question again."""
    state = state.evolve(step="ask", target=None)
    reply = prompts.saved_prompt(defn, state, _question(defn, state))
    out.replies.append(reply if said else Reply(defn.messages.more_prompt_after_no, reply.buttons))
    return out.done(state)


def _judged(defn: Definition, state: State, q: Question, out: _Out) -> Step:
    """«Listo» at the feasibility question: the changes not marked possible are judged not
    possible; then, once and if any is possible, what would make them possible."""
    no = q.options[-1].id
    for target in prompts.feasibility_targets(state):
        if state.answer(f"p.{target.key}") is None:
            answer = Answer(f"p.{target.key}", q.id, "posible", defn.version, option=no,
                            refers_to=target.key)  # fmt: skip
            state = _record(state, answer, out)
    if q.follow_up is None or not _possible(defn, state, q):
        return _leave_question(defn, state, out)
    return _goto(defn, state.evolve(step="enabler", target=None), out)


def _possible(defn: Definition, state: State, q: Question) -> list[Answer]:
    yes = q.options[0].id
    return [a for a in state.answers if a.kind == "posible" and a.option == yes]


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
    review = state.evolve(overlay="review", overlay_target=None)
    match button:
        case bt.Close() | bt.Erase(confirmed=False):
            said = m.closed if isinstance(button, bt.Close) else m.erase_cancelled
            out.replies.append(Reply(said))
            out.replies += prompts.resume(defn, closed)
            return out.done(closed)
        case bt.Erase():
            out.records.append(ev.ParticipantErased())
            out.replies.append(Reply(m.erased))
            return out.done(None)
        case bt.GoTo(question=question):
            return _enter(defn, closed, question, out)
        case bt.ReviewItem(key=key):
            return _goto(defn, state.evolve(overlay="review_item", overlay_target=key), out)
        case bt.ReviewEdit(key=key):
            return _goto(defn, state.evolve(overlay="review_edit", overlay_target=key), out)
        case bt.ReviewBack():
            return _goto(defn, review, out)
        case bt.ProfileEdit(field=name):
            return _goto(defn, state.evolve(overlay="profile", overlay_target=name), out)
        case bt.ProfileOption(option=option):  # from /revisar: back to its list, whatever field
            out.records.append(ev.ProfileSet(button.profile_field, option))
            out.replies.append(Reply(m.review_updated))
            return _goto(defn, review.evolve(**{button.profile_field: option}), out)
        case bt.ReviewGoTo(key=key):
            answer = state.answer(key)
            assert answer is not None
            return _enter(defn, closed, answer.question, out)
        case bt.ReviewDelete(key=key, confirmed=False):
            return _goto(defn, state.evolve(overlay="review_delete", overlay_target=key), out)
        case bt.ReviewDelete(key=key):
            answer = state.answer(key)
            assert answer is not None
            state = _repair(defn, _remove(state, answer, out), out)  # the step may be about it
            out.replies.append(Reply(m.review_deleted))
            if not state.answers and not prompts.profile_lines(defn, state):
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
    if state.step == "done" and state.overlay is None:
        out.replies.append(Reply(m.finished_again))
        return out.done(state)
    # type or tap: text that names a button acts as that button
    offered = prompts.offered(prompts.current(defn, state))
    found = matching.candidates(text, offered, _role)
    if len(found) == 1:
        return _choice(defn, state, found[0].data, out)
    if len(found) > 1:
        out.replies.append(Reply(m.which.format(text=text), tuple((b,) for b in found)))
        return out.done(state)
    if state.overlay is None and state.step == "judge" and _NUMBERS.fullmatch(text):
        return _judge_numbers(defn, state, [int(n) for n in re.findall(r"\d+", text)], out)
    if state.overlay is None and state.step in ("province", "comuna"):
        comuna = defn.consultation.profile.find_comuna(text)
        if comuna is not None:
            out.records.append(ev.ProfileSet("comuna", comuna))
            return _goto(defn, state.evolve(step="age_band", target=None, comuna=comuna), out)
    if state.overlay is not None or state.step not in ("ask", "system", "reason", "enabler"):
        out.replies.append(Reply(_hint(defn, text, offered)))
        return out.done(state)
    q = _question(defn, state)
    if state.step == "reason":
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
        for possible in _possible(defn, state, q):
            state = _record(state, _with(possible, defn, text=text), out)
        out.replies.append(Reply(m.reason_saved))
        return _leave_question(defn, state, out)
    if q.kind != "desirable":
        out.replies.append(Reply(_hint(defn, text, offered)))
        return out.done(state)
    if matching.is_chatter(text):  # "sí", "gracias": not a change unless they say so
        return _goto(defn, state.evolve(step="confirm", pending=text, target=None), out)
    return _new_change(defn, state, q, text, out)


_NUMBERS = re.compile(r"[\d\s,;.y]+")
"""«1, 3 y 4» at the feasibility question: the changes of those numbers."""


def _judge_numbers(defn: Definition, state: State, numbers: list[int], out: _Out) -> Step:
    """Typed numbers toggle the changes of those numbers, as their buttons would."""
    q = _question(defn, state)
    targets = prompts.feasibility_targets(state)
    if not numbers or not all(1 <= n <= len(targets) for n in numbers):
        out.replies.append(Reply(defn.messages.judge_numbers.format(total=len(targets))))
        return out.done(state)
    yes, no = q.options[0].id, q.options[-1].id
    for n in dict.fromkeys(numbers):
        target = targets[n - 1]
        old = state.answer(f"p.{target.key}")
        option = no if old is not None and old.option == yes else yes
        answer = Answer(f"p.{target.key}", q.id, "posible", defn.version, option=option,
                        refers_to=target.key)  # fmt: skip
        state = _record(state, answer, out)
    out.replies.append(prompts.judge_prompt(defn, state, q))
    return out.done(state)


def _role(button: ev.Button) -> matching.Role | None:
    return bt.role(button.data)


def _hint(defn: Definition, text: str, offered: list[ev.Button]) -> str:
    """One line naming two or three of the buttons, never the whole message again."""
    labels = [b.label.removeprefix("✅ ") for b in offered][:3]
    if not labels:
        return defn.messages.use_commands
    names = ", ".join(f"«{label}»" for label in labels)
    return defn.messages.use_buttons.format(text=_clip(text, 40), buttons=names)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- moving between steps and questions ----------------------------------------------------


def _goto(defn: Definition, state: State, out: _Out) -> Step:
    out.replies += prompts.current(defn, state)
    return out.done(state)


def _end_profile(defn: Definition, state: State, out: _Out) -> Step:
    out.replies.append(Reply(defn.messages.profile_done))
    return _enter(defn, state, defn.consultation.questions[0].id, out)


def _enter(defn: Definition, state: State, question_id: str, out: _Out) -> Step:
    """Start a question: its context cards, then the question itself."""
    q = defn.consultation.question(question_id)
    assert q is not None
    state = state.evolve(stage="questions", question=q.id, target=None, pending=None)
    if q.kind != "feasibility":
        out.replies += prompts.current(defn, state.evolve(step="ask"), context=True)
        return out.done(state.evolve(step="ask"))
    if not prompts.feasibility_targets(state):
        out.replies.append(Reply(defn.messages.no_desirable))
        return _leave_question(defn, state.evolve(step="judge"), out)
    out.replies += prompts.current(defn, state.evolve(step="judge"), context=True)
    return out.done(state.evolve(step="judge"))


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
    out.records.append(ev.Finished())
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
    out.records.append(ev.AnswerRecorded(answer, previous))
    if previous is None:
        return state.evolve(answers=(*state.answers, answer))
    return state.evolve(answers=tuple(answer if a.key == answer.key else a for a in state.answers))


def _remove(state: State, answer: Answer, out: _Out) -> State:
    """Delete an answer, and the feasibility judgements of it."""
    gone = [a for a in state.answers if a.key == answer.key or a.refers_to == answer.key]
    out.records += [ev.AnswerRemoved(a) for a in gone]
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
        state.overlay in ("review_item", "review_edit", "review_delete")
        and state.answer(state.overlay_target or "") is None
    ):
        state = state.evolve(overlay="review" if state.answers else None, overlay_target=None)
    if state.overlay == "review" and not state.answers and not prompts.profile_lines(defn, state):
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
        "agreement": {"ask", "reason", "reason_check"},
        "desirable": {"ask", "system", "confirm"},
        "feasibility": {"judge", "enabler"},
    }[q.kind]
    if state.step not in valid_steps:  # also the steps of older versions: "write", "more"
        return (
            _first_target(defn, state, q.id)
            if q.kind == "feasibility"
            else state.evolve(step="ask", target=None, pending=None)
        )
    if state.step == "system" and state.answer(state.target or "") is None:
        return state.evolve(step="ask", target=None)
    if state.step == "confirm" and not state.pending:
        return state.evolve(step="ask")
    if q.kind == "feasibility" and not prompts.feasibility_targets(state):
        return _first_target(defn, state, q.id)
    if state.step == "enabler" and not _possible(defn, state, q):
        return state.evolve(step="judge")  # the judgements were deleted: judge again
    given = state.answer(q.id)
    if state.step in ("reason", "reason_check") and given is None:
        return state.evolve(step="ask")
    if state.step == "reason_check" and given is not None and not given.text:
        return state.evolve(step="reason")
    return state


def _kind(defn: Definition, question_id: str) -> str:
    q = defn.consultation.question(question_id)
    return q.kind if q else ""


def _first_target(defn: Definition, state: State, question_id: str) -> State:
    if prompts.feasibility_targets(state):
        return state.evolve(step="judge", question=question_id, target=None)
    # Nothing to judge: treat the question as visited and stop at the end of the consultation
    visited = state.visited if question_id in state.visited else (*state.visited, question_id)
    nxt = _next_question(defn, state.evolve(question=question_id, visited=visited))
    if nxt is None or _kind(defn, nxt) == "feasibility":
        return state.evolve(stage="finished", step="done", question=None, target=None,
                            visited=visited)  # fmt: skip
    return state.evolve(step="ask", question=nxt, target=None, visited=visited)
