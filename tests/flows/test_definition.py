"""Reading consultation files: the bundled one, broken ones, and another consultation."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

import flows
from flows.events import Answer, Finished
from flows.schema import Consultation

if TYPE_CHECKING:
    from tests.flows.conftest import Chat

# A different, small consultation: 1 agreement, 2 desirable and 1 feasibility question, with
# ids the bundled file does not use. Line numbers below refer to this text.
HUERTO = """\
schema_version: 1
id: huerto2030
title: "¿Qué huerto comunitario queremos al 2030?"
organiser: "Junta de Vecinos Villa Alegre"
welcome: "Bienvenido/a a la consulta sobre el huerto comunitario."
consent: "Si acepta, guardaremos sus respuestas. ¿Acepta participar?"
privacy: "Guardamos sus respuestas y, si los da, su comuna, edad y género."
thanks: "¡Gracias! Sus respuestas quedaron guardadas."
systems:
  - {id: agua, label: "Agua"}
  - {id: suelo, label: "Suelo"}
profile:
  provinces:
    - id: norte
      label: "Norte"
      comunas:
        - {id: alto, label: "Alto del Carmen"}
        - {id: bajo, label: "Bajo Ñuble"}
  outside: {id: otra, label: "Otra parte"}
  age_bands:
    - {id: joven, label: "Menos de 30"}
    - {id: mayor, label: "30 o más"}
  genders:
    - {id: f, label: "Femenino"}
    - {id: m, label: "Masculino"}
questions:
  - id: acuerdo
    number: "0"
    kind: agreement
    title: "Tener un huerto"
    text: "¿Está de acuerdo con tener un huerto comunitario?"
    options:
      - {id: si, label: "Sí"}
      - {id: "no", label: "No"}
  - id: cultivos
    number: "I"
    kind: desirable
    title: "Qué cultivar"
    text: "¿Qué le gustaría cultivar?"
    options:
      - label: "Tomates"
        id: tomates
      - label: "Hierbas"
        id: hierbas
  - id: reglas
    number: "II"
    kind: desirable
    title: "Reglas"
    text: "¿Qué reglas debería tener el huerto?"
  - id: viable
    number: "III"
    kind: feasibility
    title: "Qué es viable"
    text: "¿Cuáles de estos cambios son viables este año?"
    options:
      - {id: si, label: "Viable"}
      - {id: nop, label: "No viable"}
