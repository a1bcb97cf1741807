"""Benchmark: ``consulta webhook`` with 1, 2 and 4 replicas on one PostgreSQL database.

Usage (from the repository root; PostgreSQL as in CI)::

    python -m bench.webhook                # 10,000 participants x 5 updates, per replica count
    python -m bench.webhook --quick        # smoke run: 600 participants x 4 updates
    python -m bench.webhook --replicas 1,2 --database-url postgresql+psycopg://...

Method
------
* **Participants.** ``--participants`` simulated people each send ``--updates-per-participant``
  updates (/start, consent, province, comuna, ...), every button one the consultation offers
  at that point: the scripts are played offline through the flow engine
  (``bench.updates.build_script``). Update ids are made unique across participants.
* **Processes.** Each replica is ``python -m bot webhook`` (the production command, its
  scheduler election included) on its own port of 127.0.0.1, on a fresh, migrated
  PostgreSQL schema per replica count. Replies go to the Bot API stand-in
  (``bench/standin_server.py``), run in a process of its own so it shares no GIL with the
  load client. Rate limiter off (``CONSULTA_RATE_LIMIT=0``).
* **Load.** This process posts the updates as Telegram does, with the secret header, over
  keep-alive HTTP/1.1 connections (a minimal client on asyncio streams: httpx would cost
  the machine more CPU than a replica). ``--concurrency`` (32) workers each take the next
  participant and post its updates one after another, each to a random replica, waiting
  for the answer (Telegram's ``max_connections`` is 40 by default). A 500 is posted again,
  as Telegram would. The same concurrency is offered to every replica count.
* **Figures.** updates/s: all updates over the wall time from the first post to the last
  answer (an answer comes only once the update committed and its replies reached the
  stand-in). Latency: each POST's round trip; the load is closed-loop at saturation, so
  p95 is mostly queueing (it grows with the concurrency, not with the bot's work).
  CPU per update of the replicas, of PostgreSQL (every ``postgres`` process), of the
  stand-in and of the load client, read from ``/proc``: where the ceiling is.
* **Checks.** After each run every update id is claimed once in the database and every
  participant who consented is stored; otherwise the exit status is 1.

The last line printed is one JSON object: ``replicas``, ``updates_per_s`` and ``p95_ms``
(by replica count), ``scaling_2_over_1`` and context.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers.process import BotProcess, cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
JSONDict = dict[str, Any]
SECRET = "bench-webhook-secret"
FIRST_USER = 900_000_001
SEED = 20261125
READY_TIMEOUT = 90.0
DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def say(line: str) -> None:
    print(line, flush=True)


# --------------------------------------------------------------------------- the stand-in


def run_standin() -> None:
    """``--role standin``: the Bot API stand-in until SIGTERM; prints its port first. Its
    record of calls is dropped every few seconds: only memory, nobody reads it here."""
    from bench.standin_server import BenchStandIn

    stop = False

    def finish(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, finish)
    with BenchStandIn() as api:
        say(str(api.port))
        while not stop:
            time.sleep(2)
            api.reset()


# --------------------------------------------------------------------------- scenario


def scenario(participants: int, length: int) -> list[list[bytes]]:
    """Each participant's updates as request bodies, update ids unique overall."""
    from bench.updates import build_script
    from flows import load

    defn = load()
    bodies = []
    for i in range(participants):
        script = build_script(defn, FIRST_USER + i, length, SEED * 1_000_003 + i)
        bodies.append(
            [
                json.dumps({**u, "update_id": i * length + m + 1}).encode()
                for m, u in enumerate(script.updates)
            ]
        )
    return bodies


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def postgres_cpu() -> dict[int, float]:
    """CPU so far of every process named ``postgres`` (server and backends)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    found[int(entry.name)] = cpu_seconds(int(entry.name))
            except OSError:
                continue
    return found


@dataclass
class Replica:
    port: int
    process: BotProcess


@dataclass(frozen=True)
class StandInAddress:
    base_url: str
    token: str = "123456:TEST"


def start_replicas(
    count: int, database_url: str, standin_port: int, workdir: Path
) -> list[Replica]:
    standin = StandInAddress(f"http://127.0.0.1:{standin_port}/bot")
    replicas = []
    for n in range(count):
        port = free_port()
        process = BotProcess(
            standin,
            database_url,
            workdir,
            f"replicas{count}-{n}",
            "webhook",
            TELEGRAM_WEBHOOK_SECRET=SECRET,
            CONSULTA_WEBHOOK_PORT=str(port),
        )
        process.start()
        replicas.append(Replica(port, process))
    deadline = time.monotonic() + READY_TIMEOUT
    for r in replicas:
        while not asyncio.run(ready(r.port)):
            if not r.process.running() or time.monotonic() > deadline:
                raise RuntimeError(f"replica on {r.port} did not start:\n{r.process.tail()}")
            time.sleep(0.2)
    return replicas


def stop_replicas(replicas: Sequence[Replica]) -> None:
    for r in replicas:
        r.process.terminate()  # all at once: they drain side by side
    for r in replicas:
        r.process.wait(30)


# --------------------------------------------------------------------------- the load client


class Connection:
    """One keep-alive HTTP/1.1 connection to a replica."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: str = "") -> int:  # fmt: skip
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{headers}"
                f"Content-Length: {len(body)}\r\n\r\n")  # fmt: skip
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        if not status_line:
            self.writer = None
            raise ConnectionError("closed by the server")
        length, close = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and "close" in value.lower():
                close = True
        if length:
            await self.reader.readexactly(length)
        if close:
            self.writer.close()
            self.writer = None
        return int(status_line.split()[1])


