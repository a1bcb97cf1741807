"""Benchmark: the organisers' digest on 1,000,000 answers, against loading every answer.

Usage (from the repository root)::

    python -m bench.digest                       # SQLite (a temporary file, WAL)
    python -m bench.digest --keep /tmp/digest.db # SQLite, populated once and reused
    python -m bench.digest --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    python -m bench.digest --quick               # smoke run: 10,000 participants, one run

Method
------
* **Data.** ``--participants`` (100,000) people with ``--answers-per-participant`` (10)
  answers on average: exactly participants × answers-per-participant answers. The schema is
  the real one (``storage.upgrade``), filled with bulk Core inserts
  (``session.execute(insert(table), rows)`` in chunks) of rows shaped as the flow engine
  records them for the bundled consultation (``flows.load()``): one agreement answer (key
  ``a``, a quarter with a reason), options of the desirable questions (``q1.o.peru``, option
  ids from the file, a skewed popularity), free-text desirable changes for a subset of
  people (55 %, one to three each: ``q2.t3``, texts of ``bot.cli.textbank``: ~80 Spanish
  templates with fillers, prefixes, suffixes, missing accents and typos, so almost every
  text is unique;
  80 % tagged with a system) and, for the 60 % who finished, feasibility judgements of
  their changes (``p.q1.o.peru``, ``refers_to`` the judged key, ``si``/``en_parte``/``no``,
  some with an enabler text). Participants: codes, comunas weighted by population (plus
  outside the region and not given), 2 % municipal contacts, age bands and genders,
  ``State.to_dict()`` as the state row; consents over 30 days (a launch wave, a reminder
  wave, a steady trickle), answers a few seconds to a few days apart. Deterministic
  (``random.Random(seed)``). SQLite: a temporary file in WAL mode (``storage.make_engine``),
  checkpointed after the load; ``--keep PATH`` keeps it and reuses it when generator,
  sizes and schema match. PostgreSQL: a fresh schema ``bench_<hex>`` (the URL gets
  ``options=-csearch_path=bench_<hex>``), given a ``VACUUM ANALYZE`` after the load as
  autovacuum would, dropped at the end.
* **Phases.** Each measurement runs in a fresh subprocess (``python -m bench.digest
  --phase ...``), so its peak RSS (``VmHWM`` of that process; ``ru_maxrss`` elsewhere) is
  that phase alone, imports included. Modules are imported before the clock starts, as in
  the running bot; the clock covers the engine, the connection and the work.

  - *digest*: ``reports.digest.build(..., themes=False)`` (aggregation by GROUP BY, the
    result table, every PNG chart), then ``Digest.xlsx()``;
  - *themes*: the theme grouping of the free texts of every desirable question, as the
    digest does it (``reports.digest.themes_of``: ``aggregate.free_texts`` then
    ``reports.themes.group_themes``);
  - *load_all* (the baseline): ``pd.read_sql(select(Answer.__table__), conn)``.

  ``since`` is a day before ``until`` (a daily digest; ``until`` is the end of the 30 days).
  Each phase runs ``--runs`` (3) times, phases interleaved; figures are medians. When the
  next round would overrun ``--time-limit`` the runs stop early and the output says so.
* **Output.** Each figure beside its ratio to load_all measured in the same run, and the
  budgets (digest ≤ 5 s and ≤ 400 MB, themes ≤ 30 s, every phase ≤ 1 GiB) passed or
  failed. ``--profile`` adds one cProfile run of the digest and themes phases (not counted)
  and ``--tracemalloc`` one traced run, to show where time and memory go.

The last line printed is one JSON object: ``answers``, ``participants``, ``digest_s``,
``themes_s``, ``load_all_s``, ``digest_rss_mb``, ``themes_rss_mb``, ``load_all_rss_mb``,
``peak_rss_mb`` (max of the digest and themes phases), ``database``, and more. The exit
status is 1 if a budget fails or a phase could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, func, insert, select, text
from sqlalchemy.engine import make_url

import storage
from bot.cli.textbank import AGREEMENT_REASONS, COMUNA_POPULATION, ENABLERS, TextBank
from flows import Definition, State, load
from flows.schema import Question
from storage.models import Answer, Base, Participant
from storage.repository import CODE_ALPHABET, CODE_LENGTH

GENERATOR = 2
"""Bump when the generated data changes: a ``--keep`` file of another generator is rebuilt."""

PHASES = ("load_all", "digest", "themes")
DIGEST_S, DIGEST_MB, THEMES_S, PEAK_MB = 5.0, 400.0, 30.0, 1024.0
WINDOW_START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
WINDOW = timedelta(days=30)
UNTIL = WINDOW_START + WINDOW
SINCE = UNTIL - timedelta(days=1)
ZONE = "America/Santiago"
URL_ENV = "BENCH_DIGEST_URL"
PARTICIPANTS: Table = Base.metadata.tables[Participant.__tablename__]
ANSWERS: Table = Base.metadata.tables[Answer.__tablename__]
CHUNK = 20_000
FINISHED = 0.60
MUNICIPAL = 0.02
WRITERS = 0.55
UNFINISHED_SHARE = 0.45
"""An unfinished participant gives this fraction of a finished one's answers, on average."""


