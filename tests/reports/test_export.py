"""The export: one row per answer, pseudonymous, labelled even after the file changed."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Engine

import storage
from bot.services.conversation import Conversation
from flows import Definition, load, parse
from flows.definition import bundled_path
from flows.events import Choice, Start, Text
from reports.export import COLUMNS, answers_frame

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
        conv.handle("4242", event)
    with conv.sessions() as s:
        frame = answers_frame(s, conv.definition, SANTIAGO)
    assert list(frame.columns) == COLUMNS
    assert set(frame["participant"]) == {"AAAA2222"}
    assert "4242" not in frame.to_csv()
    picked = frame[["question", "kind", "choice", "text", "system", "comuna"]].values.tolist()
    rows = [[None if pd.isna(v) else v for v in row] for row in picked]
    assert rows == [
        ["a", "acuerdo", "En parte de acuerdo", "Depende", None, "La Serena"],
        ["q1", "deseable", "Perú", None, None, "La Serena"],
        ["q1", "deseable", None, "Red con Atacama", "Territorial", "La Serena"],
    ]
    assert set(frame["timestamp"]) == {"2026-01-15 09:00:00-0300"}


def test_answers_to_a_removed_question_keep_their_labels(engine: Engine) -> None:
    old = conversation(engine)
    for event in [Choice("c:y"), Choice("s:province:"), Choice("s:age_band:"),
                  Choice("s:gender:"), Choice("s:ask:a"), Choice("o:q1:henan"),
                  Choice("n:q1"), Text("Hermanamientos")]:  # fmt: skip
        old.handle("1", event)
    # The organisers drop question 1 and reword question 2 while the consultation runs.
    text = bundled_path().read_text(encoding="utf-8")
    start, end = text.index("  - id: q1\n"), text.index("  - id: q2\n")
    edited = (text[:start] + text[end:]).replace(
        "¿Cuáles son las otras respuestas", "¿Qué otras respuestas"
    )
    new = conversation(engine, parse(edited, "edited.yaml"))
    result = new.handle("1", Choice("s:system:q2.t1"))
    assert result is not None and result.replies[0].text.startswith("La consulta fue actualizada")
    with new.sessions() as s:
        frame = answers_frame(s, new.definition, SANTIAGO)
    labels = dict(zip(frame["question"], frame["question_text"], strict=True))
    assert labels["q1"].startswith("1. ¿Con qué territorios")  # from the stored old version
    assert labels["q2"].startswith("2. ¿Qué otras respuestas")  # the current wording
    assert list(frame["choice"][frame["question"] == "q1"]) == ["Henan (China)"]
    assert set(frame["version"]) == {old.definition.version}
