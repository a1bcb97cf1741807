"""bad invitation tokens per account, shared by replicas, forgotten after their window

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bad_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("tried_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bad_tokens")),
    )
    op.create_index("ix_bad_tokens_account", "bad_tokens", ["channel", "external_id", "tried_at"])


def downgrade() -> None:
    op.drop_index("ix_bad_tokens_account", table_name="bad_tokens")
    op.drop_table("bad_tokens")
