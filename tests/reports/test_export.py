"""The export: one row per answer, pseudonymous, labelled even after the file changed."""

from __future__ import annotations

import codecs
import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import Engine

import storage
from bot.services.conversation import Conversation
from flows import Definition, load, parse
from flows.definition import bundled_path
from flows.events import Choice, Start, Text
from reports.export import COLUMNS, FormatMismatch, answers_frame, format_of, write

SANTIAGO = ZoneInfo("America/Santiago")
NOON_UTC = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)  # 09:00 in Santiago (summer, UTC-3)


def conversation(engine: Engine, defn: Definition | None = None) -> Conversation:
    """A conversation with a fixed clock and fixed participant codes."""
    codes = iter(["AAAA2222", "BBBB3333"])
    conv = Conversation(
        defn or load(), storage.make_sessions(engine), clock=lambda: NOON_UTC, codes=codes.__next__
    )
    conv.remember_version()
    return conv


def test_rows_are_pseudonymous_labelled_and_in_local_time(engine: Engine) -> None:
    conv = conversation(engine)
    for event in [Start(), Choice("c:y"), Choice("pv:elqui"), Choice("cm:la_serena"),
                  Choice("s:age_band:"), Choice("s:gender:"), Choice("ag:a:en_parte"),
                  Text("Depende"), Choice("o:q1:peru"), Text("Red con Atacama"),
                  Choice("sy:q1.t1:territorial")]:  # fmt: skip
        conv.apply_sync("4242", event)
    with conv.sessions() as s:
        frame = answers_frame(s, conv.definition, SANTIAGO)
    assert list(frame.columns) == COLUMNS
    assert set(frame["participant"]) == {"AAAA2222"}
    assert "4242" not in frame.to_csv()
    picked = frame[["question", "kind", "choice", "text", "system", "comuna"]].values.tolist()
    rows = [[None if pd.isna(v) else v for v in row] for row in picked]
    assert rows == [
        ["a", "acuerdo", "En parte de acuerdo", "Depende", None, "La Serena"],
        ["q1", "deseable", "Una relación de cooperación con Perú", None, None, "La Serena"],
        ["q1", "deseable", None, "Red con Atacama", "Territorial", "La Serena"],
    ]
    assert set(frame["timestamp"]) == {pd.Timestamp("2026-01-15 09:00:00", tz=SANTIAGO)}


HOSTILE = '=HYPERLINK("http://x.example";"clic")'


def answered(engine: Engine) -> Conversation:
    """One participant: a hostile free text, judged; options chosen and judged."""
    conv = conversation(engine)
    for event in [Start(), Choice("c:y"), Choice("pv:elqui"), Choice("cm:la_serena"),
                  Choice("s:age_band:"), Choice("s:gender:"), Choice("ag:a:en_parte"),
                  Text("+56 9 1234 5678"), Choice("o:q1:peru"), Text(HOSTILE),
                  Choice("sy:q1.t1:territorial"), Choice("n:q1"), Choice("n:q2"),
                  Choice("n:q3"), Choice("n:q4"), Choice("f:q1.o.peru:si"),
                  Choice("ok:q5"), Text("@todos\tya")]:  # fmt: skip
        conv.apply_sync("4242", event)
    return conv


def test_xlsx_for_excel_es(engine: Engine, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    conv = answered(engine)
    with conv.sessions() as s:
        frame = answers_frame(s, conv.definition, SANTIAGO)
    out = write(frame, tmp_path / "respuestas.xlsx", "xlsx", SANTIAGO)
    sheet = load_workbook(out)["Respuestas"]
    header = [c.value for c in sheet[1]]
    assert header == [
        "Participante", "Rol", "Comuna", "Pregunta", "Texto de la pregunta",
        "Tipo de respuesta", "Sistema", "Opción elegida", "Texto escrito", "Cambio evaluado",
        "Versión de la consulta", "Fecha y hora (America/Santiago)",
    ]  # fmt: skip
    assert all(c.font.bold for c in sheet[1]) and sheet.freeze_panes == "A2"
    rows = [dict(zip(header, [c.value for c in row], strict=True))
            for row in sheet.iter_rows(min_row=2)]  # fmt: skip
    assert {r["Rol"] for r in rows} == {"Ciudadanía"}
    stamp = rows[0]["Fecha y hora (America/Santiago)"]
    assert stamp == datetime(2026, 1, 15, 9, 0)  # a real date-time cell, local wall time
    texts = {r["Texto escrito"] for r in rows} - {None}
    # nothing a participant wrote is a formula: each is text with a leading apostrophe
    assert texts == {"'+56 9 1234 5678", "'" + HOSTILE, "'@todos\tya"}
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)
    judged = {r["Cambio evaluado"] for r in rows} - {None}
    assert judged == {"Una relación de cooperación con Perú", "'" + HOSTILE}  # words, not keys
    assert sheet.column_dimensions["E"].width <= 62
    assert sheet["E2"].alignment.wrap_text


def test_csv_for_excel_es(engine: Engine, tmp_path: Path) -> None:
    conv = answered(engine)
    with conv.sessions() as s:
        frame = answers_frame(s, conv.definition, SANTIAGO)
    data = write(frame, tmp_path / "respuestas.csv", "csv", SANTIAGO).read_bytes()
    assert data.startswith(codecs.BOM_UTF8)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][0] == "Participante" and len(rows[0]) == len(COLUMNS)
    cells = {cell for row in rows for cell in row}
    assert "'" + HOSTILE in cells and "'+56 9 1234 5678" in cells
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
    assert "2026-01-15 09:00:00" in cells


def test_the_format_follows_the_extension() -> None:
    assert format_of(Path("a.xlsx"), None) == "xlsx"
    assert format_of(Path("a.CSV"), "csv") == "csv"
    assert format_of(Path("a"), "xlsx") == "xlsx"
    with pytest.raises(FormatMismatch):
        format_of(Path("x.xlsx"), "csv")


def test_answers_to_a_removed_question_keep_their_labels(engine: Engine) -> None:
    old = conversation(engine)
    for event in [Choice("c:y"), Choice("s:province:"), Choice("s:age_band:"),
                  Choice("s:gender:"), Choice("s:ask:a"), Choice("o:q1:san_juan"),
                  Choice("n:q1"), Text("Hermanamientos con Mendoza")]:  # fmt: skip
        old.apply_sync("1", event)
    # The organisers drop question 1 and reword question 2 while the consultation runs.
    text = bundled_path().read_text(encoding="utf-8")
    start, end = text.index("  - id: q1\n"), text.index("  - id: q2\n")
    edited = (text[:start] + text[end:]).replace(
        "¿Cuáles son las otras respuestas", "¿Qué otras respuestas"
    )
    new = conversation(engine, parse(edited, "edited.yaml"))
    result = new.apply_sync("1", Choice("s:system:q2.t1"))
    assert result is not None and result.replies[0].text.startswith("La consulta fue actualizada")
    with new.sessions() as s:
        frame = answers_frame(s, new.definition, SANTIAGO)
    labels = dict(zip(frame["question"], frame["question_text"], strict=True))
    assert labels["q1"].startswith("1. ¿Con qué territorios")  # from the stored old version
    assert labels["q2"].startswith("2. ¿Qué otras respuestas")  # the current wording
    choices = list(frame["choice"][frame["question"] == "q1"])
    assert choices == ["Más cooperación con San Juan (Argentina)"]
    assert set(frame["version"]) == {old.definition.version}
