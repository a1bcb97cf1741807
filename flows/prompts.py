"""What the participant sees at each step: states rendered as replies.

Pure functions of (definition, state). The engine also uses them to decide which buttons are
valid right now: a button is accepted only if the current prompt offers it, which rejects
stale buttons (from an earlier message) and forged callback data alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from flows import buttons as bt
from flows.definition import Definition
from flows.events import Answer, Button, Invited, Reply
from flows.schema import Option, Question
from flows.state import State

Rows = tuple[tuple[Button, ...], ...]


MAX_REVIEW_BUTTONS = 40
MAX_MESSAGE = 700
"""The longest message we send: more is a wall of text on a phone (Telegram allows 4096)."""


def consent(defn: Definition, invited: Invited | None = None) -> list[Reply]:
    """The welcome and the consent question, for a newcomer (nothing is stored yet).

    An invited contact is greeted by name; their consent button carries the invitation's
    token, which the caller checks again when it is pressed.
    """
    m = defn.messages
    c = defn.consultation
    yes = bt.Consent(True, invited.token if invited else "").encode()
    buttons = ((Button(m.consent_yes, yes),), (_b(m.consent_no, bt.Consent(False)),))
    if invited is None:
        return [Reply(c.welcome), Reply(c.consent, buttons)]
    comuna = next((o.label for o in c.profile.comunas() if o.id == invited.comuna), "")
    greeting = m.invited_welcome.format(
        name=invited.name, institution=invited.institution, comuna=comuna
    )
    return [Reply(f"{greeting}\n\n{c.welcome}"), Reply(c.consent, buttons)]


def current(defn: Definition, state: State, *, context: bool = False) -> list[Reply]:
    """The prompt of the participant's current step (or of the open overlay).

    ``context``: entering the question, so its context cards come first.
    """
    if state.overlay is not None:
        return [_overlay(defn, state)]
    return _step(defn, state, context=context)


def resume(defn: Definition, state: State) -> list[Reply]:
    """Where the participant is, shown again (after /start, /ayuda, closing /revisar...):
    the question itself with its buttons, also when they were in one of its sub-steps."""
    if state.overlay is not None or state.stage != "questions":
        return current(defn, state)
    q = defn.consultation.question(state.question or "")
    if q is None or state.step == "ask":
        return current(defn, state)
    if q.kind == "feasibility":
        head = [_judge_head(defn, q)]
    else:
        asked = _question_step(defn, state.evolve(step="ask"), q, Button("", ""), full=False)
        head = [Reply(r.text) for r in asked]
    return [*head, *current(defn, state)]


def closed(defn: Definition, last_day: date) -> str:
    """The notice that the consultation closed on ``last_day``."""
    title = defn.consultation.title
    return defn.messages.consultation_closed.format(title=title, date=f"{last_day:%d-%m-%Y}")


def glossary(defn: Definition) -> str:
    terms = defn.consultation.glossary
    lines = [f"• {t.term}: {t.definition}" for t in terms]
    return (
        "\n".join([defn.messages.glossary_header, *lines]) if terms else defn.messages.no_glossary
    )


def buttons_of(replies: Iterable[Reply]) -> set[str]:
    """The data of every button in ``replies``."""
    return {b.data for b in offered(replies)}


def offered(replies: Iterable[Reply]) -> list[Button]:
    """Every button in ``replies``, in order."""
    return [b for r in replies for row in r.buttons for b in row]


def skip_data(state: State) -> str:
    return bt.Skip(state.step, state.target or state.question or "").encode()


# --- steps ------------------------------------------------------------------------------------


def _step(defn: Definition, state: State, *, context: bool) -> list[Reply]:
    m = defn.messages
    c = defn.consultation
    skip = Button(m.btn_skip, skip_data(state))
    if state.step == "declined":
        return [Reply(m.declined_again)]
    if state.step in ("province", "comuna", "age_band", "gender"):
        return [profile_prompt(defn, state.step, state.target, skip)]
    if state.step == "done":
        return [Reply(m.finished_again)]
    question = c.question(state.question or "")
    if question is None:  # only reachable with a state the engine has not repaired
        return [Reply(m.finished_again)]
    intro = [Reply(question.intro)] if context and question.intro else []
    replies = intro
    replies += _question_step(defn, state, question, skip, full=context)
    return replies


def profile_prompt(defn: Definition, step: str, province_id: str | None, last: Button) -> Reply:
    """A profile question; ``last`` is the button under the options (skip, or back)."""
    m = defn.messages
    profile = defn.consultation.profile
    if step == "province":
        rows = _grid([_b(p.label, bt.Province(p.id)) for p in profile.provinces], 3)
        rows += ((_b(profile.outside.label, bt.Comuna(profile.outside.id)),), (last,))
        return Reply(m.ask_province, rows)
    if step == "comuna":
        province = next((p for p in profile.provinces if p.id == province_id), None)
        comunas = province.comunas if province else []
        rows = _grid([_b(o.label, bt.Comuna(o.id)) for o in comunas], 2)
        rows += ((_b(m.btn_back, bt.Province()), last),)
        text = m.ask_comuna.format(province=province.label if province else "")
        return Reply(text, rows)
    if step == "age_band":
        rows = _grid([_b(o.label, bt.AgeBand(o.id)) for o in profile.age_bands], 2)
        note = defn.consultation.minors
        text = f"{m.ask_age_band}\n\n{note}" if note else m.ask_age_band
        return Reply(text, (*rows, (last,)))
    rows = _grid([_b(o.label, bt.Gender(o.id)) for o in profile.genders], 2)
    return Reply(m.ask_gender, (*rows, (last,)))


def cards(defn: Definition, question: Question) -> list[Reply]:
    """The context cards shown when a question is entered."""
    header = defn.messages.context_header
    return [Reply(f"{header} {text}") for text in question.context]


def _question_step(
    defn: Definition, state: State, q: Question, skip: Button, *, full: bool
) -> list[Reply]:
    m = defn.messages
    rows: Rows
    if state.step == "ask" and q.kind == "agreement":
        given = state.answer(q.id)
        rows = _mark(
            tuple((_b(o.label, bt.Agree(q.id, o.id)),) for o in q.options),
            {bt.Agree(q.id, given.option or "").encode()} if given else set(),
        )
        return _asked(defn, q, m.agreement_hint, (*rows, *_facts(defn, q), (skip,)), full=full)
    if state.step == "ask":
        chosen = {bt.Toggle(q.id, a.option).encode() for a in state.answers_to(q.id) if a.option}
        rows = _mark(tuple((_b(o.label, bt.Toggle(q.id, o.id)),) for o in q.options), chosen)
        hint = m.desirable_hint if q.options else m.desirable_hint_no_options
        rows += (*_facts(defn, q), (_b(m.btn_next, bt.Next(q.id)),))
        return _asked(defn, q, hint, rows, full=full, alone=bool(q.options))
    if state.step == "reason":
        return [Reply(q.follow_up or m.write_prompt, ((skip,),))]
    if state.step == "reason_check":
        given = state.answer(q.id)
        keep = _b(m.btn_reason_keep, bt.ReasonStill(q.id, True))
        other = _b(m.btn_reason_new, bt.ReasonStill(q.id, False))
        text = m.reason_check.format(text=given.text if given and given.text else "")
        return [Reply(text, ((keep,), (other,)))]
    if state.step == "confirm":
        yes = _b(m.btn_save_yes, bt.SaveText(q.id, True))
        no = _b(m.btn_save_no, bt.SaveText(q.id, False))
        return [Reply(m.save_confirm.format(text=state.pending or ""), ((yes, no),))]
    if state.step == "system":
        return [system_prompt(defn, state, full=full)]
    if state.step == "judge":
        head = [_judge_head(defn, q)] if full else []
        return [*head, judge_prompt(defn, state, q)]
    # enabler
    return [Reply(q.follow_up or m.write_prompt, ((skip,),))]


def _facts(defn: Definition, q: Question) -> Rows:
    return ((_b(defn.messages.btn_facts, bt.Facts(q.id)),),) if q.context else ()


def saved_prompt(defn: Definition, state: State, q: Question) -> Reply:
    """After a change is saved and tagged: a short line, not the whole question again."""
    next_button = ((_b(defn.messages.btn_next, bt.Next(q.id)),),)
    return Reply(defn.messages.more_prompt, next_button)


def system_prompt(defn: Definition, state: State, *, full: bool) -> Reply:
    """Which system of the regional strategy a change belongs to; the systems explained the
    first time (``full``)."""
    m = defn.messages
    c = defn.consultation
    answer = state.answer(state.target or "")
    key = state.target or ""
    rows = _grid([_b(s.label, bt.System(key, s.id)) for s in c.systems], 3)
    rows += ((Button(m.btn_system_unknown, skip_data(state)),),)
    rows += ((_b(m.btn_next, bt.Next(state.question or "")),),)
    text = m.system_prompt.format(text=answer.text if answer else "")
    if full and c.systems_intro:
        text = f"{text}\n\n{c.systems_intro}"
    return Reply(text, rows)


def judge_prompt(defn: Definition, state: State, q: Question) -> Reply:
    """The feasibility question as the workshop asked it: every change of the participant in
    one message, each toggled possible or not with one tap (the message's text stays the
    same, only its buttons change), then «Listo»."""
    m = defn.messages
    yes, no = q.options[0].id, q.options[-1].id
    targets = feasibility_targets(state)
    width = max(30, min(50, MAX_MESSAGE // max(len(targets), 1) - 8))
    lines, rows = [], []
    for n, target in enumerate(targets, 1):
        verdict = state.answer(f"p.{target.key}")
        possible = verdict is not None and verdict.option == yes
        lines.append(f"{n}. {_clip(describe(defn, target), width)}")
        label = f"{'✅ ' if possible else ''}{n}. {_clip(describe(defn, target), 32)}"
        rows.append((_b(label, bt.Judge(target.key, no if possible else yes)),))
    rows.append((_b(m.btn_done, bt.Done(q.id)),))
    return Reply("\n".join(lines), tuple(rows), alone=True)


def _judge_head(defn: Definition, q: Question) -> Reply:
    m = defn.messages
    return Reply(f"{_head(defn, q)}\n\n{q.text}\n\n{m.judge_hint}")


def _head(defn: Definition, q: Question) -> str:
    total = len(defn.consultation.questions)
    return defn.messages.question_header.format(
        number=q.number, position=_position(defn, q), total=total, title=q.title
    )


def _asked(
    defn: Definition, q: Question, hint: str, rows: Rows, *, full: bool, alone: bool = False
) -> list[Reply]:
    """A question with its sub-questions; these go in a message of their own when together
    they would be too long to read on a phone, and only when the question is entered.
    ``alone``: its options toggle in place (``Reply.alone``)."""
    m = defn.messages
    head = _head(defn, q)
    subs = "".join(f"\n• {p}" for p in q.prompts) + (f"\n\n{q.note}" if q.note else "")
    whole = f"{head}\n\n{q.text}{subs}\n\n{hint}"
    if len(whole) <= MAX_MESSAGE or not subs:
        return [Reply(whole, rows, alone=alone)]
    before = [Reply(f"{m.subquestions_header}{subs}")] if full else []
    return [*before, Reply(f"{head}\n\n{q.text}\n\n{hint}", rows, alone=alone)]


def _position(defn: Definition, q: Question) -> int:
    return [x.id for x in defn.consultation.questions].index(q.id) + 1


# --- overlays ---------------------------------------------------------------------------------


def _overlay(defn: Definition, state: State) -> Reply:
    m = defn.messages
    rows: Rows
    close = (_b(m.btn_close, bt.Close()),)
    if state.overlay == "menu":
        rows = tuple(
            (_b(f"{'✅ ' if answered(state, q) else ''}{q.number} · {q.title}", bt.GoTo(q.id)),)
            for q in defn.consultation.questions
        )
        return Reply(m.menu_prompt, (*rows, close))
    by_key = {a.key: a for a in state.answers}
    if state.overlay == "review":
        rows = tuple(
            (_b(_clip(f"{label}: {value}"), bt.ProfileEdit(name)),)
            for name, label, value in profile_lines(defn, state)
        )
        rows += tuple(
            (_b(_clip(f"{_number(defn, a)} · {describe(defn, a, by_key)}"), bt.ReviewItem(a.key)),)
            for a in state.answers[:MAX_REVIEW_BUTTONS]
            if not (a.kind == "posible" and a.option != _possible_id(defn, a))
        )
        return Reply(m.review_prompt, (*rows, close))
    if state.overlay == "profile":
        back = _b(m.btn_back, bt.ReviewBack())
        if state.overlay_target == "place":
            comunas = defn.consultation.profile.comunas()
            rows = _grid([_b(o.label, bt.Comuna(o.id)) for o in comunas], 3)
            return Reply(m.ask_comuna_any, (*rows, (back,)))
        return profile_prompt(defn, state.overlay_target or "gender", None, back)
    if state.overlay == "review_item":
        a = state.answer(state.overlay_target or "")
        if a is None:
            return Reply(m.review_empty, (close,))
        rows = ()
        if a.text is not None:
            rows += ((_b(m.btn_edit_text, bt.ReviewEdit(a.key)),),)
        if defn.consultation.question(a.question) is not None:
            rows += ((_b(m.btn_goto, bt.ReviewGoTo(a.key)),),)
        rows += ((_b(m.btn_delete, bt.ReviewDelete(a.key)),), (_b(m.btn_back, bt.ReviewBack()),))
        return Reply(f"{_number(defn, a)} · {_title(defn, a)}\n\n{describe(defn, a, by_key)}", rows)
    if state.overlay == "review_delete":
        a = state.answer(state.overlay_target or "")
        key = state.overlay_target or ""
        yes = _b(m.btn_delete_yes, bt.ReviewDelete(key, confirmed=True))
        no = _b(m.btn_delete_no, bt.ReviewItem(key))
        text = m.delete_confirm.format(answer=describe(defn, a, by_key) if a else "")
        return Reply(text, ((yes,), (no,)))
    if state.overlay == "review_edit":
        a = state.answer(state.overlay_target or "")
        return Reply(m.review_edit_prompt.format(text=a.text if a else ""), (close,))
    # erase
    return Reply(
        m.erase_confirm,
        ((_b(m.btn_erase_yes, bt.Erase(True)),), (_b(m.btn_erase_no, bt.Erase(False)),)),
    )


def answered(state: State, q: Question) -> bool:
    """Whether the participant has an answer to ``q`` (a judgement, for feasibility)."""
    if q.kind == "feasibility":
        return any(a.kind == "posible" for a in state.answers)
    return bool(state.answers_to(q.id))


def profile_lines(defn: Definition, state: State) -> list[tuple[str, str, str]]:
    """(field, label, value) of the profile, for /revisar; municipal contacts have none."""
    if state.role == "municipal":
        return []
    m = defn.messages
    p = defn.consultation.profile

    def label(options: list[Option], value: str | None) -> str:
        return next((o.label for o in options if o.id == value), m.profile_not_given)

    return [
        ("place", m.profile_place, label(p.comunas(), state.comuna)),
        ("age_band", m.profile_age_band, label(p.age_bands, state.age_band)),
        ("gender", m.profile_gender, label(p.genders, state.gender)),
    ]


# --- answers as text --------------------------------------------------------------------------


def feasibility_targets(state: State) -> list[Answer]:
    """The desirable changes a feasibility question asks about, in the order they were given."""
    return [a for a in state.answers if a.kind == "deseable"]


def describe(defn: Definition, a: Answer, by_key: Mapping[str, Answer] | None = None) -> str:
    """One answer in words: ``Perú``, ``«Más becas» (Social)``, ``Perú (en parte)``.

    A feasibility answer names the change it judges, looked up in ``by_key``.
    """
    c = defn.consultation
    if a.kind == "posible":
        target = (by_key or {}).get(a.refers_to or "")
        what = describe(defn, target) if target else "?"
        verdict = _option_label(c.question(a.question), a.option).lower()
        return f"{what}: {verdict}"
    if a.kind == "acuerdo":
        label = _option_label(c.question(a.question), a.option)
        return f"{label} — {defn.messages.summary_reason}: «{a.text}»" if a.text else label
    if a.option is not None:
        return _option_label(c.question(a.question), a.option)
    system = c.system_label(a.system)
    return f"«{a.text}» ({system})" if system else f"«{a.text}»"


def summary(defn: Definition, state: State) -> list[Reply]:
    """The participant's answers as the workshop's table: per question the desirable changes
    and, of those, the ones marked possible; a question never spans two messages unless it
    alone is longer than one."""
    m = defn.messages
    possible = {
        a.refers_to
        for a in state.answers
        if a.kind == "posible" and a.option == _possible_id(defn, a)
    }
    asked = [q.id for q in defn.consultation.questions]
    removed = sorted({a.question for a in state.answers} - set(asked))
    blocks = []
    for qid in asked + removed:
        q = defn.consultation.question(qid)
        if q is not None and q.kind == "feasibility":
            continue
        own = [a for a in state.answers_to(qid) if a.kind != "posible"]
        lines = [m.summary_question.format(number=q.number) if q else m.removed_question]
        if not own:
            lines.append(m.summary_empty)
        elif own[0].kind == "acuerdo":
            lines.append(describe(defn, own[0]))
        else:
            lines.append(f"{m.summary_desirable}: " + "; ".join(describe(defn, a) for a in own))
            chosen = [describe(defn, a) for a in own if a.key in possible]
            lines.append(f"{m.summary_possible}: " + ("; ".join(chosen) or m.summary_none))
        blocks.append("\n".join(lines))
    enabler = next((a.text for a in state.answers if a.kind == "posible" and a.text), None)
    if enabler:
        blocks.append(f"{m.summary_enabler}: «{enabler}»")
    messages = [m.summary_title]
    for block in blocks:
        if len(messages[-1]) + 2 + len(block) <= MAX_MESSAGE:
            messages[-1] += "\n\n" + block
        else:
            messages += split_text(block, MAX_MESSAGE)
    return [Reply(text) for text in messages]


def _possible_id(defn: Definition, a: Answer) -> str:
    """The option of a feasibility question that means «possible»: its first one."""
    q = defn.consultation.question(a.question)
    return q.options[0].id if q and q.options else ""


def as_messages(replies: Iterable[Reply]) -> list[Reply]:
    """The replies as a chat shows them: a reply without buttons joined to the next one
    where both fit in ``MAX_MESSAGE`` (an acknowledgement and the next question read as one
    message). Fewer messages are less to scroll for the participant, and Telegram's limit on
    messages a second is what bounds how many people a surge can serve. A message that is
    edited in place (``replace``, or ``alone``: it may be later) is never joined: the edit
    would lose what was joined to it."""
    out: list[Reply] = []
    for reply in replies:
        last = out[-1] if out else None
        if (
            last is not None
            and not (last.buttons or last.replace or reply.replace or reply.alone)
            and len(last.text) + 2 + len(reply.text) <= MAX_MESSAGE
        ):
            out[-1] = Reply(f"{last.text}\n\n{reply.text}", reply.buttons)
        else:
            out.append(reply)
    return out


def split_text(text: str, limit: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` characters: at a line end if there is
    one, else at a space, else anywhere. Blank pieces are dropped."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit + 1)
        if cut < 0:
            cut = text.rfind(" ", 0, limit + 1)
        if cut < 0:
            pieces.append(text[:limit])
            text = text[limit:]
        else:
            pieces.append(text[:cut])
            text = text[cut + 1 :]
    pieces.append(text)
    return [p for p in pieces if p.strip()]


def _option_label(q: Question | None, option_id: str | None) -> str:
    options: list[Option] = q.options if q else []
    found = next((o.label for o in options if o.id == option_id), None)
    return found or (option_id or "").replace("_", " ")


def _number(defn: Definition, a: Answer) -> str:
    q = defn.consultation.question(a.question)
    return q.number if q else a.question


def _title(defn: Definition, a: Answer) -> str:
    q = defn.consultation.question(a.question)
    return q.title if q else defn.messages.removed_question


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _b(label: str, data: bt.ButtonData) -> Button:
    return Button(label, data.encode())


def _grid(buttons: list[Button], per_row: int) -> Rows:
    return tuple(tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row))


def _mark(rows: Rows, chosen: set[str]) -> Rows:
    return tuple(
        tuple(Button(f"✅ {b.label}", b.data) if b.data in chosen else b for b in row)
        for row in rows
    )
