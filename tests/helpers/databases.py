"""Marks for tests that run on one database only (the ``database_url`` fixtures are in
tests/conftest.py and run every such test on SQLite and on PostgreSQL)."""

import pytest

POSTGRES_ONLY = pytest.mark.parametrize(
    "empty_database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
"""For tests of what only PostgreSQL does (advisory locks): ``@POSTGRES_ONLY``."""
SQLITE_ONLY = pytest.mark.parametrize("empty_database_url", ["sqlite"], indirect=True)
