"""Benchmark: reminders to 5,000 invited contacts against Telegram's 30 messages/s flood limit.

Usage (from the repository root)::

    python -m bench.broadcast                 # 5,000 contacts, SQLite (about 8 minutes)
    python -m bench.broadcast --quick         # smoke run: 300 contacts
    python -m bench.broadcast --contacts 1000 --database-url postgresql+psycopg://u@127.0.0.1/db

Method
------
* **Contacts.** A fresh database (a temporary SQLite file, or a new schema on the PostgreSQL
  server of ``--database-url``, dropped afterwards) is migrated with ``storage.upgrade`` and
  given ``--contacts`` invitations (``storage.invitations.create``), each accepted by a
  distinct account whose Telegram id is its chat id: the invitation's consent button
  (``c:y:<token>``) is applied by ``bot.services.conversation.Conversation.apply_sync``, as
  the bot does (token checked, participant stored and bound to the invitation, one
  transaction). So every contact is a municipal participant who consented and has not
  finished. They accepted four days before the benchmark's clock (a weekday, 15:00 in
  Santiago, outside quiet hours); reminders are due after three days: all of them are due.
* **Processes.** The Bot API stand-in (``tests.helpers.botapi`` via
  ``bench.standin_server.BenchStandIn``: tornado, real HTTP on 127.0.0.1) runs in this process
  with ``flood_limit_per_s=30``: more than 30 send calls accepted in one sliding second and it
  answers HTTP 429 with ``retry_after=1``, as Telegram does. The bot runs in a subprocess of
  its own (``--role sender``), so the two do not share a GIL: it builds the real application
  with ``bot.adapter.app.build_application`` (``Settings(consulta_rate_limit=30)``, i.e. PTB's
  ``AIORateLimiter`` as Consulta configures it) and, inside ``async with app``, calls
  ``bot.services.reminders.send_due`` once, which claims each reminder in the database and
  then sends it with ``bot.adapter.sending.with_retries`` (``SEND_CONCURRENCY`` at a time).
  Nothing but 127.0.0.1 is contacted; every phase has a time limit, after which the bot is killed.
* **Figures.** From the calls the stand-in recorded (arrival times are ``time.monotonic()``
  in this process): the sending time runs from the first ``sendMessage`` arrival to the last
  accepted one; the rate is accepted sends per second over it (``(sent - 1) / time``: the
  intervals between arrivals, so that a perfect 30/s reads 30.0); ``share_of_limit`` is that
  rate over 30. Also the 429s received, overall and after the first second; per chat, the
  contacts that got more than one reminder (``duplicates``) or none (``missing``); each
  reminder's text and stop button; and the database: one claimed reminder per contact, none
  due any more.
* **Baseline**, in the same run: the theoretical ceiling (30/s: ``share_of_limit`` is the
  ratio to it) and, unless ``--no-baseline``, the same contacts on a fresh database sent with
  the rate limiter off (``consulta_rate_limit=0``), which shows what the limiter prevents:
  a 429 storm, and reminders claimed but never delivered once ``with_retries`` gives up.
  It lasts about as long as the limited run; ``--no-baseline`` halves the benchmark.

The last line printed is one JSON object (``sent``, ``share_of_limit``, ``retry_after_429s``,
``duplicates``, ``missing``...). The exit status is 1 when a correctness check of the limited
run fails (a duplicate, a missing or wrong reminder, a database mismatch); budgets are
reported, as in the other benchmarks, but do not change it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from tests.helpers.botapi import Call

ROOT = Path(__file__).resolve().parents[1]
JSONDict = dict[str, Any]

LIMIT_PER_S = 30
"""Telegram's overall limit, enforced by the stand-in (any sliding second)."""
BUDGET_SHARE = 0.9
DEFAULT_CONTACTS = 5000
QUICK_CONTACTS = 300
FIRST_CHAT = 600_000_001
NOW = datetime(2020, 3, 10, 15, 0, tzinfo=ZoneInfo("America/Santiago"))
"""The benchmark's clock: a Tuesday afternoon, outside the default quiet hours."""
ACCEPTED_AGO = timedelta(days=4)
"""Contacts accepted their invitation this long before ``NOW`` (reminders: after 3 days)."""
SEED_BATCH = 500
RESULT_PREFIX = "RESULT "
DRAIN_TIMEOUT = 900.0  # the parent's time limit is the real bound


