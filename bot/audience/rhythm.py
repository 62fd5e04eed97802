"""Per-customer buying rhythm: a snapshot table refreshed by SQL, and the same SQL as of a past day.

Every audience reads `customer_rhythm` (one row per customer with a non-void order) instead of
scanning orders: a median gap per customer costs ~46 s by window functions over 9.5M orders, so it
is computed once per refresh. For an as-of date earlier than the snapshot's newest order the same
SQL runs with a cutoff into a temporary table (`rhythm_as_of`): backtests see only earlier orders.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    MetaData,
    Table,
    bindparam,
    delete,
    exists,
    func,
    select,
    text,
    type_coerce,
)
from sqlalchemy.sql.elements import TextClause

from bot.audience.sql import ensure_sqrt, median_sql, month_index_sql
from bot.db.models import VOID_ORDER_STATUSES, CustomerRhythm, Order
from bot.db.raw import fetch_tuples
from bot.db.types import SECONDS_PER_DAY, to_epoch

REFRESH_BATCH = 5_000
RHYTHM: Table = CustomerRhythm.__table__  # type: ignore[assignment]
RHYTHM_COLUMNS = (
    "customer_id",
    "orders",
    "purchase_days",
    "first_order_at",
    "last_order_at",
    "first_delivered_at",
    "median_gap_days",
    "revenue_minor",
    "monthly_cv",
)


def refresh_rhythm(engine: Engine, customer_ids: Collection[int] | None = None) -> None:
    """Recompute the rhythm of the given customers (all when None) from their orders."""
    with engine.begin() as connection:
        ensure_sqrt(connection)
        if customer_ids is None:
            connection.execute(delete(RHYTHM))
            connection.execute(_rhythm_insert(connection.dialect.name, RHYTHM.name, None, False))
            return
        ids = sorted(set(customer_ids))
        for start in range(0, len(ids), REFRESH_BATCH):
            batch = ids[start : start + REFRESH_BATCH]
            connection.execute(delete(RHYTHM).where(RHYTHM.c.customer_id.in_(batch)))
            statement = _rhythm_insert(connection.dialect.name, RHYTHM.name, None, True)
            connection.execute(statement, {"ids": batch})


@contextmanager
def rhythm_as_of(connection: Connection, as_of: datetime) -> Iterator[Table]:
    """The rhythm table to read for `as_of`: the snapshot, or a temporary one cut off at as_of.

    The snapshot is used when all its orders were placed before as_of; otherwise (a backtest, or a
    snapshot never built) the same SQL runs over raw orders placed before as_of.
    """
    newest = connection.execute(select(func.max(RHYTHM.c.last_order_at))).scalar()
    if newest is not None and newest < as_of:
        yield RHYTHM
        return
    if newest is None and not connection.execute(select(exists().select_from(Order))).scalar():
        yield RHYTHM
        return
    ensure_sqrt(connection)
    temporary = _temporary_rhythm_table()
    temporary.drop(connection, checkfirst=True)
    temporary.create(connection)
    try:
        statement = _rhythm_insert(connection.dialect.name, temporary.name, as_of, False)
        connection.execute(statement, {"cutoff": to_epoch(as_of)})
        yield temporary
    finally:
        temporary.drop(connection)


@dataclass(frozen=True)
class RhythmArrays:
    """The rhythm snapshot as columns, one element per customer, sorted by customer id.

    Audiences read the snapshot once this way and take from it the shop's median gap, the ABC cut
    points and the BG/NBD inputs (frequency, recency, age on the purchase-day grid, in days).
    """

    customer_id: npt.NDArray[np.int64]
    orders: npt.NDArray[np.int64]
    first_order_epoch: npt.NDArray[np.int64]
    last_order_epoch: npt.NDArray[np.int64]
    median_gap_days: npt.NDArray[np.float64]
    """NaN for customers with a single purchase day."""
    revenue_minor: npt.NDArray[np.int64]
    monthly_cv: npt.NDArray[np.float64]
    frequency: npt.NDArray[np.float64]
    """Repeat purchase days: purchase_days - 1."""
    recency_days: npt.NDArray[np.float64]
    """Days from the first purchase day to the last (UTC calendar days)."""
    age_days: npt.NDArray[np.float64]
    """Days from the start of the first purchase day to as_of."""

    def positions(self, customer_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Index of each given customer (all must be present)."""
        return np.searchsorted(self.customer_id, customer_ids).astype(np.int64)


