"""The shop's data: managers, customers, their consent ledger, and orders."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.db.base import Base
from bot.db.types import UtcTimestamp

CHANNELS = ("telegram", "voice", "sms", "email")
PURPOSES = ("survey", "service", "marketing")
ORDER_STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled", "returned")
# Orders in these states never happened as far as buying rhythm is concerned.
VOID_ORDER_STATUSES = ("cancelled",)


class Manager(Base):
    """A person responsible for customers; receives callbacks and handoffs."""

    __tablename__ = "managers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    telegram_chat_id: Mapped[int | None] = mapped_column(BigInteger)


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str | None] = mapped_column(String(300))
    first_name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    """E.164, e.g. +79123456789."""
    email: Mapped[str | None] = mapped_column(String(320))
    telegram_chat_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    locale: Mapped[str | None] = mapped_column(String(8))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    """IANA name; when empty the phone's region, then the campaign's zone, is used."""
    birthday: Mapped[date | None] = mapped_column(Date)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("managers.id"), index=True)
    flagged: Mapped[str | None] = mapped_column(String(100))
    """Why the customer must not be contacted by robots (complaint, abuse, ...); empty = fine."""
    opted_out_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    last_contacted_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    won_back_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    """Set when a win-back contact converted; won back once and lapsed again = let go."""
    created_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    updated_at: Mapped[datetime] = mapped_column(UtcTimestamp)

    manager: Mapped[Manager | None] = relationship()


class Consent(Base):
    """One entry of the consent ledger: granted or withdrawn, for a channel and a purpose.

    The newest entry per (customer, channel, purpose) is the one in force.
    """

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_lookup", "customer_id", "channel", "purpose", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(16))
    granted: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UtcTimestamp)
    source: Mapped[str] = mapped_column(Text)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_customer_placed", "customer_id", "placed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    placed_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    """Amount in minor units (kopecks, cents) so sums are exact on every database."""
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    feedback_requested_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    """When the customer was asked about this order; the post-order audience skips it once set."""


class CustomerRhythm(Base):
    """Materialised buying rhythm: one row per customer with at least one non-void order.

    Refreshed by `bot.audience.rhythm.refresh_rhythm` (SQL `INSERT ... SELECT`); audience queries
    read it instead of scanning all orders, and apply the as-of date at query time.
    """

    __tablename__ = "customer_rhythm"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    orders: Mapped[int] = mapped_column(Integer)
    """Non-void orders."""
    purchase_days: Mapped[int] = mapped_column(Integer)
    """Distinct UTC calendar days with a non-void order."""
    first_order_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    last_order_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    first_delivered_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    """delivered_at of the first order (empty while it is not delivered)."""
    median_gap_days: Mapped[float | None] = mapped_column(Float)
    """Median gap in days between consecutive purchase days; empty below two purchase days."""
    revenue_minor: Mapped[int] = mapped_column(BigInteger)
    """Sum of amount_minor of non-void orders (currencies are not converted)."""
    monthly_cv: Mapped[float] = mapped_column(Float)
    """Coefficient of variation of monthly order counts, 12 months ending with the last order's."""
