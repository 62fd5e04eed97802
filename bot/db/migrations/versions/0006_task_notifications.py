"""manager_tasks.notified_at / notified_message_id: the post of a task in the managers' chat

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 18:00:00

`notified_at` is the claim to post a task in the managers' Telegram chat, committed before the
post (bot.channel.telegram.managers); `notified_message_id` is the posted message, for the buttons'
edits. Existing open tasks stay un-notified: the first `notify` posts them, oldest first.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.db.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("manager_tasks") as batch:
        batch.add_column(sa.Column("notified_at", bot.db.types.UtcTimestamp(), nullable=True))
        batch.add_column(sa.Column("notified_message_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("manager_tasks") as batch:
        batch.drop_column("notified_message_id")
        batch.drop_column("notified_at")