def say(line: str = "") -> None:
    print(line, flush=True)


# --------------------------------------------------------------------------- contacts


def contact_chat(i: int) -> str:
    return str(FIRST_CHAT + i)


def contact_name(i: int) -> str:
    return f"Contacto {i + 1}"


def seed(url: str, contacts: int) -> None:
    """``contacts`` invitations, each accepted by its own account through the conversation:
    the consent button of the invitation, applied by ``Conversation.apply_sync`` as the bot does
    (the invitation checked, the participant stored and bound to it, in one transaction)."""
    import storage
    from bot.services.conversation import Conversation
    from flows import buttons, load
    from flows.events import Choice
    from storage import invitations

    defn = load()
    comunas = [o for o in defn.consultation.profile.comunas() if o.id != "outside"]
    accepted_at = NOW - ACCEPTED_AGO
    engine = storage.make_engine(url)
    conv = Conversation(defn, storage.make_sessions(engine), clock=lambda: accepted_at)
    try:
        conv.remember_version()
        tokens: list[str] = []
        for batch in _chunks(range(contacts), SEED_BATCH):
            with conv.sessions.begin() as session:
                for i in batch:
                    comuna = comunas[i % len(comunas)]
                    _, token = invitations.create(
                        session,
                        name=contact_name(i),
                        institution=f"Municipalidad de {comuna.label}",
                        comuna=comuna.id,
                        contact=None,
                        now=accepted_at - timedelta(days=1),
                    )
                    tokens.append(token)
        for i, token in enumerate(tokens):
            result = conv.apply_sync(contact_chat(i), Choice(buttons.Consent(True, token).encode()))
            if result is None or result.state is None or result.state.role != "municipal":
                raise RuntimeError(f"contact {contact_chat(i)} did not join: {result}")
    finally:
        engine.dispose()


def _chunks(items: range, size: int) -> Iterator[range]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class Stored:
    """What the database says after a run."""

    accepted: int
    reminders: int
    reminded_invitations: int
    still_due: int


def stored(url: str) -> Stored:
    from sqlalchemy import func, select

    import storage
    from storage import invitations
    from storage.models import Invitation, Reminder

    engine = storage.make_engine(url)
    try:
        with storage.make_sessions(engine).begin() as session:
            accepted = session.scalar(
                select(func.count()).where(Invitation.claimed_by.is_not(None))
            )
            reminders = session.scalar(select(func.count(Reminder.id)))
            reminded = session.scalar(select(func.count(func.distinct(Reminder.invitation_id))))
            due = invitations.due_reminders(session, NOW, after=timedelta(days=3), max_count=2)
    finally:
        engine.dispose()
    return Stored(int(accepted or 0), int(reminders or 0), int(reminded or 0), len(due))


# --------------------------------------------------------------------------- the sender (child)


async def send_reminders(base_url: str, token: str, rate_limit: float) -> JSONDict:
    """Consulta's reminder run: the real application, ``send_due`` once."""
    import storage
    from bot.adapter.app import build_application
    from bot.adapter.sending import TelegramOutbox
    from bot.infra.config import Settings
    from bot.services.conversation import Conversation
    from bot.services.reminders import Policy, send_due
    from flows import load

    settings = Settings(
        telegram_bot_token=token,
        telegram_base_url=base_url,
        database_url=os.environ["DATABASE_URL"],
        consulta_rate_limit=rate_limit,
        _env_file=None,  # type: ignore[call-arg]
    )
    engine = storage.make_engine(settings.database_url)
    conv = Conversation(load(), storage.make_sessions(engine), clock=lambda: NOW)
    app = build_application(settings, conv)
    policy = Policy.from_settings(settings)
    out: JSONDict = {"sent": None, "error": None}
    async with app:
        out["started"] = time.monotonic()
        try:
            out["sent"] = await send_due(TelegramOutbox(app.bot), conv, policy, NOW)
        except Exception as exc:  # the baseline's storm ends here: report it
            out["error"] = f"{type(exc).__name__}: {exc}"
            out["leftover_tasks"] = await _drain(DRAIN_TIMEOUT)
        out["finished"] = time.monotonic()
    engine.dispose()
    return out


