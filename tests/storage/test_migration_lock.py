"""Several replicas starting at once on a brand-new database all migrate it without
colliding: ``storage.upgrade`` runs Alembic under a lock (a PostgreSQL advisory lock, a
lock file beside a SQLite database)."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import func, select, text

import storage
from storage.models import ConsultationVersion

REPLICAS = 4
# Each child imports everything first, says "ready", then waits for the word go: the
# upgrades start within a millisecond of each other, not staggered by import times.
CHILD = """
import sys
import storage
print("ready", flush=True)
sys.stdin.readline()
storage.upgrade(sys.argv[1])
print("done", flush=True)
"""


def test_replicas_migrating_a_fresh_database_at_once_all_succeed(
    empty_database_url: str,
) -> None:
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    command = [sys.executable, "-c", CHILD, empty_database_url]
    children = [subprocess.Popen(command, text=True, **pipes) for _ in range(REPLICAS)]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = [child.communicate(timeout=120) for child in children]
    finally:
        for child in children:
            child.kill()
    for child, (out, err) in zip(children, results, strict=True):
        assert child.returncode == 0, err
        assert out.strip() == "done"

    engine = storage.make_engine(empty_database_url)
    try:
        assert storage.at_head(engine)
        with engine.connect() as conn:  # the schema is usable, and was built once
            assert conn.scalar(select(func.count()).select_from(ConsultationVersion)) == 0
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
            assert len(versions) == 1
    finally:
        engine.dispose()