"""


def problems(text: str) -> list[tuple[str, int | None]]:
    """The (place, line) of every problem ``flows.parse`` finds in ``text``."""
    with pytest.raises(flows.DefinitionError) as caught:
        flows.parse(text, "broken.yaml")
    assert str(caught.value).startswith("broken.yaml: ")
    return [(p.place, p.line) for p in caught.value.problems]


def messages(text: str) -> list[str]:
    with pytest.raises(flows.DefinitionError) as caught:
        flows.parse(text)
    return [p.message for p in caught.value.problems]


def test_the_bundled_consultation_loads() -> None:
    defn = flows.load()
    c = defn.consultation
    assert c.id == "coquimbo2020"
    assert [(q.number, q.kind) for q in c.questions] == [
        ("A", "agreement"),
        ("1", "desirable"),
        ("2", "desirable"),
        ("3", "desirable"),
        ("4", "desirable"),
        ("5", "feasibility"),
    ]
    assert len(c.profile.comunas()) == 15 + 1  # the region's 15 comunas, and "outside"
    assert defn.messages.summary_desirable == "Cambios deseables al 2020"
    assert defn.messages.summary_possible == "Cambios posibles al 2020"
    assert len(defn.version) == 12


def test_the_small_fixture_is_valid() -> None:
    assert flows.parse(HUERTO).consultation.id == "huerto2030"


def test_an_id_with_uppercase_letters_is_reported_at_its_line() -> None:
    text = HUERTO.replace("id: tomates", "id: Tomates")
    assert problems(text) == [("questions[1].options[0].id", 42)]
    assert "pattern" in messages(text)[0]


def test_every_field_problem_is_reported_at_once_in_file_order() -> None:
    text = (
        HUERTO.replace("id: tomates", "id: Tomates")  # line 42
        .replace('number: "II"', 'number: "IIII"')  # line 46
        .replace("kind: agreement", "kind: acuerdo")  # line 29
        .replace('  - {id: agua, label: "Agua"}', '  - {id: agua, label: ""}')  # line 10
    )
    assert problems(text) == [
        ("systems[0].label", 10),
        ("questions[0].kind", 29),
        ("questions[1].options[0].id", 42),
        ("questions[2].number", 46),
    ]


def test_a_missing_field_is_reported_at_its_parent() -> None:
    text = HUERTO.replace('    title: "Reglas"\n', "")
    assert problems(text) == [("questions[2].title", 45)]
    assert messages(text) == ["Field required"]


def test_an_unquoted_no_is_a_boolean_for_yaml_and_is_reported() -> None:
    text = HUERTO.replace('{id: "no", label: "No"}', '{id: no, label: "No"}')
    assert problems(text) == [("questions[0].options[1].id", 34)]


def test_duplicate_question_ids() -> None:
    text = HUERTO.replace("id: reglas", "id: cultivos")
    assert problems(text) == [("questions[2].id", 45)]
    assert messages(text) == ["id 'cultivos' is used twice"]


def test_duplicate_option_ids_in_a_question() -> None:
    text = HUERTO.replace("id: hierbas", "id: tomates")
    assert problems(text) == [("questions[1].options[1].id", 44)]


def test_a_feasibility_question_before_any_desirable_one() -> None:
    lines = HUERTO.splitlines(keepends=True)
    # questions: acuerdo (lines 27-34), cultivos (35-44), reglas (45-49), viable (50-57)
    reordered = "".join(lines[:34] + lines[49:57] + lines[34:49])
    assert problems(reordered) == [("questions[1].kind", 37)]
    assert messages(reordered) == ["the 'feasibility' question must come after a 'desirable' one"]


def test_cross_reference_problems_are_all_reported() -> None:
    text = (
        HUERTO.replace("id: reglas", "id: cultivos")  # line 45
        .replace("id: hierbas", "id: tomates")  # line 44
        .replace("{id: bajo,", "{id: alto,")  # line 18
    )
    assert problems(text) == [
        ("profile.provinces[0].comunas[1].id", 18),
        ("questions[1].options[1].id", 44),
        ("questions[2].id", 45),
    ]


def test_an_unknown_top_level_key() -> None:
    text = HUERTO.replace("organiser:", "colour: red\norganiser:")
    assert problems(text) == [("colour", 4)]
    assert messages(text) == ["Extra inputs are not permitted"]


def test_an_unknown_key_under_messages() -> None:
    text = HUERTO + 'messages:\n  btn_skip: "Saltar"\n  btn_skipp: "Saltar"\n'
    assert problems(text) == [("messages.btn_skipp", 60)]
    assert messages(text) == ["Extra inputs are not permitted"]


def test_a_message_override_that_is_not_text() -> None:
    text = HUERTO + "messages:\n  btn_skip: Saltar\n  btn_next: [1, 2]\n"
    assert problems(text) == [("messages.btn_next", 60)]


def test_message_overrides_are_used() -> None:
    defn = flows.parse(HUERTO + 'messages:\n  btn_skip: "Saltar"\n')
    assert defn.messages.btn_skip == "Saltar"
    assert defn.messages.btn_next == flows.load().messages.btn_next


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("schema_version: 1\nid: x\n  bad: indent\n", 3),
        ('schema_version: 1\ntitle: "unclosed\n', 3),
        ("questions: [1, 2\n", 2),
        ("id: a\nid: [\n", 3),
    ],
)
def test_invalid_yaml_syntax(text: str, line: int) -> None:
    assert problems(text) == [("", line)]
    assert messages(text)[0].startswith("not valid YAML: ")


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text\n"])
def test_a_file_that_is_not_a_mapping(text: str) -> None:
    assert problems(text) == [("", 1)]


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "roto.yaml"
    path.write_text(HUERTO.replace("id: tomates", "id: Tomates"), encoding="utf-8")
    with pytest.raises(flows.DefinitionError) as caught:
        flows.load(path)
    assert caught.value.source == str(path)
    assert f"{path}: line 42: questions[1].options[0].id:" in str(caught.value)
    with pytest.raises(flows.DefinitionError, match="cannot read file"):
        flows.load(path.with_name("missing.yaml"))


def test_the_schema_alone_still_rejects_bad_references() -> None:
    data = yaml.safe_load(HUERTO.replace("id: reglas", "id: cultivos"))
    with pytest.raises(ValueError, match="'cultivos' is used twice"):
        Consultation.model_validate(data)


def test_the_version_changes_when_the_text_changes() -> None:
    first = flows.parse(HUERTO)
    assert flows.parse(HUERTO).version == first.version
    assert flows.parse(HUERTO.replace("Hierbas", "Hierbas medicinales")).version != first.version
    assert flows.parse(HUERTO + "# a comment\n").version != first.version


def test_another_consultation_runs_through_the_engine_unchanged(new_chat: type[Chat]) -> None:
    defn = flows.parse(HUERTO)
    chat = new_chat(defn)
    m = defn.messages
    chat.start()
    assert chat.texts == [defn.consultation.welcome, defn.consultation.consent]
    chat.press(m.consent_yes)
    chat.text("bajo ñuble")
    assert chat.texts == [m.ask_age_band]
    chat.press("30 o más")
    chat.press("Femenino")
    assert chat.texts[-1].startswith("Pregunta 0 (1 de 4) · Tener un huerto\n")
    # No follow_up in this file: the agreement has no "why?" step.
    chat.press("Sí")
    assert chat.texts[-1].startswith("Pregunta I (2 de 4) · Qué cultivar\n")
    assert chat.labels()[:2] == ["Tomates", "Hierbas"]
    chat.press("Hierbas")
    chat.press(m.btn_next)
    assert chat.texts[-1].startswith("Pregunta II (3 de 4) · Reglas\n")
    chat.text("Turnos de riego")
    assert chat.labels() == ["Agua", "Suelo", m.btn_system_unknown, m.btn_next]
    chat.press("Agua")
    chat.press(m.btn_next)
    assert chat.texts[-2].startswith("Pregunta III (4 de 4) · Qué es viable\n")
    assert chat.texts[-1] == "1. Hierbas\n2. «Turnos de riego» (Agua)"
    chat.press("1. Hierbas")
    chat.press(m.btn_done)  # no follow_up: no "what would make it possible?"
    assert chat.state is not None and chat.state.stage == "finished"
    assert isinstance(chat.last.records[-1], Finished)
    assert chat.texts[-1] == defn.consultation.thanks
    assert "III" not in chat.texts[-2]  # the feasibility answers are shown with the changes
    assert "Cambios posibles al 2020: Hierbas\n" in chat.texts[-2]
    answers = {a.key: a for a in chat.state.answers}
    assert set(answers) == {
        "acuerdo",
        "cultivos.o.hierbas",
        "reglas.t1",
        "p.cultivos.o.hierbas",
        "p.reglas.t1",
    }
    assert answers["reglas.t1"].system == "agua"
    assert answers["p.reglas.t1"] == Answer(
        "p.reglas.t1", "viable", "posible", defn.version, option="nop", refers_to="reglas.t1"
    )


def test_question_kinds_need_their_options() -> None:
    text = HUERTO.replace('      - {id: "no", label: "No"}\n', "").replace(
        "kind: desirable", "kind: feasibility", 1
    )
    assert problems(text) == [
        ("questions[0].options", 33),  # the first (only) option
        ("questions[1].kind", 36),
        ("questions[3].kind", 51),
    ]
