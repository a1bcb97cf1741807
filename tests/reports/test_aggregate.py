"""The digest's figures, checked against values counted by hand on a small consultation."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import Engine

import storage
from bot.services.conversation import Conversation
from flows import load
from flows.events import Choice, Event, Text
from reports import aggregate

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
COMUNAS = [c.id for c in load().consultation.profile.comunas()]


def person(comuna: str, agree: str, options: list[str], text: str | None,
           verdicts: list[str], finish: bool = True) -> list[Event]:  # fmt: skip
    """The events of one participant who answers question 1 and judges each change."""
    province = {"ovalle": "limari", "la_serena": "elqui", "illapel": "choapa"}[comuna]
    events: list[Event] = [
        Choice("c:y"), Choice(f"pv:{province}"), Choice(f"cm:{comuna}"), Choice("ab:e30_44"),
        Choice("gd:mujer"), Choice(f"ag:a:{agree}"), Choice("s:reason:a"),
    ]  # fmt: skip
    events += [Choice(f"o:q1:{o}") for o in options]
    keys = [f"q1.o.{o}" for o in options]
    if text:
        events += [Text(text), Choice("sy:q1.t1:ambiental"), Choice("mo:q1:n")]
        keys.append("q1.t1")
    else:
        events.append(Choice("n:q1"))
    if not finish:
        return events
    events += [Choice("n:q2"), Choice("n:q3"), Choice("n:q4")]
    for key, verdict in zip(keys, verdicts, strict=True):
        events += [Choice(f"f:{key}:{verdict}"), Choice(f"s:enabler:{key}")]
    return events


PEOPLE = {
    "1": person("ovalle", "de_acuerdo", ["peru", "san_juan"], "Agua", ["si", "no", "si"]),
    "2": person("ovalle", "de_acuerdo", ["peru"], None, ["en_parte"]),
    "3": person("la_serena", "en_parte", ["peru", "henan"], None, ["si", "no"]),
    "4": person("illapel", "no_se", ["san_juan"], "Más becas", [], finish=False),
}  # fmt: skip


@pytest.fixture
def counts(engine: Engine) -> tuple[aggregate.Counts, aggregate.Counts]:
    """All four people answer before T0+1h; person 3 only after: (all, since T0+1h)."""
    clock = {"now": T0}
    conv = Conversation(load(), storage.make_sessions(engine), clock=lambda: clock["now"])
    for who, events in PEOPLE.items():
        clock["now"] = T0 + timedelta(hours=2 if who == "3" else 0)
        for event in events:
            conv.handle(who, event)
    with conv.sessions() as s:
        until = T0 + timedelta(hours=3)
        return (
            aggregate.count(s, since=None, until=until),
            aggregate.count(s, since=T0 + timedelta(hours=1), until=until),
        )


def as_dict(frame, keys, value="n"):  # type: ignore[no-untyped-def]
    return {tuple(k) if len(keys) > 1 else k[0]: int(v)
            for k, v in zip(frame[keys].values.tolist(), frame[value], strict=True)}  # fmt: skip


def test_participation_by_comuna_and_role(counts) -> None:  # type: ignore[no-untyped-def]
    everything, recent = counts
    table = aggregate.participation_by_comuna(everything, COMUNAS)
    assert list(table.index[:15]) == COMUNAS[:15]  # every comuna, in order, zeros included
    assert table.loc["ovalle"].to_dict() == {"citizens": 2, "municipal": 0, "finished": 2, "new": 2}
    assert table.loc["la_serena", "finished"] == 1 and table.loc["illapel", "finished"] == 0
    assert table.loc["canela"].sum() == 0
    assert int(table["citizens"].sum()) == 4
    assert int(recent.participation["new"].sum()) == 1  # only person 3 came after T0+1h


def test_agreement_and_desirable_counts(counts) -> None:  # type: ignore[no-untyped-def]
    everything, recent = counts
    assert as_dict(everything.agreement, ["option"]) == {"de_acuerdo": 2, "en_parte": 1, "no_se": 1}
    assert as_dict(everything.desirable, ["option"]) == {"peru": 3, "san_juan": 2, "henan": 1}
    assert as_dict(recent.desirable, ["option"], "new") == {"peru": 1, "san_juan": 0, "henan": 1}
    assert as_dict(everything.systems, ["question", "system"]) == {("q1", "ambiental"): 2}


def test_feasibility_shares(counts) -> None:  # type: ignore[no-untyped-def]
    everything, _ = counts
    shares = aggregate.feasibility_shares(everything).set_index(["question", "option"])
    # peru: judged by 1 (sí), 2 (en parte), 3 (sí) → 2/3 sí, 1/3 en parte
    assert shares.loc[("q1", "peru"), "judged"] == 3
    assert shares.loc[("q1", "peru"), "si"] == pytest.approx(2 / 3)
    assert shares.loc[("q1", "peru"), "en_parte"] == pytest.approx(1 / 3)
    assert shares.loc[("q1", "san_juan"), "no"] == 1.0  # only person 1 judged it (person 4 stopped)
    assert shares.loc[("q1", "henan"), "no"] == 1.0
    assert shares.loc[("q1", ""), "si"] == 1.0  # person 1's free-text change


def joined(comuna: str, age: str | None, gender: str | None) -> list[Event]:
    """Consent and profile only (a skipped step leaves None)."""
    province = {"ovalle": "limari", "la_serena": "elqui", "illapel": "choapa"}[comuna]
    return [
        Choice("c:y"), Choice(f"pv:{province}"), Choice(f"cm:{comuna}"),
        Choice(f"ab:{age}") if age else Choice("s:age_band:"),
        Choice(f"gd:{gender}") if gender else Choice("s:gender:"),
    ]  # fmt: skip


@pytest.fixture
def profiled(engine: Engine) -> Conversation:
    """Ovalle 7 (4 women, 2 men, 1 not given), La Serena 6 (6 women), Illapel 3."""
    people = (
        [joined("ovalle", "e30_44", "mujer")] * 4
        + [joined("ovalle", "e18_29", "hombre")] * 2
        + [joined("ovalle", "e60_mas", None)]
        + [joined("la_serena", "e45_59", "mujer")] * 6
        + [joined("illapel", "e30_44", "mujer")] * 3
    )
    conv = Conversation(load(), storage.make_sessions(engine), clock=lambda: T0)
    for who, events in enumerate(people):
        for event in events:
            conv.handle(str(who), event)
    return conv


def test_breakdown_hides_small_comunas_and_small_cells(profiled: Conversation) -> None:
    with profiled.sessions() as s:
        counts = aggregate.count(s, since=None, until=T0 + timedelta(days=1))

    gender, small = aggregate.breakdown(counts, "gender", COMUNAS)
    assert small == ["illapel"]  # 3 people: not broken down at all
    assert list(gender.index) == ["la_serena", "ovalle"]  # deck order; no rest row (3 < 5)
    assert gender.loc["la_serena", "mujer"] == 6
    assert gender.loc["ovalle", "mujer"] is pd.NA  # 4 < 5
    assert gender.loc["ovalle", "hombre"] is pd.NA
    assert gender.loc["ovalle", aggregate.NOT_GIVEN] is pd.NA
    assert gender.loc["la_serena", "hombre"] == 0  # zero is not a small group

    age, _ = aggregate.breakdown(counts, "age_band", COMUNAS)
    assert age.loc["la_serena", "e45_59"] == 6
    assert age.loc["ovalle", "e30_44"] is pd.NA


def test_digest_shows_the_breakdown_with_small_numbers_hidden(profiled: Conversation) -> None:
    from openpyxl import load_workbook

    from reports import digest

    with profiled.sessions() as s:
        d = digest.build(s, profiled.definition, since=None, until=T0 + timedelta(days=1),
                         zone=ZoneInfo("America/Santiago"), charts=False)  # fmt: skip
    assert "sin desglose (menos de 5 participantes): Illapel." in d.summary
    book = load_workbook(io.BytesIO(d.xlsx()))
    assert book.sheetnames == ["resultado", "Edad", "Género"]
    rows = [[c.value for c in row] for row in book["Género"].iter_rows()]
    assert rows == [
        ["Comuna", "Mujer", "Hombre", "Sin indicar"],
        ["La Serena", 6, 0, 0],
        ["Ovalle", "<5", "<5", "<5"],
    ]
    assert "| Ovalle | <5 | <5 | <5 |" in d.markdown()


def test_the_participants_table_leaves_out_changes_named_by_fewer_than_five(counts) -> None:  # type: ignore[no-untyped-def]
    from reports import digest

    everything, _ = counts
    definition = load()
    labels = digest._Labels(definition)
    full = digest.result_table(definition, everything, labels).set_index("Pregunta Nº")
    public = digest.result_table(definition, everything, labels, least=5).set_index("Pregunta Nº")
    assert "(3)" in full.loc["1", "Cambios deseables al 2020"]  # Perú, chosen by 3 people
    assert public.loc["1", "Cambios deseables al 2020"] == "—"
    assert public.loc["1", "Cambios posibles al 2020"] == "—"
