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


def test_a_newcomer_is_invited_to_consent(chat: Chat, defn: Definition) -> None:
    chat.start()
    assert chat.texts == [defn.consultation.welcome, defn.consultation.consent]
    assert chat.labels() == [defn.messages.consent_yes, defn.messages.consent_no]


def test_other_text_before_consent_gets_one_line_not_the_welcome_again(
    chat: Chat, defn: Definition
) -> None:
    chat.start()
    chat.text("hola")
    assert chat.texts == [defn.messages.consent_hint]
    assert chat.state is None and chat.last.records == ()


@pytest.mark.parametrize("typed", ["si", "Sí", "sí acepto", "SI ACEPTO", "ok", "acepto"])
def test_typing_yes_at_consent_consents(chat: Chat, defn: Definition, typed: str) -> None:
    chat.start()
    chat.text(typed)
    assert chat.last.records == (ConsentGiven(),)
    assert chat.state == flows.new_state(defn)


@pytest.mark.parametrize("typed", ["no", "No, gracias", "no gracias"])
def test_typing_no_at_consent_declines(chat: Chat, typed: str) -> None:
    chat.start()
    chat.text(typed)
    assert chat.last.records == (ConsentDeclined(),)


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
        asked.append(chat.texts[0].split("\n")[0])
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
    assert chat.texts[0].startswith(defn.messages.ask_age_band)


def test_the_age_step_says_what_applies_to_minors(chat: Chat, defn: Definition) -> None:
    chat.consent()
    chat.command("omitir")
    minors = defn.consultation.minors
    assert minors and minors in chat.texts[0]
    assert "Menores de 18" in defn.consultation.privacy


@pytest.mark.parametrize("typed", ["limari", "LIMARÍ", "Limary"])
def test_a_province_can_be_typed(chat: Chat, defn: Definition, typed: str) -> None:
    chat.consent()
    chat.text(typed)
    assert chat.texts == ["¿En qué comuna de la provincia de Limarí vive?"]


def test_an_unknown_comuna_gets_one_line_naming_buttons(chat: Chat, defn: Definition) -> None:
    chat.consent()
    unchanged(chat, Text("Santiago"))
    (hint,) = chat.texts
    assert "«Santiago»" in hint and "«Elqui»" in hint and "\n" not in hint


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


@pytest.mark.parametrize(
    ("typed", "option"),
    [("de acuerdo", "de_acuerdo"), ("en parte", "en_parte"), ("No se", "no_se")],
)
def test_an_agreement_can_be_typed(chat: Chat, typed: str, option: str) -> None:
    chat.skip_profile()
    chat.text(typed)
    assert recorded(chat)["a"].option == option


def test_other_text_at_the_agreement_is_not_stored(chat: Chat, defn: Definition) -> None:
    chat.skip_profile()
    unchanged(chat, Text("quizás"))
    assert chat.texts[0].startswith("No entendí «quizás»")


def test_changing_the_agreement_asks_whether_the_reason_still_holds(
    chat: Chat, defn: Definition
) -> None:
    m = defn.messages
    chat.skip_profile()
    chat.press("De acuerdo")
    chat.text("Porque sí")
    chat.go_to("a")
    assert "✅ De acuerdo" in chat.labels()
    chat.press("No sé")
    assert recorded(chat)["a"].option == "no_se"
    assert recorded(chat)["a"].text == "Porque sí"
    assert chat.texts == [m.reason_check.format(text="Porque sí")]
    assert chat.labels() == [m.btn_reason_keep, m.btn_reason_new]
    chat.press(m.btn_reason_new)
    assert recorded(chat)["a"].text is None
    assert chat.texts == [defn.consultation.question("a").follow_up]  # type: ignore[union-attr]
    chat.text("Me faltan datos")
    assert recorded(chat)["a"].text == "Me faltan datos"


def test_a_reason_that_still_holds_is_kept(chat: Chat, defn: Definition) -> None:
    chat.skip_profile()
    chat.press("De acuerdo")
    chat.text("Porque sí")
    chat.go_to("a")
    chat.press("En desacuerdo")
    chat.text("sí")  # typed: the yes button
    assert chat.last.records == ()
    assert chat.state is not None and chat.state.answer("a") == Answer(
        "a", "a", "acuerdo", defn.version, option="en_desacuerdo", text="Porque sí"
    )
    assert chat.state.question == "q1"


# --- desirable changes ---------------------------------------------------------------------


