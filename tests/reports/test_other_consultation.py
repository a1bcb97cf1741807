"""The reports of a consultation that is not the bundled one: a municipal budget with its
own ids, words, question kinds and a two-step feasibility scale, checked cell by cell.

Answers are stored directly, with keys and kinds no engine would write: reports must find
every change through the consultation file and the answer a judgement refers to."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine

import storage
from flows import Definition, load
from reports import digest
from storage.models import Answer, Participant

T0 = datetime(2027, 5, 3, 15, 0, tzinfo=UTC)
FILE = Path(__file__).parent / "fixtures" / "presupuesto.yaml"

CICLOVIA = "Una ciclovía en la avenida principal"
IDEAS = {  # person → free texts of question "ideas"
    0: [CICLOVIA], 1: [CICLOVIA], 2: [CICLOVIA], 3: [CICLOVIA],
    4: ["ciclovía por la avenida principal"], 5: ["Ciclovía en la Avenida Principal, por favor"],
    6: ["Baños públicos en el parque"], 7: ["baños públicos en el parque"],
    # one person, five ways: one voice, not a theme of five
    8: ["Más árboles en la calle Larga", "más árboles en calle Larga", "Árboles en calle Larga",
        "Muchos más árboles en la calle Larga", "árboles, calle Larga"],
}  # fmt: skip
OPTIONS = {"plaza": range(10), "luz": range(6), "veredas": (10, 11)}
VERDICTS = {  # option or "ideas" → {person: verdict}
    "plaza": {p: "viable" if p < 8 else "no_viable" for p in range(10)},
    "luz": dict.fromkeys(range(6), "no_viable"),
    "veredas": {10: "viable", 11: "viable"},
    "ideas": dict.fromkeys(range(6), "viable"),
}


def store(engine: Engine) -> Definition:
    """12 people in Centro, 3 in Sector Norte, answers under opaque keys ("k7")."""
    definition = load(FILE)
    sessions = storage.make_sessions(engine)
    serial = iter(range(10_000))

    def answer(person: Participant, question: str, **fields: object) -> str:
        key = f"k{next(serial)}"
        person.answers.append(Answer(
            key=key, question=question, kind="zz", consultation_version=definition.version,
            created_at=T0, updated_at=T0, **fields,
        ))  # fmt: skip
        return key

    with sessions.begin() as s:
        for p in range(15):
            person = Participant(
                channel="test", external_id=str(p), code=f"C{p:07d}", stage="done",
                role="citizen", comuna="centro" if p < 12 else "norte", age_band="adulto",
                gender="f" if p % 2 else "m", state={}, consented_at=T0, finished_at=T0,
                created_at=T0, updated_at=T0,
            )  # fmt: skip
            s.add(person)
            for option, who in OPTIONS.items():
                if p in who:
                    key = answer(person, "obras", option=option)
                    if p in VERDICTS[option]:
                        answer(person, "viable", option=VERDICTS[option][p], refers_to=key)
            for text in IDEAS.get(p, []):
                key = answer(person, "ideas", text=text, system="obras")
                if p in VERDICTS["ideas"]:
                    answer(person, "viable", option=VERDICTS["ideas"][p], refers_to=key)
    return definition


@pytest.fixture
def built(engine: Engine) -> digest.Digest:
    definition = store(engine)
    with storage.make_sessions(engine)() as s:
        return digest.build(s, definition, since=None, until=T0 + timedelta(hours=1),
                            zone=ZoneInfo("America/Santiago"))  # fmt: skip


def test_the_result_table_cell_by_cell(built: digest.Digest) -> None:
    assert built.table.values.tolist() == [
        [
            "I",
            "Renovar la plaza de armas (10)\nLuminarias LED (5)\nVeredas nuevas (5)",
            "Renovar la plaza de armas (67% de 10)",  # 8 viable, 2 not: 10 / (10 + 5)
        ],
        [
            "II",
            f"«{CICLOVIA}» (respuestas libres) (5)\n"
            "«Baños públicos en el parque» (respuestas libres) (5)",
            f"«{CICLOVIA}» (respuestas libres) (100% de 5)",
        ],
    ]
    assert list(built.table.columns) == [
        "Pregunta Nº", "Cambios deseables", "Proyectos viables este año",
    ]  # fmt: skip


def test_what_participants_see_rests_on_five_people_or_more(built: digest.Digest) -> None:
    assert built.public_table.values.tolist() == [
        ["I", "Renovar la plaza de armas (10)\nLuminarias LED (5)",
         "Renovar la plaza de armas (67% de 10)"],
        ["II", f"«{CICLOVIA}» (respuestas libres) (5)",
         f"«{CICLOVIA}» (respuestas libres) (100% de 5)"],
    ]  # fmt: skip
    assert "árboles" not in built.public_summary.casefold()
    assert "Baños" not in built.public_summary


def test_themes_count_people_not_answers(built: digest.Digest) -> None:
    sizes = {t.label: t.people for t in built.themes}
    assert sizes == {CICLOVIA: 6, "Baños públicos en el parque": 2}  # the trees: one person


def test_every_desirable_question_has_a_chart_and_the_sheets_use_its_words(
    built: digest.Digest,
) -> None:
    names = [img.name for img in built.images]
    assert "pregunta_obras.png" in names and "pregunta_ideas.png" in names
    assert "deseable_vs_posible.png" in names
    book = load_workbook(io.BytesIO(built.xlsx()))
    assert book.sheetnames == ["Resultado", "Edad", "Género"]
    rows = [[c.value for c in row] for row in book["Edad"].iter_rows()]
    assert rows == [["Comuna", "30 o más"], ["Centro", 10]]  # Sector Norte (3): not shown
    assert "Sector Norte" in built.summary  # named among the comunas left out


def test_new_since_the_last_digest_only_when_there_was_one(engine: Engine) -> None:
    definition = store(engine)
    until = T0 + timedelta(hours=1)
    with storage.make_sessions(engine)() as s:
        first = digest.build(s, definition, since=None, until=until,
                             zone=ZoneInfo("America/Santiago"), charts=False)  # fmt: skip
        later = digest.build(s, definition, since=T0 - timedelta(hours=1), until=until,
                             zone=ZoneInfo("America/Santiago"), charts=False)  # fmt: skip
    assert "Nuevos desde" not in first.summary and "+" not in first.summary
    assert "Nuevos desde el resumen anterior: 15." in later.summary
    assert "Renovar la plaza de armas (10, +10)" in later.summary