async def _drain(timeout: float) -> int:
    """Wait for the sends that ``asyncio.gather`` left running when one of them raised;
    return how many were still running at the end (0 unless ``timeout`` ran out)."""
    me = asyncio.current_task()
    deadline = time.monotonic() + timeout
    while True:
        left = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
        if not left or time.monotonic() > deadline:
            return len(left)
        await asyncio.sleep(0.05)


def sender(base_url: str, token: str, rate_limit: float) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    out = asyncio.run(send_reminders(base_url, token, rate_limit))
    print(RESULT_PREFIX + json.dumps(out), flush=True)
    return 0


# --------------------------------------------------------------------------- one phase


@dataclass
class Phase:
    """One run of ``send_due`` against a fresh stand-in, and what the stand-in saw."""

    label: str
    rate_limit: float
    contacts: int
    bot: JSONDict
    sends: list[Call]
    stored: Stored
    bad_texts: int = 0
    unexpected_chats: int = 0
    per_chat: Counter[str] = field(default_factory=Counter)

    @property
    def accepted(self) -> list[Call]:
        return [c for c in self.sends if c.ok]

    @property
    def sent(self) -> int:
        return len(self.accepted)

    @property
    def first_arrival(self) -> float:
        return min((c.at for c in self.sends), default=0.0)

    @property
    def seconds(self) -> float:
        """From the first sendMessage arrival to the last accepted one."""
        last = max((c.at for c in self.accepted), default=self.first_arrival)
        return last - self.first_arrival

    @property
    def rate(self) -> float:
        return (self.sent - 1) / self.seconds if self.sent > 1 and self.seconds > 0 else 0.0

    @property
    def share_of_limit(self) -> float:
        return self.rate / LIMIT_PER_S

    @property
    def too_many(self) -> int:
        return sum(1 for c in self.sends if c.status == 429)

    @property
    def too_many_after_first_second(self) -> int:
        start = self.first_arrival
        return sum(1 for c in self.sends if c.status == 429 and c.at - start >= 1.0)

    @property
    def other_failures(self) -> int:
        return sum(1 for c in self.sends if c.status not in (200, 429))

    @property
    def duplicates(self) -> int:
        return sum(1 for n in self.per_chat.values() if n > 1)

    @property
    def missing(self) -> int:
        return sum(1 for i in range(self.contacts) if self.per_chat[contact_chat(i)] == 0)

    def busiest_second(self, calls: Sequence[Call]) -> int:
        """Most calls that arrived within any sliding second (two pointers over arrivals)."""
        times = sorted(c.at for c in calls)
        most, lo = 0, 0
        for hi, at in enumerate(times):
            while at - times[lo] >= 1.0:
                lo += 1
            most = max(most, hi - lo + 1)
        return most

    def seconds_with_429s(self) -> list[int]:
        """The whole seconds (since the first arrival) in which 429s were answered."""
        start = self.first_arrival
        return sorted({int(c.at - start) for c in self.sends if c.status == 429})

    def to_first_send(self) -> float | None:
        """Seconds from the start of ``send_due`` to the first sendMessage (claims first)."""
        started = self.bot.get("started")
        return self.first_arrival - started if started and self.sends else None


