"""Birthday: customers whose birthday is today on their local calendar (or within a few days)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import Engine

from bot.audience.anniversary import falls_on
from bot.audience.candidates import CUSTOMERS, candidates_query, member, month_days, zone_of
from bot.audience.cohort import Cohort, CohortMember, split_excluded
from bot.audience.exclusions import Exclusions
from bot.audience.rhythm import read_rhythm_arrays, rhythm_as_of
from bot.audience.sql import month_day_of_date
from bot.audience.value import value_classes


def birthday_cohort(
    engine: Engine,
    as_of: datetime,
    *,
    days_ahead: int = 0,
    exclusions: Exclusions = Exclusions(),
    default_zone: str = "Europe/Moscow",
) -> Cohort:
    """Birthday (month and day; 29 Feb -> 28 Feb in non-leap years) from local today to +days_ahead.

    Customers without orders are included too; their value columns are blank.
    """
    utc_day = as_of.date()
    wanted = month_days(utc_day - timedelta(days=1), utc_day + timedelta(days=days_ahead + 1))
    with engine.connect() as connection, rhythm_as_of(connection, as_of) as rhythm:
        classes = value_classes(read_rhythm_arrays(connection, rhythm, as_of))
        month_day = month_day_of_date(connection.dialect.name, CUSTOMERS.c.birthday)
        query = (
            candidates_query(
                rhythm,
                as_of,
                exclusions,
                customers_without_orders=True,
            )
            .add_columns(CUSTOMERS.c.birthday)
            .where(CUSTOMERS.c.birthday.is_not(None), month_day.in_(sorted(wanted)))
            .order_by(CUSTOMERS.c.id)
        )
        rows = connection.execute(query).all()
    candidates: list[tuple[CohortMember, str | None]] = []
    for row in rows:
        today = as_of.astimezone(zone_of(row, default_zone)).date()
        ahead = _days_until(row.birthday, today, days_ahead)
        if ahead is None:
            continue
        reason = "birthday today" if ahead == 0 else f"birthday in {ahead} days"
        candidates.append((member(row, as_of, reason, classes), row.excluded_by))
    return split_excluded("birthday", as_of, candidates, exclusions)


def _days_until(birthday: date, today: date, days_ahead: int) -> int | None:
    for offset in range(days_ahead + 1):
        if falls_on(birthday, today + timedelta(days=offset)):
            return offset
    return None
