"""Benchmark: updates through the real bot, beside a bare PTB echo bot measured in the same run.

Usage (from the repository root)::

    python -m bench.updates                      # SQLite (a temporary file, WAL)
    python -m bench.updates --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    python -m bench.updates --quick              # smoke run: 200 participants, one run

Method
------
* **Participants.** Each of ``--participants`` (2,000) simulated people walks the bundled
  consultation with ``--updates-per-participant`` (10) updates: /start, the consent button,
  province, comuna, age band, gender, agreement with question A, a reason (text), an option
  of question 1, a desirable change (text), its system... Every button pressed is one the
  consultation offers at that point: each script is found by playing the pure flow engine
  offline (``flows.step``), which also says what must be stored and how many replies each
  update must cause. Updates are real PTB ``Update`` objects (``tests/helpers/updates.py``).
* **Processes.** The Bot API stand-in (``tests/helpers/botapi.py`` through
  ``bench/standin_server.py``: tornado, real HTTP on 127.0.0.1) runs in this process. Each
  bot under test runs in a process of its own (``python -m bench.updates --role ...``), so
  they share no GIL, and a bot's peak RSS is its own: the ``VmHWM`` of its process, read
  just before it is stopped. Two bots are measured:

  - *ours*: Consulta as ``consulta run`` starts it (``build_application`` + ``serve``,
    without the scheduler): our polling loop, the flow engine and the database;
  - *echo*: a bare PTB application (default ``Updater``, ``run_polling``) whose one handler
    sends one message per update: the baseline of ``ratio_to_echo``.

  A third bot, the same echo bot on Consulta's aiohttp transport (``bot/adapter/transport.py``), is
  measured too, as context: it shows how much of ours' speed is the transport, which a bare
  PTB bot could adopt as well (``echo_aiohttp_updates_per_s``, ``ratio_to_echo_aiohttp``).

  Consulta's rate limiter is off (``CONSULTA_RATE_LIMIT=0``); the echo bot has none.
* **Throughput.** All updates are queued at once (participants interleaved at random, each
  one's order kept); the clock runs from the push until every update is confirmed (the
  ``getUpdates`` offset is past it) and every expected reply has arrived. Echo and ours
  alternate; ours starts each run on a fresh database. The figure is the median of the runs:
  three, unless that would take the benchmark past about five minutes (then it says so).
  The bot's CPU time per update is printed too: it varies less than updates/s when other
  work shares the machine.
* **Latency.** Then ``--latency-rate`` (200) updates/s are offered for ``--latency-seconds``
  (10) s by other participants, each writing once a second, to a new process of each bot
  (ours on the database of its last run). Latency runs from the push to the arrival at the
  stand-in of the update's first reply message; both are timed in this process. This is
  done ``--latency-runs`` (3) times, echo and ours alternately, with new participants each
  time; ``p50_ms`` and ``p95_ms`` are the medians of the runs' percentiles (one run's p95
  moves by a factor of several on a shared machine).
* **Checks.** Stored participants, answers and processed update ids must equal what the
  offline engine predicts, and a sample participant must be at the predicted step with the
  predicted answers; otherwise the exit status is 1.

The last line printed is one JSON object: ``updates_per_s``, ``echo_updates_per_s``,
``ratio_to_echo``, ``p50_ms``, ``p95_ms``, ``peak_rss_mb``, ``database`` and context.
``--profile`` adds one run of ours under cProfile (not counted) and prints where its time went.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tests.helpers.process import ChildProcess

if TYPE_CHECKING:  # the bot processes import only what they run
    from telegram import Update
    from telegram.ext import ContextTypes

    from bench.standin_server import BenchStandIn, PacedResult
    from flows import Definition, State
    from flows.events import Event, Reply

ROOT = Path(__file__).resolve().parents[1]
JSONDict = dict[str, Any]
Schedule = list[tuple[float, JSONDict, int]]

BUDGET_RATIO = 0.6
BUDGET_P95_MS = 50.0
BUDGET_RSS_MB = 150.0
TIME_BUDGET = 300.0
"""Seconds: three throughput runs only if the whole benchmark stays under this."""
SLOWEST = 10.0
"""Updates/s: a phase slower than this is given up (the benchmark is bounded in time)."""
FIRST_USER = 700_000_001  # throughput participants; the latency ones start at LATENCY_USER
LATENCY_USER = 800_000_001
LATENCY_USERS_PER_RUN = 10_000
READY_TIMEOUT = 60.0
ECHO_AIOHTTP = "echo-aiohttp"
STOP_TIMEOUT = 30.0

REASONS = (
    "Porque la región ya vive del mundo",
    "La minería y la agricultura exportan a todo el mundo",
    "Hay que pensar primero en el territorio",
    "No conozco bien la política actual",
)
CHANGES = (
    "Un convenio con la Región de Atacama por el agua",
    "Más lazos con Mendoza y San Juan para el turismo",
    "Intercambios universitarios con Perú",
    "Una oficina regional que asesore a los municipios",
    "Ferias para exportar productos de la pesca artesanal",
)


def say(line: str) -> None:
    print(line, flush=True)


# --------------------------------------------------------------------------- scenario


@dataclass
class Script:
    """One participant's updates (JSON, as Telegram sends them) and what they must cause."""

    user_id: int
    updates: list[JSONDict] = field(default_factory=list)
    replies: list[int] = field(default_factory=list)
    """Send/edit calls the bot must make for each update."""
    final: State | None = None


