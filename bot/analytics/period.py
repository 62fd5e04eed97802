"""Retention over a period, read from the database: the head counts behind churn, lifetime and LTV.

The rest of bot.analytics is pure maths; this module is its one database reader. A customer is
**active at an instant t** when they have a non-void order placed before t and are **not lapsed
at t** by the lapse rule (bot.audience.lapse): the same rule, expected gaps and shop median as
`audience preview --kind lapsed --as-of t`, computed from the orders placed before t only. Over
a period [since, until):

- start: active at `since`; end: active at `until`;
- new: first order placed in the period (whether or not still active at the end);
- kept: active at both; lost: active at the start, not at the end (start - kept);
- returned: active at the end, not at the start and not new (lapsed earlier, bought again).

Churn = lost / start and retention = kept / start (= 1 - churn). The textbook
(end - new) / start counts returned customers as kept and new ones who lapsed within the period
as never there; here both are reported separately and the rates stay in 0..1.

The counting is SQL plus numpy columns: one rhythm read per instant (`rhythm_as_of`: the snapshot,
or the same computation cut off at the instant) and one aggregate over the period's orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
from babel.numbers import get_currency_precision
from sqlalchemy import BigInteger, Connection, Engine, Integer, case, func, select, type_coerce

from bot.analytics.retention import (
    AVERAGE_MONTH_DAYS,
    average_lifetime,
    customer_win_back_benefit,
    ltv,
    period_retention,
)
from bot.audience.lapse import LapseRule, lapse_columns
from bot.audience.rhythm import rhythm_as_of
from bot.db.models import VOID_ORDER_STATUSES, Order
from bot.db.raw import fetch_tuples
from bot.db.types import SECONDS_PER_DAY, to_epoch

DEFAULT_MARGIN = 0.3
"""Share of an order's amount that is margin, when none is given (`report --margin`)."""


def minor_per_major(currency: str) -> int:
    """Minor units in one major unit of `currency` (RUB 100, JPY 1), from the CLDR data."""
    return int(10 ** get_currency_precision(currency.upper()))


@dataclass(frozen=True)
class Customers:
    """One instant's rhythm as columns, one element per customer with an order before it."""

    customer_id: npt.NDArray[np.int64]
    orders: npt.NDArray[np.int64]
    revenue_minor: npt.NDArray[np.int64]
    first_order_epoch: npt.NDArray[np.int64]
    last_order_epoch: npt.NDArray[np.int64]
    expected_gap_days: npt.NDArray[np.float64]
    """The lapse rule's expected gap; NaN when there is none (nobody has two purchase days)."""
    active: npt.NDArray[np.bool_]
    """Not lapsed at the instant."""


def customers_at(connection: Connection, at: datetime, rule: LapseRule) -> Customers:
    """Every customer with a non-void order placed before `at`, and whether they are active."""
    with rhythm_as_of(connection, at) as rhythm:
        gaps = fetch_tuples(
            connection,
            select(rhythm.c.median_gap_days).where(
                rhythm.c.median_gap_days.is_not(None), rhythm.c.first_order_at < at
            ),
        )
        shop_median = float(np.median([g for (g,) in gaps])) if gaps else None
        _own, expected, _since, lapsed = lapse_columns(rhythm, at, rule, shop_median)
        rows = fetch_tuples(
            connection,
            select(
                rhythm.c.customer_id,
                rhythm.c.orders,
                rhythm.c.revenue_minor,
                type_coerce(rhythm.c.first_order_at, BigInteger),
                type_coerce(rhythm.c.last_order_at, BigInteger),
                expected,
                case((lapsed, 0), else_=1),  # no expected gap (no shop median): not lapsed
            )
            .where(rhythm.c.first_order_at < at)
            .order_by(rhythm.c.customer_id),
        )
    columns = list(zip(*rows, strict=True)) if rows else [()] * 7
    ids, orders, revenue, first, last = (np.array(columns[i], dtype=np.int64) for i in range(5))
    return Customers(
        customer_id=ids,
        orders=orders,
        revenue_minor=revenue,
        first_order_epoch=first,
        last_order_epoch=last,
        expected_gap_days=np.array(columns[5], dtype=np.float64),
        active=np.array(columns[6], dtype=np.int64) == 1,
    )


@dataclass(frozen=True)
class Retention:
    """Retention over [since, until); money in minor units of `currency`, not rounded."""

    since: datetime
    until: datetime
    months: float
    """Length of the period in average months (days / 30.4375)."""
    start: int
    end: int
    new: int
    new_active: int
    """New customers still active at the end."""
    kept: int
    lost: int
    returned: int
    churn: float | None
    """lost / start over the period; None without customers at the start."""
    retention: float | None
    monthly_churn: float | None
    """churn / months."""
    lifetime_months: float | None
    """months / churn; None when nobody was lost (unbounded) or nobody was there."""
    orders: int
    """Non-void orders placed in the period."""
    revenue_minor: int
    orders_per_month: float | None
    """orders / ((start + end) / 2) / months: per active customer and month."""
    average_order_minor: float | None
    margin: float
    margin_per_order_minor: float | None
    ltv_minor: float | None
    """margin per order x orders per month x lifetime in months."""
    win_back_benefit_minor: float | None
    """The mean over the lost customers of their own `customer_win_back_benefit`."""
    currency: str


