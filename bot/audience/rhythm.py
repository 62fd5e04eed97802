"""Per-customer buying rhythm: a snapshot table refreshed from orders, and the same as of a day.

Every audience reads `customer_rhythm` (one row per customer with a non-void order) instead of
scanning orders: a median gap per customer costs ~46 s by window functions over 9.5M orders, so it
is computed once per refresh. PostgreSQL computes it with one INSERT .. SELECT; SQLite with one
GROUP BY and numpy (`rhythm_figures`), to the same figures. For an as-of date earlier than the
snapshot's newest order the same computation runs with a cutoff into a temporary table
(`rhythm_as_of`): backtests see only earlier orders.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
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

from bot.audience.sql import median_sql, month_index_sql
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
        if customer_ids is None:
            connection.execute(delete(RHYTHM))
            _compute_rhythm(connection, RHYTHM.name, None, None)
            return
        ids = sorted(set(customer_ids))
        for start in range(0, len(ids), REFRESH_BATCH):
            batch = ids[start : start + REFRESH_BATCH]
            connection.execute(delete(RHYTHM).where(RHYTHM.c.customer_id.in_(batch)))
            _compute_rhythm(connection, RHYTHM.name, None, batch)


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
    temporary = _temporary_rhythm_table()
    temporary.drop(connection, checkfirst=True)
    temporary.create(connection)
    try:
        _compute_rhythm(connection, temporary.name, to_epoch(as_of), None)
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


def _compute_rhythm(
    connection: Connection, target: str, cutoff: int | None, ids: list[int] | None
) -> None:
    """Insert into `target` the rhythm of the customers with orders (only `ids` when given)
    from their non-void orders placed before `cutoff` (all when None): one code path for the
    snapshot, the by-ids refresh and the as-of table.
    """
    if connection.dialect.name == "sqlite":
        _sqlite_rhythm(connection, target, cutoff, ids)
        return
    statement = text(_postgresql_sql(target, _where(":cutoff", ":ids", cutoff, ids)))
    params: dict[str, object] = {}
    if cutoff is not None:
        params["cutoff"] = cutoff
    if ids is not None:
        statement = statement.bindparams(bindparam("ids", expanding=True))
        params["ids"] = ids
    connection.execute(statement, params)


_VOID = ", ".join(f"'{status}'" for status in VOID_ORDER_STATUSES)
# delivered_at of the first non-void order of customer t (ties on placed_at: the lowest id).
_FIRST_DELIVERED = f"""(SELECT f.delivered_at FROM orders f
        WHERE f.customer_id = t.customer_id AND f.placed_at = t.first_order_at
          AND f.status NOT IN ({_VOID})
        ORDER BY f.id LIMIT 1)"""
# Customers whose figures are computed in one go on SQLite (bounds the memory of the arrays).
SQLITE_CHUNK = 200_000


def _where(cutoff_param: str, ids_param: str, cutoff: int | None, ids: list[int] | None) -> str:
    conditions = [f"status NOT IN ({_VOID})"]
    if cutoff is not None:
        conditions.append(f"placed_at < {cutoff_param}")
    if ids is not None:
        conditions.append(f"customer_id IN {ids_param}")
    return " AND ".join(conditions)


def _sqlite_rhythm(
    connection: Connection, target: str, cutoff: int | None, ids: list[int] | None
) -> None:
    """One GROUP BY over the (customer_id, placed_at) index; the rest in numpy.

    SQLite has no percentile function, and DISTINCT + LAG + a Python median() aggregate plus a
    month GROUP BY cost ~60 s for 10M orders. Here SQLite only aggregates per customer (counts,
    first/last, revenue, first delivery and `group_concat` of the order days, which costs about as
    much as the counts), and `rhythm_figures` derives purchase days, the median gap and the
    monthly CV for a chunk of customers at a time with array operations. Same figures as the
    PostgreSQL SQL, to the bit.
    """
    where = _where("?", "(SELECT value FROM json_each(?))", cutoff, ids)
    params: list[object] = []
    if cutoff is not None:
        params.append(cutoff)
    if ids is not None:
        params.append(json.dumps(ids))
    select_sql = f"""
SELECT t.customer_id, t.orders, t.first_order_at, t.last_order_at, {_FIRST_DELIVERED},
       t.revenue_minor, t.days