async def ready(port: int) -> bool:
    try:
        conn = Connection(port)
        status = await asyncio.wait_for(conn.request("GET", "/readyz"), 5)
        if conn.writer is not None:
            conn.writer.close()
        return status == 200
    except (OSError, TimeoutError, ConnectionError):
        return False


@dataclass
class Load:
    """What the load client saw: each POST's round trip (retries included), the number of
    posts, how many were answered other than 200, and the wall time of the whole load."""

    latencies: list[float] = field(default_factory=list)
    posts: int = 0
    retried: int = 0
    seconds: float = 0.0


async def post_all(ports: Sequence[int], participants: list[list[bytes]], concurrency: int,
                   seed: int) -> Load:  # fmt: skip
    """Every participant's updates in order, each to a random replica; see the docstring."""
    result = Load()
    queue = iter(participants)
    headers = ("Content-Type: application/json\r\n"
               f"X-Telegram-Bot-Api-Secret-Token: {SECRET}\r\n")  # fmt: skip

    async def worker(rng: random.Random) -> None:
        conns = {port: Connection(port) for port in ports}
        for bodies in queue:  # a shared iterator: each participant to one worker
            for body in bodies:
                for attempt in range(1, 11):
                    started = time.perf_counter()
                    try:
                        status = await conns[rng.choice(ports)].request(
                            "POST", "/telegram", body, headers
                        )
                    except (OSError, ConnectionError):
                        status = 599
                    result.latencies.append(time.perf_counter() - started)
                    result.posts += 1
                    if status == 200:
                        break
                    result.retried += 1
                    await asyncio.sleep(0.1 * attempt)  # Telegram waits before redelivering
                else:
                    raise RuntimeError(f"update never accepted: {body[:80]!r}")
        for conn in conns.values():
            if conn.writer is not None:
                conn.writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(random.Random(seed + n)) for n in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


# --------------------------------------------------------------------------- a run


@dataclass
class Run:
    replicas: int
    updates: int
    load: Load
    cpu: dict[str, float]

    @property
    def updates_per_s(self) -> float:
        return self.updates / self.load.seconds

    def pct_ms(self, pct: int) -> float:
        values = sorted(self.load.latencies)
        return values[min(len(values) - 1, int(len(values) * pct / 100))] * 1000

    def describe(self) -> str:
        per = {k: v / self.updates * 1000 for k, v in self.cpu.items()}
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in per.items())
        return (f"{self.replicas} replica(s): {self.updates_per_s:7.1f} updates/s, "
                f"p50 {self.pct_ms(50):6.1f} ms, p95 {self.pct_ms(95):6.1f} ms, "
                f"{self.load.retried} reposted; CPU ms/update: {cpu}")  # fmt: skip


