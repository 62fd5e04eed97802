"""Conversion attribution: an order after a contact, within the campaign's window, converts the row.

For every outreach row that counts — contacted (`done`, `in_conversation`) or held out — and has no
`converted_at` yet, the first non-void order of the customer placed after the row's contact moment
and within the campaign's `attribution_days` (and not after `now`) sets `converted_at` to that
order's `placed_at`. The contact moment is:

- a contacted row: its `contacted_at`, the moment the dispatcher stored the first delivery (a
  conversation that continues asynchronously does not move it);
- a holdout row: its `created_at`, when the customer would have been contacted.

Holdout rows convert by exactly the same rule, so the uplift compares like with like. A converted
contacted row of a win-back campaign (audience `lapsed`) also sets `customers.won_back_at` when it
is empty. Everything is two UPDATEs per campaign with correlated subqueries over integer epoch
seconds (bot.db.types), the same SQL on SQLite and PostgreSQL; running it again changes nothing
(only rows without `converted_at` are touched, and `won_back_at` is only set when empty).
`converted_at` is the only column of the outreach rows this writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import BigInteger, and_, case, exists, func, or_, select, type_coerce, update

from bot.app import App
from bot.campaign.definition import Campaign
from bot.campaign.states import DONE, IN_CONVERSATION
from bot.db.models import VOID_ORDER_STATUSES, Customer, Order
from bot.db.outreach import Outreach
from bot.db.types import SECONDS_PER_DAY, to_epoch

CONTACTED = (DONE, IN_CONVERSATION)
"""States of rows that were contacted and can convert."""
WIN_BACK_KINDS = ("lapsed",)
"""Audience kinds whose converted contacts mark the customer as won back."""


@dataclass
class Attribution:
    converted: dict[str, int] = field(default_factory=dict)
    """Campaign id -> rows newly converted by this call."""
    won_back: int = 0
    """Customers newly marked won back by this call."""


def attribute_conversions(app: App, now: datetime, campaigns: Iterable[Campaign]) -> Attribution:
    """Set `converted_at` (and `won_back_at`) for the rows of `campaigns`; idempotent.

    Rows of campaigns not passed are left alone: their attribution window is unknown.
    """
    result = Attribution()
    now_s = to_epoch(now)
    placed = type_coerce(Order.placed_at, BigInteger)
    anchor = case(
        (Outreach.holdout.is_(True), type_coerce(Outreach.created_at, BigInteger)),
        else_=type_coerce(Outreach.contacted_at, BigInteger),
    )
    with app.sessions.begin() as session:
        for campaign in campaigns:
            window = campaign.attribution_days * SECONDS_PER_DAY
            first_order = (
                select(func.min(placed))
                .where(
                    Order.customer_id == Outreach.customer_id,
                    Order.status.not_in(VOID_ORDER_STATUSES),
                    placed > anchor,
                    placed <= anchor + window,
                    placed <= now_s,
                )
                .scalar_subquery()
            )
            converted = session.execute(
                update(Outreach)
                .where(
                    Outreach.campaign_id == campaign.id,
                    Outreach.converted_at.is_(None),
                    or_(Outreach.state.in_(CONTACTED), Outreach.holdout.is_(True)),
                    first_order.is_not(None),
                )
                .values(converted_at=first_order)
                .execution_options(synchronize_session=False)
            )
            result.converted[campaign.id] = converted.rowcount  # type: ignore[attr-defined]
            if campaign.audience.kind not in WIN_BACK_KINDS:
                continue
            won = and_(
                Outreach.customer_id == Customer.id,
                Outreach.campaign_id == campaign.id,
                Outreach.holdout.is_(False),
                Outreach.state.in_(CONTACTED),
                Outreach.converted_at.is_not(None),
            )
            first_won = (
                select(func.min(type_coerce(Outreach.converted_at, BigInteger)))
                .where(won)
                .scalar_subquery()
            )
            marked = session.execute(
                update(Customer)
                .where(Customer.won_back_at.is_(None), exists().where(won))
                .values(won_back_at=first_won, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            result.won_back += marked.rowcount  # type: ignore[attr-defined]
    return result