def run_phase(
    label: str, url: str, contacts: int, rate_limit: float, workdir: Path, timeout: float
) -> Phase:
    """Serve one ``send_due`` run of a sender subprocess; collect what arrived."""
    from bench.standin_server import BenchStandIn
    from flows import load

    defn = load()
    m = defn.messages
    log = workdir / f"sender-{label.replace(' ', '-')}.log"
    with BenchStandIn() as api:
        api.flood_limit_per_s = LIMIT_PER_S
        command = [sys.executable, "-m", "bench.broadcast", "--role", "sender",
                   "--base-url", api.base_url, "--token", api.token,
                   "--rate-limit", str(rate_limit)]  # fmt: skip
        env = {**os.environ, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
        started = time.monotonic()
        with log.open("wb") as out:
            proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out,
                                    stderr=subprocess.STDOUT)  # fmt: skip
        next_report = started + 15
        try:
            while proc.poll() is None:
                now = time.monotonic()
                if now - started > timeout:
                    raise TimeoutError(f"{label}: no end after {timeout:.0f} s\n{_tail(log)}")
                if now >= next_report:
                    say(f"  {label}: {now - started:5.0f} s, {api.replies} reminders accepted, "
                        f"{api.too_many_requests} answered 429")  # fmt: skip
                    next_report += 15
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        sends = [c for c in api.calls if c.method == "sendMessage"]
    result = _result_line(log)
    if proc.returncode != 0 or result is None:
        raise RuntimeError(f"{label}: the sender failed (exit {proc.returncode})\n{_tail(log)}")
    phase = Phase(label, rate_limit, contacts, result, sends, stored(url))
    title = defn.consultation.title  # reminder texts, as send_due composes them
    expected = {contact_chat(i): m.reminder.format(name=contact_name(i), title=title)
                for i in range(contacts)}  # fmt: skip
    for call in phase.accepted:
        chat = str(call.params.get("chat_id"))
        phase.per_chat[chat] += 1
        if chat not in expected:
            phase.unexpected_chats += 1
        elif call.params.get("text") != expected[chat] or not _has_stop_button(call):
            phase.bad_texts += 1
    return phase


def _has_stop_button(call: Call) -> bool:
    from bot.services.reminders import STOP_DATA

    markup = call.params.get("reply_markup")
    markup = json.loads(markup) if isinstance(markup, str) else markup or {}
    rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
    return any(b.get("callback_data") == STOP_DATA for row in rows for b in row)


def _result_line(log: Path) -> JSONDict | None:
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    return None


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def describe(phase: Phase) -> list[str]:
    first = phase.to_first_send()
    warnings = phase.bot.get("error")
    lines = [
        f"{phase.label}: {phase.sent} of {phase.contacts} reminders accepted in "
        f"{phase.seconds:.2f} s = {phase.rate:.2f}/s, {100 * phase.share_of_limit:.1f}% of "
        f"the {LIMIT_PER_S}/s limit; send_due reported {phase.bot.get('sent')}",
        f"  429s: {phase.too_many} ({phase.too_many_after_first_second} after the first "
        f"second), in seconds {_ranges(phase.seconds_with_429s())}; other failures: "
        f"{phase.other_failures}",
        f"  busiest sliding second: {phase.busiest_second(phase.sends)} calls arrived, "
        f"{phase.busiest_second(phase.accepted)} accepted",
        f"  per contact: {phase.duplicates} got more than one, {phase.missing} got none, "
        f"{phase.unexpected_chats} to unknown chats, {phase.bad_texts} with a wrong text/button",
        f"  database: {phase.stored.reminders} reminders claimed for "
        f"{phase.stored.reminded_invitations} of {phase.stored.accepted} accepted invitations, "
        f"{phase.stored.still_due} still due"
        + (f"; first send {first:.2f} s after send_due began (claims)" if first else ""),
    ]
    if warnings:
        lines.append(f"  send_due raised {warnings}")
    return lines


def _ranges(seconds: list[int]) -> str:
    if not seconds:
        return "none"
    parts: list[str] = []
    start = prev = seconds[0]
    for s in [*seconds[1:], None]:
        if s is not None and s == prev + 1:
            prev = s
            continue
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        if s is not None:
            start = prev = s
    shown = ", ".join(parts[:12])
    return shown + (f" (+{len(parts) - 12} more ranges)" if len(parts) > 12 else "")


def correct(phase: Phase) -> bool:
    s = phase.stored
    return (
        phase.sent == phase.contacts
        and phase.duplicates == 0
        and phase.missing == 0
        and phase.unexpected_chats == 0
        and phase.bad_texts == 0
        and phase.bot.get("sent") == phase.contacts
        and s.accepted == s.reminders == s.reminded_invitations == phase.contacts
        and s.still_due == 0
    )


