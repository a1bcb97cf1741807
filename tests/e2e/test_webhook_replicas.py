"""Two ``python -m bot webhook`` replicas on one PostgreSQL database, as behind a load
balancer: each participant's updates are posted in order but each to a random replica, some
twice (Telegram redelivers what it did not see acknowledged). The answers stored must be
those of one process given each update once."""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

import storage
from bot.infra.config import Settings
from flows import load
from reports.export import answers_frame
from tests.bot.test_webhook import SECRET, free_port, webhook_on
from tests.e2e.test_crash import Script, interleave, write_script
from tests.helpers.botapi import BotApiStandIn
from tests.helpers.process import BotProcess

PARTICIPANTS = 40
REPLICAS = 2
AT_ONCE = 8
"""Participants posting at the same time (each one's updates one after another)."""
TWICE = 0.15
"""Share of updates posted again at once, to a random replica."""
SEED = 20261126


def export(url: str) -> pd.DataFrame:
    """The export without what differs between two runs (random codes, times), sorted."""
    engine = storage.make_engine(url)
    try:
        with storage.make_sessions(engine)() as session:
            frame = answers_frame(session, load(), Settings(_env_file=None).zone)  # type: ignore[call-arg]
    finally:
        engine.dispose()
    frame = frame.drop(columns=["participant", "timestamp"]).astype(str)
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


async def post_all(urls: list[str], by_user: dict[int, list[str]], rng: random.Random,
                   twice: float) -> int:  # fmt: skip
    """Post each participant's updates in order, each to a random replica; returns posts."""
    gate = asyncio.Semaphore(AT_ONCE)
    posts = 0

    async def one(client: httpx.AsyncClient, body: str) -> None:
        nonlocal posts
        headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}
        response = await client.post(rng.choice(urls), content=body, headers=headers)
        assert response.status_code == 200, response.text
        posts += 1

    async def participant(client: httpx.AsyncClient, bodies: list[str]) -> None:
        async with gate:
            for body in bodies:
                await one(client, body)
                if rng.random() < twice:
                    await one(client, body)

    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(participant(client, b) for b in by_user.values()))
    return posts


def wait_ready(urls: list[str], replicas: list[BotProcess], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for url, replica in zip(urls, replicas, strict=True):
        ready = url.replace("/telegram", "/readyz")
        while True:
            assert replica.running(), replica.tail()
            try:
                if httpx.get(ready, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, replica.tail()
            time.sleep(0.1)


@pytest.mark.parametrize(
    "empty_database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
async def test_replicas_store_what_one_process_stores(
    api: BotApiStandIn, database_url: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    defn = load()
    scripts: list[Script] = [write_script(defn, 20_000 + i, rng) for i in range(PARTICIPANTS)]
    updates = interleave(scripts, rng)
    by_user: dict[int, list[str]] = {s.user_id: [] for s in scripts}
    for u in updates:
        assert u.effective_user is not None
        by_user[u.effective_user.id].append(json.dumps(u.to_dict()))

    # database_url is migrated already: the replicas find it at head
    ports = [free_port() for _ in range(REPLICAS)]
    settings = {"TELEGRAM_WEBHOOK_SECRET": SECRET, "CONSULTA_LOG_FORMAT": "json"}
    replicas = [
        BotProcess(
            api,
            database_url,
            tmp_path,
            f"replica{n}",
            "webhook",
            CONSULTA_WEBHOOK_PORT=str(port),
            **settings,
        )
        for n, port in enumerate(ports)
    ]
    urls = [f"http://127.0.0.1:{port}/telegram" for port in ports]
    try:
        for replica in replicas:
            replica.start()
        await asyncio.to_thread(wait_ready, urls, replicas)
        posts = await post_all(urls, by_user, rng, TWICE)
        # and a few late redeliveries, long after their participant moved on
        late = rng.sample(updates, 10)
        await post_all(urls, {0: [json.dumps(u.to_dict()) for u in late]}, rng, 0)
        for replica in replicas:
            assert replica.stop() == 0, replica.tail()
    finally:
        for replica in replicas:
            replica.kill()
    assert posts > len(updates)  # some were posted twice

    # every replica processed updates, each logged as one JSON line
    for replica in replicas:
        lines = [json.loads(line) for line in replica.log.read_text().splitlines()
                 if line.startswith("{")]  # fmt: skip
        processed = [line for line in lines if line.get("logger") == "consulta.updates"]
        assert processed, replica.tail()
        assert {"update_id", "kind", "outcome", "latency_ms"} <= processed[0].keys()
        assert all(line["outcome"] == "ok" for line in processed)

    # one process, each update once, in the same order per participant
    single = f"sqlite:///{tmp_path / 'single.db'}"
    storage.upgrade(single)
    with BotApiStandIn() as other_api:
        async with webhook_on(other_api, single) as served:
            for u in updates:
                response = await served.post(json.dumps(u.to_dict()))
                assert response.status_code == 200

    replicated, reference = export(database_url), export(single)
    assert len(replicated) > PARTICIPANTS
    pd.testing.assert_frame_equal(replicated, reference)

    engine = storage.make_engine(database_url)
    try:
        with storage.make_sessions(engine)() as session:
            for script in scripts:  # and everyone is where the engine, offline, puts them
                stored = storage.load(session, "telegram", str(script.user_id)).state
                assert stored is not None and script.state is not None
                assert stored.to_dict() == script.state.to_dict(), script.user_id
    finally:
        engine.dispose()