@dataclass
class Scenario:
    """Participants' scripts; ``stream`` is the push order (interleaved, each one's order kept)."""

    scripts: list[Script]
    stream: list[JSONDict]

    @property
    def updates(self) -> int:
        return len(self.stream)

    @property
    def replies(self) -> int:
        return sum(sum(s.replies) for s in self.scripts)

    @property
    def answers(self) -> int:
        return sum(len(s.final.answers) for s in self.scripts if s.final is not None)


def _next_event(
    defn: Definition, state: State | None, started: bool, buttons: list[str], rng: random.Random
) -> Event:
    """What a cooperative participant does next, pressing only buttons that were offered."""
    from flows import buttons as bt
    from flows.events import Choice, Start, Text

    def press(*kinds: type[bt.ButtonData]) -> Choice:
        offered = [b for b in buttons if isinstance(bt.decode(b), kinds)]
        offered = [b for b in offered if bt.decode(b) != bt.Province()] or offered  # not "back"
        if not offered:
            raise AssertionError(f"no {kinds} button offered at {state}: {buttons}")
        return Choice(rng.choice(offered))

    if state is None:
        return Choice(bt.Consent(True).encode()) if started else Start("")
    kind = {"province": bt.Province, "comuna": bt.Comuna, "age_band": bt.AgeBand,
            "gender": bt.Gender, "system": bt.System, "judge": bt.Judge, "confirm": bt.SaveText,
            "reason_check": bt.ReasonStill}  # fmt: skip
    if state.step in kind:
        return press(kind[state.step])
    if state.step in ("reason", "enabler"):
        return Text(rng.choice(REASONS if state.step == "reason" else CHANGES))
    question = defn.consultation.question(state.question or "")
    if state.step == "ask" and question is not None and question.kind == "agreement":
        return press(bt.Agree)
    chosen = any(a.option for a in state.answers_to(state.question or ""))
    if (
        state.step == "ask"
        and not chosen
        and any(isinstance(bt.decode(b), bt.Toggle) for b in buttons)
    ):
        return press(bt.Toggle)
    return Text(rng.choice(CHANGES))  # a desirable change in the participant's own words


def _reply_calls(replies: Sequence[Reply], pressed: bool) -> int:
    """Send/edit calls ``bot.adapter.sending.deliver`` makes for ``replies``."""
    from bot.adapter.sending import MAX_MESSAGE
    from flows.prompts import as_messages, split_text

    return sum(
        1
        if r.replace and pressed and len(r.text) <= MAX_MESSAGE
        else len(split_text(r.text, MAX_MESSAGE))
        for r in as_messages(replies)
    )


def build_script(defn: Definition, user_id: int, length: int, seed: int) -> Script:
    """Play ``length`` events of one participant through the engine, as updates."""
    from flows import step
    from flows.events import Choice, Start
    from tests.helpers.updates import callback_update, text_update

    rng = random.Random(seed)
    script = Script(user_id)
    state: State | None = None
    started, buttons = False, list[str]()
    for n in range(1, length + 1):
        event = _next_event(defn, state, started, buttons, rng)
        result = step(defn, state, event)
        if not isinstance(event, Start) and result.state == state and not result.records:
            raise AssertionError(f"{event} changed nothing for {state}")
        if isinstance(event, Choice):
            update = callback_update(n, user_id, event.data, message_id=n)
        else:
            update = text_update(n, user_id, getattr(event, "text", "/start"))
        script.updates.append(update.to_dict())
        script.replies.append(_reply_calls(result.replies, pressed=isinstance(event, Choice)))
        started, state = True, result.state
        buttons = [b.data for r in result.replies for row in r.buttons for b in row] or buttons
    script.final = state
    return script