def frequency_recency_age(engine: Engine, as_of: datetime) -> RhythmArrays:
    """Frequency, recency and age of every customer with orders placed before as_of."""
    with engine.connect() as connection, rhythm_as_of(connection, as_of) as rhythm:
        return read_rhythm_arrays(connection, rhythm, as_of)


def read_rhythm_arrays(connection: Connection, rhythm: Table, as_of: datetime) -> RhythmArrays:
    """One read of the snapshot as raw numbers: a million customers in about a second.

    Purchases are counted per UTC calendar day, so recency is whole days between the first and the
    last purchase day, and age runs from the start of the first purchase day to as_of. This keeps
    recency 0 for one-day buyers (several orders on one day) and recency <= age always.
    """
    rows = fetch_tuples(
        connection,
        select(
            rhythm.c.customer_id,
            rhythm.c.orders,
            rhythm.c.purchase_days,
            type_coerce(rhythm.c.first_order_at, BigInteger),
            type_coerce(rhythm.c.last_order_at, BigInteger),
            rhythm.c.revenue_minor,
            rhythm.c.median_gap_days,
            rhythm.c.monthly_cv,
        )
        .where(rhythm.c.first_order_at < as_of)
        .order_by(rhythm.c.customer_id),
    )
    columns = list(zip(*rows, strict=True)) if rows else [()] * 8
    whole = [np.array(columns[i], dtype=np.int64) for i in range(6)]
    customer_id, orders, purchase_days, first_epoch, last_epoch, revenue = whole
    # None (no gap, no regularity) becomes NaN.
    median_gap = np.array(columns[6], dtype=np.float64)
    monthly_cv = np.array(columns[7], dtype=np.float64)
    first_day = first_epoch // SECONDS_PER_DAY
    last_day = last_epoch // SECONDS_PER_DAY
    return RhythmArrays(
        customer_id=customer_id,
        orders=orders,
        first_order_epoch=first_epoch,
        last_order_epoch=last_epoch,
        median_gap_days=median_gap,
        revenue_minor=revenue,
        monthly_cv=monthly_cv,
        frequency=(purchase_days - 1).astype(np.float64),
        recency_days=(last_day - first_day).astype(np.float64),
        age_days=(to_epoch(as_of) - first_day * SECONDS_PER_DAY) / SECONDS_PER_DAY,
    )


def _temporary_rhythm_table() -> Table:
    columns = [Column(c.name, c.type, primary_key=c.primary_key) for c in RHYTHM.columns]
    return Table("rhythm_as_of", MetaData(), *columns, prefixes=["TEMPORARY"])


def _rhythm_insert(dialect: str, target: str, cutoff: datetime | None, by_ids: bool) -> TextClause:
    """INSERT ... SELECT computing the rhythm from orders; one statement for every use."""
    void = ", ".join(f"'{status}'" for status in VOID_ORDER_STATUSES)
    conditions = [f"status NOT IN ({void})"]
    if cutoff is not None:
        conditions.append("placed_at < :cutoff")
    if by_ids:
        conditions.append("customer_id IN :ids")
    where = " AND ".join(conditions)
    first_delivered = f"""(SELECT f.delivered_at FROM orders f
        WHERE f.customer_id = t.customer_id AND f.placed_at = t.first_order_at
          AND f.status NOT IN ({void})
        ORDER BY f.id LIMIT 1)"""
    build = _sqlite_sql if dialect == "sqlite" else _postgresql_sql
    statement = text(build(target, where, first_delivered))
    if by_ids:
        statement = statement.bindparams(bindparam("ids", expanding=True))
    return statement


