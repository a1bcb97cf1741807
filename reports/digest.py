"""The organisers' digest: what is emerging, as channel-neutral content (text, PNG charts,
the workshop's result table). Built from ``reports.aggregate`` (GROUP BY in the database)
and ``reports.themes`` (free texts grouped by meaning); delivered by ``bot/``, or written to
a folder by ``consulta report``.

Everything is derived from the consultation file: which questions gather desirable changes
(kind ``desirable``), which one judges them (kind ``feasibility``, whose options run from
most to least possible: every option but the last counts as possible), the labels of
options, comunas and systems. No id or word of the bundled file is known here.

Every count of people goes through ``reports.disclosure`` before it is written anywhere.
Texts are for organisers, in Spanish (``reports/texts_es.yaml``); participants' words appear
only as theme labels and examples, as data (plain text, never markup).
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
from reports.texts import text

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
        if self.restates:
            return text("theme_restating", label=self.label, option=self.restates)
        return text("theme", label=self.label)


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

    @property
    def table_file(self) -> str:
        """The result table's file name, without its extension (written and sent alike)."""
        return text("file_result")

    def xlsx(self) -> bytes:
        """The result table, then one sheet per profile breakdown."""
        return spreadsheet.xlsx({text("result"): self.table, **self.profile})

    def markdown(self) -> str:
        lines = [f"# {self.title}", "", f"_{self.period}_", "", self.summary, ""]
        columns = list(self.table.columns)
        lines += [f"## {text('result')}", "", "| " + " | ".join(columns) + " |", "|---|---|---|"]
        for row in self.table.itertuples(index=False):
            cells = [str(v).replace("|", "\\|").replace("\n", "<br>") for v in row]
            lines.append("| " + " | ".join(cells) + " |")
        for name, table in self.profile.items():
            lines += ["", f"## {text('profile_heading', breakdown=name.lower())}", ""]
            lines += ["| " + " | ".join(table.columns) + " |", "|---" * len(table.columns) + "|"]
            rows = table.itertuples(index=False)
            lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
        lines += ["", f"## {text('charts_heading')}", ""]
        lines += [f"![{img.caption}]({img.name})" for img in self.images]
        return "\n".join(lines) + "\n"

    def write(self, directory: Path) -> list[Path]:
        """``digest.md``, the charts as PNG, the result table as XLSX and CSV."""
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for img in self.images:
            (directory / img.name).write_bytes(img.png)
            written.append(directory / img.name)
        xlsx_path = directory / f"{self.table_file}.xlsx"
        csv_path = directory / f"{self.table_file}.csv"
        xlsx_path.write_bytes(self.xlsx())
        csv_path.write_bytes(spreadsheet.csv(self.table))
        (directory / "digest.md").write_text(self.markdown(), encoding="utf-8")
        return [*written, xlsx_path, csv_path, directory / "digest.md"]


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
    title = text("digest_title", title=c.title)
    participants = int(counts.participation["consented"].sum())
    new = int(counts.participation["new"].sum()) if since is not None else participants
    if since is None:
        period = text(
            "period", until=local, participants=people(participants), note=disclosure.NOTE
        )
    else:
        period = text(
            "period_since",
            until=local,
            participants=people(participants),
            new=people(new),
            since=since.astimezone(zone),
            note=disclosure.NOTE,
        )
    answers_new = int(counts.options["new"].sum())
    has_news = since is None or new > 0 or answers_new > 0
    table = result_table(tally)
    public_table = result_table(tally, least=disclosure.MIN_PEOPLE)
    profile, unbroken = _profile(tally)
    summary = _summary(tally, since is not None)
    if unbroken:
        summary += "\n" + text("unbroken", least=aggregate.MIN_GROUP, comunas=", ".join(unbroken))
    public = _summary(tally, False, verbatim=False, least=disclosure.MIN_PEOPLE)
    by_comuna = aggregate.participation_by_comuna(counts, [o.id for o in c.profile.comunas()])
    by_comuna = by_comuna.map(people)
    by_comuna.index = pd.Index([words.comuna(x) for x in by_comuna.index])
    images: tuple[Image, ...] = ()
    if charts and has_news:
        footer = text("chart_footer", consultation=c.id, date=local)
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
                text(
                    "possible_share",
                    change=ch.name,
                    judged=people(ch.judged),
                    percent=disclosure.percent(ch.possible, ch.judged),
                )
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
    breakdowns = ((text("profile_age"), "age_band", p.age_bands),
                  (text("profile_gender"), "gender", p.genders))  # fmt: skip
    for name, by, options in breakdowns:
        table, small = aggregate.breakdown(tally.counts, by, comunas, [p.outside.id, ""])
        names = {o.id: o.label for o in options} | {aggregate.NOT_GIVEN: text("not_given")}
        order = [c for c in [*names] if c in table.columns]
        shown = table.reindex(columns=order)
        shown.columns = pd.Index([names[c] for c in order])
        shown.insert(0, text("profile_comuna"), [words.comuna(c) for c in shown.index])
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
        text("summary_participants", participants=people(consented),
             municipal=people(municipal), finished=people(finished))
    ]  # fmt: skip
    if with_new:
        lines[0] += " " + text("summary_new", new=people(int(p["new"].sum())))
    comunas = [o for o in c.profile.comunas() if o.id != c.profile.outside.id]
    heard = set(p[p["consented"] > 0]["comuna"])
    silent = [o.label for o in comunas if o.id not in heard]
    if silent:
        lines.append(text("summary_silent", comunas=", ".join(silent)))
    for q in c.questions:
        if q.kind == "agreement":
            shares = _agreement(q, tally, ", ")
            answers = shares or text("no_answers")
            lines.append(text("summary_question", number=q.number, answers=answers))
        elif q.kind == "desirable":
            top = [ch for ch in tally.changes.get(q.id, []) if ch.people >= least][:4]
            parts = []
            for ch in top:
                news = f", +{people(ch.new)}" if with_new and ch.new else ""
                parts.append(f"{ch.name} ({people(ch.people)}{news})")
            answers = "; ".join(parts) or text("no_answers")
            lines.append(text("summary_question", number=q.number, answers=answers))
            if verbatim:
                for ch in [ch for ch in top if ch.theme][:2]:
                    for example in ch.examples[1:2]:
                        lines.append("   " + text("summary_example", example=_clip(example)))
    return "\n".join(lines)


