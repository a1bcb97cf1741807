"""The digest's figures, checked against values counted by hand on a small consultation."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

import storage
from bot.services.conversation import Conversation
from flows import buttons as bt
from flows import load
from flows.events import Choice, Event, Text
from reports import aggregate
from reports.export import answers_frame
from storage import rehearsals

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
    events += [Choice(bt.Toggle("q1", o).encode()) for o in options]
    keys = [f"q1.o.{o}" for o in options]
    if text:
        events += [Text(text), Choice(bt.System("q1.t1", "ambiental").encode())]
        keys.append("q1.t1")
    events.append(Choice(bt.Next("q1").encode()))
    if not finish:
        return events
    events += [Choice(bt.Next(q).encode()) for q in ("q2", "q3", "q4")]
    for key, verdict in zip(keys, verdicts, strict=True):
        if verdict == "si":  # one tap marks it possible; «Listo» judges the others not
            events.append(Choice(bt.Judge(key, verdict).encode()))
    events.append(Choice(bt.Done("q5").encode()))
    if "si" in verdicts:
        events.append(Choice(bt.Skip("enabler", "q5").encode()))
    return events


PEOPLE = {
    "1": person("ovalle", "de_acuerdo", ["peru", "san_juan"], "Agua al secano", ["si", "no", "si"]),
    "2": person("ovalle", "de_acuerdo", ["peru"], None, ["no"]),
    "3": person("la_serena", "en_parte", ["peru", "regiones_vecinas"], None, ["si", "no"]),
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
            conv.apply_sync(who, event)
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


def test_option_counts_by_question(counts) -> None:  # type: ignore[no-untyped-def]
    everything, recent = counts
    options = everything.options
    agreement, desirable = options[options["question"] == "a"], options[options["question"] == "q1"]
    assert as_dict(agreement, ["option"]) == {"de_acuerdo": 2, "en_parte": 1, "no_se": 1}
    assert as_dict(desirable, ["option"]) == {"peru": 3, "san_juan": 2, "regiones_vecinas": 1}
    fresh = recent.options[recent.options["question"] == "q1"]
    assert as_dict(fresh, ["option"], "new") == {"peru": 1, "san_juan": 0, "regiones_vecinas": 1}
    assert as_dict(everything.systems, ["question", "system"]) == {("q1", "ambiental"): 2}


def test_judgements_are_counted_by_the_change_they_refer_to(counts) -> None:  # type: ignore[no-untyped-def]
    everything, _ = counts
    judged = as_dict(everything.feasibility, ["question", "option", "verdict"])
    # peru: person 1 sí, person 2 no, person 3 sí; person 4 stopped before judging
    assert judged == {
        ("q1", "peru", "si"): 2, ("q1", "peru", "no"): 1,
        ("q1", "san_juan", "no"): 1, ("q1", "regiones_vecinas", "no"): 1,
    }  # fmt: skip


def test_free_texts_and_their_verdicts(engine: Engine, counts) -> None:  # type: ignore[no-untyped-def]
    with storage.make_sessions(engine)() as s:
        texts = aggregate.free_texts(s, "q1", until=T0 + timedelta(hours=3))
        verdicts = aggregate.judgements(s, until=T0 + timedelta(hours=3), keys=list(texts["key"]))
        verdicts = texts[["participant", "key"]].merge(verdicts, on=["participant", "key"])
    assert sorted(texts["text"]) == ["Agua al secano", "Más becas"]
    assert texts["participant"].nunique() == 2
    agua = texts[texts["text"] == "Agua al secano"].iloc[0]
    assert verdicts.values.tolist() == [[agua["participant"], agua["key"], "si"]]


def joined(comuna: str, age: str | None, gender: str | None) -> list[Event]:
    """Consent and profile only (a skipped step leaves None)."""
    province = {"ovalle": "limari", "la_serena": "elqui", "illapel": "choapa"}[comuna]
    return [
        Choice("c:y"), Choice(f"pv:{province}"), Choice(f"cm:{comuna}"),
        Choice(f"ab:{age}") if age else Choice("s:age_band:"),
        Choice(f"gd:{gender}") if gender else Choice("s:gender:"),
    ]  # fmt: skip


def played(engine: Engine, people: list[list[Event]]) -> Conversation:
    """A conversation in which each list of events is one participant's."""
    conv = Conversation(load(), storage.make_sessions(engine), clock=lambda: T0)
    for who, events in enumerate(people):
        for event in events:
            conv.apply_sync(str(who), event)
    return conv


@pytest.fixture
def profiled(engine: Engine) -> Conversation:
    """Ovalle 7 (4 women, 2 men, 1 not given), La Serena 6 (6 women), Illapel 3."""
    return played(
        engine,
        [joined("ovalle", "e30_44", "mujer")] * 4
        + [joined("ovalle", "e18_29", "hombre")] * 2
        + [joined("ovalle", "e60_mas", None)]
        + [joined("la_serena", "e45_59", "mujer")] * 6
        + [joined("illapel", "e30_44", "mujer")] * 3,
    )


