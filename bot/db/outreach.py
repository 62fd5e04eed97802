"""The outreach queue: a run per scheduled firing, a row per campaign x customer x cycle.

The rows are the queue (design decision 2): the planner inserts them, the dispatcher claims them.
`unique(campaign_id, customer_id, cycle)` makes planning idempotent; states are in
bot.campaign.states, and a final state is never overwritten.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.base import Base
from bot.db.types import UtcTimestamp


class CampaignRun(Base):
    """One firing of a campaign's schedule; planning the same (campaign, instant) again: no-op."""

    __tablename__ = "campaign_runs"
    __table_args__ = (UniqueConstraint("campaign_id", "scheduled_for"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(100))
    scheduled_for: Mapped[datetime] = mapped_column(UtcTimestamp)
    created_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    planned: Mapped[int] = mapped_column(Integer, default=0)
    """Rows this run inserted as `planned`."""
    held_out: Mapped[int] = mapped_column(Integer, default=0)
    """Rows this run inserted as holdout (`skipped`, reason `holdout`)."""


class Outreach(Base):
    """One intended contact: a customer, for a campaign, in one cycle (an order, a period)."""

    __tablename__ = "outreach"
    __table_args__ = (
        UniqueConstraint("campaign_id", "customer_id", "cycle"),
        Index("ix_outreach_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_outreach_customer_contacted_at", "customer_id", "contacted_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(100))
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    cycle: Mapped[str] = mapped_column(String(120))
    """post-order: the order's external id; other audiences: a period key (bot.campaign.planner)."""
    run_id: Mapped[int] = mapped_column(ForeignKey("campaign_runs.id"), index=True)
    state: Mapped[str] = mapped_column(String(20))
    """See bot.campaign.states."""
    skip_reason: Mapped[str | None] = mapped_column(String(100))
    holdout: Mapped[bool] = mapped_column(Boolean, default=False)
    channel: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    script_id: Mapped[str] = mapped_column(String(100))
    script_version: Mapped[str | None] = mapped_column(String(64))
    conversation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    outcome: Mapped[str | None] = mapped_column(String(100))
    contacted_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    """When the conversation reached the customer (set once, on `in_conversation` or `done`): the
    frequency cap and conversion attribution count from it."""
    converted_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    created_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    updated_at: Mapped[datetime] = mapped_column(UtcTimestamp)
