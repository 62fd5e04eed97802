"""Welcome: one-order customers whose first order arrived a few local days ago."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine

from bot.audience.candidates import WIDEN, candidates_query, local_days_between, member, zone_of
from bot.audience.cohort import Cohort, CohortMember, split_excluded
from bot.audience.exclusions import Exclusions
from bot.audience.rhythm import read_rhythm_arrays, rhythm_as_of
from bot.audience.value import value_classes

MIN_DAYS = 0
MAX_DAYS = 3


def welcome_cohort(
    engine: Engine,
    as_of: datetime,
    *,
    min_days: int = MIN_DAYS,
    max_days: int = MAX_DAYS,
    exclusions: Exclusions = Exclusions(),
    default_zone: str = "Europe/Moscow",
) -> Cohort:
    """Exactly one non-void order, delivered min_days..max_days local days ago (inclusive)."""
    with engine.connect() as connection, rhythm_as_of(connection, as_of) as rhythm:
        classes = value_classes(read_rhythm_arrays(connection, rhythm, as_of))
        delivered = rhythm.c.first_delivered_at
        query = (
            candidates_query(
                rhythm,
                as_of,
                exclusions,
                customers_without_orders=False,
            )
            .add_columns(delivered.label("delivered_at"))
            .where(
                rhythm.c.orders == 1,
                delivered >= as_of - timedelta(days=max_days) - WIDEN,
                delivered <= as_of - timedelta(days=min_days) + WIDEN,
            )
            .order_by(rhythm.c.customer_id)
        )
        rows = connection.execute(query).all()
    candidates: list[tuple[CohortMember, str | None]] = []
    for row in rows:
        days = local_days_between(row.delivered_at, as_of, zone_of(row, default_zone))
        if min_days <= days <= max_days:
            reason = f"first order delivered {days} days ago"
            candidates.append(
                (
                    member(row, as_of, reason, classes, delivered_at=row.delivered_at),
                    row.excluded_by,
                )
            )
    return split_excluded("welcome", as_of, candidates, exclusions)