def _clip(text: str, limit: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _charts(tally: Tally, by_comuna: pd.DataFrame, period: str, footer: str) -> tuple[Image, ...]:
    from reports import charts

    counts, words = tally.counts, tally.words
    c = tally.definition.consultation
    style = _Style(subtitle=period, footer=footer)
    title = text("chart_participation")
    chart = charts.participation(by_comuna, title=title, **style)
    images = [Image(f"{text('file_participation')}.png", title, charts.png(chart))]
    with_new = counts.since is not None
    for q in c.questions:
        if q.kind == "agreement":
            rows = counts.options[counts.options["question"] == q.id]
            frame = pd.DataFrame({
                "label": [words.option(q.id, o) for o in rows["option"]],
                "n": [people(n) for n in rows["n"]],
                "new": [people(n) if with_new else 0 for n in rows["new"]],
            })  # fmt: skip
            title = text("chart_agreement", number=q.number, title=q.title)
        elif q.kind == "desirable":
            listed = tally.changes.get(q.id, [])
            frame = pd.DataFrame({
                "label": [ch.name for ch in listed],
                "n": [people(ch.people) for ch in listed],
                "new": [people(ch.new) if with_new else 0 for ch in listed],
            })  # fmt: skip
            title = text("chart_desirable", number=q.number, title=q.title)
        else:
            continue
        chart = charts.bars(frame, title=title, **style)
        name = f"{text('file_question', id=q.id)}.png"
        images.append(Image(name, text("question", number=q.number), charts.png(chart)))
    desirable = [q.id for q in _desirable(tally.definition)]
    systems = counts.systems[counts.systems["question"].isin(desirable)]
    systems = systems.assign(
        question=[text("question", number=words.number(x)) for x in systems["question"]],
        system=[words.system(x) for x in systems["system"]],
        n=[people(n) for n in systems["n"]],
    ).pivot_table(index="question", columns="system", values="n", aggfunc="sum", fill_value=0)
    title = text("chart_systems")
    chart = charts.systems(systems, title=title, **style)
    images.append(Image(f"{text('file_systems')}.png", title, charts.png(chart)))
    feasibility = _feasibility(tally.definition)
    if feasibility is not None:
        title = text("chart_feasibility", title=feasibility.title)
        frame = _feasibility_frame(tally.changes)
        chart = charts.feasibility(frame, title=title, scale=words.scale(), **style)
        images.append(Image(f"{text('file_feasibility')}.png", title, charts.png(chart)))
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
        self._comunas |= {"": text("comuna_not_given"), aggregate.REST: text("comuna_rest")}
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
            return (text("scale_possible"), text("scale_not_possible"))
        return (text("scale_or").join(o.label for o in q.options[:-1]), q.options[-1].label)

    def result_columns(self) -> list[str]:
        """The table's header: the feasibility question's title names the last column
        ("Cambios posibles al 2020"), the desirable one is worded alike."""
        possible = self._feasibility.title if self._feasibility else text("column_possible")
        desirable = possible.replace(text("word_possible"), text("word_desirable"))
        if desirable == possible:
            desirable = text("column_desirable")
        return [text("column_question"), desirable, possible]