REASONS = [r for texts in AGREEMENT_REASONS.values() for r in texts]
"""Reasons for the agreement answer, whatever it was."""
POPULATION = COMUNA_POPULATION


# --- the population -------------------------------------------------------------------------


@dataclass
class Shape:
    """The consultation's questions as the generator needs them."""

    agreement: Question
    desirable: list[Question]
    feasibility: Question
    systems: list[str]
    comunas: list[str]
    comuna_weights: list[float]
    age_bands: list[str]
    genders: list[str]
    question_ids: list[str]

    @classmethod
    def of(cls, definition: Definition) -> Shape:
        c = definition.consultation
        by_kind: dict[str, list[Question]] = {}
        for q in c.questions:
            by_kind.setdefault(q.kind, []).append(q)
        inside = [o.id for o in c.profile.comunas() if o.id != c.profile.outside.id]
        comunas = [*inside, c.profile.outside.id]
        weights = [POPULATION.get(x, 10.0) for x in inside]
        weights.append(0.03 * sum(weights))  # outside the region: 3 %
        return cls(
            agreement=by_kind["agreement"][0],
            desirable=by_kind["desirable"],
            feasibility=by_kind["feasibility"][0],
            systems=[s.id for s in c.systems],
            comunas=comunas,
            comuna_weights=weights,
            age_bands=[o.id for o in c.profile.age_bands],
            genders=[o.id for o in c.profile.genders],
            question_ids=[q.id for q in c.questions],
        )


@dataclass
class Person:
    finished: bool
    writes: int
    answers: int = 0


def _plan(rng: random.Random, participants: int, answers: int) -> list[Person]:
    """How many answers each person gives: exactly ``answers`` in all."""
    mean = answers / participants
    finished_mean = mean / (FINISHED + (1 - FINISHED) * UNFINISHED_SHARE)
    people = []
    for _ in range(participants):
        finished = rng.random() < FINISHED
        writes = rng.choices((1, 2, 3), (0.55, 0.30, 0.15))[0] if rng.random() < WRITERS else 0
        m = finished_mean if finished else finished_mean * UNFINISHED_SHARE
        people.append(Person(finished, writes, max(1, round(rng.gauss(m, 0.35 * m)))))
    diff = answers - sum(p.answers for p in people)
    while diff:
        p = people[rng.randrange(participants)]
        if diff > 0:
            p.answers += 1
            diff -= 1
        elif p.answers > 1:
            p.answers -= 1
            diff += 1
    return people


def _consent_times(rng: random.Random, n: int) -> list[datetime]:
    """A launch wave, a reminder wave on day 14, a steady trickle; sorted."""
    days = []
    for _ in range(n):
        r = rng.random()
        if r < 0.40:
            d = rng.expovariate(1 / 2.0)
        elif r < 0.55:
            d = 14 + rng.expovariate(1 / 1.5)
        else:
            d = rng.uniform(0, 30)
        days.append(min(d, 29.9))
    days.sort()
    return [WINDOW_START + timedelta(days=d) for d in days]


def _weighted_sample(
    rng: random.Random, items: list[str], weights: list[float], k: int
) -> list[str]:
    items, weights = list(items), list(weights)
    chosen = []
    for _ in range(min(k, len(items))):
        i = rng.choices(range(len(items)), weights)[0]
        chosen.append(items.pop(i))
        weights.pop(i)
    return chosen