def build_scenario(
    defn: Definition, participants: int, length: int, first_user: int, seed: int
) -> Scenario:
    """``participants`` scripts, and one stream of their updates interleaved at random."""
    scripts = [
        build_script(defn, first_user + i, length, seed * 1_000_003 + i)
        for i in range(participants)
    ]
    turns = [i for i, s in enumerate(scripts) for _ in s.updates]
    random.Random(seed).shuffle(turns)
    sent = [0] * len(scripts)
    stream = []
    for i in turns:
        stream.append(scripts[i].updates[sent[i]])
        sent[i] += 1
    return Scenario(scripts, stream)


def paced_schedule(scenario: Scenario, rate: float, *, echo: bool = False) -> Schedule:
    """Participant ``j`` sends its ``m``-th update at ``m + j / rate`` s: ``rate`` updates/s in
    all, one a second per participant. Each entry says how many replies the update causes."""
    return sorted(
        (
            (m + j / rate, update, 1 if echo else script.replies[m])
            for j, script in enumerate(scenario.scripts)
            for m, update in enumerate(script.updates)
        ),
        key=lambda item: item[0],
    )


# --------------------------------------------------------------------------- databases


class Databases:
    """A fresh, migrated database per run: a SQLite file in ``workdir``, or a new schema on
    the PostgreSQL server of ``base_url`` (dropped by :meth:`cleanup`)."""

    def __init__(self, base_url: str | None, workdir: Path) -> None:
        import storage

        self.base_url = storage.normalise_url(base_url) if base_url else None
        self.kind = "postgresql" if self.base_url else "sqlite"
        self.workdir = workdir
        self.schemas: list[str] = []

    def describe(self) -> str:
        if self.base_url is None:
            return "sqlite (a fresh file in WAL mode per run)"
        return f"postgresql ({self.base_url.split('@')[-1]}, a fresh schema per run)"

    def fresh(self) -> str:
        import storage

        if self.base_url is None:
            url = f"sqlite:///{self.workdir / f'consulta-{secrets.token_hex(4)}.db'}"
        else:
            schema = f"bench_{secrets.token_hex(6)}"
            self._admin(f"CREATE SCHEMA {schema}")
            self.schemas.append(schema)
            sep = "&" if "?" in self.base_url else "?"
            url = f"{self.base_url}{sep}options={quote(f'-csearch_path={schema}')}"
        storage.upgrade(url)
        return url

    def cleanup(self) -> None:
        while self.schemas:
            self._admin(f"DROP SCHEMA IF EXISTS {self.schemas.pop()} CASCADE")

    def _admin(self, statement: str) -> None:
        from sqlalchemy import text

        import storage

        assert self.base_url is not None
        engine = storage.make_engine(self.base_url)
        try:
            with engine.begin() as conn:
                conn.execute(text("SET LOCAL lock_timeout = '10s'"))
                conn.execute(text(statement))
        finally:
            engine.dispose()


@dataclass
class Stored:
    participants: int
    answers: int
    processed_updates: int
    sample: tuple[Any, ...] = ()
    """(step, question, comuna, age band, gender, answer keys) of the sample participant."""


def stored(url: str, sample_user: int) -> Stored:
    """What the database holds, and where the sample participant is."""
    from sqlalchemy import text

    import storage

    engine = storage.make_engine(url)
    try:
        with engine.connect() as conn:

            def count(table: str) -> int:
                return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())

            row = conn.execute(
                text(
                    "SELECT id, state, comuna, age_band, gender FROM participants "
                    "WHERE external_id = :x"
                ),
                {"x": str(sample_user)},
            ).one_or_none()
            keys = conn.execute(
                text("SELECT key FROM answers WHERE participant_id = :p ORDER BY id"),
                {"p": row.id if row else None},
            ).scalars()
            sample: tuple[Any, ...] = ()
            if row is not None:
                state = row.state if isinstance(row.state, dict) else json.loads(row.state)
                sample = (
                    state.get("step"),
                    state.get("question"),
                    row.comuna,
                    row.age_band,
                    row.gender,
                    tuple(keys),
                )
            return Stored(
                count("participants"), count("answers"), count("processed_updates"), sample
            )
    finally:
        engine.dispose()


