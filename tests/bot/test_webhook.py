"""``consulta webhook`` in-process: the real PTB application behind its aiohttp web server
on a free port of 127.0.0.1, replies going to the Bot API stand-in, a real database
(SQLite, and PostgreSQL when TEST_DATABASE_URL is set). Requests are real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import re
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

import storage
from bot.adapter.app import build_application
from bot.adapter.webhook import MAX_BODY, serve_webhook
from bot.infra.config import Settings
from bot.services.conversation import Conversation
from flows import load
from flows.buttons import Consent
from storage.models import Participant, ProcessedUpdate
from tests.bot.test_cli import consulta, environment
from tests.helpers.botapi import BotApiStandIn
from tests.helpers.updates import callback_update, photo_update, text_update

SECRET = "s3cret-Token_for-tests"
USER = 4242


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Served:
    url: str
    engine: Engine
    client: httpx.AsyncClient

    async def post(self, body: bytes | str, secret: str | None = SECRET,
                   content_type: str = "application/json") -> httpx.Response:  # fmt: skip
        headers = {"Content-Type": content_type}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        return await self.client.post(f"{self.url}/telegram", content=body, headers=headers)

    async def get(self, path: str) -> httpx.Response:
        return await self.client.get(f"{self.url}{path}")

    def count(self, model: type) -> int:
        with storage.make_sessions(self.engine)() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


@contextlib.asynccontextmanager
async def webhook_on(api: BotApiStandIn, database_url: str, **extra: str) -> AsyncIterator[Served]:
    """Run the webhook server until the block ends (scheduler left out: no jobs here);
    ``extra``: more settings, by field name."""
    port = free_port()
    settings = Settings(
        telegram_bot_token=api.token,
        telegram_base_url=api.base_url,
        database_url=database_url,
        consulta_rate_limit=0,
        consulta_webhook_port=port,
        telegram_webhook_secret=SECRET,
        _env_file=None,  # type: ignore[call-arg]
        **extra,  # type: ignore[arg-type]
    )
    engine = storage.make_engine(database_url)
    conv = Conversation(load(), storage.make_sessions(engine))
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        serve_webhook(build_application(settings, conv), settings, stop, ready=ready)
    )
    try:
        await asyncio.wait_for(ready.wait(), timeout=15)
        async with httpx.AsyncClient(timeout=15) as client:
            yield Served(f"http://127.0.0.1:{port}", engine, client)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)
        engine.dispose()


@pytest.fixture
async def served(api: BotApiStandIn, database_url: str) -> AsyncIterator[Served]:
    async with webhook_on(api, database_url) as s:
        yield s


def start_update(update_id: int, user_id: int = USER) -> str:
    return json.dumps(text_update(update_id, user_id, "/start").to_dict())


async def test_forged_requests_are_refused_and_nothing_is_stored(
    served: Served, api: BotApiStandIn
) -> None:
    good = start_update(1)
    cases = [
        ("no secret", served.post(good, secret=None), 403),
        ("wrong secret", served.post(good, secret="guessed"), 403),
        ("wrong secret, same length", served.post(good, secret="x" * len(SECRET)), 403),
        ("malformed JSON", served.post('{"update_id": 1, "message": ', SECRET), 400),
        ("not UTF-8", served.post(b"\xff\xfe{}", SECRET), 400),
        ("oversized body", served.post(b" " * (MAX_BODY + 1), SECRET), 413),
        ("JSON, not an update", served.post('{"hello": "world"}', SECRET), 400),
        ("a list", served.post("[1, 2, 3]", SECRET), 400),
        ("update_id not a number", served.post('{"update_id": "1"}', SECRET), 400),
        ("not JSON", served.post(good, SECRET, content_type="text/plain"), 415),
    ]
    for name, request, status in cases:
        response = await request
        assert response.status_code == status, name
    # a GET is not an update either
    assert (await served.client.get(f"{served.url}/telegram")).status_code == 405
    assert served.count(Participant) == 0
    assert served.count(ProcessedUpdate) == 0
    assert api.sent_to(USER) == []


async def test_an_update_is_answered_200_once_stored_and_a_redelivery_changes_nothing(
    served: Served, api: BotApiStandIn
) -> None:
    assert (await served.post(start_update(7))).status_code == 200
    # 200 comes after the commit and the replies: both are there already
    assert served.count(ProcessedUpdate) == 1
    assert api.texts_to(USER), "the welcome reached the Bot API"
    consent = json.dumps(callback_update(8, USER, Consent(True).encode(), message_id=2).to_dict())
    assert (await served.post(consent)).status_code == 200
    assert served.count(ProcessedUpdate) == 2
    assert served.count(Participant) == 1
    replies = api.texts_to(USER)

    for body in (start_update(7), consent):  # Telegram redelivers both
        assert (await served.post(body)).status_code == 200
    assert served.count(ProcessedUpdate) == 2
    assert served.count(Participant) == 1
    assert api.texts_to(USER) == replies


async def test_a_failed_update_is_answered_500_so_that_telegram_redelivers_it(
    served: Served, api: BotApiStandIn
) -> None:
    api.fail_next("sendMessage", 400, "Bad Request: chat not found", chat_id=USER)
    assert (await served.post(start_update(9))).status_code == 500
    assert (await served.post(start_update(9))).status_code == 200  # recognised, not repeated
    assert served.count(ProcessedUpdate) == 1


async def test_a_chunked_body_over_1_mib_is_answered_413(served: Served) -> None:
    body = start_update(12).encode() + b" " * MAX_BODY

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: learnt by reading
        for at in range(0, len(body), 65536):
            yield body[at : at + 65536]

    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}
    response = await served.client.post(f"{served.url}/telegram", content=chunks(),
                                        headers=headers)  # fmt: skip
    assert response.status_code == 413
    assert served.count(ProcessedUpdate) == 0
    # the same body with its Content-Length is refused as well, and a small one is fine
    assert (await served.post(body)).status_code == 413
    assert (await served.post(start_update(12))).status_code == 200


async def test_deeply_nested_json_is_answered_400(served: Served) -> None:
    depth = 100_000  # json.loads gives up (RecursionError) long before; 200 kB, under 1 MiB
    arrays = '{"update_id": 13, "message": ' + "[" * depth + "]" * depth + "}"
    assert (await served.post(arrays)).status_code == 400
    # JSON that json.loads reads, but whose replies to replies PTB reads recursively
    message = '{"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}, "text": "x"'
    replies = (message + ', "reply_to_message": ') * 600 + message + "}" * 601
    assert (await served.post('{"update_id": 14, "message": ' + replies + "}")).status_code == 400
    assert served.count(ProcessedUpdate) == 0
    assert (await served.get("/healthz")).status_code == 200


# --- fuzzing: random and mutated updates ----------------------------------------------------

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)
VALID = [
    text_update(1, USER, "/start").to_dict(),
    text_update(1, USER, "Más lazos con Mendoza").to_dict(),
    text_update(1, USER, "/omitir", edited=True).to_dict(),
    text_update(1, USER, "/no_avisar", chat_type="group").to_dict(),
    callback_update(1, USER, Consent(True).encode(), message_id=2).to_dict(),
    photo_update(1, USER, caption="una foto").to_dict(),
]


def places(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key and index path inside ``value``."""
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()  # fmt: skip
    for key, inner in items:
        yield (*path, key)
        yield from places(inner, (*path, key))