class Generator:
    """Rows of participants and answers, in engine conventions, one participant at a time."""

    def __init__(self, definition: Definition, participants: int, answers: int, seed: int):
        self.rng = random.Random(seed)
        self.shape = Shape.of(definition)
        self.version = definition.version
        self.people = _plan(self.rng, participants, answers)
        self.times = _consent_times(self.rng, participants)
        self.bank = TextBank(self.rng, self.shape.systems)
        rng = self.rng
        self.option_weights: dict[str, list[float]] = {}
        self.feasible: dict[str, float] = {}
        for q in self.shape.desirable:
            ranks = list(range(len(q.options)))
            rng.shuffle(ranks)
            self.option_weights[q.id] = [1 / (r + 1) ** 0.8 for r in ranks]
            for o in q.options:
                self.feasible[f"{q.id}.o.{o.id}"] = rng.uniform(0.2, 0.65)
        self.codes: set[str] = set()
        self.update_id = 700_000_000
        self.template = State(stage="finished", step="done", version=self.version).to_dict()

    def _code(self) -> str:
        while True:
            code = "".join(self.rng.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            if code not in self.codes:
                self.codes.add(code)
                return code

    def rows(self) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        for pid, (person, consent) in enumerate(zip(self.people, self.times, strict=True), 1):
            yield self._person(pid, person, consent)

    def _person(
        self, pid: int, person: Person, consent: datetime
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        rng, shape = self.rng, self.shape
        municipal = rng.random() < MUNICIPAL
        if municipal:
            comuna: str | None = rng.choices(shape.comunas[:-1], shape.comuna_weights[:-1])[0]
        else:
            comuna = rng.choices(shape.comunas, shape.comuna_weights)[0]
            comuna = None if rng.random() < 0.05 else comuna
        age = None if rng.random() < 0.08 else rng.choice(shape.age_bands)
        gender = None if rng.random() < 0.08 else rng.choice(shape.genders[:2] * 6 + shape.genders)
        clock = [consent + timedelta(seconds=rng.uniform(20, 120))]  # the profile steps

        def at() -> datetime:
            gap = rng.expovariate(1 / 40) + 5
            if rng.random() < 0.03:
                gap += rng.uniform(3600, 3 * 86400)  # back another day
            clock[0] = min(clock[0] + timedelta(seconds=gap), UNTIL)
            return clock[0]

        answers: list[dict[str, Any]] = []

        def add(key: str, question: str, kind: str, option: str | None = None,
                text: str | None = None, system: str | None = None,
                refers_to: str | None = None) -> None:  # fmt: skip
            self.update_id += rng.randint(1, 4)
            when = at()
            answers.append({
                "participant_id": pid, "key": key, "question": question, "kind": kind,
                "option": option, "text": text, "system": system, "refers_to": refers_to,
                "consultation_version": self.version, "update_id": self.update_id,
                "created_at": when, "updated_at": when,
            })  # fmt: skip

        # agreement, with a reason now and then
        a = shape.agreement
        options = [o.id for o in a.options]
        weights = [0.55, 0.25, 0.08, 0.12] if len(options) == 4 else [1.0] * len(options)
        reason = rng.choice(REASONS) if rng.random() < 0.25 else None
        add(a.id, a.id, "acuerdo", option=rng.choices(options, weights)[0], text=reason)
        rest = person.answers - 1
        judged = int(rest * rng.uniform(0.3, 0.5)) if person.finished else 0
        desirable = rest - judged
        written = min(person.writes, desirable)
        chosen = desirable - written
        capacity = {q.id: len(q.options) for q in shape.desirable}
        if chosen > sum(capacity.values()):
            written += chosen - sum(capacity.values())
            chosen = sum(capacity.values())
        per_question = dict.fromkeys(capacity, 0)
        with_options = [x for x in capacity if capacity[x]]
        for _ in range(chosen):
            room = [x for x in with_options if per_question[x] < capacity[x]]
            per_question[rng.choice(room)] += 1
        texts = dict.fromkeys(capacity, 0)
        for _ in range(written):
            qid = rng.choices(list(capacity), [1.0 if capacity[x] else 1.5 for x in capacity])[0]
            texts[qid] += 1
        seq = 0
        targets: list[str] = []
        for q in shape.desirable:
            ids = [o.id for o in q.options]
            for option in _weighted_sample(rng, ids, self.option_weights[q.id], per_question[q.id]):
                key = f"{q.id}.o.{option}"
                add(key, q.id, "deseable", option=option)
                targets.append(key)
            for _ in range(texts[q.id]):
                seq += 1
                key = f"{q.id}.t{seq}"
                change, system = self.bank.change()
                add(key, q.id, "deseable", text=change, system=system)
                targets.append(key)
        f = shape.feasibility
        verdicts = [o.id for o in f.options]
        for key in sorted(rng.sample(targets, judged), key=targets.index):
            p = self.feasible.get(key, 0.4)
            if len(verdicts) == 3:
                verdict = rng.choices(verdicts, (p, (1 - p) * 0.6, (1 - p) * 0.4))[0]
            else:
                verdict = rng.choice(verdicts)
            enabler = rng.choice(ENABLERS) if rng.random() < 0.12 else None
            add(f"p.{key}", f.id, "posible", option=verdict, text=enabler, refers_to=key)

        last = answers[-1]["created_at"]
        finished_at = min(last + timedelta(seconds=30), UNTIL) if person.finished else None
        state = dict(self.template)
        visited = shape.question_ids if person.finished else []
        if not person.finished:
            state.update(stage="questions", step="ask", question=answers[-1]["question"])
        state.update(
            visited=list(visited), seq=seq, role="municipal" if municipal else "citizen",
            comuna=comuna, age_band=age, gender=gender,
        )  # fmt: skip
        participant = {
            "id": pid, "channel": "telegram", "external_id": str(5_000_000_000 + 7 * pid),
            "code": self._code(), "stage": state["stage"], "role": state["role"],
            "comuna": comuna, "age_band": age, "gender": gender, "state": state,
            "state_version": 1 + len(answers) + 6, "consented_at": consent,
            "finished_at": finished_at, "created_at": consent - timedelta(seconds=30),
            "updated_at": finished_at or last, "unreachable_since": None,
        }  # fmt: skip
        return participant, answers


def populate(engine: Engine, definition: Definition, participants: int, answers: int,
             seed: int) -> tuple[int, int]:  # fmt: skip
    """Fill an upgraded, empty database; the counts of rows really stored."""
    gen = Generator(definition, participants, answers, seed)
    people: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    with engine.connect() as conn:

        def flush() -> None:
            if people:
                conn.execute(insert(PARTICIPANTS), people)
            for i in range(0, len(rows), CHUNK):
                conn.execute(insert(ANSWERS), rows[i : i + CHUNK])
            conn.commit()
            people.clear()
            rows.clear()

        for participant, given in gen.rows():
            people.append(participant)
            rows.extend(given)
            if len(rows) >= 5 * CHUNK:
                flush()
        flush()
        n_people = conn.scalar(select(func.count()).select_from(PARTICIPANTS))
        n_answers = conn.scalar(select(func.count()).select_from(ANSWERS))
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('participants', 'id'),"
                    " (SELECT max(id) FROM participants))"
                )
            )
            conn.commit()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE participants"))
            conn.execute(text("VACUUM ANALYZE answers"))
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return int(n_people or 0), int(n_answers or 0)