def predicted(sample: Script, participants: int, updates: int, answers: int) -> Stored:
    """What the database must hold, by the offline engine."""
    s = sample.final
    assert s is not None
    where = (s.step, s.question, s.comuna, s.age_band, s.gender, tuple(a.key for a in s.answers))
    return Stored(participants, answers, updates, where)


# --------------------------------------------------------------------------- the bots


def run_ours(base_url: str, token: str) -> None:
    """Consulta as ``consulta run`` starts it: long polling, confirmed after commit."""
    import storage
    from bot.adapter.app import build_application, serve
    from bot.infra.config import Settings
    from bot.services.conversation import Conversation
    from flows import load

    settings = Settings(
        telegram_bot_token=token,
        telegram_base_url=base_url,
        database_url=os.environ["DATABASE_URL"],
        consulta_rate_limit=0,
        _env_file=None,  # type: ignore[call-arg]
    )
    engine = storage.make_engine(settings.database_url)
    conv = Conversation(load(), storage.make_sessions(engine))
    conv.remember_version()
    asyncio.run(serve(build_application(settings, conv)))
    engine.dispose()


def run_echo(base_url: str, token: str, *, aiohttp: bool = False) -> None:
    """A bare PTB echo bot: default Updater and run_polling, one message per update; with
    ``aiohttp``, on Consulta's transport (bot/adapter/transport.py) instead of PTB's httpx."""
    from telegram.ext import Application, CallbackQueryHandler, MessageHandler, filters

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        assert chat is not None
        message, query = update.message, update.callback_query
        text = (message.text if message else None) or (query.data if query else None)
        await context.bot.send_message(chat.id, text or "?")

    builder = Application.builder().token(token).base_url(base_url)
    if aiohttp:
        from bot.adapter.transport import AiohttpRequest

        builder = builder.request(AiohttpRequest()).get_updates_request(AiohttpRequest(1))
    app = builder.build()
    app.add_handler(MessageHandler(filters.ALL, echo))
    app.add_handler(CallbackQueryHandler(echo))
    app.run_polling(allowed_updates=["message", "edited_message", "callback_query"])


def bot_process(role: str, base_url: str, token: str, profile_out: str | None) -> int:
    """The body of a bot process (``--role``): runs until SIGTERM."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if sys.platform.startswith("linux"):  # SIGTERM when the benchmark dies: no orphans
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() == 1:
            return 1
    run = {"ours": run_ours, "echo": run_echo, ECHO_AIOHTTP: partial(run_echo, aiohttp=True)}[role]
    if profile_out is None:
        run(base_url, token)
        return 0
    import cProfile

    profiler = cProfile.Profile()
    try:
        profiler.runcall(run, base_url, token)
    finally:
        profiler.dump_stats(profile_out)
    return 0


class BotProcess(ChildProcess):
    """A bot under test in its own process, started and polling when constructed."""

    def __init__(
        self,
        role: str,
        api: BenchStandIn,
        workdir: Path,
        database_url: str = "",
        profile_out: Path | None = None,
    ) -> None:
        command = [sys.executable, "-m", "bench.updates", "--role", role]
        command += ["--base-url", api.base_url, "--token", api.token]
        if profile_out is not None:
            command += ["--profile-out", str(profile_out)]
        env = {**os.environ, "DATABASE_URL": database_url}
        super().__init__(command, env, workdir, f"{role}-{time.monotonic_ns()}", cwd=ROOT)
        self.role = role
        polls = api.get_updates_calls
        self.start()
        deadline = time.monotonic() + READY_TIMEOUT
        while api.get_updates_calls == polls:  # until it polls
            self.check_alive()
            if time.monotonic() > deadline:
                self.finish()
                raise RuntimeError(f"the {role} bot did not start polling:\n{self.tail()}")
            time.sleep(0.02)

    def check_alive(self) -> None:
        if not self.running():
            raise RuntimeError(f"the {self.role} bot exited:\n{self.tail()}")

    def finish(self) -> float:
        """Read the peak RSS (MB), then stop the bot cleanly (SIGTERM), or kill it."""
        peak = self.peak_rss_mb() if self.running() else float("nan")
        self.stop(STOP_TIMEOUT)
        return peak


# --------------------------------------------------------------------------- phases


@dataclass
class Throughput:
    seconds: float
    updates: int
    bot_cpu: float
    standin_cpu: float

    @property
    def per_s(self) -> float:
        return self.updates / self.seconds

    @property
    def cpu_ms(self) -> float:
        """The bot's CPU time per update."""
        return 1000 * self.bot_cpu / self.updates

    def __str__(self) -> str:
        return (
            f"{self.updates} updates in {self.seconds:.2f} s = {self.per_s:.0f} updates/s; "
            f"bot CPU {self.cpu_ms:.2f} ms/update ({100 * self.bot_cpu / self.seconds:.0f}% "
            f"busy), stand-in {100 * self.standin_cpu / self.seconds:.0f}% busy, "
            f"load average {os.getloadavg()[0]:.1f}"
        )


