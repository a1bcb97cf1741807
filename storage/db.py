"""Database engines and sessions from ``DATABASE_URL``, and Alembic migrations.

SQLite files run in WAL mode (readers never block the writer; a commit is one fsync of the
log) with foreign keys on; PostgreSQL is reached with psycopg 3
(``postgresql+psycopg://...``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, pool, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x436F6E01
"""First key of the PostgreSQL advisory lock held while migrating; the second is the hash of
the schema being migrated (replicas of one deployment share it; other schemas, such as the
tests', do not wait for each other)."""
SCHEDULER_LOCK = 0x436F6E02
"""First key of the scheduler's election lock (bot.services.leader); the second, the schema's."""
_SCHEMA_KEY = "hashtext(coalesce(current_schema(), ''))"
"""The lock's second key. coalesce: with no schema on the search path, hashtext(NULL) would
make the (strict) lock functions return NULL without locking anything."""


def try_advisory_lock(conn: Connection, namespace: int) -> bool:
    """Take the session-level advisory lock ``namespace`` of this schema if it is free."""
    query = text(f"SELECT pg_try_advisory_lock(:ns, {_SCHEMA_KEY})")
    return bool(conn.scalar(query, {"ns": namespace}))


def advisory_lock(conn: Connection, namespace: int) -> None:
    """Wait for the session-level advisory lock ``namespace`` of this schema."""
    conn.execute(text(f"SELECT pg_advisory_lock(:ns, {_SCHEMA_KEY})"), {"ns": namespace})


def advisory_unlock(conn: Connection, namespace: int) -> None:
    conn.execute(text(f"SELECT pg_advisory_unlock(:ns, {_SCHEMA_KEY})"), {"ns": namespace})


def holds_advisory_lock(conn: Connection, namespace: int) -> bool:
    """Whether this very session holds the lock ``namespace`` (not merely whether the
    connection answers: a pool may have replaced a broken connection with a new session)."""
    query = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND pid = pg_backend_pid() AND classid = :ns AND objsubid = 2"
    )
    return bool(conn.scalar(query, {"ns": namespace}))


def normalise_url(url: str) -> str:
    """Accept the common spellings of a PostgreSQL URL and use psycopg 3 for all of them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout. Errors never
    carry the statement's parameters (Telegram ids, answers' text) into logs."""
    url = normalise_url(url)
    kwargs.setdefault("hide_parameters", True)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pool_pre_ping: it costs a round trip on every transaction. A connection found dead
    # (server restarted) invalidates the pool and the caller retries: bot.services.conversation
    # re-applies the update at once, scheduled jobs run again at their next time.
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable in WAL mode up to the last commit
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def insert_if_absent(session: Session, model: type[Any], values: dict[str, Any]) -> bool:
    """INSERT a row unless its key exists; True if this call inserted it.

    The claim behind every "at most once" in Consulta (an update, a reminder, a digest
    period): with several processes, the second INSERT of a key waits for the first
    transaction and then inserts nothing. RETURNING, not rowcount: an ORM-enabled INSERT
    does not report rowcount reliably.
    """
    dialect = session.get_bind().dialect.name
    stmt = _INSERTS.get((dialect, model))
    if stmt is None:  # built once: building and keying a statement costs more than running it
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table = model.__table__
        key = next(iter(table.primary_key.columns))
        stmt = _INSERTS[dialect, model] = insert(table).on_conflict_do_nothing().returning(key)
    return session.connection().execute(stmt, values).first() is not None


_INSERTS: dict[tuple[str, type[Any]], Any] = {}


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    """Session factory; callers own their unit of work: ``with sessions.begin() as s:``."""
    return sessionmaker(engine, expire_on_commit=False)


def make_async_engine(engine: Engine, *, connections: int) -> AsyncEngine:
    """An asyncio engine on the database of ``engine`` (PostgreSQL: psycopg's
    ``AsyncConnection``) with a pool of its own of exactly ``connections``: callers beyond
    that wait for a connection rather than open and close overflow ones."""
    url = engine.url.render_as_string(hide_password=False)
    return create_async_engine(url, pool_size=connections, max_overflow=0, hide_parameters=True)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply the migrations up to ``revision`` (idempotent), one process at a time.

    Replicas started together on a brand-new database would otherwise all find it empty
    and create the same tables at once (PostgreSQL: a duplicate key in its catalogue;
    SQLite: "table already exists"). Under the lock, the first migrates and the others
    then find the schema at head and do nothing.
    """
    url = normalise_url(url)
    with migration_lock(url):
        command.upgrade(alembic_config(url), revision)


@contextlib.contextmanager
def migration_lock(url: str) -> Iterator[None]:
    """Hold the lock that serialises migrations of the database at ``url``.

    PostgreSQL: a session-level advisory lock on a connection of its own, held outside the
    migration's transactions and released by the server if this process dies. SQLite: an
    exclusive ``flock`` on ``<file>.migrate-lock`` beside the database (released by the
    kernel if this process dies); nothing for in-memory databases or where ``fcntl`` is
    missing (Windows), which then migrate as before.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        engine = create_engine(url, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                if not try_advisory_lock(conn, MIGRATION_LOCK):
                    log.info("another process is migrating the database; waiting for it")
                    advisory_lock(conn, MIGRATION_LOCK)
                try:
                    yield
                finally:
                    advisory_unlock(conn, MIGRATION_LOCK)
        finally:
            engine.dispose()
        return
    database = parsed.database if parsed.get_backend_name() == "sqlite" else None
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        fcntl = None  # type: ignore[assignment]
    if not database or database == ":memory:" or fcntl is None:
        yield
        return
    with open(f"{database}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        yield


def at_head(engine: Engine) -> bool:
    """Whether the database's schema is at the newest migration."""
    heads = set(ScriptDirectory.from_config(alembic_config(str(engine.url))).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current == heads
