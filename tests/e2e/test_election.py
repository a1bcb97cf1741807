"""Two bot processes on one PostgreSQL database, a digest every three seconds: only the
elected process sends digests; when it is killed with SIGKILL the other takes over, and
no period reaches the organiser twice."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

from sqlalchemy import Engine, select, text

import storage
from bot.services.leader import APPLICATION_NAME, SCHEDULER_LOCK
from storage.models import DigestRun
from tests.helpers.botapi import BotApiStandIn
from tests.helpers.databases import POSTGRES_ONLY
from tests.helpers.process import BotProcess

ORGANISER = 111
PERIOD = 3  # seconds between digests
RETRY = 1  # seconds between a standby's attempts (production: 10)
DIGESTS_EACH = 2  # digests from each leader
SENT = re.compile(r"digest (\S+) sent to 1 organisers")


def leader_pid(engine: Engine) -> int | None:
    """The OS process id of the leader, from the lock holder's application name."""
    with engine.connect() as conn:
        name = conn.scalar(text(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND l.classid = :ns AND l.objsubid = 2"
            " AND l.granted AND a.datname = current_database()"
        ), {"ns": SCHEDULER_LOCK})  # fmt: skip
    if name is None:
        return None
    assert name.startswith(f"{APPLICATION_NAME}:")
    return int(name.rsplit(":", 1)[1])


def periods_sent(bot: BotProcess) -> list[str]:
    return SENT.findall(bot.log.read_text(errors="replace")) if bot.log.exists() else []


@POSTGRES_ONLY
def test_the_standby_takes_over_the_digests_when_the_leader_is_killed(
    api: BotApiStandIn, database_url: str, tmp_path: Path
) -> None:
    settings = {
        "CONSULTA_DIGEST_CRON": f"*/{PERIOD} * * * * *",
        "CONSULTA_ORGANISERS": str(ORGANISER),
        "CONSULTA_LEADER_RETRY": str(RETRY),
    }
    bots = [BotProcess(api, database_url, tmp_path, name, **settings) for name in ("a", "b")]
    engine = storage.make_engine(database_url)

    def digests() -> int:
        return len(api.texts_to(ORGANISER))

    try:
        for bot in bots:
            bot.start()
        api.wait_for(lambda: len(api.calls_of("setMyCommands")) == 2, timeout=30)
        api.wait_for(lambda: digests() >= DIGESTS_EACH, timeout=10 * PERIOD + 30)
        pid = leader_pid(engine)
        assert pid in {b.pid for b in bots}, "no process holds the scheduler's lock"
        leader = next(b for b in bots if b.pid == pid)
        standby = next(b for b in bots if b is not leader)
        assert periods_sent(standby) == []  # the standby ran no job
        # between two digests, at a random moment (see the README on a kill mid-sending)
        before = digests()
        api.wait_for(lambda: digests() > before, timeout=2 * PERIOD + 10)
        time.sleep(random.uniform(0.1, PERIOD / 2))
        leader.kill()
        sent_by_leader = periods_sent(leader)
        killed_at, at_kill = time.monotonic(), digests()

        api.wait_for(lambda: leader_pid(engine) == standby.pid, timeout=10 * RETRY + 20)
        took_over = time.monotonic() - killed_at
        api.wait_for(lambda: digests() >= at_kill + DIGESTS_EACH, timeout=10 * PERIOD + 30)
        assert standby.running(), standby.tail()
        assert standby.stop() == 0, standby.tail()
    finally:
        for bot in bots:
            bot.kill()

    sent_by_standby = periods_sent(standby)
    with storage.make_sessions(engine)() as session:
        claimed = list(session.scalars(select(DigestRun.period).order_by(DigestRun.until)))
    engine.dispose()
    assert len(sent_by_leader) >= DIGESTS_EACH and len(sent_by_standby) >= DIGESTS_EACH
    # the digests continue from the other process, later periods only, none twice
    assert max(sent_by_leader) < min(sent_by_standby)
    # A period is claimed before it is sent: had the kill hit a digest being sent (it is
    # aimed between two), that one period would be claimed and not logged, at most once.
    sent = sent_by_leader + sent_by_standby
    lost = [p for p in claimed if p not in sent]
    assert claimed == sorted(sent + lost) and len(lost) <= 1
    assert lost == [] or max(sent_by_leader) < lost[0] < min(sent_by_standby)
    assert len(sent) <= digests() <= len(claimed)  # each period reached the organiser once
    for bot in bots:  # no scheduler ever found a period already claimed by another
        assert "already sent" not in bot.log.read_text(errors="replace")
    assert took_over < RETRY + 10
    print(f"takeover {took_over:.1f} s; digests {sent_by_leader} then {sent_by_standby}")
