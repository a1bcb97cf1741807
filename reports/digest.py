"""The organisers' digest: what is emerging, as channel-neutral content (text, PNG charts,
the workshop's result table). Built from ``reports.aggregate`` (GROUP BY in the database)
and ``reports.themes`` (free texts grouped by meaning); delivered by ``bot/``, or written to
a folder by ``consulta report``.

Texts here are for organisers, in Spanish; participants' words appear only as short
examples of a theme, as data (plain text, never markup).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypedDict
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy.orm import Session

from flows import Definition
from reports import aggregate

TOP = 5
RESULT_COLUMNS = ["Pregunta Nº", "Cambios deseables al 2020", "Cambios posibles al 2020"]


@dataclass(frozen=True)
class Image:
    """One chart: ``name`` is its file name, ``caption`` says what it shows."""

    name: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class ThemeSummary:
    question: str
    label: str
    size: int
    examples: tuple[str, ...]


@dataclass(frozen=True)
class Digest:
    """A digest, ready for any channel."""

    title: str
    period: str
    has_news: bool
    summary: str
    """The short text summary (a phone screen or two)."""
    public_summary: str
    """What participants may see (/resultados): no verbatim free text, small numbers hidden."""
    table: pd.DataFrame
    """The workshop's result table, filled in."""
    public_table: pd.DataFrame
    """The result table for participants: changes named by fewer than 5 people left out."""
    images: tuple[Image, ...] = ()
    themes: tuple[ThemeSummary, ...] = field(default=())
    profile: dict[str, pd.DataFrame] = field(default_factory=dict)
    """"Edad" and "Género": participants per comuna, small numbers shown as "<5"
    (``aggregate.breakdown``); for organisers only."""

    def xlsx(self) -> bytes:
        """The result table, then one sheet per profile breakdown."""
        buffer = io.BytesIO()
        with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
            self.table.to_excel(writer, index=False, sheet_name="resultado")
            sheet = writer.sheets["resultado"]
            for column, width in zip("ABC", (12, 70, 70), strict=True):
                sheet.column_dimensions[column].width = width
            for name, table in self.profile.items():
                table.to_excel(writer, index=False, sheet_name=name)
                writer.sheets[name].column_dimensions["A"].width = 28
        return buffer.getvalue()

    def markdown(self) -> str:
        lines = [f"# {self.title}", "", f"_{self.period}_", "", self.summary, ""]
        lines += ["## Resultado", "", "| " + " | ".join(RESULT_COLUMNS) + " |", "|---|---|---|"]
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
        self.table.to_csv(directory / "resultado.csv", index=False, encoding="utf-8-sig")
        (directory / "digest.md").write_text(self.markdown(), encoding="utf-8")
        return [*written, directory / "resultado.xlsx", directory / "resultado.csv",
                directory / "digest.md"]  # fmt: skip


def build(
    session: Session,
    definition: Definition,
    *,
    since: datetime | None,
    until: datetime,
    zone: ZoneInfo,
    charts: bool = True,
    themes: bool = True,
) -> Digest:
    """Count, group and draw the digest for the period (since, until]."""
    counts = aggregate.count(session, since=since, until=until)
    labels = _Labels(definition)
    theme_list = _themes(session, definition, until) if themes else []
    c = definition.consultation
    local = until.astimezone(zone)
    title = f"Resumen de la consulta «{c.title}»"
    participants = int(counts.participation["consented"].sum())
    new = int(counts.participation["new"].sum()) if since is not None else participants
    period = f"Al {local:%d-%m-%Y %H:%M} · {participants} participantes"
    if since is not None:
        period += f" · {new} nuevos desde el {since.astimezone(zone):%d-%m-%Y %H:%M}"
    answers_new = int(counts.desirable["new"].sum() + counts.agreement["new"].sum())
    has_news = since is None or new > 0 or answers_new > 0
    table = result_table(definition, counts, labels, theme_list)
    public_table = result_table(definition, counts, labels, theme_list, least=aggregate.MIN_GROUP)
    profile, unbroken = _profile(definition, counts, labels)
    summary = _summary(definition, counts, labels, theme_list, new, since is not None)
    if unbroken:
        summary += (
            f"\nEdad y género por comuna: en el XLSX; sin desglose (menos de "
            f"{aggregate.MIN_GROUP} participantes): " + ", ".join(unbroken) + "."
        )
    public = _summary(definition, counts, labels, theme_list, new, False, verbatim=False,
                      least=aggregate.MIN_GROUP)  # fmt: skip
    images: tuple[Image, ...] = ()
    if charts and has_news:
        images = _charts(definition, counts, labels, f"{period}", f"{c.id} · {local:%d-%m-%Y}")
    return Digest(title, period, has_news, summary, public, table, public_table, images,
                  tuple(theme_list), profile)  # fmt: skip