# --- one phase, in a process of its own -----------------------------------------------------


def _peak_rss_mb() -> float:
    """This process's peak RSS: ``VmHWM`` on Linux (``ru_maxrss`` would include the RSS the
    process had before ``exec``), ``ru_maxrss`` elsewhere."""
    try:
        status = Path("/proc/self/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _rss_mb() -> float:
    """This process's RSS now (Linux; NaN elsewhere): the imports' share of the peak."""
    try:
        status = Path("/proc/self/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return float("nan")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Timer:
    """Wraps a module function to add up the time spent in it (instrumentation only)."""

    def __init__(self, module: Any, name: str) -> None:
        self.seconds = 0.0
        self.cpu = 0.0
        self.calls = 0
        self.sizes: list[int] = []
        original: Callable[..., Any] = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0, cpu0 = time.perf_counter(), _cpu_seconds()
            result = original(*args, **kwargs)
            self.seconds += time.perf_counter() - t0
            self.cpu += _cpu_seconds() - cpu0
            self.calls += 1
            if hasattr(result, "__len__"):  # a list or a frame of texts
                self.sizes.append(len(result))
            return result

        setattr(module, name, timed)


def _module(name: str) -> Any:
    try:
        return __import__(name, fromlist=["_"])
    except ImportError:
        return None


def run_phase(name: str, url: str, *, cprofile: bool, trace: bool) -> dict[str, Any]:
    """Measure one phase in this (fresh) process."""
    from zoneinfo import ZoneInfo

    import pandas as pd
    from sqlalchemy.orm import Session

    from reports import aggregate, digest

    # each phase imports what it uses, no more (the baseline's RSS is pandas + SQLAlchemy)
    charts = _module("reports.charts") if name == "digest" else None
    themes = _module("reports.themes") if name == "themes" else None
    definition = load()
    until, since = UNTIL, SINCE
    out: dict[str, Any] = {"phase": name}
    timers: dict[str, _Timer] = {}

    def work() -> None:
        engine = storage.make_engine(url)
        try:
            if name == "load_all":
                with engine.connect() as conn:
                    frame = pd.read_sql(select(ANSWERS), conn)
                out["rows"] = len(frame)
                out["frame_mb"] = round(frame.memory_usage(deep=True).sum() / 2**20, 1)
                del frame
            elif name == "digest":
                with Session(engine) as session:
                    d = digest.build(session, definition, since=since, until=until,
                                     zone=ZoneInfo(ZONE), charts=charts is not None,
                                     themes=False)  # fmt: skip
                t0 = time.perf_counter()
                xlsx = d.xlsx()
                out["xlsx_s"] = round(time.perf_counter() - t0, 3)
                out["xlsx_bytes"] = len(xlsx)
                out["images"] = len(d.images)
                out["png_bytes"] = sum(len(i.png) for i in d.images)
                out["charts"] = charts is not None
            else:
                with Session(engine) as session:
                    if hasattr(digest, "themes_of"):
                        found = digest.themes_of(session, definition, until)
                    elif hasattr(digest, "_themes"):
                        found = digest._themes(session, definition, until)
                    else:  # the digest's private helper went: group as it used to
                        assert themes is not None
                        found = []
                        for q in definition.consultation.questions:
                            if q.kind == "desirable":
                                texts = aggregate.free_texts(session, q.id, until=until)
                                found += themes.group_themes(texts, max_themes=5)
                out["themes"] = (
                    sum(map(len, found.values())) if isinstance(found, dict) else len(found)
                )
        finally:
            engine.dispose()

    if name == "digest":
        timers = {"count_s": _Timer(aggregate, "count"), "charts_s": _Timer(digest, "_charts")}
    if name == "themes":
        if themes is None:
            return {**out, "missing": "reports.themes"}
        timers = {
            "free_texts_s": _Timer(aggregate, "free_texts"),
            "group_s": _Timer(themes, "group_themes"),
        }
    if charts is not None:
        import matplotlib.pyplot  # noqa: F401  (imported before the clock, as in the bot)
    if cprofile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(work)
        stats = pstats.Stats(profiler, stream=sys.stdout)
        print(f"--- cProfile of {name} (cumulative, top 30) ---")
        stats.sort_stats("cumulative").print_stats(30)
    elif trace:
        import tracemalloc

        tracemalloc.start(10)
        work()
        _, peak = tracemalloc.get_traced_memory()
        snapshot = tracemalloc.take_snapshot()
        tracemalloc.stop()
        print(f"--- tracemalloc of {name}: peak {peak / 2**20:.1f} MB traced (numpy included); "
              "largest allocations still alive at the end ---")  # fmt: skip
        for stat in snapshot.statistics("lineno")[:15]:
            print(f"  {stat}")
    else:
        out["import_rss_mb"] = round(_rss_mb(), 1)
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter()
        work()
        out["seconds"] = round(time.perf_counter() - t0, 3)
        out["cpu_s"] = round(_cpu_seconds() - cpu0, 3)
    for key, timer in timers.items():
        out[key] = round(timer.seconds, 3)
        out[key.replace("_s", "_cpu_s")] = round(timer.cpu, 3)
        if key == "free_texts_s":
            out["texts"] = sum(timer.sizes)
    out["rss_mb"] = round(_peak_rss_mb(), 1)
    return out


# --- the driver -----------------------------------------------------------------------------


@dataclass
class Options:
    database_url: str | None
    participants: int
    answers_per_participant: float
    runs: int
    keep: Path | None
    seed: int
    time_limit: float
    phase_timeout: float
    profile: bool
    tracemalloc: bool

    @property
    def answers(self) -> int:
        return round(self.participants * self.answers_per_participant)


@dataclass
class Results:
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {p: [] for p in PHASES})
    notes: list[str] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    """The 1-minute load average before each round and at the end (other work on the host)."""

    def median(self, phase: str, key: str) -> float | None:
        values = [r[key] for r in self.runs[phase] if r.get(key) is not None]
        return round(statistics.median(values), 3) if values else None


def child(phase: str, url: str, timeout: float, *flags: str) -> dict[str, Any]:
    """Run one phase in a fresh interpreter; its last stdout line is its result."""
    env = {**os.environ, URL_ENV: url}
    cmd = [sys.executable, "-m", "bench.digest", "--phase", phase, *flags]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                              cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"phase": phase, "error": f"timed out after {timeout:.0f} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        return {"phase": phase, "error": f"exit {proc.returncode}:\n{tail}"}
    for line in lines[:-1]:
        print(line)
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _sqlite(
    opts: Options, definition: Definition, stack: list[Callable[[], None]]
) -> tuple[str, str]:
    """The SQLite URL, populated (or reused); a note on how it was populated."""
    if opts.keep is None:
        folder = tempfile.mkdtemp(prefix="bench_digest_")
        path = Path(folder) / "digest.db"

        def cleanup() -> None:
            for p in Path(folder).iterdir():
                p.unlink()
            Path(folder).rmdir()

        stack.append(cleanup)
    else:
        path = opts.keep.resolve()
    url = f"sqlite:///{path}"
    meta_path = path.with_name(path.name + ".meta.json")
    wanted = {"generator": GENERATOR, "participants": opts.participants,
              "answers": opts.answers, "seed": opts.seed}  # fmt: skip
    if opts.keep is not None and path.exists() and not meta_path.exists():
        raise SystemExit(f"{path} exists and was not made by this benchmark: not touching it")
    if opts.keep is not None and path.exists():
        meta = json.loads(meta_path.read_text())
        engine = storage.make_engine(url)
        try:
            current = storage.at_head(engine)
        finally:
            engine.dispose()
        if {k: meta.get(k) for k in wanted} == wanted and current:
            return url, f"reused {path} (populated in {meta['populate_s']:.1f} s)"
        print(f"{path}: generator, sizes or schema changed: populating again")
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)
    seconds = _populate(url, definition, opts)
    if opts.keep is not None:
        meta_path.write_text(json.dumps({**wanted, "populate_s": seconds}))
    return url, f"populated {path} in {seconds:.1f} s"