def _own_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def throughput(
    api: BenchStandIn, bot: BotProcess, stream: list[JSONDict], replies: int
) -> Throughput:
    """Push ``stream`` at once; time until all is confirmed and ``replies`` replies came."""
    if api.pending_count():
        raise RuntimeError("updates of an earlier phase are still pending")
    target, timeout = api.replies + replies, 60 + len(stream) / SLOWEST
    cpu, own = bot.cpu_seconds(), _own_cpu()
    start = time.monotonic()
    api.push_many(stream)
    while api.replies < target or api.pending_count():
        if time.monotonic() - start > timeout:
            raise TimeoutError(
                f"{bot.role}: {api.pending_count()} updates pending and "
                f"{target - api.replies} replies missing after {timeout:.0f} s\n{bot.tail()}"
            )
        bot.check_alive()
        time.sleep(0.005)
    seconds = time.monotonic() - start
    return Throughput(seconds, len(stream), bot.cpu_seconds() - cpu, _own_cpu() - own)


def latency(api: BenchStandIn, bot: BotProcess, schedule: Schedule) -> PacedResult:
    """Offer ``schedule``; wait until it is all answered and confirmed."""
    timeout = 60 + len(schedule) / SLOWEST
    result = api.push_paced(schedule, timeout)
    deadline = time.monotonic() + timeout
    while api.pending_count() and time.monotonic() < deadline:
        bot.check_alive()
        time.sleep(0.01)
    if api.unanswered() or api.pending_count():
        raise TimeoutError(f"{bot.role}: {api.unanswered()} paced updates without all replies")
    return result


def percentile_ms(values: Sequence[float], pct: int) -> float:
    if len(values) < 2:
        return values[0] * 1000 if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1] * 1000


def describe_paced(r: PacedResult) -> str:
    return (
        f"{len(r.latencies)} updates at {r.offered_per_s:.0f}/s offered: "
        f"p50 {percentile_ms(r.latencies, 50):.1f} ms, p95 {percentile_ms(r.latencies, 95):.1f} "
        f"ms, max {max(r.latencies, default=0) * 1000:.1f} ms"
    )


# --------------------------------------------------------------------------- profile summary

_LAYERS = (
    ("epoll", "idle (event loop waiting)"),
    ("<frozen importlib", "imports at run time (importlib)"),
    ("sqlite3", "SQLite (C: execute, commit)"),
    ("psycopg", "psycopg (PostgreSQL round trips)"),
    ("/sqlalchemy/", "SQLAlchemy"),
    ("/telegram/", "PTB"),
    ("/httpx/", "HTTP client (httpx, httpcore, h11, anyio)"),
    ("/httpcore/", "HTTP client (httpx, httpcore, h11, anyio)"),
    ("/h11/", "HTTP client (httpx, httpcore, h11, anyio)"),
    ("/anyio/", "HTTP client (httpx, httpcore, h11, anyio)"),
    ("/aiohttp/", "HTTP client (aiohttp)"),
    ("/multidict/", "HTTP client (aiohttp)"),
    ("/yarl/", "HTTP client (aiohttp)"),
    ("greenlet", "greenlet (SQLAlchemy's asyncio bridge)"),
    ("/json/", "json"),
    ("socket", "sockets"),
    ("/asyncio/", "asyncio"),
    ("/flows/", "flows/ (the engine)"),
    ("/storage/", "storage/"),
    ("/bot/", "bot/"),
)