def last_full_month(now: datetime) -> tuple[datetime, datetime]:
    """The last whole calendar month (UTC) before `now`: [its 1st, the 1st of this month)."""
    now = now.astimezone(UTC)
    until = datetime(now.year, now.month, 1, tzinfo=UTC)
    since = datetime(until.year - (until.month == 1), (until.month - 2) % 12 + 1, 1, tzinfo=UTC)
    return since, until


def shop_lifetime_months(engine: Engine, as_of: datetime, rule: LapseRule) -> float | None:
    """The shop's expected lifetime in months from the churn of the last full month before as_of;
    None when it cannot be told (no active customers then, or nobody lost: unbounded)."""
    since, until = last_full_month(as_of)
    return retention_over(engine, since, until, rule=rule).lifetime_months


def period_months(since: datetime, until: datetime) -> float:
    return (to_epoch(until) - to_epoch(since)) / SECONDS_PER_DAY / AVERAGE_MONTH_DAYS


def retention_over(
    engine: Engine,
    since: datetime,
    until: datetime,
    *,
    margin: float = DEFAULT_MARGIN,
    currency: str = "RUB",
    rule: LapseRule = LapseRule(),
) -> Retention:
    """Head counts, churn, lifetime, order figures, LTV and win-back benefit over [since, until)."""
    if not since < until:
        raise ValueError(f"the period must start before it ends: {since} .. {until}")
    if not 0 < margin <= 1:
        raise ValueError(f"margin must be a share in (0, 1], got {margin}")
    with engine.connect() as connection:
        before = customers_at(connection, since, rule)
        after = customers_at(connection, until, rule)
        orders, revenue = _orders_between(connection, since, until)
    start_ids = before.customer_id[before.active]
    is_new = after.first_order_epoch >= to_epoch(since)
    was_active = np.isin(after.customer_id, start_ids, assume_unique=True)
    start = int(start_ids.size)
    end = int(after.active.sum())
    new = int(is_new.sum())
    new_active = int((is_new & after.active).sum())
    kept = int((was_active & after.active).sum())
    returned = end - kept - new_active
    months = period_months(since, until)
    churn = retention = monthly_churn = lifetime = None
    if start:
        counts = period_retention(start, kept + new_active, new_active)
        churn, retention = counts.churn, counts.retention
        monthly_churn = churn / months
        lifetime = average_lifetime(churn)
        lifetime = None if lifetime is None else lifetime * months
    base = (start + end) / 2
    per_month = orders / base / months if base else None
    average_order = revenue / orders if orders else None
    margin_per_order = None if average_order is None else average_order * margin
    value = None
    if margin_per_order is not None and per_month is not None:
        value = ltv(margin_per_order, per_month, lifetime)
    benefit = None
    lost_mask = was_active & ~after.active
    if lifetime is not None and lost_mask.any():
        benefits = customer_win_back_benefit(
            after.orders[lost_mask].astype(np.float64),
            after.revenue_minor[lost_mask].astype(np.float64),
            after.first_order_epoch[lost_mask].astype(np.float64),
            after.last_order_epoch[lost_mask].astype(np.float64),
            after.expected_gap_days[lost_mask],
            margin,
            lifetime,
        )
        benefit = float(np.mean(benefits))
    return Retention(
        since=since,
        until=until,
        months=months,
        start=start,
        end=end,
        new=new,
        new_active=new_active,
        kept=kept,
        lost=start - kept,
        returned=returned,
        churn=churn,
        retention=retention,
        monthly_churn=monthly_churn,
        lifetime_months=lifetime,
        orders=orders,
        revenue_minor=revenue,
        orders_per_month=per_month,
        average_order_minor=average_order,
        margin=margin,
        margin_per_order_minor=margin_per_order,
        ltv_minor=value,
        win_back_benefit_minor=benefit,
        currency=currency,
    )


def _orders_between(connection: Connection, since: datetime, until: datetime) -> tuple[int, int]:
    """(non-void orders, their amount_minor sum) placed in [since, until)."""
    count, total = connection.execute(
        select(
            func.count(), func.coalesce(func.sum(type_coerce(Order.amount_minor, Integer)), 0)
        ).where(
            Order.placed_at >= since,
            Order.placed_at < until,
            Order.status.not_in(VOID_ORDER_STATUSES),
        )
    ).one()
    return int(count), int(total)
