"""The organisers' digest: what is emerging, as channel-neutral content (text, PNG charts,
the workshop's result table). Built from ``reports.aggregate`` (GROUP BY in the database)
and ``reports.themes`` (free texts grouped by meaning); delivered by ``bot/``, or written to
a folder by ``consulta report``.

Everything is derived from the consultation file: which questions gather desirable changes
(kind ``desirable``), which one judges them (kind ``feasibility``, whose options run from
most to least possible: every option but the last counts as possible), the labels of
options, comunas and systems. No id or word of the bundled file is known here.

Every count of people goes through ``reports.disclosure`` before it is written anywhere.
Texts are for organisers, in Spanish; participants' words appear only as theme labels and
examples, as data (plain text, never markup).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypedDict
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy.orm import Session

from flows import Definition
from flows.schema import Question
from reports import aggregate, disclosure, spreadsheet
from reports.disclosure import people

MAX_THEMES = 5
"""Themes per question in the digest (the largest, by people)."""
MIN_THEME_PEOPLE = 2
"""A group of free texts written by fewer people is not a theme (organisers' view)."""


@dataclass(frozen=True)
class Image:
    """One chart: ``name`` is its file name, ``caption`` says what it shows."""

    name: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class Change:
    """One desirable change of a question: an option, or a theme of free texts."""

    question: str
    label: str
    people: int
    """How many people gave it (exact: publish through ``disclosure``)."""
    new: int
    """How many of them since the previous digest."""
    judged: int
    """How many of them judged whether it is possible."""
    possible: int
    """How many of those judged it possible (any verdict but the scale's last)."""
    theme: bool = False
    examples: tuple[str, ...] = ()
    restates: str | None = None
    """A theme that restates a listed option: that option's label."""

    @property
    def name(self) -> str:
        """As written in the table: options by their label, themes marked."""
        if not self.theme:
            return self.label
        same = f", como «{self.restates}»" if self.restates else ""
        return f"«{self.label}» (respuestas libres{same})"


ThemeSummary = Change
"""A theme, as the digest shows it (``Change`` with ``theme=True``)."""


@dataclass(frozen=True)
class Digest:
    """A digest, ready for any channel."""

    title: str
    period: str
    has_news: bool
    summary: str
    """The short text summary (a phone screen or two)."""
    public_summary: str
    """What participants may see (/resultados): no verbatim free text, nothing resting on
    fewer than ``disclosure.MIN_PEOPLE`` people."""
    table: pd.DataFrame
    """The workshop's result table, filled in."""
    public_table: pd.DataFrame
    """The result table for participants: changes named by fewer than 5 people left out."""
    images: tuple[Image, ...] = ()
    themes: tuple[Change, ...] = field(default=())
    profile: dict[str, pd.DataFrame] = field(default_factory=dict)
    """"Edad" and "Género": participants per comuna, rounded (``aggregate.breakdown``)."""
    participation: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Participants per place as the participation chart shows them, rounded: index the
    places' names, columns citizens, municipal, finished, new."""

    def xlsx(self) -> bytes:
        """The result table, then one sheet per profile breakdown."""
        return spreadsheet.xlsx({"Resultado": self.table, **self.profile})

    def markdown(self) -> str:
        lines = [f"# {self.title}", "", f"_{self.period}_", "", self.summary, ""]
        columns = list(self.table.columns)
        lines += ["## Resultado", "", "| " + " | ".join(columns) + " |", "|---|---|---|"]
        for row in self.table.itertuples(index=False):
            cells = [str(v).replace("|", "\\|").replace("\n", "<br>") for v in row]
            lines.append("| " + " | ".join(cells) + " |")
        for name, table in self.profile.items():
            lines += ["", f"## Participantes por comuna y {name.lower()}", ""]
            lines += ["| " + " | ".join(table.columns) + " |", "|---" * len(table.columns) + "|"]
            rows = table.itertuples(index=False)
            lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
        lines += ["", "## Gráficos", ""]
        lines += [f"![{img.caption}]({img.name})" for img in self.images]
        return "\n".join(lines) + "\n"

    def write(self, directory: Path) -> list[Path]:
        """``digest.md``, the charts as PNG, the result table as XLSX and CSV."""
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for img in self.images:
            (directory / img.name).write_bytes(img.png)
            written.append(directory / img.name)
        (directory / "resultado.xlsx").write_bytes(self.xlsx())
        (directory / "resultado.csv").write_bytes(spreadsheet.csv(self.table))
        (directory / "digest.md").write_text(self.markdown(), encoding="utf-8")
        return [*written, directory / "resultado.xlsx", directory / "resultado.csv",
                directory / "digest.md"]  # fmt: skip


@dataclass(frozen=True)
class Tally:
    """What the digest's text, tables and charts are made from: the consultation, the
    counts of the period, the words that label them, and each desirable question's changes
    (``changes_of``)."""

    definition: Definition
    counts: aggregate.Counts
    words: Words
    changes: dict[str, list[Change]]

    @classmethod
    def of(
        cls,
        definition: Definition,
        counts: aggregate.Counts,
        themes: dict[str, list[Change]] | None = None,
    ) -> Tally:
        """The tally of ``counts``, the ``themes`` of free texts among the changes."""
        words = Words(definition)
        return cls(definition, counts, words, changes_of(definition, counts, words, themes))


def build(
    session: Session,
    definition: Definition,
    *,
    since: datetime | None,
    until: datetime,
    zone: ZoneInfo,
    charts: bool = True,
    themes: bool = True,
    rehearsals: bool = False,
) -> Digest:
    """Count, group and draw the digest for the period (since, until]; ``since`` is the
    end of the previous digest, None if there was none. Rehearsal participants count only
    with ``rehearsals``."""
    counts = aggregate.count(session, since=since, until=until, rehearsals=rehearsals)
    theme_list = themes_of(session, definition, until, rehearsals) if themes else {}
    tally = Tally.of(definition, counts, theme_list)
    words = tally.words
    c = definition.consultation
    local = until.astimezone(zone)
    title = f"Resumen de la consulta «{c.title}»"
    participants = int(counts.participation["consented"].sum())
    new = int(counts.participation["new"].sum()) if since is not None else participants
    period = f"Al {local:%d-%m-%Y %H:%M} · {people(participants)} participantes"
    if since is not None:
        period += f" · {people(new)} nuevos desde el {since.astimezone(zone):%d-%m-%Y %H:%M}"
    period += f" ({disclosure.NOTE})"
    answers_new = int(counts.options["new"].sum())
    has_news = since is None or new > 0 or answers_new > 0
    table = result_table(tally)
    public_table = result_table(tally, least=disclosure.MIN_PEOPLE)
    profile, unbroken = _profile(tally)
    summary = _summary(tally, since is not None)
    if unbroken:
        summary += (
            f"\nEdad y género por comuna: en el XLSX; sin desglose (menos de "
            f"{aggregate.MIN_GROUP} participantes): " + ", ".join(unbroken) + "."
        )
    public = _summary(tally, False, verbatim=False, least=disclosure.MIN_PEOPLE)
    by_comuna = aggregate.participation_by_comuna(counts, [o.id for o in c.profile.comunas()])
    by_comuna = by_comuna.map(people)
    by_comuna.index = pd.Index([words.comuna(x) for x in by_comuna.index])
    images: tuple[Image, ...] = ()
    if charts and has_news:
        footer = f"{c.id} · {local:%d-%m-%Y}"
        images = _charts(tally, by_comuna, period, footer)
    found = tuple(ch for q in tally.changes.values() for ch in q if ch.theme)
    return Digest(title, period, has_news, summary, public, table, public_table, images,
                  found, profile, by_comuna)  # fmt: skip


def _desirable(definition: Definition) -> list[Question]:
    return [q for q in definition.consultation.questions if q.kind == "desirable"]


def _feasibility(definition: Definition) -> Question | None:
    return next((q for q in definition.consultation.questions if q.kind == "feasibility"), None)


def changes_of(
    definition: Definition,
    counts: aggregate.Counts,
    words: Words,
    themes: dict[str, list[Change]] | None = None,
) -> dict[str, list[Change]]:
    """Per desirable question, its changes (options chosen, then themes), most people
    first."""
    possible = words.possible_ids()
    f = counts.feasibility
    found: dict[str, list[Change]] = {}
    for q in _desirable(definition):
        listed = {o.id for o in q.options}
        chosen = counts.options[
            (counts.options["question"] == q.id) & counts.options["option"].isin(listed)
        ]
        judged = f[f["question"] == q.id]
        by_option = judged.groupby("option")["n"].sum()
        yes = judged[judged["verdict"].isin(possible)].groupby("option")["n"].sum()
        options = [
            Change(
                q.id,
                words.option(q.id, o),
                int(n),
                int(k),
                int(by_option.get(o, 0)),
                int(yes.get(o, 0)),
            )
            for o, n, k in zip(chosen["option"], chosen["n"], chosen["new"], strict=True)
        ]
        every = options + (themes or {}).get(q.id, [])
        found[q.id] = sorted(every, key=lambda ch: (-ch.people, ch.theme, ch.label))
    return found


def result_table(tally: Tally, *, least: int = 1) -> pd.DataFrame:
    """The workshop's table: per question, the desirable changes (options and themes, most
    people first, with how many) and the possible ones (judged possible by at least half of
    those who judged them). ``least``: changes of fewer people are left out."""
    rows = []
    for q in tally.definition.consultation.questions:
        if q.kind == "agreement":
            rows.append([q.number, _agreement(q, tally, "; ") or "—", ""])
        elif q.kind == "desirable":
            shown = [ch for ch in tally.changes.get(q.id, []) if ch.people >= least]
            desirable = "\n".join(f"{ch.name} ({people(ch.people)})" for ch in shown)
            feasible = sorted(
                (ch for ch in shown if _possible(ch)), key=lambda ch: -ch.possible / ch.judged
            )
            possible = "\n".join(
                f"{ch.name} ({disclosure.percent(ch.possible, ch.judged)} de {people(ch.judged)})"
                for ch in feasible
            )
            rows.append([q.number, desirable or "—", possible or "—"])
    return pd.DataFrame(rows, columns=tally.words.result_columns())


def _possible(change: Change) -> bool:
    share = disclosure.share(change.possible, change.judged)
    return share is not None and share >= 0.5


def _agreement(q: Question, tally: Tally, sep: str) -> str:
    options = tally.counts.options
    dist = options[options["question"] == q.id]
    total = int(dist["n"].sum())
    return sep.join(
        f"{tally.words.option(q.id, o)}: {disclosure.percent(n, total)}" for o, n in _ranked(dist)
    )


def _ranked(frame: pd.DataFrame) -> list[tuple[str, int]]:
    """(option, n) pairs, most frequent first."""
    ordered = frame.sort_values(["n", "option"], ascending=[False, True])
    return [(str(o), int(n)) for o, n in zip(ordered["option"], ordered["n"], strict=True)]


def _profile(tally: Tally) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The age and gender breakdowns as labelled tables, and the comunas left out."""
    p = tally.definition.consultation.profile
    words = tally.words
    comunas = [o.id for o in p.comunas() if o.id != p.outside.id]
    tables: dict[str, pd.DataFrame] = {}
    small: list[str] = []
    for name, by, options in (("Edad", "age_band", p.age_bands), ("Género", "gender", p.genders)):
        table, small = aggregate.breakdown(tally.counts, by, comunas, [p.outside.id, ""])
        names = {o.id: o.label for o in options} | {aggregate.NOT_GIVEN: "Sin indicar"}
        order = [c for c in [*names] if c in table.columns]
        shown = table.reindex(columns=order)
        shown.columns = pd.Index([names[c] for c in order])
        shown.insert(0, "Comuna", [words.comuna(c) for c in shown.index])
        tables[name] = shown.reset_index(drop=True)
    return tables, [words.comuna(c) for c in small]


def themes_of(
    session: Session, definition: Definition, until: datetime, rehearsals: bool = False
) -> dict[str, list[Change]]:
    """The largest themes of each desirable question's free texts, counted in people."""
    from reports.themes import group_themes, restated

    possible = Words(definition).possible_ids()
    found: dict[str, list[Change]] = {}
    texts_of = {
        q.id: aggregate.free_texts(session, q.id, until=until, rehearsals=rehearsals)
        for q in _desirable(definition)
    }
    # the judgements of free texts only, for every question in one read
    keys = sorted({k for texts in texts_of.values() for k in texts["key"]})
    judged_texts = aggregate.judgements(session, until=until, keys=keys)
    verdict = dict(zip(zip(judged_texts["participant"], judged_texts["key"], strict=True),
                       judged_texts["verdict"], strict=True))  # fmt: skip
    del judged_texts
    for q in _desirable(definition):
        texts = texts_of.pop(q.id)
        if texts.empty:
            continue
        who = texts["participant"].to_numpy()
        keys_of = texts["key"].to_numpy()
        option_labels = [o.label for o in q.options]
        themes = []
        # twice as many as shown: some are left out once counted in people
        for t in group_themes(texts["text"].tolist(), max_themes=2 * MAX_THEMES):
            members = list(t.members)
            persons = len(set(who[members].tolist()))
            if persons < MIN_THEME_PEOPLE:
                continue
            judged = {(who[i], keys_of[i]): verdict[who[i], keys_of[i]] for i in members
                      if (who[i], keys_of[i]) in verdict}  # fmt: skip
            # one voice per person: a person who judged several answers of the theme
            by_person: dict[object, bool] = {}
            for (person, _), v in judged.items():
                by_person[person] = by_person.get(person, False) or v in possible
            themes.append(
                Change(
                    q.id,
                    t.label,
                    persons,
                    0,
                    len(by_person),
                    sum(by_person.values()),
                    theme=True,
                    examples=t.examples,
                    restates=restated(t, option_labels),
                )
            )
        themes.sort(key=lambda ch: -ch.people)
        found[q.id] = themes[:MAX_THEMES]
    return found


def _summary(tally: Tally, with_new: bool, *, verbatim: bool = True, least: int = 1) -> str:
    """The text summary; with ``least``, changes and themes named by fewer people are left
    out (what participants see)."""
    c = tally.definition.consultation
    p = tally.counts.participation
    consented, finished = int(p["consented"].sum()), int(p["finished"].sum())
    municipal = int(p[p["role"] == "municipal"]["consented"].sum())
    lines = [
        f"Participantes: {people(consented)} ({people(municipal)} contactos municipales); "
        f"terminaron: {people(finished)}."
    ]
    if with_new:
        lines[0] += f" Nuevos desde el resumen anterior: {people(int(p['new'].sum()))}."
    comunas = [o for o in c.profile.comunas() if o.id != c.profile.outside.id]
    heard = set(p[p["consented"] > 0]["comuna"])
    silent = [o.label for o in comunas if o.id not in heard]
    if silent:
        lines.append("Comunas sin participantes: " + ", ".join(silent) + ".")
    for q in c.questions:
        if q.kind == "agreement":
            shares = _agreement(q, tally, ", ")
            lines.append(f"Pregunta {q.number}: " + (shares or "sin respuestas") + ".")
        elif q.kind == "desirable":
            top = [ch for ch in tally.changes.get(q.id, []) if ch.people >= least][:4]
            parts = []
            for ch in top:
                news = f", +{people(ch.new)}" if with_new and ch.new else ""
                parts.append(f"{ch.name} ({people(ch.people)}{news})")
            lines.append(f"Pregunta {q.number}: " + ("; ".join(parts) or "sin respuestas") + ".")
            if verbatim:
                for ch in [ch for ch in top if ch.theme][:2]:
                    for example in ch.examples[1:2]:
                        lines.append(f"   p. ej.: «{_clip(example)}»")
    return "\n".join(lines)


def _clip(text: str, limit: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _charts(tally: Tally, by_comuna: pd.DataFrame, period: str, footer: str) -> tuple[Image, ...]:
    from reports import charts

    counts, words = tally.counts, tally.words
    c = tally.definition.consultation
    style = _Style(subtitle=period, footer=footer)
    title = "Participación por comuna"
    chart = charts.participation(by_comuna, title=title, **style)
    images = [Image("participacion.png", title, charts.png(chart))]
    with_new = counts.since is not None
    for q in c.questions:
        if q.kind == "agreement":
            rows = counts.options[counts.options["question"] == q.id]
            frame = pd.DataFrame({
                "label": [words.option(q.id, o) for o in rows["option"]],
                "n": [people(n) for n in rows["n"]],
                "new": [people(n) if with_new else 0 for n in rows["new"]],
            })  # fmt: skip
            title = f"Pregunta {q.number}: respuestas — {q.title}"
        elif q.kind == "desirable":
            listed = tally.changes.get(q.id, [])
            frame = pd.DataFrame({
                "label": [ch.name for ch in listed],
                "n": [people(ch.people) for ch in listed],
                "new": [people(ch.new) if with_new else 0 for ch in listed],
            })  # fmt: skip
            title = f"Pregunta {q.number}: cambios deseables (opciones y temas) — {q.title}"
        else:
            continue
        chart = charts.bars(frame, title=title, **style)
        images.append(Image(f"pregunta_{q.id}.png", f"Pregunta {q.number}", charts.png(chart)))
    desirable = [q.id for q in _desirable(tally.definition)]
    systems = counts.systems[counts.systems["question"].isin(desirable)]
    systems = systems.assign(
        question=[f"Pregunta {words.number(x)}" for x in systems["question"]],
        system=[words.system(x) for x in systems["system"]],
        n=[people(n) for n in systems["n"]],
    ).pivot_table(index="question", columns="system", values="n", aggfunc="sum", fill_value=0)
    title = "Cambios escritos por sistema de la Estrategia Regional"
    chart = charts.systems(systems, title=title, **style)
    images.append(Image("sistemas.png", title, charts.png(chart)))
    feasibility = _feasibility(tally.definition)
    if feasibility is not None:
        title = f"¿Qué cambios deseables son posibles? — {feasibility.title}"
        frame = _feasibility_frame(tally.changes)
        chart = charts.feasibility(frame, title=title, scale=words.scale(), **style)
        images.append(Image("deseable_vs_posible.png", title, charts.png(chart)))
    return tuple(images)


def _feasibility_frame(changes: dict[str, list[Change]]) -> pd.DataFrame:
    """label, chosen, possible, judged: every change of every question that enough people
    judged, shares from rounded counts."""
    rows = [
        (ch.name, people(ch.people), disclosure.share(ch.possible, ch.judged), people(ch.judged))
        for listed in changes.values()
        for ch in listed
        if disclosure.enough(ch.judged)
    ]
    frame = pd.DataFrame(rows, columns=["label", "chosen", "possible", "judged"])
    return frame.assign(partial=0.0)


class _Style(TypedDict):
    subtitle: str
    footer: str


class Words:
    """Ids → the consultation's words, and the words of the result table."""

    def __init__(self, definition: Definition) -> None:
        c = definition.consultation
        self._options = {(q.id, o.id): o.label for q in c.questions for o in q.options}
        self._numbers = {q.id: q.number for q in c.questions}
        self._systems = {s.id: s.label for s in c.systems}
        self._comunas = {o.id: o.label for o in c.profile.comunas()}
        self._comunas |= {"": "Sin comuna indicada", aggregate.REST: "Resto de la región"}
        self._feasibility = _feasibility(definition)

    def option(self, question: str, option: object) -> str:
        return self._options.get((question, str(option)), str(option).replace("_", " "))

    def number(self, question: str) -> str:
        return self._numbers.get(question, question)

    def system(self, system: object) -> str:
        return self._systems.get(str(system), str(system))

    def comuna(self, comuna: object) -> str:
        return self._comunas.get(str(comuna), str(comuna))

    def possible_ids(self) -> list[str]:
        """The verdicts that count as possible: every option of the feasibility question
        but the last (its scale runs from most to least possible)."""
        q = self._feasibility
        return [o.id for o in q.options[:-1]] if q else []

    def scale(self) -> tuple[str, str]:
        """What "possible" and "not possible" are called: "Sí o En parte", "No"."""
        q = self._feasibility
        if q is None:
            return ("Posible", "No posible")
        return (" o ".join(o.label for o in q.options[:-1]), q.options[-1].label)

    def result_columns(self) -> list[str]:
        """The table's header: the feasibility question's title names the last column
        ("Cambios posibles al 2020"), the desirable one is worded alike."""
        possible = self._feasibility.title if self._feasibility else "Cambios posibles"
        desirable = possible.replace("posibles", "deseables")
        if desirable == possible:
            desirable = "Cambios deseables"
        return ["Pregunta Nº", desirable, possible]