def stored(url: str) -> tuple[int, int]:
    """(processed update ids, participants) in the database."""
    from sqlalchemy import func, select

    import storage
    from storage.models import Participant, ProcessedUpdate

    engine = storage.make_engine(url)
    try:
        with storage.make_sessions(engine)() as session:
            count = select(func.count())
            updates = session.scalar(count.select_from(ProcessedUpdate)) or 0
            people = session.scalar(count.select_from(Participant)) or 0
            return int(updates), int(people)
    finally:
        engine.dispose()


def one_run(count: int, url: str, standin: subprocess.Popen[bytes], standin_port: int,
            participants: list[list[bytes]], args: argparse.Namespace,
            workdir: Path) -> Run:  # fmt: skip
    replicas = start_replicas(count, url, standin_port, workdir)
    try:
        pids = {"replicas": [r.process.pid for r in replicas], "stand-in": [standin.pid]}
        before = {k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()}
        pg_before, own_before = postgres_cpu(), time.process_time()
        load = asyncio.run(post_all([r.port for r in replicas], participants,
                                    args.concurrency, SEED + count))  # fmt: skip
        cpu = {k: sum(cpu_seconds(p) for p in v) - before[k] for k, v in pids.items()}
        pg_after = postgres_cpu()
        cpu["postgres"] = sum(t - pg_before.get(pid, 0.0) for pid, t in pg_after.items())
        cpu["load client"] = time.process_time() - own_before
    finally:
        stop_replicas(replicas)
    return Run(count, sum(len(b) for b in participants), load, cpu)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url",
                        default=os.environ.get("TEST_DATABASE_URL", DEFAULT_DATABASE))  # fmt: skip
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--updates-per-participant", type=int, default=5)
    parser.add_argument("--replicas", default="1,2,4", help="replica counts, comma-separated")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="600 participants x 4 updates")
    parser.add_argument("--role", choices=["standin"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "standin":
        run_standin()
        return 0
    if args.quick:
        args.participants, args.updates_per_participant = 600, 4
    counts = [int(c) for c in args.replicas.split(",")]

    from bench.updates import Databases

    started = time.monotonic()
    participants = scenario(args.participants, args.updates_per_participant)
    total = sum(len(b) for b in participants)
    say(f"{args.participants} participants, {total} updates "
        f"(scripts in {time.monotonic() - started:.1f} s); concurrency {args.concurrency}; "
        f"{os.cpu_count()} CPUs")  # fmt: skip
    standin = subprocess.Popen(
        [sys.executable, "-m", "bench.webhook", "--role", "standin"],
        cwd=ROOT, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert standin.stdout is not None
    standin_port = int(standin.stdout.readline())
    runs: list[Run] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmp:
        databases = Databases(args.database_url, Path(tmp))
        say(f"database: {databases.describe()}")
        try:
            for count in counts:
                url = databases.fresh()
                run = one_run(count, url, standin, standin_port, participants, args, Path(tmp))
                runs.append(run)
                say(run.describe())
                updates, people = stored(url)
                if updates != total or people != len(participants):
                    failures.append(f"{count} replicas: stored {updates} updates of {total}, "
                                    f"{people} participants of {len(participants)}")  # fmt: skip
        finally:
            databases.cleanup()
            standin.send_signal(signal.SIGTERM)
            standin.wait(30)
    for failure in failures:
        say(f"CHECK FAILED: {failure}")
    by = {r.replicas: r for r in runs}
    scaling = by[2].updates_per_s / by[1].updates_per_s if 1 in by and 2 in by else None
    if scaling is not None:
        say(f"scaling 2 over 1 replica: {scaling:.2f}x")
    figures = {
        "replicas": [r.replicas for r in runs],
        "updates_per_s": {str(r.replicas): round(r.updates_per_s, 1) for r in runs},
        "p50_ms": {str(r.replicas): round(r.pct_ms(50), 1) for r in runs},
        "p95_ms": {str(r.replicas): round(r.pct_ms(95), 1) for r in runs},
        "scaling_2_over_1": round(scaling, 2) if scaling is not None else None,
        "cpu_ms_per_update": {
            str(r.replicas): {k: round(v / r.updates * 1000, 2) for k, v in r.cpu.items()}
            for r in runs
        },
        "participants": args.participants,
        "updates": total,
        "concurrency": args.concurrency,
        "median_updates_per_s": round(statistics.median(r.updates_per_s for r in runs), 1),
        "cpus": os.cpu_count(),
        "checks_passed": not failures,
    }
    say(json.dumps(figures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
