"""The pseudonymous export: one row per answer, for the consultation's final report.

Participants appear only by their random code. Questions and options are labelled from the
consultation version that is running, or else from the newest stored version that still had
them, so answers to a question removed mid-run are exported with their own labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from flows import Definition, DefinitionError, parse
from reports import spreadsheet
from reports.texts import text
from storage.models import Answer, ConsultationVersion, Participant
from storage.rehearsals import participants_counted

COLUMNS = [
    "participant", "role", "comuna", "question", "question_text", "kind", "system",
    "choice", "text", "refers_to", "version", "timestamp",
]  # fmt: skip
HEADERS = {
    "participant": text("export_participant"), "role": text("export_role"),
    "comuna": text("export_comuna"), "question": text("export_question"),
    "question_text": text("export_question_text"), "kind": text("export_kind"),
    "system": text("export_system"), "choice": text("export_choice"),
    "text": text("export_text"), "refers_to": text("export_refers_to"),
    "version": text("export_version"), "timestamp": text("export_timestamp"),
}  # fmt: skip
"""The export's columns as organisers read them."""
ROLES = {"citizen": text("role_citizen"), "municipal": text("role_municipal")}
SHEET = text("export_sheet")
Format = Literal["csv", "xlsx"]


class FormatMismatch(ValueError):
    """The file's extension says another format than the one asked for."""


def answers_frame(
    session: Session, current: Definition, zone: ZoneInfo, *, rehearsals: bool = False
) -> pd.DataFrame:
    """Every stored answer of consenting participants, labelled, times in ``zone`` (aware
    timestamps); ``refers_to`` holds the words of the change judged (its option's label or
    its text), not its key. Rehearsal participants' answers only with ``rehearsals``."""
    stmt = (
        select(
            Participant.code.label("participant"),
            Participant.role,
            Participant.comuna,
            Answer.key,
            Answer.question,
            Answer.kind,
            Answer.system,
            Answer.option,
            Answer.text,
            Answer.refers_to,
            Answer.consultation_version.label("version"),
            Answer.updated_at.label("timestamp"),
        )
        .join(Answer.participant)
        .where(Participant.code.is_not(None), participants_counted(rehearsals))
        .order_by(Participant.code, Answer.id)
    )
    frame = pd.read_sql(stmt, session.connection())
    labels = _Labels([current, *_stored_versions(session, exclude=current.version)])
    frame["question_text"] = [labels.question(q) for q in frame["question"]]
    frame["choice"] = [
        labels.option(q, o) for q, o in zip(frame["question"], frame["option"], strict=False)
    ]
    words = {
        (p, k): c if isinstance(c, str) else t
        for p, k, c, t in zip(frame["participant"], frame["key"], frame["choice"],
                              frame["text"], strict=True)
    }  # fmt: skip
    frame["refers_to"] = [
        None if r is None or pd.isna(r) else words.get((p, r), r)
        for p, r in zip(frame["participant"], frame["refers_to"], strict=True)
    ]
    frame["system"] = [labels.system(s) for s in frame["system"]]
    frame["comuna"] = [labels.comuna(c) for c in frame["comuna"]]
    stamps = pd.to_datetime(frame["timestamp"])
    if stamps.dt.tz is None:  # SQLite keeps no zone: stored values are UTC
        stamps = stamps.dt.tz_localize(UTC)
    frame["timestamp"] = stamps.dt.tz_convert(zone)
    return frame[COLUMNS]


def for_people(frame: pd.DataFrame, zone: ZoneInfo) -> pd.DataFrame:
    """The export as organisers read it: Spanish headers and roles, local wall times (the
    header names the zone)."""
    shown = frame.assign(
        role=[ROLES.get(r, r) for r in frame["role"]],
        timestamp=frame["timestamp"].dt.tz_localize(None),
    )
    headers = HEADERS | {"timestamp": f"{HEADERS['timestamp']} ({zone.key})"}
    return shown.rename(columns=headers)


def format_of(out: Path, fmt: Format | None) -> Format:
    """The format to write ``out`` in: its extension's, or ``fmt`` when the extension says
    nothing; a different one is refused (``FormatMismatch``)."""
    suffix = out.suffix.lower().lstrip(".")
    if suffix in ("csv", "xlsx"):
        if fmt is not None and fmt != suffix:
            raise FormatMismatch(suffix)
        return "csv" if suffix == "csv" else "xlsx"
    return fmt or "csv"


def write(frame: pd.DataFrame, out: Path, fmt: Format, zone: ZoneInfo) -> Path:
    """Write the export for Excel in Spanish (``reports.spreadsheet``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    shown = for_people(frame, zone)
    if fmt == "csv":
        out.write_bytes(spreadsheet.csv(shown))
    else:
        out.write_bytes(spreadsheet.xlsx({SHEET: shown}))
    return out


def _stored_versions(session: Session, exclude: str) -> list[Definition]:
    rows = session.scalars(
        select(ConsultationVersion)
        .where(ConsultationVersion.version != exclude)
        .order_by(ConsultationVersion.first_seen_at.desc())
    )
    found = []
    for row in rows:
        try:
            found.append(parse(row.source, f"version {row.version}"))
        except DefinitionError:  # an old file the current schema no longer reads
            continue
    return found


class _Labels:
    """Labels looked up in the given definitions, newest first."""

    def __init__(self, definitions: Sequence[Definition]) -> None:
        self._questions: dict[str, str] = {}
        self._options: dict[tuple[str, str], str] = {}
        self._systems: dict[str, str] = {}
        self._comunas: dict[str, str] = {}
        for d in reversed(definitions):  # newest last, so that it wins
            c = d.consultation
            for q in c.questions:
                self._questions[q.id] = f"{q.number}. {q.text}"
                self._options.update({(q.id, o.id): o.label for o in q.options})
            self._systems.update({s.id: s.label for s in c.systems})
            self._comunas.update({o.id: o.label for o in c.profile.comunas()})

    def question(self, qid: str) -> str:
        return self._questions.get(qid, qid)

    def option(self, qid: str, oid: str | None) -> str | None:
        return None if oid is None or pd.isna(oid) else self._options.get((qid, oid), oid)

    def system(self, sid: str | None) -> str | None:
        return None if sid is None or pd.isna(sid) else self._systems.get(sid, sid)

    def comuna(self, cid: str | None) -> str | None:
        return None if cid is None or pd.isna(cid) else self._comunas.get(cid, cid)