def _postgres(
    opts: Options, definition: Definition, stack: list[Callable[[], None]]
) -> tuple[str, str]:
    assert opts.database_url is not None
    base = storage.normalise_url(opts.database_url)
    schema = f"bench_{secrets.token_hex(4)}"
    admin = storage.make_engine(base)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        conn.commit()

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            conn.commit()
        admin.dispose()

    stack.append(drop)
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    url_text = url.render_as_string(hide_password=False)
    seconds = _populate(url_text, definition, opts)
    return url_text, f"populated schema {schema} in {seconds:.1f} s (VACUUM ANALYZE included)"


def _populate(url: str, definition: Definition, opts: Options) -> float:
    t0 = time.perf_counter()
    storage.upgrade(url)
    engine = storage.make_engine(url)
    try:
        people, answers = populate(engine, definition, opts.participants, opts.answers, opts.seed)
    finally:
        engine.dispose()
    if (people, answers) != (opts.participants, opts.answers):
        raise RuntimeError(f"stored {people} participants and {answers} answers, "
                           f"expected {opts.participants} and {opts.answers}")  # fmt: skip
    return time.perf_counter() - t0


def text_stats(url: str) -> tuple[int, int]:
    """How many free-text desirable changes are stored, and how many distinct texts."""
    engine = storage.make_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                select(func.count(), func.count(ANSWERS.c.text.distinct())).where(
                    ANSWERS.c.kind == "deseable", ANSWERS.c.option.is_(None)
                )
            ).one()
    finally:
        engine.dispose()
    return int(row[0]), int(row[1])