# --------------------------------------------------------------------------- main


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.broadcast", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--contacts", type=int, default=DEFAULT_CONTACTS)
    p.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK_CONTACTS} contacts")
    p.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL URL (a fresh schema is made and dropped); default: SQLite temp file",
    )
    p.add_argument(
        "--no-baseline", action="store_true", help="skip the run with the rate limiter off"
    )
    p.add_argument("--role", choices=("sender",), help=argparse.SUPPRESS)
    p.add_argument("--base-url", help=argparse.SUPPRESS)
    p.add_argument("--token", help=argparse.SUPPRESS)
    p.add_argument("--rate-limit", type=float, default=LIMIT_PER_S, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.role == "sender":
        return sender(args.base_url, args.token, args.rate_limit)
    from bench.updates import Databases

    contacts = QUICK_CONTACTS if args.quick else args.contacts
    if contacts < 2:
        raise SystemExit("--contacts: at least 2")
    url = args.database_url if args.database_url and not args.database_url.startswith(
        "sqlite") else None  # fmt: skip
    timeout = 60 + 3 * contacts / LIMIT_PER_S
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="consulta-broadcast-") as tmp:
        dbs = Databases(url, Path(tmp))
        try:
            say(f"contacts: {contacts} invited, accepted, not finished; all due at "
                f"{NOW.isoformat()}; database: {dbs.describe()}")  # fmt: skip
            say(f"stand-in: 429 with retry_after=1 above {LIMIT_PER_S} sends in any sliding "
                "second; the bot in its own process (build_application + send_due)")  # fmt: skip
            db = dbs.fresh()
            t0 = time.monotonic()
            seed(db, contacts)
            say(
                f"seeded in {time.monotonic() - t0:.1f} s; sending with the rate limiter "
                f"(consulta_rate_limit={LIMIT_PER_S}), about {contacts / LIMIT_PER_S:.0f} s"
            )
            limited = run_phase("limiter on", db, contacts, LIMIT_PER_S, Path(tmp), timeout)
            for line in describe(limited):
                say(line)
            baseline: Phase | None = None
            if not args.no_baseline:
                db = dbs.fresh()
                seed(db, contacts)
                say("baseline: the same contacts on a fresh database, rate limiter off")
                baseline = run_phase("limiter off", db, contacts, 0, Path(tmp), timeout)
                for line in describe(baseline):
                    say(line)
        finally:
            dbs.cleanup()
    ok = correct(limited)
    out: JSONDict = {
        "sent": limited.sent,
        "share_of_limit": round(limited.share_of_limit, 4),
        "retry_after_429s": limited.too_many,
        "retry_after_429s_after_first_second": limited.too_many_after_first_second,
        "duplicates": limited.duplicates,
        "missing": limited.missing,
        "contacts": contacts,
        "rate_per_s": round(limited.rate, 2),
        "limit_per_s": LIMIT_PER_S,
        "ratio_to_theoretical": round(limited.share_of_limit, 4),
        "sending_seconds": round(limited.seconds, 2),
        "busiest_second_accepted": limited.busiest_second(limited.accepted),
        "first_send_after_s": round(limited.to_first_send() or 0.0, 2),
        "database": dbs.kind,
    }
    if baseline is not None:
        out |= {
            "baseline_limiter_off_sent": baseline.sent,
            "baseline_limiter_off_missing": baseline.missing,
            "baseline_limiter_off_429s": baseline.too_many,
            "baseline_limiter_off_rate_per_s": round(baseline.rate, 2),
            "sent_ratio_to_limiter_off": round(limited.sent / max(baseline.sent, 1), 2),
        }
        say(f"limiter on vs off: {limited.sent} vs {baseline.sent} reminders delivered "
            f"({out['sent_ratio_to_limiter_off']}x), {limited.too_many} vs {baseline.too_many} "
            "429s")  # fmt: skip
    say(f"achieved {limited.rate:.2f}/s = {100 * limited.share_of_limit:.1f}% of the "
        f"theoretical {LIMIT_PER_S}/s; every contact got exactly one reminder: "
        f"{'yes' if ok else 'NO'}")  # fmt: skip
    out["budgets_met"] = {
        f"share_of_limit>={BUDGET_SHARE}": limited.share_of_limit >= BUDGET_SHARE,
        "429s_after_first_second==0": limited.too_many_after_first_second == 0,
        "exactly_one_reminder_each": ok,
    }
    for budget, met in out["budgets_met"].items():
        say(f"budget {budget}: {'met' if met else 'NOT met'}")
    out["checks_passed"] = ok
    out["seconds"] = round(time.monotonic() - started, 1)
    say(json.dumps(out))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
