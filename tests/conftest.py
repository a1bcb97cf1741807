"""Configuration shared by every test folder. Keep it small: fixtures of one folder belong in
that folder's own conftest.py."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker
    from telegram import Bot

    from tests.helpers.botapi import BotApiStandIn
    from tests.helpers.harness import RunningBot


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite the expected parts of golden files (e.g. tests/flows/transcripts/*.yaml) "
        "from the actual output instead of comparing them",
    )


# --- databases ----------------------------------------------------------------------------
# Storage and bot tests run on a real SQLite file always, and on a real PostgreSQL server
# whenever TEST_DATABASE_URL is set (CI sets it, and CONSULTA_REQUIRE_POSTGRES=1 turns a
# missing server into a failure instead of a skip). Each PostgreSQL test gets its own schema.

import os  # noqa: E402
import secrets  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import quote  # noqa: E402

os.environ.setdefault("PTB_TIMEDELTA", "true")  # see bot/__init__.py


def postgres_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        if os.environ.get("CONSULTA_REQUIRE_POSTGRES"):
            pytest.fail("TEST_DATABASE_URL is not set but CONSULTA_REQUIRE_POSTGRES is")
        return None
    return url


DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it yet: a SQLite file to be, or a fresh, empty schema on
    PostgreSQL (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'consulta.db'}"
        return
    base = postgres_url()
    if base is None:
        pytest.skip("TEST_DATABASE_URL not set")
    from sqlalchemy import text

    import storage

    schema = f"t_{secrets.token_hex(6)}"
    admin = storage.make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:  # a test that leaks a session fails here, not hangs
            conn.execute(text("SET LOCAL lock_timeout = '10s'"))
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """A migrated, empty database: a SQLite file, or a fresh schema on PostgreSQL."""
    import storage

    storage.upgrade(empty_database_url)
    return empty_database_url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on ``database_url``, disposed after the test (a leaked connection would
    block the PostgreSQL schema's drop)."""
    import storage

    engine = storage.make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    import storage

    return storage.make_sessions(engine)


# --- the running bot (tests/helpers/harness.py) ---------------------------------------------

from collections.abc import AsyncIterator  # noqa: E402


@pytest.fixture
def api() -> Iterator[BotApiStandIn]:
    """A Bot API stand-in speaking real HTTP on 127.0.0.1."""
    from tests.helpers.botapi import BotApiStandIn

    with BotApiStandIn() as standin:
        yield standin


@pytest.fixture
async def bot(api: BotApiStandIn) -> AsyncIterator[Bot]:
    """A real PTB ``Bot`` talking to ``api`` through Consulta's transport."""
    from telegram import Bot

    from bot.adapter.transport import AiohttpRequest

    async with Bot(api.token, base_url=api.base_url, request=AiohttpRequest()) as real_bot:
        yield real_bot


@pytest.fixture
async def running(api: BotApiStandIn, database_url: str) -> AsyncIterator[RunningBot]:
    """The real Consulta application polling ``api``, on a fresh database."""
    from tests.helpers.harness import RunningBot

    bot = RunningBot(api, database_url)
    bot.conversation.remember_version()
    await bot.start()
    try:
        yield bot
    finally:
        with contextlib.suppress(Exception):
            await bot.stop()
        bot.engine.dispose()
