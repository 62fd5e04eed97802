"""Manager tasks: the work a conversation or the compliance guard hands to a person.

A callback the customer booked, a handoff the script asked for, a detractor's low score, a contact
the guard rerouted to a manager (robot marketing to a +7 number, 38-FZ). The rows are created by
bot.campaign.tasks and listed, done and postponed with `boomerang tasks`; see docs/tasks.md.
`unique(outreach_id, kind)` makes creating the same task twice a no-op.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.base import Base
from bot.db.types import UtcTimestamp

KINDS = ("callback", "handoff", "detractor", "contact")
"""callback: call the customer back (at the booked time); handoff: the script asked for a person;
detractor: a low NPS (0-6) to follow up; contact: a contact the guard rerouted to a manager."""
STATES = ("open", "done")


class ManagerTask(Base):
    """One thing a manager has to do about a customer, due at a moment."""

    __tablename__ = "manager_tasks"
    __table_args__ = (
        UniqueConstraint("outreach_id", "kind"),
        Index("ix_manager_tasks_state_due_at", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    """One of KINDS."""
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    outreach_id: Mapped[int | None] = mapped_column(ForeignKey("outreach.id"))
    """The contact the task came from (the unique constraint's first column indexes it)."""
    campaign_id: Mapped[str] = mapped_column(String(100))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("managers.id"), index=True)
    """The customer's responsible manager when the task was created; none: anyone's task."""
    due_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    note: Mapped[str] = mapped_column(Text)
    """Why: the NPS score and reason, the booked time as the customer said it, the script's note."""
    state: Mapped[str] = mapped_column(String(8))
    """One of STATES."""
    done_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    created_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    updated_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    notified_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    """When the task was claimed for the managers' chat (committed before the post; see
    bot.channel.telegram.managers); none: not posted yet."""
    notified_message_id: Mapped[int | None] = mapped_column(BigInteger)
    """The managers' chat message of the task; none with `notified_at`: the post failed or a crash
    left it unknown, and it is never posted again."""
