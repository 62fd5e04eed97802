"""Post-order: customers whose order arrived a few local days ago and who were not asked yet."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Engine, Table, and_, func, type_coerce

from bot.audience.candidates import (
    WIDEN,
    candidates_query,
    local_days_between,
    member,
    zone_of,
)
from bot.audience.cohort import Cohort, split_excluded
from bot.audience.exclusions import Exclusions
from bot.audience.rhythm import read_rhythm_arrays, rhythm_as_of
from bot.audience.value import value_classes
from bot.db.models import VOID_ORDER_STATUSES, Order
from bot.db.types import from_epoch, to_epoch

ORDERS: Table = Order.__table__  # type: ignore[assignment]
MIN_DAYS = 2
MAX_DAYS = 7


def post_order_cohort(
    engine: Engine,
    as_of: datetime,
    *,
    min_days: int = MIN_DAYS,
    max_days: int = MAX_DAYS,
    exclusions: Exclusions = Exclusions(),
    default_zone: str = "Europe/Moscow",
) -> Cohort:
    """Orders delivered (placed, when never marked delivered) min_days..max_days local days ago.

    Days are counted on the customer's local calendar, both ends inclusive; void orders and
    orders already asked about (feedback_requested_at set) are skipped. One member per customer:
    their most recent such order.
    """
    event = func.coalesce(
        type_coerce(ORDERS.c.delivered_at, BigInteger), type_coerce(ORDERS.c.placed_at, BigInteger)
    )
    earliest = to_epoch(as_of - timedelta(days=max_days) - WIDEN)
    latest = to_epoch(as_of - timedelta(days=min_days) + WIDEN)
    with engine.connect() as connection, rhythm_as_of(connection, as_of) as rhythm:
        classes = value_classes(read_rhythm_arrays(connection, rhythm, as_of))
        base = candidates_query(
            rhythm,
            as_of,
            exclusions,
            customers_without_orders=False,
        )
        query = (
            base.add_columns(
                ORDERS.c.external_id.label("order_external_id"), event.label("event_at")
            )
            .join(ORDERS, ORDERS.c.customer_id == rhythm.c.customer_id)
            .where(
                and_(
                    ORDERS.c.status.not_in(VOID_ORDER_STATUSES),
                    ORDERS.c.feedback_requested_at.is_(None),
                    ORDERS.c.placed_at < as_of,
                    event >= earliest,
                    event <= latest,
                )
            )
            .order_by(event.desc(), ORDERS.c.id.desc())
        )
        rows = connection.execute(query).all()
    chosen: dict[int, tuple[object, str | None]] = {}
    for row in rows:
        if row.id in chosen:
            continue
        event_at = from_epoch(int(row.event_at))
        days = local_days_between(event_at, as_of, zone_of(row, default_zone))
        if not min_days <= days <= max_days:
            continue
        chosen[row.id] = (
            member(
                row,
                as_of,
                f"order {row.order_external_id} delivered {days} days ago",
                classes,
                order_external_id=row.order_external_id,
                delivered_at=event_at,
            ),
            row.excluded_by,
        )
    return split_excluded("post-order", as_of, chosen.values(), exclusions)  # type: ignore[arg-type]