def profile_summary(path: Path, top: int = 20) -> str:
    """Where the bot's time went (cProfile own time): per layer, then the costliest functions."""
    import pstats

    raw: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    layers: dict[str, float] = defaultdict(float)
    for (filename, _line, name), (_cc, _nc, own, _cum, _callers) in raw.items():
        where = f"{filename}:{name}"
        layers[next((label for key, label in _LAYERS if key in where), "other")] += own
    busy = sum(layers.values()) - layers["idle (event loop waiting)"]
    lines = [f"cProfile of ours: {busy:.1f} s busy, by layer (own time):"]
    for layer, seconds in sorted(layers.items(), key=lambda kv: -kv[1]):
        share = "" if layer.startswith("idle") else f"  {100 * seconds / busy:4.1f}%"
        lines.append(f"  {seconds:7.2f} s{share}  {layer}")
    lines.append(f"top {top} functions by own time:")
    for (filename, line, name), (_cc, calls, own, cum, _callers) in sorted(
        raw.items(), key=lambda kv: -kv[1][2]
    )[:top]:
        short = filename.split("site-packages/")[-1].replace(f"{ROOT}/", "")
        lines.append(f"  {own:6.2f} s own {cum:6.2f} s cum {calls:>8} calls  {short}:{line} {name}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the benchmark


@dataclass
class Options:
    participants: int
    length: int
    runs: int
    """0: three if the benchmark stays under ``TIME_BUDGET``, else fewer."""
    latency_rate: float
    latency_seconds: int
    latency_runs: int
    database_url: str | None
    profile: bool
    seed: int


@dataclass
class Results:
    echo: list[Throughput] = field(default_factory=list)
    ours: list[Throughput] = field(default_factory=list)
    echo_aiohttp: list[Throughput] = field(default_factory=list)
    echo_rss: list[float] = field(default_factory=list)
    ours_rss: list[float] = field(default_factory=list)
    echo_paced: list[PacedResult] = field(default_factory=list)
    ours_paced: list[PacedResult] = field(default_factory=list)
    stored: Stored | None = None
    expected: Stored | None = None
    ok: bool = True


class Bench:
    """The phases, against one stand-in and one kind of database."""

    def __init__(self, opts: Options, api: BenchStandIn, dbs: Databases, workdir: Path) -> None:
        from flows import load

        defn = load()
        self.opts, self.api, self.dbs, self.workdir = opts, api, dbs, workdir
        self.scenario = build_scenario(defn, opts.participants, opts.length, FIRST_USER, opts.seed)
        self.late = [  # per latency run, new participants: one per update/s, one update a second
            build_scenario(
                defn,
                max(1, round(opts.latency_rate)),
                opts.latency_seconds,
                LATENCY_USER + run * LATENCY_USERS_PER_RUN,
                opts.seed + 1 + run,
            )
            for run in range(opts.latency_runs)
        ]
        self.results = Results()
        self.url = ""  # the database of the last run of ours

    def throughput_runs(self, started: float) -> None:
        """Echo and ours alternately, each in a new process; ours on a fresh database."""
        sc, r = self.scenario, self.results
        wanted = self.opts.runs or 3
        for run in range(1, wanted + 1):
            began = time.monotonic()
            echo = self._start("echo")
            try:
                r.echo.append(throughput(self.api, echo, sc.stream, sc.updates))
            finally:
                r.echo_rss.append(echo.finish())
            say(f"run {run} echo: {r.echo[-1]}")
            echo = self._start(ECHO_AIOHTTP)
            try:
                r.echo_aiohttp.append(throughput(self.api, echo, sc.stream, sc.updates))
            finally:
                echo.finish()
            say(f"run {run} echo on aiohttp (context, not the baseline): {r.echo_aiohttp[-1]}")
            self.url = self.dbs.fresh()
            ours = self._start("ours", self.url)
            try:
                r.ours.append(throughput(self.api, ours, sc.stream, sc.replies))
            finally:
                r.ours_rss.append(ours.finish())
            say(f"run {run} ours: {r.ours[-1]}")
            say(f"       peak RSS: ours {r.ours_rss[-1]:.1f} MB, echo {r.echo_rss[-1]:.1f} MB")
            self._check(predicted(sc.scripts[0], len(sc.scripts), sc.updates, sc.answers))
            per_run = time.monotonic() - began
            projected = time.monotonic() - started + per_run * (wanted - run) + 60
            if not self.opts.runs and run < wanted and projected > TIME_BUDGET:
                say(
                    f"runs: {run} only (one takes {per_run:.0f} s; {wanted} would take the "
                    f"benchmark past {TIME_BUDGET:.0f} s): figures of one run, no median"
                )
                break

    def latency_runs(self) -> None:
        """Paced updates to a new echo process, then to ours on the last run's database; as
        many times as ``latency_runs``, each time with new participants."""
        r, sc, rate = self.results, self.scenario, self.opts.latency_rate
        for run, late in enumerate(self.late, start=1):
            echo = self._start("echo")
            try:
                r.echo_paced.append(latency(self.api, echo, paced_schedule(late, rate, echo=True)))
            finally:
                r.echo_rss.append(echo.finish())
            say(f"latency run {run} echo: {describe_paced(r.echo_paced[-1])}")
            ours = self._start("ours", self.url)
            try:
                r.ours_paced.append(latency(self.api, ours, paced_schedule(late, rate)))
            finally:
                r.ours_rss.append(ours.finish())
            say(f"latency run {run} ours: {describe_paced(r.ours_paced[-1])}")
        participants = len(sc.scripts) + sum(len(late.scripts) for late in self.late)
        updates = sc.updates + sum(late.updates for late in self.late)
        answers = sc.answers + sum(late.answers for late in self.late)
        self._check(predicted(sc.scripts[0], participants, updates, answers))

    def profile_run(self) -> None:
        out, sc = self.workdir / "ours.prof", self.scenario
        ours = self._start("ours", self.dbs.fresh(), profile_out=out)
        try:
            result = throughput(self.api, ours, sc.stream, sc.replies)
        finally:
            ours.finish()
        say(f"profiled run of ours (not counted): {result}")
        say(profile_summary(out))

    def _start(self, role: str, url: str = "", profile_out: Path | None = None) -> BotProcess:
        self.api.reset()
        return BotProcess(role, self.api, self.workdir, url, profile_out)

    def _check(self, want: Stored) -> None:
        got = self.results.stored = stored(self.url, self.scenario.scripts[0].user_id)
        self.results.expected = want
        good = got == want
        self.results.ok &= good
        say(
            f"       stored: {got.participants} participants, {got.answers} answers, "
            f"{got.processed_updates} update ids; participant {self.scenario.scripts[0].user_id}"
            f" at {got.sample}: {'as predicted' if good else f'MISMATCH, expected {want}'}"
        )


def figures(opts: Options, kind: str, r: Results) -> JSONDict:
    """The summary: the fields the issue asks for first, then context."""
    assert r.ours_paced and r.echo_paced and r.stored and r.expected

    def p(runs: list[PacedResult], pct: int) -> list[float]:
        return [round(percentile_ms(run.latencies, pct), 1) for run in runs]

    ups = statistics.median(t.per_s for t in r.ours)
    echo_ups = statistics.median(t.per_s for t in r.echo)
    echo_aio = statistics.median(t.per_s for t in r.echo_aiohttp)
    out: JSONDict = {
        "updates_per_s": round(ups, 1),
        "echo_updates_per_s": round(echo_ups, 1),
        "ratio_to_echo": round(ups / echo_ups, 3),
        "p50_ms": statistics.median(p(r.ours_paced, 50)),
        "p95_ms": statistics.median(p(r.ours_paced, 95)),
        "peak_rss_mb": round(max(r.ours_rss), 1),
        "database": kind,
        "participants": opts.participants,
        "updates": opts.participants * opts.length,
        "runs": len(r.ours),
        "runs_updates_per_s": [round(t.per_s, 1) for t in r.ours],
        "echo_runs_updates_per_s": [round(t.per_s, 1) for t in r.echo],
        "cpu_ms_per_update": round(statistics.median(t.cpu_ms for t in r.ours), 2),
        "echo_cpu_ms_per_update": round(statistics.median(t.cpu_ms for t in r.echo), 2),
        "echo_aiohttp_updates_per_s": round(echo_aio, 1),
        "ratio_to_echo_aiohttp": round(ups / echo_aio, 3),
        "offered_per_s": round(statistics.median(x.offered_per_s for x in r.ours_paced), 1),
        "latency_runs": len(r.ours_paced),
        "latency_updates": sum(len(x.latencies) for x in r.ours_paced),
        "runs_p95_ms": p(r.ours_paced, 95),
        "echo_p50_ms": statistics.median(p(r.echo_paced, 50)),
        "echo_p95_ms": statistics.median(p(r.echo_paced, 95)),
        "echo_runs_p95_ms": p(r.echo_paced, 95),
        "echo_peak_rss_mb": round(max(r.echo_rss), 1),
        "rss_of": "the bot's own process (VmHWM)",
        "stored_answers": r.stored.answers,
        "expected_answers": r.expected.answers,
        "rate_limiter": "off",
        "load_average": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "checks_passed": r.ok,
    }
    out["budgets_met"] = {
        f"ratio_to_echo>={BUDGET_RATIO}": out["ratio_to_echo"] >= BUDGET_RATIO,
        f"p95_ms<{BUDGET_P95_MS:g}": out["p95_ms"] < BUDGET_P95_MS,
        f"peak_rss_mb<{BUDGET_RSS_MB:g}": out["peak_rss_mb"] < BUDGET_RSS_MB,
    }
    return out


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.updates", description=__doc__.split("\n")[0])
    p.add_argument("--participants", type=int, help="default: 2000 (200 with --quick)")
    p.add_argument("--updates-per-participant", type=int, default=10)
    p.add_argument(
        "--runs",
        type=int,
        default=0,
        help="throughput runs; default: 3 if the benchmark stays under ~3 minutes, else fewer",
    )
    p.add_argument("--latency-rate", type=float, default=200.0, help="updates/s offered")
    p.add_argument("--latency-seconds", type=int, default=10)
    p.add_argument(
        "--latency-runs",
        type=int,
        default=3,
        help="latency runs of each bot (new participants each time); p50/p95 are their medians",
    )
    p.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="PostgreSQL (default: $DATABASE_URL); otherwise SQLite in a temporary file",
    )
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 200 participants, one run, 3 s of latency"
    )
    p.add_argument("--profile", action="store_true", help="one more run of ours, under cProfile")
    p.add_argument("--seed", type=int, default=2020)
    for internal in ("--role", "--base-url", "--token", "--profile-out"):  # bot processes
        p.add_argument(internal, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def options(args: argparse.Namespace) -> Options:
    url = args.database_url
    if not 0 < args.latency_rate <= LATENCY_USERS_PER_RUN:
        raise SystemExit(f"--latency-rate must be above 0 and at most {LATENCY_USERS_PER_RUN}")
    if args.quick:
        args.runs, args.latency_seconds, args.latency_runs = args.runs or 1, 3, 1
    return Options(
        participants=args.participants or (200 if args.quick else 2000),
        length=args.updates_per_participant,
        runs=args.runs,
        latency_rate=args.latency_rate,
        latency_seconds=args.latency_seconds,
        latency_runs=args.latency_runs,
        database_url=None if not url or url.startswith("sqlite") else url,
        profile=args.profile,
        seed=args.seed,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.role:
        return bot_process(args.role, args.base_url, args.token, args.profile_out)
    from bench.standin_server import BenchStandIn

    opts = options(args)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="consulta-bench-") as tmp, BenchStandIn() as api:
        dbs = Databases(opts.database_url, Path(tmp))
        try:
            bench = Bench(opts, api, dbs, Path(tmp))
            sc = bench.scenario
            say(
                f"scenario: {opts.participants} participants x {opts.length} updates = "
                f"{sc.updates} updates, {sc.replies} replies and {sc.answers} answers expected"
            )
            say(f"database: {dbs.describe()}")
            say(
                "conditions: each bot in its own process, the Bot API stand-in in this one; "
                "rate limiter off (CONSULTA_RATE_LIMIT=0), none in the echo bot; "
                f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
            )
            bench.throughput_runs(started)
            bench.latency_runs()
            if opts.profile:
                bench.profile_run()
        finally:
            dbs.cleanup()
    out = figures(opts, dbs.kind, bench.results)
    say(
        f"ours {out['updates_per_s']} updates/s, echo {out['echo_updates_per_s']}: ratio "
        f"{out['ratio_to_echo']} (median of {out['runs']}); at {out['offered_per_s']} updates/s "
        f"p50 {out['p50_ms']} ms, p95 {out['p95_ms']} ms; peak RSS {out['peak_rss_mb']} MB; "
        f"stored answers {out['stored_answers']} (expected {out['expected_answers']})"
    )
    for budget, met in out["budgets_met"].items():
        say(f"budget {budget}: {'met' if met else 'NOT met'}")
    out["seconds"] = round(time.monotonic() - started, 1)
    say(json.dumps(out))
    return 0 if bench.results.ok else 1


if __name__ == "__main__":
    sys.exit(main())