def _sqlite_sql(target: str, where: str, first_delivered: str) -> str:
    """One GROUP BY over the (customer_id, placed_at) index; the day list goes to Python.

    `group_concat` of the order days per customer costs about as much as the totals themselves,
    and the registered `rhythm_*` functions (bot.db.sqlite_functions) derive purchase days, the
    median gap and the monthly CV from it, several times cheaper than DISTINCT + LAG + median()
    and a month GROUP BY in SQLite. The figures equal PostgreSQL's.
    """
    return f"""
INSERT INTO {target} ({", ".join(RHYTHM_COLUMNS)})
SELECT t.customer_id, t.orders, rhythm_purchase_days(t.days), t.first_order_at, t.last_order_at,
       {first_delivered},
       rhythm_median_gap(t.days), t.revenue_minor, rhythm_monthly_cv(t.days)
FROM (
    SELECT customer_id, COUNT(*) AS orders,
           MIN(placed_at) AS first_order_at, MAX(placed_at) AS last_order_at,
           SUM(amount_minor) AS revenue_minor, group_concat(placed_at / {SECONDS_PER_DAY}) AS days
    FROM orders WHERE {where} GROUP BY customer_id
) t
"""


def _postgresql_sql(target: str, where: str, first_delivered: str) -> str:
    """Distinct (customer, day) rows, gaps by LAG, percentile_cont, and a month GROUP BY."""
    day = SECONDS_PER_DAY
    return f"""
INSERT INTO {target} ({", ".join(RHYTHM_COLUMNS)})
WITH o0 AS (
    SELECT customer_id, placed_at, amount_minor, placed_at / {day} AS day
    FROM orders WHERE {where}
),
o AS (SELECT customer_id, placed_at, amount_minor, day, {month_index_sql("day")} AS month FROM o0),
totals AS (
    SELECT customer_id, COUNT(*) AS orders, COUNT(DISTINCT day) AS purchase_days,
           MIN(placed_at) AS first_order_at, MAX(placed_at) AS last_order_at,
           SUM(amount_minor) AS revenue_minor, MAX(month) AS last_month
    FROM o GROUP BY customer_id
),
days AS (SELECT DISTINCT customer_id, day FROM o),
gaps AS (
    SELECT customer_id, day - LAG(day) OVER (PARTITION BY customer_id ORDER BY day) AS gap
    FROM days
),
medians AS (
    SELECT customer_id, {median_sql("postgresql", "gap")} AS median_gap_days
    FROM gaps WHERE gap IS NOT NULL GROUP BY customer_id
),
months AS (
    SELECT o.customer_id, o.month, COUNT(*) AS n
    FROM o JOIN totals t ON t.customer_id = o.customer_id
    WHERE o.month > t.last_month - 12
    GROUP BY o.customer_id, o.month
),
spread AS (
    SELECT customer_id,
           CAST(SUM(n) AS DOUBLE PRECISION) AS s, CAST(SUM(n * n) AS DOUBLE PRECISION) AS ss
    FROM months GROUP BY customer_id
)
SELECT t.customer_id, t.orders, t.purchase_days, t.first_order_at, t.last_order_at,
       {first_delivered},
       CAST(m.median_gap_days AS DOUBLE PRECISION),
       t.revenue_minor,
       sqrt(CASE WHEN 12.0 * sp.ss / (sp.s * sp.s) > 1.0
                 THEN 12.0 * sp.ss / (sp.s * sp.s) - 1.0 ELSE 0.0 END)
FROM totals t
JOIN spread sp ON sp.customer_id = t.customer_id
LEFT JOIN medians m ON m.customer_id = t.customer_id
"""