def test_breakdown_rounds_every_cell_and_leaves_out_small_comunas(
    profiled: Conversation,
) -> None:
    with profiled.sessions() as s:
        counts = aggregate.count(s, since=None, until=T0 + timedelta(days=1))

    comunas = COMUNAS[:-1]  # "fuera_region" is not a comuna
    gender, small = aggregate.breakdown(counts, "gender", comunas, ["fuera_region", ""])
    assert small == ["illapel"]  # 3 people: not broken down at all
    assert list(gender.index) == ["la_serena", "ovalle"]  # deck order; no rest row (3 < 5)
    assert gender.loc["la_serena"].to_dict() == {"mujer": 5, "hombre": 0, aggregate.NOT_GIVEN: 0}
    # 4 women, 2 men, 1 not given: every published cell a multiple of 5
    assert gender.loc["ovalle"].to_dict() == {"mujer": 5, "hombre": 5, aggregate.NOT_GIVEN: 5}

    age, _ = aggregate.breakdown(counts, "age_band", comunas, [])
    assert age.loc["la_serena", "e45_59"] == 5  # 6 people
    assert age.loc["ovalle", "e30_44"] == 5  # 4 people


def test_the_rest_of_the_region_holds_only_small_comunas(engine: Engine) -> None:
    no_comuna: list[Event] = [Choice("c:y"), Choice("s:province:")]
    conv = played(
        engine,
        [joined("ovalle", "e30_44", "mujer")] * 3
        + [joined("illapel", "e30_44", "mujer")] * 3
        + [joined("la_serena", "e30_44", "mujer")] * 9
        + [no_comuna] * 6,
    )
    with conv.sessions() as s:
        counts = aggregate.count(s, since=None, until=T0 + timedelta(days=1))
    table, small = aggregate.breakdown(counts, "gender", COMUNAS[:-1], ["fuera_region", ""])
    assert small == ["ovalle", "illapel"]
    assert list(table.index) == ["la_serena", aggregate.REST, ""]
    assert table.loc[aggregate.REST, "mujer"] == 5  # Ovalle 3 + Illapel 3 = 6, rounded
    assert table.loc["", aggregate.NOT_GIVEN] == 5  # the 6 without comuna: their own row


def test_digest_shows_the_breakdown_rounded(profiled: Conversation) -> None:
    from openpyxl import load_workbook

    from reports import digest

    with profiled.sessions() as s:
        d = digest.build(s, profiled.definition, since=None, until=T0 + timedelta(days=1),
                         zone=ZoneInfo("America/Santiago"), charts=False)  # fmt: skip
    assert "sin desglose (menos de 5 participantes): Illapel." in d.summary
    book = load_workbook(io.BytesIO(d.xlsx()))
    assert book.sheetnames == ["Resultado", "Edad", "Género"]
    rows = [[c.value for c in row] for row in book["Género"].iter_rows()]
    assert rows == [
        ["Comuna", "Mujer", "Hombre", "Sin indicar"],
        ["La Serena", 5, 0, 0],
        ["Ovalle", 5, 5, 5],
    ]
    assert "| Ovalle | 5 | 5 | 5 |" in d.markdown()


def test_the_participants_table_leaves_out_changes_named_by_fewer_than_five(counts) -> None:  # type: ignore[no-untyped-def]
    from reports import digest

    everything, _ = counts
    definition = load()
    tally = digest.Tally.of(definition, everything)
    full = digest.result_table(tally).set_index("Pregunta Nº")
    public = digest.result_table(tally, least=5).set_index("Pregunta Nº")
    assert "Perú (5)" in full.loc["1", "Cambios deseables al 2020"]  # 3 people, rounded
    assert public.loc["1", "Cambios deseables al 2020"] == "—"
    assert public.loc["1", "Cambios posibles al 2020"] == "—"


def test_rehearsals_count_only_when_asked(engine: Engine) -> None:
    """Participants of ``consulta chat`` (channel "terminal") are stored like everyone else
    but left out of the figures, answers included, unless ``rehearsals``."""
    sessions = storage.make_sessions(engine)
    real = Conversation(load(), sessions, clock=lambda: T0)
    rehearsal = Conversation(load(), sessions, clock=lambda: T0, channel=rehearsals.CHANNEL)
    for event in PEOPLE["1"]:
        real.apply_sync("1", event)
        rehearsal.apply_sync("1", event)
    with sessions() as s:
        until = T0 + timedelta(hours=1)
        without = aggregate.count(s, since=None, until=until)
        with_them = aggregate.count(s, since=None, until=until, rehearsals=True)
        texts = aggregate.free_texts(s, "q1", until=until)["text"].tolist()
        all_texts = aggregate.free_texts(s, "q1", until=until, rehearsals=True)["text"].tolist()
        exported = answers_frame(s, load(), ZoneInfo("America/Santiago"))
        everything = answers_frame(s, load(), ZoneInfo("America/Santiago"), rehearsals=True)
    assert int(without.participation["finished"].sum()) == 1
    assert int(with_them.participation["finished"].sum()) == 2

    def q1(counts: aggregate.Counts) -> dict[str, int]:
        return as_dict(counts.options[counts.options["question"] == "q1"], ["option"])

    assert q1(without) == {"peru": 1, "san_juan": 1}
    assert q1(with_them) == {"peru": 2, "san_juan": 2}
    assert (texts, all_texts) == (["Agua al secano"], ["Agua al secano"] * 2)
    assert len(everything) == 2 * len(exported) > 0
