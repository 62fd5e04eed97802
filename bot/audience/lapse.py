"""Lapsed customers: longer since the last order than `factor` x their usual gap between orders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Float,
    Table,
    and_,
    case,
    func,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.sql.elements import ColumnElement

from bot.audience.alive import fit_alive_model
from bot.audience.cohort import Cohort, CohortMember
from bot.audience.exclusions import Exclusions, exclusion_reason
from bot.audience.rhythm import rhythm_as_of
from bot.audience.sql import median
from bot.audience.value import value_classes
from bot.db.models import Customer
from bot.db.types import SECONDS_PER_DAY, to_epoch

CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class LapseRule:
    factor: float = 4 / 3
    """Lapsed when days since the last order exceed factor x the expected gap."""
    min_orders: int = 3
    """Purchase days needed before a customer's own median gap is trusted (else the shop's)."""


def shop_median_gap(connection: Connection, rhythm: Table) -> float | None:
    """The median of the customers' median gaps (customers with at least two purchase days)."""
    gap = rhythm.c.median_gap_days
    value = connection.execute(
        select(median(connection.dialect.name, gap)).where(gap.is_not(None))
    ).scalar()
    return None if value is None else float(value)


def lapse_columns(
    rhythm: Table, as_of: datetime, rule: LapseRule, shop_median: float | None
) -> tuple[ColumnElement[Any], ColumnElement[Any], ColumnElement[Any], ColumnElement[bool]]:
    """SQL: (own median used?, expected gap in days, seconds since last order, lapsed?)."""
    own = and_(rhythm.c.purchase_days >= rule.min_orders, rhythm.c.median_gap_days.is_not(None))
    expected = case((own, rhythm.c.median_gap_days), else_=literal(shop_median, Float))
    since = literal(to_epoch(as_of), BigInteger) - type_coerce(rhythm.c.last_order_at, BigInteger)
    lapsed = since > literal(rule.factor, Float) * expected * SECONDS_PER_DAY
    return case((own, True), else_=False), expected, since, lapsed


def lapsed(
    engine: Engine,
    as_of: datetime,
    rule: LapseRule = LapseRule(),
    exclusions: Exclusions = Exclusions(),
) -> list[CohortMember]:
    """Lapsed customers as of `as_of`, exclusions applied, most valuable first."""
    return lapsed_cohort(engine, as_of, rule, exclusions).members


def lapsed_cohort(
    engine: Engine,
    as_of: datetime,
    rule: LapseRule = LapseRule(),
    exclusions: Exclusions = Exclusions(),
) -> Cohort:
    with engine.connect() as connection, rhythm_as_of(connection, as_of) as rhythm:
        shop_median = shop_median_gap(connection, rhythm)
        if shop_median is None:
            return Cohort(
                "lapsed", as_of, [], {}, "no customer has two purchase days: no gap to go by"
            )
        values = value_classes(rhythm).subquery("value")
        own, expected, since, is_lapsed = lapse_columns(rhythm, as_of, rule, shop_median)
        reason = exclusion_reason(exclusions, CUSTOMERS, as_of, values.c.priority, True)
        candidates = (
            select(
                CUSTOMERS.c.id,
                CUSTOMERS.c.external_id,
                CUSTOMERS.c.name,
                rhythm.c.orders,
                rhythm.c.last_order_at,
                since.label("since"),
                expected.label("expected"),
                own.label("own"),
                values.c.abc,
                values.c.xyz,
                values.c.priority,
                rhythm.c.revenue_minor,
                reason.label("excluded_by"),
            )
            .select_from(rhythm)
            .join(CUSTOMERS, CUSTOMERS.c.id == rhythm.c.customer_id)
            .join(values, values.c.customer_id == rhythm.c.customer_id)
            .where(is_lapsed)
        ).subquery("candidates")
        counts = connection.execute(
            select(candidates.c.excluded_by, func.count())
            .where(candidates.c.excluded_by.is_not(None))
            .group_by(candidates.c.excluded_by)
        ).all()
        rows = connection.execute(
            select(candidates)
            .where(candidates.c.excluded_by.is_(None))
            .order_by(candidates.c.revenue_minor.desc(), candidates.c.id)
        ).all()
        model = fit_alive_model(connection, rhythm, as_of)
    p_alive = model.p_alive_by_customer(row.id for row in rows)
    members = []
    for row in rows:
        days = row.since / SECONDS_PER_DAY
        source = "own median gap" if row.own else "shop median gap"
        members.append(
            CohortMember(
                customer_id=row.id,
                external_id=row.external_id,
                name=row.name,
                reason=(
                    f"{days:.0f} days since last order > {rule.factor:.2f} x "
                    f"{row.expected:.1f} days ({source})"
                ),
                orders=row.orders,
                last_order_at=row.last_order_at,
                days_since_last_order=days,
                expected_gap_days=float(row.expected),
                p_alive=p_alive.get(row.id),
                abc=row.abc,
                xyz=row.xyz,
                priority=row.priority,
            )
        )
    excluded = {str(reason): int(count) for reason, count in counts}
    return Cohort("lapsed", as_of, members, excluded, model.reason)
