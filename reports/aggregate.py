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
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from reports import disclosure
from storage.models import Answer, Participant
from storage.rehearsals import answers_counted, participants_counted

MIN_GROUP = disclosure.MIN_PEOPLE
"""A comuna with fewer participants is not broken down by gender or age."""


@dataclass(frozen=True)
class Counts:
    """The aggregated figures of a consultation at one moment; ``since`` splits "new".

    Frames carry question and option ids of any question; ``reports.digest`` sorts them by
    the kinds the consultation file gives its questions."""

    since: datetime | None
    until: datetime
    participation: pd.DataFrame
    """comuna, role, consented, finished, new — one row per (comuna, role) with someone."""
    options: pd.DataFrame
    """question, option, n, new — answers that chose an option (each person chooses an
    option of a question at most once, so n counts people)."""
    systems: pd.DataFrame
    """question, system, n — free-text answers tagged with a system."""
    feasibility: pd.DataFrame
    """question, option, verdict, n — judgements of the changes that are options (an answer
    that refers to another answer judges it; the judged answer says which change it is)."""
    profile: pd.DataFrame
    """comuna, age_band, gender, n — consenting participants (see ``breakdown``)."""


def _read(session: Session, stmt: Select) -> pd.DataFrame:
    return pd.read_sql(stmt, session.connection())


def _is_new(column: InstrumentedAttribute[Any], since: datetime | None) -> ColumnElement[Any]:
    """How many rows of the group are newer than ``since`` (all of them without one)."""
    if since is None:
        return func.count()
    return func.sum(case((column > since, 1), else_=0))


def count(
    session: Session, *, since: datetime | None, until: datetime, rehearsals: bool = False
) -> Counts:
    """Count everything a digest shows, up to ``until``; "new" means after ``since``.
    Rehearsal participants (``consulta chat``) count only with ``rehearsals``."""
    consented = and_(
        Participant.code.is_not(None),
        Participant.consented_at <= until,
        participants_counted(rehearsals),
    )
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
    in_time = and_(Answer.created_at <= until, answers_counted(rehearsals))
    # One pass over the covering index (its column order, so the database groups without
    # sorting): the options chosen, the systems of free texts, and the judgements (an
    # answer that refers to another).
    # The smallest id of each group is in the index too: it names one judgement per judged
    # key, through which the key is resolved below.
    groups = _read(
        session,
        select(
            Answer.kind,
            Answer.question,
            Answer.option,
            Answer.system,
            Answer.refers_to,
            func.count().label("n"),
            _is_new(Answer.created_at, since).label("new"),
            func.min(Answer.id).label("sample"),
        )
        .where(in_time)
        .group_by(Answer.kind, Answer.question, Answer.option, Answer.system, Answer.refers_to),
    )
    own = groups[groups["refers_to"].isna()]  # answers that do not judge another
    chosen = own[own["option"].notna()]
    options = chosen.groupby(["question", "option"], as_index=False)[["n", "new"]].sum()
    tagged = own[own["option"].isna() & own["system"].notna()]
    systems = tagged.groupby(["question", "system"], as_index=False)["n"].sum()
    judging = groups[groups["refers_to"].notna() & groups["option"].notna()]
    feasibility = _judged(session, judging)
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
    return Counts(since, until, participation, options, systems, feasibility, profile)


def _judged(session: Session, judgements: pd.DataFrame) -> pd.DataFrame:
    """(refers_to, option = verdict, n, sample) groups → question, option, verdict, n of the
    judged changes that are options.

    An answer's key names the same change for every participant (the engine builds it from
    the file's stable ids), so each judged key is resolved once, through one judgement of it
    and the answer it refers to: a few hundred look-ups by the unique (participant, key)
    index instead of a join of every judgement."""
    columns = ["question", "option", "verdict", "n"]
    if judgements.empty:
        return pd.DataFrame(columns=columns)
    change = aliased(Answer)
    samples = [int(i) for i in judgements["sample"]]
    resolved = _read(
        session,
        select(Answer.refers_to, change.question, change.option)
        .join(
            change,
            and_(change.participant_id == Answer.participant_id, change.key == Answer.refers_to),
        )
        .where(Answer.id.in_(samples), change.option.is_not(None)),
    ).drop_duplicates("refers_to")
    frame = judgements.rename(columns={"option": "verdict", "question": "judging"}).merge(
        resolved, on="refers_to"
    )
    return frame.groupby(["question", "option", "verdict"], as_index=False)["n"].sum()[columns]


def participants(session: Session) -> int:
    """How many people consented (the digest has nothing to say without them)."""
    stmt = select(func.count()).select_from(Participant).where(Participant.code.is_not(None))
    return int(session.scalar(stmt) or 0)


def free_texts(
    session: Session,
    question: str,
    *,
    until: datetime,
    limit: int | None = None,
    rehearsals: bool = False,
) -> pd.DataFrame:
    """The free-text answers of one question, for theme grouping: columns ``participant``
    (an internal number, never published), ``key`` and ``text``, oldest first."""
    stmt = (
        select(Answer.participant_id.label("participant"), Answer.key, Answer.text)
        .where(Answer.question == question, Answer.option.is_(None))
        .where(Answer.text.is_not(None), Answer.text != "", Answer.refers_to.is_(None))
        .where(Answer.created_at <= until, answers_counted(rehearsals))
        .order_by(Answer.id)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return _read(session, stmt)


def judgements(session: Session, *, until: datetime, keys: list[str]) -> pd.DataFrame:
    """The judgements of answers whose key is one of ``keys``: ``participant``, ``key`` (of
    the judged answer), ``verdict``."""
    stmt = select(
        Answer.participant_id.label("participant"),
        Answer.refers_to.label("key"),
        Answer.option.label("verdict"),
    ).where(Answer.created_at <= until, Answer.refers_to.in_(keys), Answer.option.is_not(None))
    return _read(session, stmt)


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


def breakdown(
    counts: Counts, by: str, comunas: list[str], others: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    """Consenting participants per comuna and ``by`` ("age_band" or "gender"), rounded by
    ``disclosure.people``.

    Returns the table and the comunas left out. Rows: each of ``comunas`` with at least
    ``MIN_GROUP`` participants, in order; then ``REST`` (the other comunas of ``comunas``
    taken together, if they reach ``MIN_GROUP``); then each of ``others`` (places that are
    not comunas: outside the region, not given) that reaches ``MIN_GROUP``. Columns: the
    category ids, ``NOT_GIVEN`` for "not given".
    """
    p = counts.profile.assign(category=counts.profile[by].fillna(NOT_GIVEN))
    table = p.pivot_table(
        index="comuna", columns="category", values="n", aggfunc="sum", fill_value=0
    )
    sizes = table.sum(axis=1)
    shown = [c for c in comunas if sizes.get(c, 0) >= MIN_GROUP]
    small = [c for c in comunas if 0 < sizes.get(c, 0) < MIN_GROUP]
    rows = table.loc[shown]
    rest_sum = table.loc[[c for c in small if c in table.index]].sum()
    if small and rest_sum.sum() >= MIN_GROUP:
        rows = pd.concat([rows, rest_sum.to_frame(REST).T])
    rows = pd.concat([rows, table.loc[[o for o in others if sizes.get(o, 0) >= MIN_GROUP]]])
    return rows.map(disclosure.people).astype("Int64"), small


NOT_GIVEN = "sin_dato"
"""Category of participants who skipped the question (``None`` in the database)."""
REST = "__resto__"
"""Row of ``breakdown`` for the small comunas taken together."""
