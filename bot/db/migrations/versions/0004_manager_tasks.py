"""manager_tasks: callbacks, handoffs, detractors and rerouted contacts for a person

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 18:00:00

Rows the guard handed to a manager were closed as `skipped`/`manager_task`, and callbacks booked
in a conversation went nowhere; they become rows with a due time (bot.db.tasks.ManagerTask).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.db.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "manager_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("outreach_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.String(length=100), nullable=False),
        sa.Column("manager_id", sa.Integer(), nullable=True),
        sa.Column("due_at", bot.db.types.UtcTimestamp(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("done_at", bot.db.types.UtcTimestamp(), nullable=True),
        sa.Column("created_at", bot.db.types.UtcTimestamp(), nullable=False),
        sa.Column("updated_at", bot.db.types.UtcTimestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_manager_tasks_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["manager_id"], ["managers.id"], name=op.f("fk_manager_tasks_manager_id_managers")
        ),
        sa.ForeignKeyConstraint(
            ["outreach_id"], ["outreach.id"], name=op.f("fk_manager_tasks_outreach_id_outreach")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_manager_tasks")),
        sa.UniqueConstraint("outreach_id", "kind", name=op.f("uq_manager_tasks_outreach_id_kind")),
    )
    with op.batch_alter_table("manager_tasks") as batch:
        batch.create_index(batch.f("ix_manager_tasks_customer_id"), ["customer_id"])
        batch.create_index(batch.f("ix_manager_tasks_manager_id"), ["manager_id"])
        batch.create_index("ix_manager_tasks_state_due_at", ["state", "due_at"])


def downgrade() -> None:
    with op.batch_alter_table("manager_tasks") as batch:
        batch.drop_index("ix_manager_tasks_state_due_at")
        batch.drop_index(batch.f("ix_manager_tasks_manager_id"))
        batch.drop_index(batch.f("ix_manager_tasks_customer_id"))
    op.drop_table("manager_tasks")
