"""Shared shape of a calendar audience query: customer, rhythm, value class, exclusion reason."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, Table, select

from bot.audience.cohort import CohortMember
from bot.audience.exclusions import Exclusions, exclusion_reason
from bot.audience.value import ValueClasses
from bot.customers.zone import customer_zone
from bot.db.models import Customer
from bot.db.types import SECONDS_PER_DAY

CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]
WIDEN = timedelta(days=2)
"""SQL selects candidates in a UTC window widened by this much on each side (UTC-12..UTC+14 and
a DST hour fit well inside); Python then keeps exactly the customers whose local dates match."""


def candidates_query(
    rhythm: Table,
    as_of: datetime,
    exclusions: Exclusions,
    *,
    customers_without_orders: bool,
) -> Select[Any]:
    """customers joined to their rhythm, with the `excluded_by` reason column."""
    reason = exclusion_reason(exclusions, CUSTOMERS, as_of, False)
    query = select(
        CUSTOMERS.c.id,
        CUSTOMERS.c.external_id,
        CUSTOMERS.c.name,
        CUSTOMERS.c.time_zone,
        CUSTOMERS.c.phone,
        rhythm.c.orders,
        rhythm.c.first_order_at,
        rhythm.c.last_order_at,
        rhythm.c.revenue_minor,
        rhythm.c.monthly_cv,
        reason.label("excluded_by"),
    )
    if customers_without_orders:
        return query.select_from(CUSTOMERS).outerjoin(
            rhythm, rhythm.c.customer_id == CUSTOMERS.c.id
        )
    return query.select_from(rhythm).join(CUSTOMERS, CUSTOMERS.c.id == rhythm.c.customer_id)


def zone_of(row: Any, default_zone: str) -> ZoneInfo:
    return customer_zone(row.time_zone, row.phone, default_zone)


def local_days_between(earlier: datetime, later: datetime, zone: ZoneInfo) -> int:
    """Calendar days from `earlier` to `later` as the customer's wall calendar counts them."""
    return (later.astimezone(zone).date() - earlier.astimezone(zone).date()).days


def member(
    row: Any, as_of: datetime, reason: str, classes: ValueClasses, **extra: Any
) -> CohortMember:
    last = row.last_order_at
    abc = xyz = priority = None
    if row.revenue_minor is not None:
        abc, xyz, priority = classes.classify(row.revenue_minor, row.id, row.monthly_cv)
    return CohortMember(
        customer_id=row.id,
        external_id=row.external_id,
        name=row.name,
        reason=reason,
        orders=row.orders,
        last_order_at=last,
        days_since_last_order=(
            None if last is None else (as_of - last).total_seconds() / SECONDS_PER_DAY
        ),
        abc=abc,
        xyz=xyz,
        priority=priority,
        **extra,
    )


def month_days(first: date, last: date) -> set[int]:
    """month * 100 + day of every date from first to last, with 229 when 28 Feb or 1 Mar is in."""
    found: set[int] = set()
    day = first
    while day <= last:
        found.add(day.month * 100 + day.day)
        day += timedelta(days=1)
    if found & {228, 301}:
        found.add(229)
    return found