def measure(url: str, opts: Options) -> Results:
    results = Results()
    started = time.monotonic()
    for run in range(opts.runs):
        round_start = time.monotonic()
        results.load.append(os.getloadavg()[0])
        for phase in PHASES:
            r = child(phase, url, opts.phase_timeout)
            results.runs[phase].append(r)
            if "error" in r:
                print(f"{phase}: {r['error']}")
            else:
                print(f"run {run + 1} {phase}: " + ", ".join(
                    f"{k}={v}" for k, v in r.items() if k != "phase"))  # fmt: skip
        if any("error" in r for phase in PHASES for r in results.runs[phase][-1:]):
            results.notes.append("a phase failed: no further runs")
            break
        spent = time.monotonic() - started
        if run + 1 < opts.runs and spent + (time.monotonic() - round_start) > opts.time_limit:
            results.notes.append(
                f"stopped after {run + 1} of {opts.runs} runs: the next would pass "
                f"--time-limit {opts.time_limit:.0f} s"
            )
            break
    results.load.append(os.getloadavg()[0])
    for flag, wanted in (("--cprofile", opts.profile), ("--trace", opts.tracemalloc)):
        if wanted:
            for phase in ("digest", "themes"):
                child(phase, url, opts.phase_timeout * 5, flag)
    return results