def _profile(
    definition: Definition, counts: aggregate.Counts, labels: _Labels
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The age and gender breakdowns as labelled tables, and the comunas left out."""
    p = definition.consultation.profile
    comunas = [o.id for o in p.comunas()]
    tables: dict[str, pd.DataFrame] = {}
    small: list[str] = []
    for name, by, options in (("Edad", "age_band", p.age_bands), ("Género", "gender", p.genders)):
        table, small = aggregate.breakdown(counts, by, comunas)
        names = {o.id: o.label for o in options} | {aggregate.NOT_GIVEN: "Sin indicar"}
        order = [c for c in [*names] if c in table.columns]
        shown = table.reindex(columns=order).astype(object).where(table.notna(), "<5")
        shown.columns = pd.Index([names[c] for c in order])
        rows = ["Resto de la región" if c == "" else labels.comuna(c) for c in shown.index]
        shown.insert(0, "Comuna", rows)
        tables[name] = shown.reset_index(drop=True)
    return tables, [labels.comuna(c) for c in small]


def result_table(
    definition: Definition,
    counts: aggregate.Counts,
    labels: _Labels,
    themes: list[ThemeSummary] = [],  # noqa: B006 (read only)
    *,
    least: int = 1,
) -> pd.DataFrame:
    """Pregunta Nº | Cambios deseables al 2020 | Cambios posibles al 2020, as the workshop
    ended: the most chosen changes of each question (options, then themes of the free
    texts), and the options most judged possible."""
    shares = aggregate.feasibility_shares(counts)
    rows = []
    for q in definition.consultation.questions:
        if q.kind == "feasibility":
            continue
        if q.kind == "agreement":
            dist = counts.agreement[counts.agreement["question"] == q.id]
            total = int(dist["n"].sum())
            desirable = "; ".join(
                f"{labels.option(q.id, option)}: {_pct(n, total)}" for option, n in _ranked(dist)
            )
            rows.append([q.number, desirable or "—", ""])
            continue
        chosen = counts.desirable[counts.desirable["question"] == q.id]
        chosen = chosen[chosen["n"] >= least]
        top = chosen.sort_values(["n", "option"], ascending=[False, True]).head(TOP)
        parts = [f"{labels.option(q.id, option)} ({n})" for option, n in _ranked(top)]
        q_themes = [t for t in themes if t.question == q.id and t.size >= least]
        parts += [f"tema «{t.label}» ({t.size})" for t in q_themes][:TOP]
        desirable = "; ".join(parts)
        judged = shares[(shares["question"] == q.id) & (shares["option"] != "")]
        judged = judged[judged["judged"] >= least]
        possible = []
        for r in judged.itertuples():
            yes = float(getattr(r, "si", 0.0)) + float(getattr(r, "en_parte", 0.0))
            if yes >= 0.5:
                possible.append(f"{labels.option(q.id, r.option)} ({_pct(yes, 1)} sí o en parte)")
        rows.append([q.number, desirable or "—", "; ".join(possible[:TOP]) or "—"])
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def _ranked(frame: pd.DataFrame) -> list[tuple[str, int]]:
    """(option, n) pairs, most frequent first."""
    ordered = frame.sort_values(["n", "option"], ascending=[False, True])
    return [(str(o), int(n)) for o, n in zip(ordered["option"], ordered["n"], strict=True)]


def _pct(part: float, whole: float) -> str:
    return f"{round(100 * part / whole)}%" if whole else "—"


def _themes(session: Session, definition: Definition, until: datetime) -> list[ThemeSummary]:
    from reports.themes import group_themes

    found = []
    for q in definition.consultation.questions:
        if q.kind != "desirable":
            continue
        texts = aggregate.free_texts(session, q.id, until=until)
        for theme in group_themes(texts, max_themes=5):
            found.append(ThemeSummary(q.id, theme.label, theme.size, theme.examples))
    return found


def _summary(
    definition: Definition,
    counts: aggregate.Counts,
    labels: _Labels,
    themes: list[ThemeSummary],
    new: int,
    with_new: bool,
    *,
    verbatim: bool = True,
    least: int = 1,
) -> str:
    """The text summary; with ``least``, changes and themes named by fewer people are left
    out (what participants see)."""
    c = definition.consultation
    p = counts.participation
    consented, finished = int(p["consented"].sum()), int(p["finished"].sum())
    municipal = int(p[p["role"] == "municipal"]["consented"].sum())
    lines = [
        f"Participantes: {consented} ({municipal} contactos municipales); terminaron: {finished}."
    ]
    if with_new:
        lines[0] += f" Nuevos desde el resumen anterior: {new}."
    comunas = [o for o in c.profile.comunas() if o.id != c.profile.outside.id]
    heard = set(p[p["consented"] > 0]["comuna"])
    silent = [o.label for o in comunas if o.id not in heard]
    if silent:
        lines.append("Comunas sin participantes: " + ", ".join(silent) + ".")
    for q in c.questions:
        if q.kind == "agreement":
            dist = counts.agreement[counts.agreement["question"] == q.id]
            total = int(dist["n"].sum())
            parts = [
                f"{labels.option(q.id, option)} {_pct(n, total)}" for option, n in _ranked(dist)
            ]
            lines.append(f"Pregunta {q.number}: " + (", ".join(parts) or "sin respuestas") + ".")
        elif q.kind == "desirable":
            chosen = counts.desirable[counts.desirable["question"] == q.id]
            chosen = chosen[chosen["n"] >= least]
            top = chosen.sort_values(["n", "option"], ascending=[False, True]).head(3)
            parts = []
            for option, n, fresh in zip(top["option"], top["n"], top["new"], strict=True):
                news = f", +{int(fresh)}" if with_new and fresh else ""
                parts.append(f"{labels.option(q.id, option)} ({int(n)}{news})")
            q_themes = [t for t in themes if t.question == q.id and t.size >= least][:3]
            parts += [f"tema «{t.label}» ({t.size})" for t in q_themes]
            lines.append(f"Pregunta {q.number}: " + ("; ".join(parts) or "sin respuestas") + ".")
            if verbatim:
                for t in q_themes[:2]:
                    if t.examples:
                        lines.append(f"   p. ej.: «{_clip(t.examples[0])}»")
    return "\n".join(lines)


def _clip(text: str, limit: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _charts(
    definition: Definition, counts: aggregate.Counts, labels: _Labels, period: str, footer: str
) -> tuple[Image, ...]:
    from reports import charts

    c = definition.consultation
    style = _Style(subtitle=period, footer=footer)
    by_comuna = aggregate.participation_by_comuna(counts, [o.id for o in c.profile.comunas()])
    by_comuna.index = pd.Index([labels.comuna(x) for x in by_comuna.index])
    title = "Participación por comuna"
    images = [
        Image("participacion.png", title, charts.participation(by_comuna, title=title, **style))
    ]
    for q in c.questions:
        source = {"agreement": counts.agreement, "desirable": counts.desirable}.get(q.kind)
        if source is None or not q.options:
            continue
        rows = source[source["question"] == q.id]
        frame = rows.assign(label=[labels.option(q.id, o) for o in rows["option"]])
        what = "respuestas" if q.kind == "agreement" else "cambios deseables más elegidos"
        title = f"Pregunta {q.number}: {what} — {q.title}"
        png = charts.bars(frame, title=title, **style)
        images.append(Image(f"pregunta_{q.id}.png", f"Pregunta {q.number}", png))
    systems = counts.systems.assign(
        question=[f"Pregunta {labels.number(x)}" for x in counts.systems["question"]],
        system=[labels.system(x) for x in counts.systems["system"]],
    ).pivot_table(index="question", columns="system", values="n", aggfunc="sum", fill_value=0)
    title = "Cambios escritos por sistema de la Estrategia Regional"
    images.append(Image("sistemas.png", title, charts.systems(systems, title=title, **style)))
    title = "¿Qué cambios deseables son posibles al 2020?"
    png = charts.feasibility(_feasibility_frame(counts, labels), title=title, **style)
    images.append(Image("deseable_vs_posible.png", title, png))
    return tuple(images)


def _feasibility_frame(counts: aggregate.Counts, labels: _Labels) -> pd.DataFrame:
    """label, chosen, possible, partial, judged: the most judged option changes."""
    shares = aggregate.feasibility_shares(counts)
    shares = shares[shares["option"] != ""].head(12)
    chosen = counts.desirable.set_index(["question", "option"])["n"]
    keys = list(zip(shares["question"], shares["option"], strict=True))
    zero = pd.Series(0.0, index=shares.index)
    return pd.DataFrame(
        {
            "label": [labels.option(q, o) for q, o in keys],
            "chosen": [int(chosen.get((q, o), 0)) for q, o in keys],
            "possible": shares.get("si", zero).to_numpy(),
            "partial": shares.get("en_parte", zero).to_numpy(),
            "judged": shares["judged"].to_numpy(),
        }
    )


class _Style(TypedDict):
    subtitle: str
    footer: str


class _Labels:
    """Ids → the consultation's words."""

    def __init__(self, definition: Definition) -> None:
        c = definition.consultation
        self._options = {(q.id, o.id): o.label for q in c.questions for o in q.options}
        self._numbers = {q.id: q.number for q in c.questions}
        self._systems = {s.id: s.label for s in c.systems}
        self._comunas = {o.id: o.label for o in c.profile.comunas()} | {"": "Sin indicar"}

    def option(self, question: str, option: object) -> str:
        return self._options.get((question, str(option)), str(option).replace("_", " "))

    def number(self, question: str) -> str:
        return self._numbers.get(question, question)

    def system(self, system: object) -> str:
        return self._systems.get(str(system), str(system))

    def comuna(self, comuna: object) -> str:
        return self._comunas.get(str(comuna), str(comuna))
