"""scheduled jobs: only their next run times; APScheduler's pickled job store is dropped

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduled_jobs",
        sa.Column("job_id", sa.String(length=191), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_scheduled_jobs")),
    )
    # Made by APScheduler's SQLAlchemyJobStore, not by a migration: pickles that the leader
    # would have unpickled. Its next run times are lost once: a missed run is not repeated.
    op.execute("DROP TABLE IF EXISTS scheduler_jobs")


def downgrade() -> None:
    op.drop_table("scheduled_jobs")