def report(results: Results, opts: Options, database: str, populated: str) -> dict[str, Any]:
    med = results.median
    base_s, base_mb = med("load_all", "seconds"), med("load_all", "rss_mb")
    n_runs = min(len(r) for r in results.runs.values())

    def ratio(value: float | None, baseline: float | None) -> str:
        return f"{value / baseline:.2f}× load_all" if value and baseline else "no ratio"

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("PASS" if ok else "FAIL")

    digest_s, digest_mb = med("digest", "seconds"), med("digest", "rss_mb")
    themes_s, themes_mb = med("themes", "seconds"), med("themes", "rss_mb")
    peaks = [x for x in (digest_mb, themes_mb) if x is not None]
    peak = max(peaks) if peaks else None
    checks = {
        "digest_s": None if digest_s is None else digest_s <= DIGEST_S,
        "digest_rss": None if digest_mb is None else digest_mb <= DIGEST_MB,
        "themes_s": None if themes_s is None else themes_s <= THEMES_S,
        "peak_rss": None if peak is None else peak <= PEAK_MB,
    }
    print()
    print(f"{database}: {opts.participants:,} participants, {opts.answers:,} answers; {populated}")
    print(f"medians of {n_runs} run(s), each phase in a fresh process; 1-min load average "
          f"{', '.join(f'{x:.1f}' for x in results.load)} on {os.cpu_count()} CPUs")  # fmt: skip
    print(f"load_all {base_s} s (cpu {med('load_all', 'cpu_s')} s), {base_mb} MB peak RSS "
          "(baseline: every answer into pandas)")  # fmt: skip
    print(f"digest   {digest_s} s = {ratio(digest_s, base_s)} (cpu {med('digest', 'cpu_s')} s); "
          f"{digest_mb} MB = "
          f"{ratio(digest_mb, base_mb)}  [≤ {DIGEST_S:g} s: {verdict(checks['digest_s'])}, "
          f"≤ {DIGEST_MB:g} MB: {verdict(checks['digest_rss'])}]")  # fmt: skip
    d = results.runs["digest"][-1] if results.runs["digest"] else {}
    if "count_s" in d:
        print(f"         of which count {med('digest', 'count_s')} s "
              f"(cpu {med('digest', 'count_cpu_s')} s), charts {med('digest', 'charts_s')} s "
              f"(cpu {med('digest', 'charts_cpu_s')} s, {d.get('images')} PNG), xlsx "
              f"{med('digest', 'xlsx_s')} s")  # fmt: skip
    if d.get("charts") is False:
        print("         reports/charts.py is missing: the digest was built without charts")
    t = results.runs["themes"][-1] if results.runs["themes"] else {}
    if t.get("missing"):
        print(f"themes   not measured: {t['missing']} is missing")
    else:
        print(
            f"themes   {themes_s} s = {ratio(themes_s, base_s)} (cpu {med('themes', 'cpu_s')} s); "
            f"{themes_mb} MB = "
            f"{ratio(themes_mb, base_mb)}  [≤ {THEMES_S:g} s: {verdict(checks['themes_s'])}]"
        )
        if "group_s" in t:
            print(
                f"         of which free_texts {med('themes', 'free_texts_s')} s "
                f"({t.get('texts')} texts), group_themes {med('themes', 'group_s')} s "
                f"(cpu {med('themes', 'group_cpu_s')} s)"
            )
    print(
        f"RSS after imports, before the clock: digest {med('digest', 'import_rss_mb')} MB, "
        f"themes {med('themes', 'import_rss_mb')} MB, "
        f"load_all {med('load_all', 'import_rss_mb')} MB"
    )
    print(f"peak RSS {peak} MB of digest and themes (load_all: {base_mb} MB)  "
          f"[≤ {PEAK_MB:g} MB: {verdict(checks['peak_rss'])}]")  # fmt: skip
    for note in results.notes:
        print(f"note: {note}")
    failed = [k for k, ok in checks.items() if ok is False]
    errors = [r["error"] for runs in results.runs.values() for r in runs if "error" in r]
    return {
        "answers": opts.answers,
        "participants": opts.participants,
        "digest_s": digest_s,
        "themes_s": themes_s,
        "load_all_s": base_s,
        "digest_rss_mb": digest_mb,
        "themes_rss_mb": themes_mb,
        "load_all_rss_mb": base_mb,
        "peak_rss_mb": peak,
        "digest_ratio": round(digest_s / base_s, 3) if digest_s and base_s else None,
        "themes_ratio": round(themes_s / base_s, 3) if themes_s and base_s else None,
        "digest_cpu_s": med("digest", "cpu_s"),
        "themes_cpu_s": med("themes", "cpu_s"),
        "load_all_cpu_s": med("load_all", "cpu_s"),
        "count_s": med("digest", "count_s"),
        "count_cpu_s": med("digest", "count_cpu_s"),
        "charts_cpu_s": med("digest", "charts_cpu_s"),
        "group_cpu_s": med("themes", "group_cpu_s"),
        "charts_s": med("digest", "charts_s"),
        "xlsx_s": med("digest", "xlsx_s"),
        "free_texts_s": med("themes", "free_texts_s"),
        "group_s": med("themes", "group_s"),
        "texts": t.get("texts"),
        "charts": d.get("charts"),
        "themes_available": not t.get("missing"),
        "runs": n_runs,
        "load_average": [round(x, 2) for x in results.load],
        "cpus": os.cpu_count(),
        "budgets_failed": failed,
        "errors": len(errors),
        "database": database,
    }


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.digest", description=__doc__.split("\n")[0])
    p.add_argument("--database-url", help="PostgreSQL URL (a scratch schema is used); "
                   "default: a temporary SQLite file")  # fmt: skip
    p.add_argument("--participants", type=int, default=100_000)
    p.add_argument("--answers-per-participant", type=float, default=10.0)
    p.add_argument("--quick", action="store_true", help="10,000 participants, one run")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--keep", type=Path, help="SQLite: keep the populated file here, reuse it")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--time-limit",
        type=float,
        default=1800.0,
        help="no further runs once this many seconds of measuring are spent",
    )
    p.add_argument("--phase-timeout", type=float, default=300.0)
    p.add_argument("--profile", action="store_true", help="add a cProfile run of each phase")
    p.add_argument("--tracemalloc", action="store_true", help="add a tracemalloc run")
    p.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    p.add_argument("--cprofile", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.phase:
        result = run_phase(args.phase, os.environ[URL_ENV], cprofile=args.cprofile,
                           trace=args.trace)  # fmt: skip
        print(json.dumps(result))
        return 0
    if args.quick:
        args.participants, args.runs = min(args.participants, 10_000), 1
    opts = Options(
        database_url=args.database_url,
        participants=args.participants,
        answers_per_participant=args.answers_per_participant,
        runs=max(1, args.runs),
        keep=args.keep,
        seed=args.seed,
        time_limit=args.time_limit,
        phase_timeout=args.phase_timeout,
        profile=args.profile,
        tracemalloc=args.tracemalloc,
    )
    if opts.answers < opts.participants:
        raise SystemExit("every participant gives at least one answer")
    for name, module in (("charts", "reports.charts"), ("themes", "reports.themes")):
        if _module(module) is None:
            print(f"note: {module} is missing: {name} not measured")
    definition = load()
    stack: list[Callable[[], None]] = []
    try:
        if opts.database_url:
            database = make_url(storage.normalise_url(opts.database_url)).get_backend_name()
            url, populated = _postgres(opts, definition, stack)
        else:
            database = "sqlite"
            url, populated = _sqlite(opts, definition, stack)
        texts, distinct = text_stats(url)
        print(populated)
        print(
            f"free-text changes: {texts:,}, {distinct:,} distinct ({distinct / max(texts, 1):.0%})"
        )
        results = measure(url, opts)
    finally:
        for undo in reversed(stack):
            undo()
    summary = report(results, opts, database, populated)
    summary["populate"] = populated
    summary["free_texts"], summary["distinct_texts"] = texts, distinct
    print(json.dumps(summary))
    return 1 if summary["budgets_failed"] or summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
