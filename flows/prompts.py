"""What the participant sees at each step: states rendered as replies.

Pure functions of (definition, state). The engine also uses them to decide which buttons are
valid right now: a button is accepted only if the current prompt offers it, which rejects
stale buttons (from an earlier message) and forged callback data alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from flows import buttons as bt
from flows.definition import Definition
from flows.events import Answer, Button, Invited, Reply
from flows.schema import Option, Question
from flows.state import State

Rows = tuple[tuple[Button, ...], ...]

CONSENT_YES = bt.Consent(True).encode()
CONSENT_NO = bt.Consent(False).encode()

MAX_REVIEW_BUTTONS = 40
MAX_MESSAGE = 4096
"""Telegram's limit on the text of one message."""


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
    """The prompt of the participant's current step (or of the open overlay)."""
    if state.overlay is not None:
        return [_overlay(defn, state)]
    return _step(defn, state, context=context)


def buttons_of(replies: Iterable[Reply]) -> set[str]:
    return {b.data for r in replies for row in r.buttons for b in row}


def skip_data(state: State) -> str:
    return bt.Skip(state.step, state.target or state.question or "").encode()


# --- steps ------------------------------------------------------------------------------------


def _step(defn: Definition, state: State, *, context: bool) -> list[Reply]:
    m = defn.messages
    c = defn.consultation
    skip = Button(m.btn_skip, skip_data(state))
    if state.step == "declined":
        return [Reply(m.declined_again)]
    if state.step == "province":
        rows = _grid([_b(p.label, bt.Province(p.id)) for p in c.profile.provinces], 3)
        rows += ((_b(c.profile.outside.label, bt.Comuna(c.profile.outside.id)),), (skip,))
        return [Reply(m.ask_province, rows)]
    if state.step == "comuna":
        province = next((p for p in c.profile.provinces if p.id == state.target), None)
        comunas = province.comunas if province else []
        label = province.label if province else ""
        rows = _grid([_b(o.label, bt.Comuna(o.id)) for o in comunas], 2)
        rows += ((_b(m.btn_back, bt.Province()), skip),)
        return [Reply(m.ask_comuna.format(province=label), rows)]
    if state.step == "age_band":
        rows = _grid([_b(o.label, bt.AgeBand(o.id)) for o in c.profile.age_bands], 2)
        return [Reply(m.ask_age_band, (*rows, (skip,)))]
    if state.step == "gender":
        rows = _grid([_b(o.label, bt.Gender(o.id)) for o in c.profile.genders], 2)
        return [Reply(m.ask_gender, (*rows, (skip,)))]
    if state.step == "done":
        return [Reply(m.finished_again)]
    question = c.question(state.question or "")
    if question is None:  # only reachable with a state the engine has not repaired
        return [Reply(m.finished_again)]
    replies = [card(defn, question)] if context and question.context else []
    replies.append(_question_step(defn, state, question, skip))
    return replies


def card(defn: Definition, question: Question) -> Reply:
    return Reply(f"{defn.messages.context_header}\n\n{question.context}")


def _question_step(defn: Definition, state: State, q: Question, skip: Button) -> Reply:
    m = defn.messages
    rows: Rows
    if state.step == "ask" and q.kind == "agreement":
        given = state.answer(q.id)
        rows = _mark(
            tuple((_b(o.label, bt.Agree(q.id, o.id)),) for o in q.options),
            {bt.Agree(q.id, given.option or "").encode()} if given else set(),
        )
        return Reply(_header(defn, q, m.agreement_hint), (*rows, (skip,)))
    if state.step == "ask":
        chosen = {bt.Toggle(q.id, a.option).encode() for a in state.answers_to(q.id) if a.option}
        rows = _mark(tuple((_b(o.label, bt.Toggle(q.id, o.id)),) for o in q.options), chosen)
        hint = m.desirable_hint if q.options else m.desirable_hint_no_options
        rows += ((_b(m.btn_write, bt.Write(q.id)),), (_b(m.btn_next, bt.Next(q.id)),))
        return Reply(_header(defn, q, hint), rows)
    if state.step == "reason":
        return Reply(q.follow_up or m.write_prompt, ((skip,),))
    if state.step == "write":
        return Reply(m.write_prompt, ((_b(m.btn_next, bt.Next(q.id)),),))
    if state.step == "system":
        answer = state.answer(state.target or "")
        sys = _grid(
            [_b(s.label, bt.System(state.target or "", s.id)) for s in defn.consultation.systems], 2
        )
        text = m.system_prompt.format(text=answer.text if answer else "")
        return Reply(text, (*sys, (skip,)))
    if state.step == "more":
        rows = ((_b(m.btn_more_yes, bt.More(q.id, "y")),),)
        if q.options:
            rows += ((_b(m.btn_more_options, bt.More(q.id, "o")),),)
        rows += ((_b(m.btn_more_no, bt.More(q.id, "n")),),)
        return Reply(m.more_prompt, rows)
    if state.step == "judge":
        targets = feasibility_targets(state)
        target = state.answer(state.target or "")
        index = next((i for i, a in enumerate(targets, 1) if a.key == state.target), 0)
        text = m.judge_prompt.format(
            index=index, total=len(targets), change=describe(defn, target) if target else ""
        )
        opts = tuple(_b(o.label, bt.Judge(state.target or "", o.id)) for o in q.options)
        current_judgement = state.answer(f"p.{state.target}")
        marked = (
            {bt.Judge(state.target or "", current_judgement.option or "").encode()}
            if current_judgement
            else set()
        )
        # the question's header once, on the first change; then only the change
        body = _header(defn, q, text) if index == 1 else text
        return Reply(body, (*_mark((opts,), marked), (skip,)))
    # enabler
    return Reply(q.follow_up or m.write_prompt, ((skip,),))