def test_options_toggle_on_and_off(chat: Chat, defn: Definition) -> None:
    chat.skip_profile().go_to("q1")
    peru_label = "Una relación de cooperación con Perú"
    chat.press(peru_label)
    peru = Answer("q1.o.peru", "q1", "deseable", defn.version, option="peru")
    assert chat.last.records == (AnswerRecorded(peru),)
    (reply,) = chat.last.replies
    assert reply.replace
    assert f"✅ {peru_label}" in chat.labels()
    chat.press("Más cooperación con San Juan (Argentina)")
    assert chat.state is not None
    assert [a.key for a in chat.state.answers] == ["q1.o.peru", "q1.o.san_juan"]
    chat.press(f"✅ {peru_label}")
    assert chat.last.records == (AnswerRemoved(peru),)
    assert peru_label in chat.labels()
    assert [a.key for a in chat.state.answers] == ["q1.o.san_juan"]


def test_free_text_changes_with_their_system(chat: Chat, defn: Definition) -> None:
    m = defn.messages
    chat.skip_profile().go_to("q1")
    chat.text("Intercambio de estudiantes con Perú")  # typed right at the question
    first = Answer(
        "q1.t1", "q1", "deseable", defn.version, text="Intercambio de estudiantes con Perú"
    )
    assert chat.last.records == (AnswerRecorded(first),)
    systems_intro = defn.consultation.systems_intro
    assert systems_intro and chat.texts == [f"{m.system_prompt}\n\n{systems_intro}"]
    assert chat.labels() == [s.label for s in defn.consultation.systems] + [
        m.btn_system_unknown,
        m.btn_next,
    ]
    chat.press("Social")
    tagged = Answer("q1.t1", "q1", "deseable", defn.version, text=first.text, system="social")
    assert chat.last.records == (AnswerRecorded(tagged, previous=first),)
    assert chat.texts == [m.more_prompt]
    assert chat.labels() == [m.btn_next]
    chat.text("Ferias con San Juan")
    assert recorded(chat)["q1.t2"].text == "Ferias con San Juan"
    assert chat.texts == [m.system_prompt]  # the systems are explained once
    chat.text("Becas de posgrado en Hérault")  # no system for the one before: the next one
    assert recorded(chat)["q1.t3"].text == "Becas de posgrado en Hérault"
    chat.press(m.btn_system_unknown)
    assert chat.last.records == ()
    assert chat.texts == [m.more_prompt]
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
    assert chat.labels() == [defn.messages.btn_next]


@pytest.mark.parametrize("typed", ["ok", "listo", "Siguiente", "no", "siguiente pregunta"])
def test_a_done_word_goes_to_the_next_question(chat: Chat, typed: str) -> None:
    chat.skip_profile().go_to("q3")
    chat.text("Redes de municipios costeros")
    chat.text(typed)
    assert chat.state is not None and chat.state.question == "q4"
    assert [a.key for a in chat.state.answers] == ["q3.t1"]


@pytest.mark.parametrize("typed", ["si", "Sí", "gracias", "nada", "bueno"])
def test_chatter_is_not_stored_as_a_change_without_asking(
    chat: Chat, defn: Definition, typed: str
) -> None:
    m = defn.messages
    chat.skip_profile().go_to("q3")
    chat.text("Redes de municipios costeros")
    chat.press("Institucional")
    chat.text(typed)
    assert chat.last.records == ()
    assert chat.texts == [m.save_confirm.format(text=typed)]
    assert chat.labels() == [m.btn_save_yes, m.btn_save_no]
    chat.text("no")
    assert chat.last.records == ()
    assert chat.state is not None and (chat.state.step, chat.state.pending) == ("ask", None)
    chat.text(typed)
    chat.text("sí")
    assert recorded(chat)["q3.t2"].text == typed


def test_a_typed_word_of_one_option_chooses_it(chat: Chat, defn: Definition) -> None:
    chat.skip_profile().go_to("q1")
    chat.text("peru")
    assert recorded(chat) == {
        "q1.o.peru": Answer("q1.o.peru", "q1", "deseable", defn.version, option="peru")
    }


def test_a_word_of_several_options_asks_which(chat: Chat, defn: Definition) -> None:
    chat.skip_profile().go_to("q2")
    chat.text("cooperar")
    assert chat.last.records == ()
    assert chat.texts == [defn.messages.which.format(text="cooperar")]
    assert "Cooperar con Cuba" in chat.labels() and "Cooperar con Canadá" in chat.labels()
    chat.press("Cooperar con Cuba")
    assert "q2.o.cuba" in recorded(chat)