FROM (
    SELECT customer_id, COUNT(*) AS orders,
           MIN(placed_at) AS first_order_at, MAX(placed_at) AS last_order_at,
           SUM(amount_minor) AS revenue_minor, group_concat(placed_at / {SECONDS_PER_DAY}) AS days
    FROM orders WHERE {where} GROUP BY customer_id
) t
"""
    placeholders = ", ".join("?" * len(RHYTHM_COLUMNS))
    insert_sql = f"INSERT INTO {target} ({', '.join(RHYTHM_COLUMNS)}) VALUES ({placeholders})"
    result = connection.exec_driver_sql(select_sql, tuple(params))
    cursor = result.cursor
    assert cursor is not None
    try:
        while chunk := cursor.fetchmany(SQLITE_CHUNK):
            customer, orders, first, last, delivered, revenue, days = zip(*chunk, strict=True)
            purchase_days, median, cv = rhythm_figures(np.array(orders, dtype=np.int64), days)
            medians = [None if m != m else m for m in median.tolist()]  # NaN: no gap
            rows = zip(
                customer,
                orders,
                purchase_days.tolist(),
                first,
                last,
                delivered,
                medians,
                revenue,
                cv.tolist(),
                strict=True,
            )
            connection.exec_driver_sql(insert_sql, list(rows))
    finally:
        result.close()


def month_index(days: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Calendar month (year * 12 + month - 1) of day numbers (days since 1970-01-01).

    The integer formula `month_index_sql` writes in SQL (Howard Hinnant's civil_from_days); the
    same months as the calendar for every day from year 0 on.
    """
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    month: npt.NDArray[np.int64] = (era * 400 + yoe) * 12 + (5 * doy + 2) // 153 + 2
    return month


_SHIFT = np.int64(2**32)
_DAY_OFFSET = np.int64(2**31)


def rhythm_figures(
    orders: npt.NDArray[np.int64], days_texts: Sequence[str]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """purchase_days, median_gap_days (NaN below two purchase days) and monthly_cv per customer.

    `days_texts[i]` is `group_concat(day)` of customer i: `orders[i]` day numbers (UTC days since
    1970-01-01), one per order, in any order. Purchase days are the distinct days; the median
    gap is the median of the gaps between consecutive purchase days; monthly_cv uses the order
    counts per calendar month over the 12 months ending with the last order's month, zero months
    included (population std / mean), with the floating-point operations of the PostgreSQL SQL
    in the same order, so both backends store the same bits.
    """
    n = len(orders)
    total = int(orders.sum())
    days = np.fromiter(map(int, ",".join(days_texts).split(",")), dtype=np.int64, count=total)
    customer = np.repeat(np.arange(n, dtype=np.int64), orders)
    ends = np.cumsum(orders)
    same = customer[1:] == customer[:-1]
    if bool(np.any((days[1:] < days[:-1]) & same)):
        # group_concat follows the index order in practice, but SQLite does not promise it.
        days = np.sort(customer * _SHIFT + (days + _DAY_OFFSET)) % _SHIFT - _DAY_OFFSET
    new_day = np.ones(total, dtype=bool)
    new_day[1:] = (days[1:] != days[:-1]) | ~same
    purchase_days = np.bincount(customer[new_day], minlength=n).astype(np.int64)

    unique_days, unique_customer = days[new_day], customer[new_day]
    pair = unique_customer[1:] == unique_customer[:-1]
    gaps = (unique_days[1:] - unique_days[:-1])[pair]
    gap_customer = unique_customer[1:][pair]
    gaps = np.sort(gap_customer * _SHIFT + gaps) % _SHIFT
    count = purchase_days - 1
    first_gap = np.cumsum(count) - count
    median = np.full(n, np.nan)
    has = count > 0
    low = gaps[first_gap[has] + (count[has] - 1) // 2]
    high = gaps[first_gap[has] + count[has] // 2]
    median[has] = (low + high) / 2.0

    month = month_index(days)
    last_month = month[ends - 1]
    in_window = np.flatnonzero(month > last_month[customer] - 12)
    window_month, window_customer = month[in_window], customer[in_window]
    new_run = np.ones(len(in_window), dtype=bool)
    new_run[1:] = (window_month[1:] != window_month[:-1]) | (
        window_customer[1:] != window_customer[:-1]
    )
    run_start = np.flatnonzero(new_run)
    run_length = np.diff(np.append(run_start, len(in_window))).astype(np.float64)
    s = np.bincount(window_customer, minlength=n).astype(np.float64)
    ss = np.bincount(window_customer[run_start], weights=run_length * run_length, minlength=n)
    ratio = 12.0 * ss / (s * s)
    cv = np.sqrt(np.where(ratio > 1.0, ratio - 1.0, 0.0))
    return purchase_days, median, cv


def _postgresql_sql(target: str, where: str) -> str:
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
       {_FIRST_DELIVERED},
       CAST(m.median_gap_days AS DOUBLE PRECISION),
       t.revenue_minor,
       sqrt(CASE WHEN 12.0 * sp.ss / (sp.s * sp.s) > 1.0
                 THEN 12.0 * sp.ss / (sp.s * sp.s) - 1.0 ELSE 0.0 END)
FROM totals t
JOIN spread sp ON sp.customer_id = t.customer_id
LEFT JOIN medians m ON m.customer_id = t.customer_id
"""