def _header(defn: Definition, q: Question, hint: str) -> str:
    head = defn.messages.question_header.format(number=q.number, title=q.title)
    prompts = "".join(f"\n• {p}" for p in q.prompts)
    return f"{head}\n\n{q.text}{prompts}\n\n{hint}"


# --- overlays ---------------------------------------------------------------------------------


def _overlay(defn: Definition, state: State) -> Reply:
    m = defn.messages
    rows: Rows
    close = (_b(m.btn_close, bt.Close()),)
    if state.overlay == "menu":
        done = set(state.visited)
        rows = tuple(
            (_b(f"{'✅ ' if q.id in done else ''}{q.number} · {q.title}", bt.GoTo(q.id)),)
            for q in defn.consultation.questions
        )
        return Reply(m.menu_prompt, (*rows, close))
    by_key = {a.key: a for a in state.answers}
    if state.overlay == "review":
        rows = tuple(
            (
                Button(
                    _clip(f"{_number(defn, a)} · {describe(defn, a, by_key)}"),
                    bt.ReviewItem(a.key).encode(),
                ),
            )
            for a in state.answers[:MAX_REVIEW_BUTTONS]
        )
        return Reply(m.review_prompt, (*rows, close))
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
    if state.overlay == "review_edit":
        a = state.answer(state.overlay_target or "")
        return Reply(m.review_edit_prompt.format(text=a.text if a else ""), (close,))
    # erase
    return Reply(
        m.erase_confirm,
        ((_b(m.btn_erase_yes, bt.Erase(True)),), (_b(m.btn_erase_no, bt.Erase(False)),)),
    )


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
        extra = f"; {defn.messages.summary_enabler}: «{a.text}»" if a.text else ""
        return f"{what}: {verdict}{extra}"
    if a.kind == "acuerdo":
        label = _option_label(c.question(a.question), a.option)
        return f"{label} — {defn.messages.summary_reason}: «{a.text}»" if a.text else label
    if a.option is not None:
        return _option_label(c.question(a.question), a.option)
    system = c.system_label(a.system)
    return f"«{a.text}» ({system})" if system else f"«{a.text}»"


def summary(defn: Definition, state: State) -> list[Reply]:
    """The participant's answers laid out like the workshop's result table, in as many
    messages as it takes (free texts of 1000 characters add up)."""
    m = defn.messages
    lines = [m.summary_title, m.summary_header]
    by_key = {a.key: a for a in state.answers}
    possibles: dict[str, list[str]] = {}
    for a in state.answers:
        if a.kind == "posible" and a.refers_to in by_key:
            target = by_key[a.refers_to]
            possibles.setdefault(target.question, []).append(describe(defn, a, by_key))
    asked = [q.id for q in defn.consultation.questions]
    removed = sorted({a.question for a in state.answers} - set(asked))
    for qid in asked + removed:
        q = defn.consultation.question(qid)
        if q is not None and q.kind == "feasibility":
            continue
        own = [a for a in state.answers_to(qid) if a.kind != "posible"]
        number = q.number if q else qid
        title = q.title if q else m.removed_question
        lines.append("")
        lines.append(f"{number} · {title}")
        if not own:
            lines.append(f"   {m.summary_empty}")
            continue
        if own[0].kind == "acuerdo":
            lines.append("   " + describe(defn, own[0]))
            continue
        lines.append(f"   {m.summary_desirable}: " + "; ".join(describe(defn, a) for a in own))
        if qid in possibles:
            lines.append(f"   {m.summary_possible}: " + "; ".join(possibles[qid]))
    return [Reply(piece) for piece in split_text("\n".join(lines), MAX_MESSAGE)]


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