@pytest.mark.parametrize("typed", ["hombre", "HOMBRE", "Hombre 👍", "hombree", "✅ hombre"])
def test_a_button_word_typed_with_noise_acts_as_the_button(chat: Chat, typed: str) -> None:
    chat.consent()
    chat.command("omitir")
    chat.command("omitir")
    chat.text(typed)
    assert chat.last.records == (ProfileSet("gender", "hombre"),)


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
    chat.text("Más vuelos a Lima")
    places["system"] = fork()
    chat.press("Territorial")
    places["ask again"] = fork()
    chat.text("sí")
    places["confirm"] = fork()
    chat.press(m.btn_save_no)
    chat.command("menu")
    chat.press("5 · Cambios posibles al 2020")
    places["judge"] = fork()
    chat.press("1. «Más vuelos a Lima» (Territoria…")
    chat.press(m.btn_done)
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
    "system",
    "ask again",
    "confirm",
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
    chat = places["ask desirable"]
    longest = ("ab " * MAX_TEXT)[:MAX_TEXT]
    chat.text(" " + longest + " ")
    assert recorded(chat)["q1.t1"].text == longest


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
        ("system", ("questions", "ask", "q1")),  # «No sé»: the change stays, untagged
        ("ask again", ("questions", "ask", "q2")),
        ("confirm", ("questions", "ask", "q2")),
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


def test_omitir_skips_the_whole_feasibility_question(chat: Chat, defn: Definition) -> None:
    chat.skip_profile().go_to("q1")
    chat.text("Intercambio de profesores con Perú")
    chat.text("Ferias con San Juan")
    chat.go_to("q5")
    assert "1. «Intercambio de profesores con Perú»" in chat.texts[-1]
    assert "2. «Ferias con San Juan»" in chat.texts[-1]
    chat.command("omitir")
    assert chat.last.records == ()
    assert chat.state is not None and chat.state.question != "q5"
    assert "q5" in chat.state.visited


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


def test_cancelar_at_save_this_text_goes_back_to_the_question(
    places: dict[str, Chat], defn: Definition
) -> None:
    chat = places["confirm"]
    chat.command("cancelar")
    assert chat.texts[0] == defn.messages.cancelled
    assert chat.state is not None
    assert (chat.state.step, chat.state.question, chat.state.pending) == ("ask", "q1", None)
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
@pytest.mark.parametrize("where", ["ask agreement", "confirm", "judge", "done"])
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
    position = [x.id for x in defn.consultation.questions].index(question) + 1
    assert chat.texts[-1].startswith(f"Pregunta {q.number} ({position} de 6) · {q.title}\n")


def test_menu_ticks_only_answered_questions(chat: Chat) -> None:
    chat.skip_profile()
    chat.press("En desacuerdo")
    chat.command("omitir")
    chat.command("omitir")  # question 1 seen, not answered
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


def test_review_with_no_answers(chat: Chat, defn: Definition, new_chat: type[Chat]) -> None:
    m = defn.messages
    chat.skip_profile()
    chat.command("revisar")
    assert chat.labels() == [
        f"{m.profile_place}: {m.profile_not_given}",
        f"{m.profile_age_band}: {m.profile_not_given}",
        f"{m.profile_gender}: {m.profile_not_given}",
        m.btn_close,
    ]
    municipal = new_chat(defn, flows.new_state(defn, role="municipal", comuna="canela"))
    unchanged(municipal, Command("revisar"))
    assert municipal.texts == [m.review_empty]


def test_review_edits_the_profile(chat: Chat, defn: Definition) -> None:
    m = defn.messages
    chat.skip_profile()
    chat.command("revisar")
    chat.press(f"{m.profile_place}: {m.profile_not_given}")
    assert chat.texts == [m.ask_comuna_any]
    chat.press("Canela")
    assert chat.last.records == (ProfileSet("comuna", "canela"),)
    assert chat.texts[0] == m.review_updated
    assert f"{m.profile_place}: Canela" in chat.labels()
    chat.press(f"{m.profile_gender}: {m.profile_not_given}")
    chat.text("otro")
    assert chat.last.records == (ProfileSet("gender", "otro"),)
    assert chat.state is not None and chat.state.overlay == "review"


REVIEW = [
    "Comuna: sin indicar",
    "Edad: sin indicar",
    "Género: sin indicar",
    "A · De acuerdo",
    "1 · «Más vuelos a Lima» (Territorial)",
    "5 · «Más vuelos a Lima» (Territorial): posible",
    "Cerrar",
]


