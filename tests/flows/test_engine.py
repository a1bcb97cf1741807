"""The flow engine, one behaviour at a time, on the bundled consultation."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

import flows
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
    ParticipantErased,
    ProfileSet,
    Start,
    Text,
    Unsupported,
)

if TYPE_CHECKING:
    from tests.flows.conftest import Chat

Edit = Callable[[Callable[[dict[str, Any]], None]], Definition]
COMMANDS = ["start", "menu", "revisar", "omitir", "cancelar", "privacidad", "borrar", "ayuda"]


def recorded(chat: Chat) -> dict[str, Answer]:
    """The answers recorded by the last event, by key."""
    return {r.answer.key: r.answer for r in chat.last.records if isinstance(r, AnswerRecorded)}


def unchanged(chat: Chat, event: Event) -> None:
    """``event`` changes nothing: same state, no records, and some answer."""
    before = chat.state
    chat.send(event)
    assert chat.state == before
    assert chat.last.records == ()
    assert chat.last.replies


# --- before consent ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        Start(),
        Start("invite-token"),
        Text("hola"),
        *(Command(name) for name in COMMANDS),
        Command("nope"),
        Choice("o:q1:peru"),
        Unsupported("photo"),
        Edited(),
    ],
    ids=repr,
)
def test_nothing_is_stored_before_consent(chat: Chat, event: Event) -> None:
    chat.send(event)
    assert chat.state is None
    assert chat.last.records == ()
    assert chat.last.replies


@pytest.mark.parametrize("event", [Start(), Text("hola")], ids=repr)
def test_a_newcomer_is_invited_to_consent(chat: Chat, defn: Definition, event: Event) -> None:
    chat.send(event)
    assert chat.texts == [defn.consultation.welcome, defn.consultation.consent]
    assert chat.labels() == [defn.messages.consent_yes, defn.messages.consent_no]


def test_commands_before_consent_answer_without_storing(chat: Chat, defn: Definition) -> None:
    m = defn.messages
    assert chat.command("borrar").replies[0].text == m.nothing_stored
    assert chat.command("privacidad").replies[0].text == defn.consultation.privacy
    assert chat.command("ayuda").replies[0].text == m.help
    assert chat.command("revisar").replies[0].text == m.consent_required


def test_consenting_starts_the_profile(chat: Chat, defn: Definition) -> None:
    chat.start()
    chat.press(defn.messages.consent_yes)
    assert chat.last.records == (ConsentGiven(),)
    assert chat.state == flows.new_state(defn)
    assert chat.texts == [defn.messages.consent_thanks, defn.messages.ask_province]
    assert chat.labels() == ["Elqui", "Limarí", "Choapa", "Fuera de la región", "Omitir ⏭"]


# --- declining -----------------------------------------------------------------------------


def test_declining_is_recorded_once_and_answered_politely(chat: Chat, defn: Definition) -> None:
    m = defn.messages
    chat.start()
    chat.press(m.consent_no)
    assert chat.last.records == (ConsentDeclined(),)
    assert chat.texts == [m.declined]
    declined = chat.state
    assert declined is not None and declined.stage == "declined"
    assert declined.answers == ()
    events: list[Event] = [
        Text("hola"),
        Command("menu"),
        Command("revisar"),
        Choice("c:n"),
        Choice("o:q1:peru"),
        Unsupported("sticker"),
        Edited(),
    ]
    for event in events:
        chat.send(event)
        assert chat.texts == [m.declined_again], event
        assert chat.last.records == ()
        assert chat.state == declined
    assert chat.command("privacidad").replies[0].text == defn.consultation.privacy
    assert chat.state == declined


def test_start_after_declining_offers_consent_again(chat: Chat, defn: Definition) -> None:
    m = defn.messages
    chat.start()
    chat.press(m.consent_no)
    chat.start()
    assert chat.texts == [defn.consultation.welcome, defn.consultation.consent]
    assert chat.last.records == ()
    chat.press(m.consent_yes)
    assert chat.last.records == (ConsentGiven(),)
    assert chat.state == flows.new_state(defn)


# --- profile -------------------------------------------------------------------------------


def test_a_full_profile(chat: Chat, defn: Definition) -> None:
    chat.consent()
    chat.press("Limarí")
    assert chat.texts == ["¿En qué comuna de la provincia de Limarí vive?"]
    assert chat.labels()[-2:] == [defn.messages.btn_back, defn.messages.btn_skip]
    chat.press("Ovalle")
    assert chat.last.records == (ProfileSet("comuna", "ovalle"),)
    chat.press("30 a 44")
    assert chat.last.records == (ProfileSet("age_band", "e30_44"),)
    chat.press("Mujer")
    assert chat.last.records == (ProfileSet("gender", "mujer"),)
    assert chat.texts[0] == defn.messages.profile_done
    assert chat.state is not None
    assert (chat.state.comuna, chat.state.age_band, chat.state.gender) == (
        "ovalle",
        "e30_44",
        "mujer",
    )
    assert (chat.state.stage, chat.state.step, chat.state.question) == ("questions", "ask", "a")


def test_back_from_the_comunas_to_the_provinces(chat: Chat, defn: Definition) -> None:
    chat.consent()
    chat.press("Choapa")
    chat.press(defn.messages.btn_back)
    assert chat.texts == [defn.messages.ask_province]
    assert chat.last.records == ()


@pytest.mark.parametrize("way", ["button", "command"])
def test_each_profile_step_can_be_skipped(chat: Chat, defn: Definition, way: str) -> None:
    m = defn.messages
    chat.consent()
    chat.press("Elqui")  # skipping from the comunas too
    asked = []
    for _ in range(3):
        if way == "button":
            chat.press(m.btn_skip)
        else:
            chat.command("omitir")
        assert chat.last.records == ()
        asked.append(chat.texts[0])
    assert asked == [m.ask_age_band, m.ask_gender, m.profile_done]
    assert chat.state is not None
    assert (chat.state.comuna, chat.state.age_band, chat.state.gender) == (None, None, None)
    assert chat.state.question == "a"


@pytest.mark.parametrize(
    "typed", ["rio hurtado", "RIO HURTADO", "  Río Hurtado ", "río hurtado", "RÍO hurtado"]
)
@pytest.mark.parametrize("province", [None, "Limarí", "Elqui"])
def test_a_comuna_can_be_typed(chat: Chat, defn: Definition, typed: str, province: str) -> None:
    chat.consent()
    if province:
        chat.press(province)
    chat.text(typed)
    assert chat.last.records == (ProfileSet("comuna", "rio_hurtado"),)
    assert chat.texts == [defn.messages.ask_age_band]


def test_an_unknown_comuna_is_asked_again(chat: Chat, defn: Definition) -> None:
    chat.consent()
    unchanged(chat, Text("Santiago"))
    assert chat.texts == [defn.messages.use_buttons, defn.messages.ask_province]


def test_municipal_contacts_skip_the_profile(defn: Definition) -> None:
    state = flows.new_state(defn, role="municipal", comuna="canela")
    assert (state.stage, state.step, state.question, state.comuna) == (
        "questions",
        "ask",
        "a",
        "canela",
    )


# --- agreement -----------------------------------------------------------------------------


def test_agreement_then_an_optional_reason(chat: Chat, defn: Definition) -> None:
    chat.skip_profile()
    chat.press("En parte de acuerdo")
    assert recorded(chat) == {"a": Answer("a", "a", "acuerdo", defn.version, option="en_parte")}
    assert chat.texts == [defn.consultation.question("a").follow_up]  # type: ignore[union-attr]
    chat.text("  Falta mirar a los vecinos  ")
    (change,) = chat.last.records
    assert change == AnswerRecorded(
        Answer(
            "a", "a", "acuerdo", defn.version, option="en_parte", text="Falta mirar a los vecinos"
        ),
        previous=Answer("a", "a", "acuerdo", defn.version, option="en_parte"),
    )
    assert chat.texts[0] == defn.messages.reason_saved
    assert chat.state is not None and chat.state.question == "q1"


def test_an_agreement_is_chosen_with_the_buttons(chat: Chat, defn: Definition) -> None:
    chat.skip_profile()
    unchanged(chat, Text("de acuerdo"))
    assert chat.texts[0] == defn.messages.use_buttons


def test_changing_the_agreement_keeps_the_reason(chat: Chat, defn: Definition) -> None:
    chat.skip_profile()
    chat.press("De acuerdo")
    chat.text("Porque sí")
    chat.go_to("a")
    assert "✅ De acuerdo" in chat.labels()
    chat.press("No sé")
    assert recorded(chat)["a"].option == "no_se"
    assert recorded(chat)["a"].text == "Porque sí"


# --- desirable changes ---------------------------------------------------------------------


def test_options_toggle_on_and_off(chat: Chat, defn: Definition) -> None:
    chat.skip_profile().go_to("q1")
    chat.press("Perú")
    peru = Answer("q1.o.peru", "q1", "deseable", defn.version, option="peru")
    assert chat.last.records == (AnswerRecorded(peru),)
    (reply,) = chat.last.replies
    assert reply.replace
    assert "✅ Perú" in chat.labels()
    chat.press("Henan (China)")
    assert chat.state is not None
    assert [a.key for a in chat.state.answers] == ["q1.o.peru", "q1.o.henan"]
    chat.press("✅ Perú")
    assert chat.last.records == (AnswerRemoved(peru),)
    assert "Perú" in chat.labels()
    assert [a.key for a in chat.state.answers] == ["q1.o.henan"]


def test_free_text_changes_with_their_system(chat: Chat, defn: Definition) -> None:
    m = defn.messages
    chat.skip_profile().go_to("q1")
    chat.press(m.btn_write)
    assert chat.texts == [m.write_prompt]
    assert chat.last.records == ()
    chat.text("Intercambio de estudiantes con Perú")
    first = Answer(
        "q1.t1", "q1", "deseable", defn.version, text="Intercambio de estudiantes con Perú"
    )
    assert chat.last.records == (AnswerRecorded(first),)
    assert chat.texts == [m.system_prompt.format(text="Intercambio de estudiantes con Perú")]
    assert chat.labels() == [s.label for s in defn.consultation.systems] + [m.btn_skip]
    chat.press("Social")
    tagged = Answer("q1.t1", "q1", "deseable", defn.version, text=first.text, system="social")
    assert chat.last.records == (AnswerRecorded(tagged, previous=first),)
    assert chat.texts == [m.more_prompt]
    assert chat.labels() == [m.btn_more_yes, m.btn_more_options, m.btn_more_no]
    chat.press(m.btn_more_yes)
    chat.text("Ferias con San Juan")
    assert recorded(chat)["q1.t2"].text == "Ferias con San Juan"
    chat.command("omitir")  # no system for this one
    assert chat.last.records == ()
    assert chat.texts == [m.more_prompt]
    chat.press(m.btn_more_options)
    assert "Perú" in chat.labels()
    chat.press(m.btn_next)
    assert chat.state is not None and chat.state.question == "q2"
    assert chat.state.answer("q1.t2") == Answer(
        "q1.t2", "q1", "deseable", defn.version, text="Ferias con San Juan"
    )


def test_a_question_without_options_asks_for_text(chat: Chat, defn: Definition) -> None:
    chat.skip_profile().go_to("q3")
    assert defn.messages.desirable_hint_no_options in chat.texts[-1]
    chat.text("Un encargado de relaciones internacionales en cada municipio")
    assert recorded(chat)["q3.t1"].question == "q3"
    chat.press("Institucional")
    assert defn.messages.btn_more_options not in chat.labels()


def test_text_at_the_options_is_a_new_change(chat: Chat, defn: Definition) -> None:
    chat.skip_profile().go_to("q2")
    chat.text("Turismo astronómico")
    assert recorded(chat)["q2.t1"].text == "Turismo astronómico"
    assert chat.state is not None and chat.state.step == "system"


# --- bad input -----------------------------------------------------------------------------


def at_every_kind_of_step(chat: Chat, defn: Definition) -> dict[str, Chat]:
    """Chats left at each kind of step: {step name: chat}."""
    m = defn.messages
    places: dict[str, Chat] = {}
    fork = chat.fork
    chat.consent()
    places["province"] = fork()
    chat.press("Choapa")
    places["comuna"] = fork()
    chat.command("omitir")
    places["age_band"] = fork()
    chat.command("omitir")
    places["gender"] = fork()
    chat.command("omitir")
    places["ask agreement"] = fork()
    chat.press("De acuerdo")
    places["reason"] = fork()
    chat.command("omitir")
    places["ask desirable"] = fork()
    chat.press(m.btn_write)
    places["write"] = fork()
    chat.text("Más vuelos a Lima")
    places["system"] = fork()
    chat.press("Territorial")
    places["more"] = fork()
    chat.command("menu")
    chat.press("5 · Cambios posibles al 2020")
    places["judge"] = fork()
    chat.press("En parte")
    places["enabler"] = fork()
    chat.command("omitir")  # on to the questions not seen yet: 1, 2, 3, 4
    for _ in range(4):
        chat.press(m.btn_next)
    places["done"] = fork()
    chat.command("revisar")
    places["review"] = fork()
    chat.press("1 · «Más vuelos a Lima» (Territorial)")
    places["review_item"] = fork()
    chat.press(m.btn_edit_text)
    places["review_edit"] = fork()
    chat.command("menu")
    places["menu"] = fork()
    chat.command("borrar")
    places["erase"] = fork()
    return places


STEPS = [
    "province",
    "comuna",
    "age_band",
    "gender",
    "ask agreement",
    "reason",
    "ask desirable",
    "write",
    "system",
    "more",
    "judge",
    "enabler",
    "done",
    "review",
    "review_item",
    "review_edit",
    "menu",
    "erase",
]


@pytest.fixture(scope="module")
def reached(defn: Definition, new_chat: type[Chat]) -> dict[str, Chat]:
    return at_every_kind_of_step(new_chat(defn), defn)


@pytest.fixture
def places(reached: dict[str, Chat]) -> dict[str, Chat]:
    """Participants at each kind of step, fresh for each test."""
    return {name: chat.fork() for name, chat in reached.items()}


def test_the_places_are_the_expected_steps(places: dict[str, Chat]) -> None:
    assert list(places) == STEPS
    for name, chat in places.items():
        assert chat.state is not None
        assert name.split()[0] in (chat.state.step, chat.state.overlay)


@pytest.mark.parametrize("where", STEPS)
@pytest.mark.parametrize("padding", ["", "  \n"])
def test_a_too_long_text_is_refused(
    places: dict[str, Chat], defn: Definition, where: str, padding: str
) -> None:
    chat = places[where]
    text = padding + "ñ" * (MAX_TEXT + 1) + padding
    unchanged(chat, Text(text))
    assert chat.texts == [defn.messages.text_too_long.format(length=MAX_TEXT + 1, limit=MAX_TEXT)]


@pytest.mark.parametrize("where", STEPS)
@pytest.mark.parametrize("text", ["", "   ", "\n\t \u3000"])
def test_an_empty_text_is_refused(
    places: dict[str, Chat], defn: Definition, where: str, text: str
) -> None:
    chat = places[where]
    unchanged(chat, Text(text))
    assert chat.texts == [defn.messages.text_empty]


def test_the_longest_text_is_accepted(places: dict[str, Chat]) -> None:
    chat = places["write"]
    chat.text(" " + "x" * MAX_TEXT + " ")
    assert recorded(chat)["q1.t1"].text == "x" * MAX_TEXT


FORGED = [
    "zz:1",
    "o:q1:nonexistent",
    "o:q9:peru",
    "",
    ":",
    "x" * 200,
    "o:q1:" + "ñ" * 100,
    "c:y",
    "c:n",
    "bz:y",
    "rd:a",
    "mn:q1",
    "s:ask:q9",
    "sy:q1.t1:social",
    "f:q1.o.peru:si",
]


@pytest.mark.parametrize("where", STEPS)
def test_forged_buttons_are_refused(places: dict[str, Chat], defn: Definition, where: str) -> None:
    chat = places[where]
    assert chat.state is not None
    prompt = flows.prompts.current(defn, chat.state)
    for data in FORGED:
        if data in flows.prompts.buttons_of(prompt):
            continue  # e.g. "mn:q1" is a real button of /menu
        unchanged(chat, Choice(data))
        assert chat.texts[0] == defn.messages.stale_button, (where, data)
        assert list(chat.last.replies[1:]) == prompt  # and the question again


def test_buttons_of_an_earlier_step_are_stale(chat: Chat, defn: Definition) -> None:
    chat.consent()
    province = chat.keyboards[-1]
    chat.press("Elqui")
    chat.press("La Serena")
    chat.press("18 a 29")
    for button in (b for row in province.buttons for b in row):
        unchanged(chat, Choice(button.data))
        assert chat.texts == [defn.messages.stale_button, defn.messages.ask_gender]
    unchanged(chat, Choice("c:y"))  # the consent button, again


def test_buttons_of_another_question_are_stale(chat: Chat, defn: Definition) -> None:
    chat.skip_profile()
    chat.press("De acuerdo")
    chat.command("omitir")
    unchanged(chat, Choice("ag:a:no_se"))
    chat.go_to("q2")
    unchanged(chat, Choice("o:q1:peru"))


@pytest.mark.parametrize("where", STEPS)
def test_unsupported_and_edited_messages_change_nothing(
    places: dict[str, Chat], defn: Definition, where: str
) -> None:
    chat = places[where]
    unchanged(chat, Unsupported("photo"))
    assert chat.texts[0] == defn.messages.unsupported
    unchanged(chat, Edited())
    assert chat.texts == [defn.messages.edited]
    unchanged(chat, Command("nope"))
    assert chat.texts == [defn.messages.unknown_command.format(name="nope")]


# --- /omitir and /cancelar -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "then"),
    [
        ("province", ("profile", "age_band", None)),
        ("comuna", ("profile", "age_band", None)),
        ("age_band", ("profile", "gender", None)),
        ("gender", ("questions", "ask", "a")),
        ("ask agreement", ("questions", "ask", "q1")),
        ("reason", ("questions", "ask", "q1")),
        ("ask desirable", ("questions", "ask", "q2")),
        ("write", ("questions", "ask", "q2")),
        ("system", ("questions", "more", "q1")),
        ("more", ("questions", "ask", "q2")),
        ("judge", ("questions", "ask", "q1")),  # 1 was left through /menu, unfinished
        ("enabler", ("questions", "ask", "q1")),
        ("done", ("finished", "done", None)),
    ],
)
def test_omitir_at_each_kind_of_step(
    places: dict[str, Chat], where: str, then: tuple[str, str, str | None]
) -> None:
    chat = places[where]
    before = chat.state
    assert before is not None
    chat.command("omitir")
    assert chat.state is not None
    assert (chat.state.stage, chat.state.step, chat.state.question) == then
    assert chat.state.answers == before.answers
    assert all(isinstance(r, Finished) for r in chat.last.records)


def test_omitir_judges_nothing_and_moves_to_the_next_change(chat: Chat, defn: Definition) -> None:
    chat.skip_profile().go_to("q1")
    chat.press("Perú")
    chat.press("Henan (China)")
    chat.go_to("q5")
    assert "Cambio 1 de 2: Perú" in chat.texts[-1]
    chat.command("omitir")
    assert chat.last.records == ()
    assert "Cambio 2 de 2: Henan (China)" in chat.texts[-1]


@pytest.mark.parametrize("where", ["menu", "review", "review_item", "review_edit", "erase"])
@pytest.mark.parametrize("command", ["cancelar", "omitir"])
def test_cancelar_closes_an_overlay(
    places: dict[str, Chat], defn: Definition, where: str, command: str
) -> None:
    chat = places[where]
    before = chat.state
    assert before is not None
    chat.command(command)
    assert chat.state == before.evolve(overlay=None, overlay_target=None)
    assert chat.last.records == ()
    assert chat.texts[0] == defn.messages.cancelled


def test_cancelar_while_writing_goes_back_to_the_options(
    places: dict[str, Chat], defn: Definition
) -> None:
    chat = places["write"]
    chat.command("cancelar")
    assert chat.texts[0] == defn.messages.cancelled
    assert chat.state is not None and (chat.state.step, chat.state.question) == ("ask", "q1")
    assert chat.last.records == ()


@pytest.mark.parametrize("where", ["province", "ask agreement", "system", "judge", "done"])
def test_cancelar_with_nothing_to_cancel(
    places: dict[str, Chat], defn: Definition, where: str
) -> None:
    chat = places[where]
    unchanged(chat, Command("cancelar"))
    assert chat.texts == [defn.messages.nothing_to_cancel]


# --- /menu ---------------------------------------------------------------------------------


@pytest.mark.parametrize("question", ["a", "q1", "q2", "q3", "q4"])
@pytest.mark.parametrize("where", ["ask agreement", "write", "judge", "done"])
def test_menu_goes_to_any_question(
    places: dict[str, Chat], defn: Definition, where: str, question: str
) -> None:
    chat = places[where]
    chat.command("menu")
    q = defn.consultation.question(question)
    assert q is not None
    chat.data(f"mn:{question}")
    assert chat.last.records == ()
    assert chat.state is not None
    assert (chat.state.stage, chat.state.step, chat.state.question) == (
        "questions",
        "ask",
        question,
    )
    assert chat.texts[-1].startswith(f"Pregunta {q.number} · {q.title}\n")


def test_menu_marks_the_visited_questions(chat: Chat) -> None:
    chat.skip_profile()
    chat.command("omitir")
    chat.command("menu")
    assert chat.labels()[:3] == [
        "✅ A · Vincular las relaciones internacionales a los desafíos",
        "1 · Territorios e instituciones asociadas",
        "2 · Otras respuestas de la cooperación",
    ]
    assert chat.labels()[-1] == "Cerrar"


def test_menu_to_the_feasibility_question_without_changes(chat: Chat, defn: Definition) -> None:
    chat.skip_profile()
    chat.command("menu")
    chat.data("mn:q5")
    assert defn.messages.no_desirable in chat.texts
    assert chat.state is not None and chat.state.question == "a"  # the first unvisited one
    assert "q5" in chat.state.visited


# --- /revisar ------------------------------------------------------------------------------


def test_review_with_no_answers(chat: Chat, defn: Definition) -> None:
    chat.skip_profile()
    unchanged(chat, Command("revisar"))
    assert chat.texts == [defn.messages.review_empty]


def test_review_edits_a_text(places: dict[str, Chat], defn: Definition) -> None:
    m = defn.messages
    chat = places["review"]
    assert chat.labels() == [
        "A · De acuerdo",
        "1 · «Más vuelos a Lima» (Territorial)",
        "5 · «Más vuelos a Lima» (Territorial): en parte",
        "Cerrar",
    ]
    chat.press("1 · «Más vuelos a Lima» (Territorial)")
    assert chat.labels() == [m.btn_edit_text, m.btn_goto, m.btn_delete, m.btn_back]
    chat.press(m.btn_edit_text)
    assert chat.texts == [m.review_edit_prompt.format(text="Más vuelos a Lima")]
    chat.text("Más vuelos a Lima y a Arequipa")
    old = Answer(
        "q1.t1", "q1", "deseable", defn.version, text="Más vuelos a Lima", system="territorial"
    )
    new = Answer(
        "q1.t1",
        "q1",
        "deseable",
        defn.version,
        text="Más vuelos a Lima y a Arequipa",
        system="territorial",
    )
    assert chat.last.records == (AnswerRecorded(new, previous=old),)
    assert chat.texts[0] == m.review_updated
    assert chat.labels()[1] == "1 · «Más vuelos a Lima y a Arequipa» (Territorial)"
    assert chat.state is not None and chat.state.overlay == "review"


def test_review_goes_to_the_question(places: dict[str, Chat], defn: Definition) -> None:
    chat = places["review_item"]
    chat.press(defn.messages.btn_goto)
    assert chat.state is not None
    assert (chat.state.overlay, chat.state.question, chat.state.step) == (None, "q1", "ask")


def test_deleting_a_change_deletes_its_judgement(places: dict[str, Chat], defn: Definition) -> None:
    chat = places["review_item"]
    before = chat.state
    assert before is not None
    chat.press(defn.messages.btn_delete)
    assert [a.key for a in before.answers] == ["a", "q1.t1", "p.q1.t1"]
    assert chat.last.records == (
        AnswerRemoved(before.answers[1]),
        AnswerRemoved(before.answers[2]),
    )
    assert chat.texts[0] == defn.messages.review_deleted
    assert chat.state is not None
    assert chat.state.answers == before.answers[:1]
    assert chat.labels() == ["A · De acuerdo", "Cerrar"]


def test_deleting_a_judgement_keeps_the_change(places: dict[str, Chat], defn: Definition) -> None:
    chat = places["review"]
    chat.press("5 · «Más vuelos a Lima» (Territorial): en parte")
    chat.press(defn.messages.btn_delete)
    assert [type(r) for r in chat.last.records] == [AnswerRemoved]
    assert chat.state is not None
    assert [a.key for a in chat.state.answers] == ["a", "q1.t1"]
    assert chat.labels() == ["A · De acuerdo", "1 · «Más vuelos a Lima» (Territorial)", "Cerrar"]


# --- /borrar -------------------------------------------------------------------------------


def test_borrar_confirmed_erases_everything(places: dict[str, Chat], defn: Definition) -> None:
    chat = places["erase"]
    assert chat.keyboards[-1].text == defn.messages.erase_confirm
    chat.press(defn.messages.btn_erase_yes)
    assert chat.last.records == (ParticipantErased(),)
    assert chat.state is None
    assert chat.texts == [defn.messages.erased]
    chat.start()  # a newcomer again
    assert chat.texts == [defn.consultation.welcome, defn.consultation.consent]


def test_borrar_then_no_changes_nothing(places: dict[str, Chat], defn: Definition) -> None:
    chat = places["done"]
    before = chat.state
    chat.command("borrar")
    chat.press(defn.messages.btn_erase_no)
    assert chat.state == before
    assert chat.last.records == ()
    assert chat.texts == [defn.messages.erase_cancelled, defn.messages.finished_again]


# --- question 5 and the end ----------------------------------------------------------------


def test_feasibility_asks_about_every_change_in_order(chat: Chat, defn: Definition) -> None:
    m = defn.messages
    chat.skip_profile()
    chat.command("omitir")
    chat.press("Henan (China)")
    chat.press("Perú")
    chat.press(m.btn_write)
    chat.text("Becas con Perú")
    chat.press("Social")
    chat.press(m.btn_more_no)
    chat.press(m.btn_next)  # q2: nothing
    chat.press(m.btn_write)  # q3
    chat.text("Hermanamientos")
    chat.command("omitir")
    chat.press(m.btn_more_no)
    chat.press(m.btn_next)  # q4: nothing
    assert chat.texts[-2] == m.feasibility_intro
    seen = []
    for verdict in ["Sí", "No", "En parte", "Sí"]:
        seen.append(next(p for p in chat.texts[-1].split("\n\n") if p.startswith("Cambio")))
        chat.press(verdict)
        chat.command("omitir")  # nothing on what would make it possible
    assert seen == [
        "Cambio 1 de 4: Henan (China)",
        "Cambio 2 de 4: Perú",
        "Cambio 3 de 4: «Becas con Perú» (Social)",
        "Cambio 4 de 4: «Hermanamientos»",
    ]
    assert chat.state is not None and chat.state.stage == "finished"
    judged = {a.refers_to: a.option for a in chat.state.answers if a.kind == "posible"}
    # free-text changes are numbered across the whole consultation: q1.t1, then q3.t2
    assert judged == {"q1.o.henan": "si", "q1.o.peru": "no", "q1.t1": "en_parte", "q3.t2": "si"}


def test_what_would_make_it_possible(chat: Chat, defn: Definition) -> None:
    chat.skip_profile().go_to("q4")
    chat.text("Un corredor ferroviario")
    chat.press("Territorial")
    chat.press(defn.messages.btn_more_no)
    chat.press("Sí")
    chat.text("Fondos nacionales")
    assert recorded(chat) == {
        "p.q4.t1": Answer(
            "p.q4.t1",
            "q5",
            "posible",
            defn.version,
            option="si",
            text="Fondos nacionales",
            refers_to="q4.t1",
        )
    }


def test_finishing_shows_the_summary(chat: Chat, defn: Definition) -> None:
    m = defn.messages
    chat.skip_profile()
    chat.press("De acuerdo")
    chat.text("Es necesario")
    chat.press("Perú")
    chat.press(m.btn_next)
    chat.press(m.btn_next)
    chat.press(m.btn_next)
    chat.press(m.btn_write)
    chat.text("Más inglés en las escuelas")
    chat.press("Cultural")
    chat.press(m.btn_more_no)
    chat.press("En parte")
    chat.text("Convenios")
    chat.press("No")
    chat.command("omitir")
    assert chat.last.records == (Finished(),)
    summary, thanks = chat.texts[-2:]
    assert thanks == defn.consultation.thanks
    assert summary == "\n".join(
        [
            "Resumen de sus respuestas",
            "Pregunta Nº | Cambios deseables | Cambios posibles",
            "",
            "A · Vincular las relaciones internacionales a los desafíos",
            "   De acuerdo — Motivo: «Es necesario»",
            "",
            "1 · Territorios e instituciones asociadas",
            "   Deseables: Perú",
            "   ¿Posible al 2020?: Perú: en parte; lo haría posible: «Convenios»",
            "",
            "2 · Otras respuestas de la cooperación",
            "   (sin respuestas)",
            "",
            "3 · Municipalidades",
            "   (sin respuestas)",
            "",
            "4 · Otros cambios deseables",
            "   Deseables: «Más inglés en las escuelas» (Cultural)",
            "   ¿Posible al 2020?: «Más inglés en las escuelas» (Cultural): no",
        ]
    )
    assert chat.state is not None and chat.state.stage == "finished"
    chat.start()
    assert chat.texts == [m.welcome_back, m.finished_again]
    unchanged(chat, Text("hola"))
    assert chat.texts == [m.finished_again]


def test_coming_back_to_a_question_after_the_end_finishes_again(
    places: dict[str, Chat], defn: Definition
) -> None:
    chat = places["done"]
    chat.go_to("q2")
    chat.press(defn.messages.btn_next)
    assert chat.last.records == (Finished(),)
    assert chat.texts[-1] == defn.consultation.thanks


def test_a_long_summary_is_split_to_fit_telegram(chat: Chat, defn: Definition) -> None:
    chat.skip_profile()
    chat.command("omitir")
    for _ in range(3):
        chat.press(defn.messages.btn_next)
    for n in range(6):
        chat.text(f"{n} " + "muy largo " * 99)
        chat.press("Social")
        chat.press(defn.messages.btn_more_yes if n < 5 else defn.messages.btn_more_no)
    while chat.state is not None and chat.state.stage != "finished":
        chat.press("Sí")
        chat.text("Con voluntad " * 76)
    assert chat.last.records[-1] == Finished()
    summary = [r.text for r in chat.last.replies[:-1]]
    assert len(summary) > 1
    assert all(len(text) <= 4096 for text in summary)
    assert summary[0].startswith("Resumen de sus respuestas\n")
    # pieces are cut at a line end or a space: no word is lost
    words = [w.strip("«»();") for w in " ".join(summary).split()]
    assert words.count("muy") == words.count("largo") == 6 * 99 * 2  # changes and judgements
    assert words.count("voluntad") == 6 * 76


# --- a consultation that changed -----------------------------------------------------------


def test_a_removed_current_question(chat: Chat, defn: Definition, edited: Edit) -> None:
    chat.skip_profile()
    chat.press("De acuerdo")
    chat.command("omitir")
    chat.press("Perú")
    chat.press(defn.messages.btn_next)
    chat.press("Cuba")
    before = chat.state
    assert before is not None and before.question == "q2"

    def drop_q2(data: dict[str, Any]) -> None:
        data["questions"] = [q for q in data["questions"] if q["id"] != "q2"]

    chat.defn = edited(drop_q2)
    chat.start()
    m = chat.defn.messages
    assert chat.texts[:2] == [m.version_changed, m.welcome_back]
    assert chat.texts[-1].startswith("Pregunta 3 · Municipalidades\n")
    assert chat.last.records == ()
    assert chat.state is not None
    assert chat.state.version == chat.defn.version != defn.version
    assert chat.state.answers == before.answers  # untouched, even the answer to q2
    chat.command("revisar")
    assert chat.labels() == ["A · De acuerdo", "1 · Perú", "q2 · cuba", "Cerrar"]
    chat.press("Cerrar")
    chat.press(m.btn_next)
    chat.press(m.btn_next)
    assert "Cambio 1 de 2: Perú" in chat.texts[-1]
    chat.press("Sí")
    chat.command("omitir")
    assert "Cambio 2 de 2: cuba" in chat.texts[-1]  # the option of a removed question


def test_a_removed_option(chat: Chat, defn: Definition, edited: Edit) -> None:
    chat.skip_profile().go_to("q1")
    chat.press("Perú")
    before = chat.state
    assert before is not None

    def drop_peru(data: dict[str, Any]) -> None:
        q1 = next(q for q in data["questions"] if q["id"] == "q1")
        q1["options"] = [o for o in q1["options"] if o["id"] != "peru"]

    chat.defn = edited(drop_peru)
    chat.press("Henan (China)")
    m = chat.defn.messages
    assert chat.texts[0] == m.version_changed
    assert recorded(chat)["q1.o.henan"].version == chat.defn.version
    assert chat.state is not None
    assert chat.state.answer("q1.o.peru") == before.answer("q1.o.peru")  # kept, old version
    assert "Perú" not in chat.labels()
    unchanged(chat, Choice("o:q1:peru"))  # the old button is stale now
    assert chat.texts[0] == m.stale_button


def test_a_new_wording_keeps_the_participant_in_place(
    chat: Chat, defn: Definition, edited: Edit
) -> None:
    chat.skip_profile().go_to("q2")
    before = chat.state
    assert before is not None

    def reword(data: dict[str, Any]) -> None:
        data["questions"][2]["title"] = "Otras respuestas"

    chat.defn = edited(reword)
    chat.press("Cuba")
    assert chat.texts[0] == chat.defn.messages.version_changed
    assert chat.texts[1].startswith("Pregunta 2 · Otras respuestas\n")
    assert chat.state is not None
    assert (chat.state.question, chat.state.step) == ("q2", "ask")
    chat.press("Canadá")
    assert chat.defn.messages.version_changed not in chat.texts  # said once


# --- deleting what the current step is about ----------------------------------------------


def test_deleting_the_change_being_judged(places: dict[str, Chat], defn: Definition) -> None:
    chat = places["judge"]
    chat.command("revisar")
    chat.press("1 · «Más vuelos a Lima» (Territorial)")
    chat.press(defn.messages.btn_delete)
    assert chat.state is not None
    assert (chat.state.step, chat.state.question) == ("ask", "q1")  # nothing left to judge
    chat.press("Cerrar")
    assert chat.texts[-1].startswith("Pregunta 1 · ")


def test_deleting_the_judgement_being_explained(places: dict[str, Chat], defn: Definition) -> None:
    chat = places["enabler"]
    chat.command("revisar")
    chat.press("5 · «Más vuelos a Lima» (Territorial): en parte")
    chat.press(defn.messages.btn_delete)
    assert chat.state is not None
    assert (chat.state.step, chat.state.target) == ("judge", "q1.t1")  # judge it again
    chat.press("Cerrar")
    assert "Cambio 1 de 1: «Más vuelos a Lima» (Territorial)" in chat.texts[-1]


def test_deleting_the_agreement_being_explained(places: dict[str, Chat], defn: Definition) -> None:
    chat = places["reason"]
    chat.command("revisar")
    chat.press("A · De acuerdo")
    chat.press(defn.messages.btn_delete)
    assert chat.state is not None
    assert (chat.state.step, chat.state.question, chat.state.overlay) == ("ask", "a", None)
    assert chat.texts[-1].startswith("Pregunta A · ")


def test_the_same_choice_again_records_nothing(chat: Chat) -> None:
    chat.skip_profile()
    chat.press("De acuerdo")
    chat.go_to("a")
    chat.press("✅ De acuerdo")
    assert chat.last.records == ()
    assert chat.state is not None and chat.state.step == "reason"


@pytest.mark.parametrize(
    ("where", "said"),
    [
        ("ask agreement", "skipped"),
        ("reason", "reason_saved"),  # the agreement is saved, only the "why?" is skipped
        ("write", "skipped"),  # nothing given in question 1 yet
        ("more", "reason_saved"),  # a change was given in question 1
    ],
)
def test_omitir_says_whether_the_question_was_answered(
    places: dict[str, Chat], defn: Definition, where: str, said: str
) -> None:
    chat = places[where]
    chat.command("omitir")
    assert chat.texts[0] == getattr(defn.messages, said)
