"""outreach.contacted_at: the moment a row's conversation reached the customer

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 17:00:00

The frequency cap and conversion attribution used `updated_at` as the contact moment; an
asynchronous conversation (Telegram) moves `updated_at` with every reply, so the contact moment
gets its own column. Existing contacted rows take their `updated_at`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.db.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outreach") as batch:
        batch.add_column(sa.Column("contacted_at", bot.db.types.UtcTimestamp(), nullable=True))
        batch.create_index("ix_outreach_customer_contacted_at", ["customer_id", "contacted_at"])
    op.execute(
        "UPDATE outreach SET contacted_at = updated_at "
        "WHERE state IN ('done', 'in_conversation') AND holdout = false"
    )


def downgrade() -> None:
    with op.batch_alter_table("outreach") as batch:
        batch.drop_index("ix_outreach_customer_contacted_at")
        batch.drop_column("contacted_at")