def test_review_edits_a_text(places: dict[str, Chat], defn: Definition) -> None:
    m = defn.messages
    chat = places["review"]
    assert chat.labels() == REVIEW
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
    assert chat.labels()[4] == "1 · «Más vuelos a Lima y a Arequipa» (Territorial)"
    assert chat.state is not None and chat.state.overlay == "review"


def test_review_goes_to_the_question(places: dict[str, Chat], defn: Definition) -> None:
    chat = places["review_item"]
    chat.press(defn.messages.btn_goto)
    assert chat.state is not None
    assert (chat.state.overlay, chat.state.question, chat.state.step) == (None, "q1", "ask")


def test_deleting_asks_to_confirm(places: dict[str, Chat], defn: Definition) -> None:
    m = defn.messages
    chat = places["review_item"]
    before = chat.state
    chat.press(m.btn_delete)
    assert chat.last.records == ()
    assert chat.texts == [m.delete_confirm.format(answer="«Más vuelos a Lima» (Territorial)")]
    chat.press(m.btn_delete_no)
    assert chat.state == before
    assert chat.labels() == [m.btn_edit_text, m.btn_goto, m.btn_delete, m.btn_back]


def test_deleting_a_change_deletes_its_judgement(places: dict[str, Chat], defn: Definition) -> None:
    chat = places["review_item"]
    before = chat.state
    assert before is not None
    chat.press(defn.messages.btn_delete)
    chat.press(defn.messages.btn_delete_yes)
    assert [a.key for a in before.answers] == ["a", "q1.t1", "p.q1.t1"]
    assert chat.last.records == (
        AnswerRemoved(before.answers[1]),
        AnswerRemoved(before.answers[2]),
    )
    assert chat.texts[0] == defn.messages.review_deleted
    assert chat.state is not None
    assert chat.state.answers == before.answers[:1]
    assert chat.labels() == [*REVIEW[:4], "Cerrar"]


def test_deleting_a_judgement_keeps_the_change(places: dict[str, Chat], defn: Definition) -> None:
    chat = places["review"]
    chat.press(REVIEW[5])
    chat.press(defn.messages.btn_delete)
    chat.text("sí")
    assert [type(r) for r in chat.last.records] == [AnswerRemoved]
    assert chat.state is not None
    assert [a.key for a in chat.state.answers] == ["a", "q1.t1"]
    assert chat.labels() == [*REVIEW[:5], "Cerrar"]


def test_a_judgement_from_review_opens_question_5(
    places: dict[str, Chat], defn: Definition
) -> None:
    chat = places["review"]
    chat.press(REVIEW[5])
    chat.press(defn.messages.btn_goto)
    assert chat.state is not None
    assert (chat.state.overlay, chat.state.question, chat.state.step) == (None, "q5", "judge")
    assert "✅ 1. «Más vuelos a Lima» (Territoria…" in chat.labels()


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


def test_feasibility_lists_every_change_toggled_with_one_tap(chat: Chat, defn: Definition) -> None:
    m = defn.messages
    chat.skip_profile()
    chat.command("omitir")
    chat.press("Más cooperación con San Juan (Argentina)")
    chat.press("Una relación de cooperación con Perú")
    chat.text("Becas con Perú")
    chat.press("Social")
    chat.press(m.btn_next)
    chat.press(m.btn_next)  # q2: nothing
    chat.text("Hermanamientos de municipios")  # q3
    chat.press(m.btn_next)
    chat.press(m.btn_next)  # q4: nothing
    head, listed = chat.texts[-2:]
    assert head.startswith("Pregunta 5 (6 de 6) · Cambios posibles al 2020\n")
    assert listed.split("\n") == [
        "1. Más cooperación con San Juan (Argentina)",
        "2. Una relación de cooperación con Perú",
        "3. «Becas con Perú» (Social)",
        "4. «Hermanamientos de municipios»",
    ]
    chat.press("1. Más cooperación con San Juan (A…")
    assert chat.last.replies[0].replace and chat.texts == [listed]  # only the buttons change
    chat.press("3. «Becas con Perú» (Social)")
    chat.press("✅ 1. Más cooperación con San Juan (A…")  # changed their mind
    chat.text("4")
    chat.press(m.btn_done)
    assert chat.texts == [defn.consultation.question("q5").follow_up]  # type: ignore[union-attr]
    chat.command("omitir")
    assert chat.state is not None and chat.state.stage == "finished"
    judged = {a.refers_to: a.option for a in chat.state.answers if a.kind == "posible"}
    # free-text changes are numbered across the whole consultation: q1.t1, then q3.t2
    assert judged == {"q1.o.san_juan": "no", "q1.o.peru": "no", "q1.t1": "si", "q3.t2": "si"}