def written(update_id: int, text: str) -> bytes:
    """A message with any text (a command if it starts with /)."""
    return json.dumps(text_update(update_id, USER, text).to_dict()).encode()


def nested(depth: int) -> bytes:
    """An update with an array ``depth`` levels deep."""
    return b'{"update_id": 1, "a": ' + b"[" * depth + b"]" * depth + b"}"


@st.composite
def mutated_update(draw: st.DrawFn) -> bytes:
    """A valid update with a few values replaced by random JSON or removed."""
    data = copy.deepcopy(draw(st.sampled_from(VALID)))
    data["update_id"] = draw(st.integers(1, 1_000_000))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(places(data))))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON_VALUES)
        if path == ("update_id",):
            break
    return json.dumps(data).encode()


@st.composite
def damaged_bytes(draw: st.DrawFn) -> bytes:
    """A valid update's bytes cut short, or with random bytes put in."""
    body = json.dumps(draw(st.sampled_from(VALID))).encode()
    at = draw(st.integers(0, len(body)))
    return body[:at] + draw(st.binary(max_size=8)) + body[at + draw(st.integers(0, 8)) :]


BODIES = st.one_of(
    st.builds(written, st.integers(1, 1_000_000), st.text(min_size=1)),
    mutated_update(),
    damaged_bytes(),
    st.binary(max_size=64),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    st.integers(1, 5000).map(nested),
)
ANSWERS = {200, 400, 403, 413, 415}
EXAMPLES = os.environ.get("CONSULTA_FUZZ_EXAMPLES")
"""Set to fuzz longer, at random (e.g. 2000); by default 150 examples, the same every run."""
FUZZING = settings(
    max_examples=int(EXAMPLES or 150),
    derandomize=not EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


async def test_random_and_mutated_updates_get_a_clear_answer(
    served: Served, api: BotApiStandIn
) -> None:
    """Every answer is one of ANSWERS (never a 500 nor a dropped connection), and a refused
    body stores nothing."""

    @FUZZING
    @given(
        body=BODIES,
        secret=st.sampled_from([SECRET, SECRET, SECRET, "guessed", None]),
        content_type=st.sampled_from(["application/json"] * 5 + ["text/plain"]),
    )
    def post(body: bytes, secret: str | None, content_type: str) -> None:
        headers = {"Content-Type": content_type}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        before = served.count(ProcessedUpdate), served.count(Participant)
        response = client.post(f"{served.url}/telegram", content=body, headers=headers)
        assert response.status_code in ANSWERS, (response.status_code, body[:300])
        if response.status_code != 200:
            assert (served.count(ProcessedUpdate), served.count(Participant)) == before

    with httpx.Client(timeout=30) as client:  # from a thread: the server runs on this loop
        await asyncio.to_thread(post)
    assert (await served.get("/healthz")).status_code == 200
    assert (await served.post(start_update(999_999_999))).status_code == 200


def metric(text: str, name: str, labels: str = "") -> float:
    pattern = rf"^{re.escape(name)}{re.escape(labels)} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_health_readiness_and_metrics(served: Served) -> None:
    assert (await served.get("/healthz")).status_code == 200
    ready = await served.get("/readyz")
    assert ready.status_code == 200, ready.text

    before = (await served.get("/metrics")).text
    assert (await served.post(start_update(11))).status_code == 200
    assert (await served.post("{", SECRET)).status_code == 400
    after = await served.get("/metrics")
    assert after.status_code == 200
    assert after.headers["Content-Type"].startswith("text/plain")
    ok = '{outcome="ok"}'
    assert (
        metric(after.text, "consulta_updates_total", ok)
        == metric(before, "consulta_updates_total", ok) + 1
    )
    bad = '{status="400"}'
    assert (
        metric(after.text, "consulta_webhook_rejected_total", bad)
        == metric(before, "consulta_webhook_rejected_total", bad) + 1
    )
    assert metric(after.text, "consulta_updates_in_flight") == 0
    assert "consulta_send_retries_total" in after.text
    assert "consulta_errors_total" in after.text


async def test_not_ready_while_the_database_is_not_migrated(
    api: BotApiStandIn, tmp_path: Path
) -> None:
    async with webhook_on(api, f"sqlite:///{tmp_path / 'fresh.db'}") as served:
        assert (await served.get("/healthz")).status_code == 200
        response = await served.get("/readyz")
        assert response.status_code == 503
        assert "migration" in response.json()["error"]


async def test_the_public_url_is_registered_with_the_secret(
    api: BotApiStandIn, tmp_path: Path
) -> None:
    url = "https://consulta.example.cl/telegram"
    database = f"sqlite:///{tmp_path / 'c.db'}"
    storage.upgrade(database)
    async with webhook_on(api, database, consulta_webhook_url=url):
        (call,) = api.calls_of("setWebhook")
    assert call.params["url"] == url
    assert call.params["secret_token"] == SECRET
    assert set(call.params["allowed_updates"]) == {"message", "edited_message", "callback_query"}
    assert not api.calls_of("deleteWebhook")


def test_webhook_mode_without_a_secret_refuses_to_start(tmp_path: Path) -> None:
    env = environment(tmp_path, TELEGRAM_BOT_TOKEN="1:T", TELEGRAM_WEBHOOK_SECRET="")
    result = consulta("webhook", env=env)
    assert result.returncode == 2
    assert "TELEGRAM_WEBHOOK_SECRET" in result.stderr
    assert not (tmp_path / "c.db").exists()  # nothing done before the check
