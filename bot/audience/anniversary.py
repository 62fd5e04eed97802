"""Anniversary: customers whose first order was on this local day of the year, years ago."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

from sqlalchemy import Engine

from bot.audience.candidates import candidates_query, member, month_days, zone_of
from bot.audience.cohort import Cohort, CohortMember, split_excluded
from bot.audience.exclusions import Exclusions
from bot.audience.rhythm import read_rhythm_arrays, rhythm_as_of
from bot.audience.sql import month_day_of_epoch
from bot.audience.value import value_classes


def falls_on(anniversary: date, today: date) -> bool:
    """Same month and day; 29 February is celebrated on 28 February in non-leap years."""
    if (anniversary.month, anniversary.day) == (today.month, today.day):
        return True
    return (
        (anniversary.month, anniversary.day) == (2, 29)
        and (today.month, today.day) == (2, 28)
        and not calendar.isleap(today.year)
    )


def anniversary_cohort(
    engine: Engine,
    as_of: datetime,
    *,
    years: int | None = None,
    exclusions: Exclusions = Exclusions(),
    default_zone: str = "Europe/Moscow",
) -> Cohort:
    """First order's local month and day equal as_of's, a year or more ago (exactly `years`)."""
    utc_day = as_of.date()
    # Local "today" is within a day of the UTC date, the local first-order date within a day of its
    # UTC date: candidates by UTC month-day over +-2 days, then the exact check per customer zone.
    wanted = month_days(utc_day - timedelta(days=2), utc_day + timedelta(days=2))
    with engine.connect() as connection, rhythm_as_of(connection, as_of) as rhythm:
        classes = value_classes(read_rhythm_arrays(connection, rhythm, as_of))
        month_day = month_day_of_epoch(connection.dialect.name, rhythm.c.first_order_at)
        query = (
            candidates_query(
                rhythm,
                as_of,
                exclusions,
                customers_without_orders=False,
            )
            .where(month_day.in_(sorted(wanted)))
            .order_by(rhythm.c.customer_id)
        )
        rows = connection.execute(query).all()
    candidates: list[tuple[CohortMember, str | None]] = []
    for row in rows:
        zone = zone_of(row, default_zone)
        first = row.first_order_at.astimezone(zone).date()
        today = as_of.astimezone(zone).date()
        age = today.year - first.year
        if not falls_on(first, today) or age < 1 or (years is not None and age != years):
            continue
        reason = f"{age} year{'s' if age > 1 else ''} since the first order ({first.isoformat()})"
        candidates.append((member(row, as_of, reason, classes), row.excluded_by))
    return split_excluded("anniversary", as_of, candidates, exclusions)