def test_what_would_make_it_possible_is_asked_once(chat: Chat, defn: Definition) -> None:
    chat.skip_profile().go_to("q4")
    chat.text("Un corredor ferroviario")
    chat.text("Vuelos directos a Mendoza")
    chat.press(defn.messages.btn_next)
    chat.text("1 y 2")
    chat.text("listo")
    chat.text("Fondos nacionales")
    assert recorded(chat) == {
        f"p.q4.t{n}": Answer(
            f"p.q4.t{n}", "q5", "posible", defn.version, option="si",
            text="Fondos nacionales", refers_to=f"q4.t{n}",
        )
        for n in (1, 2)
    }  # fmt: skip
    assert chat.state is not None and chat.state.question != "q5"


def test_nothing_possible_asks_nothing_more(chat: Chat, defn: Definition) -> None:
    chat.skip_profile().go_to("q4")
    chat.text("Un corredor ferroviario")
    chat.press(defn.messages.btn_next)
    chat.press(defn.messages.btn_done)
    assert recorded(chat)["p.q4.t1"].option == "no"
    assert chat.state is not None and chat.state.question != "q5"


def test_finishing_shows_the_workshop_table(chat: Chat, defn: Definition) -> None:
    m = defn.messages
    chat.skip_profile()
    chat.press("De acuerdo")
    chat.text("Es necesario")
    chat.press("Una relación de cooperación con Perú")
    chat.press(m.btn_next)
    chat.press(m.btn_next)
    chat.press(m.btn_next)
    chat.text("Más inglés en las escuelas")
    chat.press("Cultural")
    chat.press(m.btn_next)
    chat.press("1. Una relación de cooperación con…")
    chat.press(m.btn_done)
    chat.text("Convenios")
    assert chat.last.records[-1] == Finished()
    summary, thanks = chat.texts[-2:]
    assert thanks == defn.consultation.thanks
    assert summary == "\n".join(
        [
            "Su resumen, como la tabla del taller:",
            "",
            "Pregunta A",
            "De acuerdo — Motivo: «Es necesario»",
            "",
            "Pregunta 1",
            "Cambios deseables al 2020: Una relación de cooperación con Perú",
            "Cambios posibles al 2020: Una relación de cooperación con Perú",
            "",
            "Pregunta 2",
            "(sin respuestas)",
            "",
            "Pregunta 3",
            "(sin respuestas)",
            "",
            "Pregunta 4",
            "Cambios deseables al 2020: «Más inglés en las escuelas» (Cultural)",
            "Cambios posibles al 2020: ninguno",
            "",
            "Lo que los haría posibles: «Convenios»",
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


def test_a_long_summary_is_split_by_question(chat: Chat, defn: Definition) -> None:
    chat.skip_profile()
    chat.command("omitir")
    for _ in range(3):
        chat.press(defn.messages.btn_next)
    for n in range(6):
        chat.text(f"{n} " + "muy largo " * 99)
        chat.press("Social")
    chat.press(defn.messages.btn_next)
    chat.text("1 2 3 4 5 6")
    chat.press(defn.messages.btn_done)
    chat.text("Con voluntad " * 76)
    assert chat.last.records[-1] == Finished()
    summary = [r.text for r in chat.last.replies[1:-1]]  # after "saved", before the thanks
    assert len(summary) > 1
    assert all(len(text) <= 700 for text in summary)
    assert summary[0].startswith("Su resumen, como la tabla del taller:\n\nPregunta A\n")
    # pieces are cut at a line end or a space: no word is lost
    words = [w.strip("«»();:") for w in " ".join(summary).split()]
    assert words.count("muy") == words.count("largo") == 6 * 99 * 2  # desirable and possible
    assert words.count("voluntad") == 76


# --- a consultation that changed -----------------------------------------------------------


def test_a_removed_current_question(chat: Chat, defn: Definition, edited: Edit) -> None:
    chat.skip_profile()
    chat.press("De acuerdo")
    chat.command("omitir")
    chat.press("Una relación de cooperación con Perú")
    chat.press(defn.messages.btn_next)
    chat.press("Cooperar con Cuba")
    before = chat.state
    assert before is not None and before.question == "q2"

    def drop_q2(data: dict[str, Any]) -> None:
        data["questions"] = [q for q in data["questions"] if q["id"] != "q2"]

    chat.defn = edited(drop_q2)
    chat.start()
    m = chat.defn.messages
    assert chat.texts[:2] == [m.version_changed, m.welcome_back]
    assert chat.texts[-1].startswith("Pregunta 3 (3 de 5) · Municipalidades\n")
    assert chat.last.records == ()
    assert chat.state is not None
    assert chat.state.version == chat.defn.version != defn.version
    assert chat.state.answers == before.answers  # untouched, even the answer to q2
    chat.command("revisar")
    assert chat.labels()[3:] == [
        "A · De acuerdo", "1 · Una relación de cooperación con Perú", "q2 · cuba", "Cerrar"
    ]  # fmt: skip
    chat.press("Cerrar")
    chat.press(m.btn_next)
    chat.press(m.btn_next)
    assert chat.texts[-1].split("\n") == ["1. Una relación de cooperación con Perú", "2. cuba"]


def test_a_removed_option(chat: Chat, defn: Definition, edited: Edit) -> None:
    chat.skip_profile().go_to("q1")
    chat.press("Una relación de cooperación con Perú")
    before = chat.state
    assert before is not None

    def drop_peru(data: dict[str, Any]) -> None:
        q1 = next(q for q in data["questions"] if q["id"] == "q1")
        q1["options"] = [o for o in q1["options"] if o["id"] != "peru"]

    chat.defn = edited(drop_peru)
    chat.press("Más cooperación con San Juan (Argentina)")
    m = chat.defn.messages
    assert chat.texts[0] == m.version_changed
    assert recorded(chat)["q1.o.san_juan"].version == chat.defn.version
    assert chat.state is not None
    assert chat.state.answer("q1.o.peru") == before.answer("q1.o.peru")  # kept, old version
    assert "Una relación de cooperación con Perú" not in chat.labels()
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
    chat.press("Cooperar con Cuba")
    assert chat.texts[0] == chat.defn.messages.version_changed
    assert chat.texts[1].startswith("Pregunta 2 (3 de 6) · Otras respuestas\n")
    assert chat.state is not None
    assert (chat.state.question, chat.state.step) == ("q2", "ask")
    chat.press("Cooperar con Canadá")
    assert chat.defn.messages.version_changed not in chat.texts  # said once


# --- deleting what the current step is about ----------------------------------------------


def test_deleting_the_change_being_judged(places: dict[str, Chat], defn: Definition) -> None:
    chat = places["judge"]
    chat.command("revisar")
    chat.press("1 · «Más vuelos a Lima» (Territorial)")
    chat.press(defn.messages.btn_delete)
    chat.press(defn.messages.btn_delete_yes)
    assert chat.state is not None
    assert (chat.state.step, chat.state.question) == ("ask", "q1")  # nothing left to judge
    chat.press("Cerrar")
    assert chat.texts[-1].startswith("Pregunta 1 (2 de 6) · ")


def test_deleting_the_judgement_being_explained(places: dict[str, Chat], defn: Definition) -> None:
    chat = places["enabler"]
    chat.command("revisar")
    chat.press(REVIEW[5])
    chat.press(defn.messages.btn_delete)
    chat.press(defn.messages.btn_delete_yes)
    assert chat.state is not None
    assert chat.state.step == "judge"  # judge it again
    chat.press("Cerrar")
    assert chat.texts[-1] == "1. «Más vuelos a Lima» (Territorial)"


def test_deleting_the_agreement_being_explained(places: dict[str, Chat], defn: Definition) -> None:
    chat = places["reason"]
    chat.command("revisar")
    chat.press("A · De acuerdo")
    chat.press(defn.messages.btn_delete)
    chat.press(defn.messages.btn_delete_yes)
    assert chat.state is not None
    assert (chat.state.step, chat.state.question, chat.state.overlay) == ("ask", "a", "review")
    chat.press("Cerrar")
    assert chat.texts[-1].startswith("Pregunta A (1 de 6) · ")


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
        ("ask desirable", "skipped"),  # nothing given in question 1 yet
        ("ask again", "reason_saved"),  # a change was given in question 1
    ],
)
def test_omitir_says_whether_the_question_was_answered(
    places: dict[str, Chat], defn: Definition, where: str, said: str
) -> None:
    chat = places[where]
    chat.command("omitir")
    assert chat.texts[0] == getattr(defn.messages, said)
