"""What the consultation says so far, counted in the database.

Every figure here is a GROUP BY run by the database and read into a small pandas frame:
no query loads every answer into Python, so a digest costs the same with ten participants
or a hundred thousand. Frames carry ids (question, option, comuna, system); ``labels``
turns them into the words of the consultation file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Select, and_, case, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from storage.models import Answer, Participant

MIN_GROUP = 5
"""A group with fewer participants is not broken down by gender or age (small numbers)."""


@dataclass(frozen=True)
class Counts:
    """The aggregated figures of a consultation at one moment; ``since`` splits "new"."""

    since: datetime | None
    until: datetime
    participation: pd.DataFrame
    """comuna, role, consented, finished, new — one row per (comuna, role) with someone."""
    agreement: pd.DataFrame
    """question, option, n, new."""
    desirable: pd.DataFrame
    """question, option, n, new — chosen options (free texts: see ``free_texts``)."""
    systems: pd.DataFrame
    """question, system, n — free-text changes tagged with a system."""
    feasibility: pd.DataFrame
    """question, option (the change), verdict, n — judgements of option changes; free-text
    changes appear with option None."""
    profile: pd.DataFrame
    """comuna, age_band, gender, n — consenting participants (see ``breakdown``)."""


def _read(session: Session, stmt: Select) -> pd.DataFrame:
    return pd.read_sql(stmt, session.connection())


def _is_new(column: InstrumentedAttribute[Any], since: datetime | None) -> ColumnElement[Any]:
    """How many rows of the group are newer than ``since`` (all of them without one)."""
    if since is None:
        return func.count()
    return func.sum(case((column > since, 1), else_=0))


def count(session: Session, *, since: datetime | None, until: datetime) -> Counts:
    """Count everything a digest shows, up to ``until``; "new" means after ``since``."""
    consented = and_(Participant.code.is_not(None), Participant.consented_at <= until)
    participation = _read(
        session,
        select(
            Participant.comuna,
            Participant.role,
            func.count().label("consented"),
            func.count(Participant.finished_at).label("finished"),
            _is_new(Participant.consented_at, since).label("new"),
        )
        .where(consented)
        .group_by(Participant.comuna, Participant.role),
    )
    participation["comuna"] = participation["comuna"].fillna("")  # not given: ""
    in_time = and_(Answer.created_at <= until)
    by_option = (
        select(
            Answer.question,
            Answer.option,
            func.count().label("n"),
            _is_new(Answer.created_at, since).label("new"),
        )
        .where(in_time, Answer.option.is_not(None))
        .group_by(Answer.question, Answer.option)
    )
    agreement = _read(session, by_option.where(Answer.kind == "acuerdo"))
    desirable = _read(session, by_option.where(Answer.kind == "deseable"))
    systems = _read(
        session,
        select(Answer.question, Answer.system, func.count().label("n"))
        .where(in_time, Answer.kind == "deseable", Answer.option.is_(None))
        .where(Answer.system.is_not(None))
        .group_by(Answer.question, Answer.system),
    )
    judged = _read(
        session,
        select(Answer.refers_to, Answer.option.label("verdict"), func.count().label("n"))
        .where(in_time, Answer.kind == "posible")
        .group_by(Answer.refers_to, Answer.option),
    )
    feasibility = _judged_changes(judged)
    profile = _read(
        session,
        select(
            Participant.comuna,
            Participant.age_band,
            Participant.gender,
            func.count().label("n"),
        )
        .where(consented)
        .group_by(Participant.comuna, Participant.age_band, Participant.gender),
    )
    profile["comuna"] = profile["comuna"].fillna("")
    return Counts(since, until, participation, agreement, desirable, systems, feasibility, profile)


def _judged_changes(judged: pd.DataFrame) -> pd.DataFrame:
    """(refers_to, verdict, n) → (question, option, verdict, n).

    A judgement refers to its change by the change's key, which the engine builds from the
    question and the option: ``q1.o.peru`` (option ``peru`` of ``q1``) or ``q1.t3`` (a free
    text of ``q1``); reading the key avoids a self-join of the answers table (a judgement
    is deleted with its change, so every key is live).
    """
    parts = judged["refers_to"].fillna("").str.split(".", n=2, expand=True)
    parts = parts.reindex(columns=[0, 1, 2])
    option = parts[2].where(parts[1] == "o")
    frame = pd.DataFrame(
        {"question": parts[0], "option": option, "verdict": judged["verdict"], "n": judged["n"]}
    )
    keys = ["question", "option", "verdict"]
    return frame.groupby(keys, dropna=False)["n"].sum().reset_index()


def free_texts(
    session: Session, question: str, *, until: datetime, limit: int | None = None
) -> list[str]:
    """The free-text desirable changes of one question, for theme grouping (texts only:
    no participant, no time)."""
    stmt = (
        select(Answer.text)
        .where(Answer.question == question, Answer.kind == "deseable")
        .where(Answer.option.is_(None), Answer.text.is_not(None), Answer.created_at <= until)
        .order_by(Answer.id)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [t for t in session.scalars(stmt) if t]


def participation_by_comuna(counts: Counts, comunas: list[str]) -> pd.DataFrame:
    """One row per comuna in ``comunas`` order (zeros included: silence shows), columns
    citizens, municipal, finished, new; other places (outside, unknown) at the end."""
    p = counts.participation
    table = p.pivot_table(
        index="comuna", columns="role", values="consented", aggfunc="sum", fill_value=0
    )
    for role in ("citizen", "municipal"):
        if role not in table:
            table[role] = 0
    totals = p.groupby("comuna")[["finished", "new"]].sum()
    table = table.join(totals, how="outer").fillna(0).astype(int)
    order = comunas + [c for c in table.index if c not in comunas]
    table = table.reindex(order, fill_value=0)
    return table.rename(columns={"citizen": "citizens"})[
        ["citizens", "municipal", "finished", "new"]
    ]


def feasibility_shares(counts: Counts) -> pd.DataFrame:
    """Per judged change (question, option): how many judged it, and the share of each
    verdict (columns named by verdict id), sorted by how many judged it."""
    f = counts.feasibility
    if f.empty:
        return pd.DataFrame(columns=["question", "option", "judged"])
    f = f.assign(option=f["option"].fillna(""))
    table = f.pivot_table(
        index=["question", "option"], columns="verdict", values="n", aggfunc="sum", fill_value=0
    )
    judged = table.sum(axis=1)
    shares = table.div(judged, axis=0)
    shares.insert(0, "judged", judged)
    return shares.sort_values("judged", ascending=False).reset_index()


def breakdown(counts: Counts, by: str, comunas: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """Consenting participants per comuna and ``by`` ("age_band" or "gender"), protected.

    Returns the table (one row per comuna with at least ``MIN_GROUP`` participants, in
    ``comunas`` order, then "" for the rest of the region taken together if it reaches
    ``MIN_GROUP``; one column per category id, ``None`` for "not given") and the comunas
    left out because they have 1 to ``MIN_GROUP - 1`` participants. A cell of 1 to
    ``MIN_GROUP - 1`` people is also a small group: it is <NA>, shown as "<5".

    There is no regional total row on purpose: with it, a hidden cell could be recovered by
    subtracting the shown ones.
    """
    p = counts.profile.assign(category=counts.profile[by].fillna(NOT_GIVEN))
    table = p.pivot_table(
        index="comuna", columns="category", values="n", aggfunc="sum", fill_value=0
    )
    sizes = table.sum(axis=1)
    shown = [c for c in comunas if sizes.get(c, 0) >= MIN_GROUP]
    small = [c for c in comunas if 0 < sizes.get(c, 0) < MIN_GROUP]
    rest = [c for c in table.index if c not in shown]
    rows = table.loc[shown]
    rest_sum = table.loc[rest].sum()
    if rest and rest_sum.sum() >= MIN_GROUP:
        rows = pd.concat([rows, rest_sum.to_frame("").T])
    rows = rows.astype("Int64")
    protected = rows.mask((rows > 0) & (rows < MIN_GROUP))
    return protected, small


NOT_GIVEN = "sin_dato"
"""Category of participants who skipped the question (``None`` in the database)."""
