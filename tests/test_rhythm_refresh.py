"""The rhythm refresh: the integer month formula, the SQLite figures in numpy, full vs by-ids."""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from bot.app import App
from bot.audience.rhythm import RHYTHM_COLUMNS, month_index, refresh_rhythm, rhythm_figures
from bot.audience.sql import month_index_sql
from bot.db.models import Customer, Order

EPOCH = date(1970, 1, 1)
LAST_DAY_2100 = (date(2100, 12, 31) - EPOCH).days
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def calendar_month(day: int) -> int:
    d = date.fromordinal(EPOCH.toordinal() + day)
    return d.year * 12 + d.month - 1


def test_month_index_matches_the_calendar_every_day_1970_to_2100() -> None:
    days = np.arange(LAST_DAY_2100 + 1, dtype=np.int64)
    assert month_index(days).tolist() == [calendar_month(day) for day in range(LAST_DAY_2100 + 1)]


def test_month_index_before_1970_back_to_year_one() -> None:
    first = date(1, 1, 1).toordinal() - EPOCH.toordinal()
    sample = [*range(first, 0, 97), *range(-800, 0)]
    months = month_index(np.array(sample, dtype=np.int64)).tolist()
    assert months == [calendar_month(day) for day in sample]


def test_month_index_sql_matches_the_calendar(app: App) -> None:
    """The SQL formula, on each backend, for every day from 1970 to 2100."""
    sql = f"""
WITH RECURSIVE d(day) AS (SELECT 0 UNION ALL SELECT day + 1 FROM d WHERE day < {LAST_DAY_2100})
SELECT day, {month_index_sql("day")} FROM d
"""
    with app.engine.connect() as connection:
        rows = connection.execute(text(sql)).all()
    assert len(rows) == LAST_DAY_2100 + 1
    for day, month in rows:
        assert month == calendar_month(day), day


def reference(days: list[int]) -> tuple[int, float | None, float]:
    """The rhythm figures the long way: statistics.median, calendar months via datetime."""
    unique = sorted(set(days))
    gaps = [b - a for a, b in zip(unique, unique[1:], strict=False)]
    median = float(statistics.median(gaps)) if gaps else None
    months = [calendar_month(day) for day in days]
    last = max(months)
    counts = Counter(month for month in months if month > last - 12)
    s = float(sum(counts.values()))
    ss = float(sum(n * n for n in counts.values()))
    ratio = 12.0 * ss / (s * s)
    return len(unique), median, math.sqrt(ratio - 1.0 if ratio > 1.0 else 0.0)


def figures(customers: list[list[int]]) -> list[tuple[int, float | None, float]]:
    orders = np.array([len(days) for days in customers], dtype=np.int64)
    purchase_days, median, cv = rhythm_figures(orders, [",".join(map(str, d)) for d in customers])
    medians = [None if math.isnan(m) else m for m in median.tolist()]
    return list(zip(purchase_days.tolist(), medians, cv.tolist(), strict=True))


@pytest.mark.parametrize("shuffled", [False, True])
def test_rhythm_figures_match_the_reference(shuffled: bool) -> None:
    """Sorted day lists (as group_concat over the index gives them) and shuffled ones."""
    rng = random.Random(3)
    customers = []
    for _ in range(3000):
        start = rng.randrange(-400, 60_000)
        count = rng.choice([1, 1, 2, 3, 5, 12, 40])
        spread = rng.choice([1, 3, 30, 400, 2000])
        days = sorted(start + rng.randrange(spread) for _ in range(count))
        if shuffled:
            rng.shuffle(days)
        customers.append(days)
    assert figures(customers) == [reference(days) for days in customers]


def test_rhythm_figures_single_order_is_a_one_off() -> None:
    assert figures([[20000], [20000, 20000]]) == [(1, None, math.sqrt(11.0))] * 2


def test_rhythm_median_matches_statistics_median() -> None:
    rng = random.Random(5)
    customers = [
        sorted(rng.sample(range(20_000, 22_000), rng.randrange(2, 30))) for _ in range(500)
    ]
    for days, (_, median, _) in zip(customers, figures(customers), strict=True):
        gaps = [b - a for a, b in zip(days, days[1:], strict=False)]
        assert median == statistics.median(gaps)


def _seed_orders(app: App, customers: int = 60) -> None:
    """Random orders: several a day, ties on placed_at, cancelled ones, leap days, years apart."""
    rng = random.Random(11)
    with app.sessions.begin() as session:
        people = [
            Customer(external_id=f"c{i}", tags=[], created_at=T0, updated_at=T0)
            for i in range(customers)
        ]
        session.add_all(people)
        session.flush()
        n = 0
        for person in people:
            first = datetime(2023, 2, 28, tzinfo=UTC) + timedelta(hours=rng.randrange(20_000))
            placed = first
            for _ in range(rng.choice([0, 1, 1, 2, 4, 9, 25])):
                n += 1
                session.add(
                    Order(
                        external_id=f"o{n}",
                        customer_id=person.id,
                        placed_at=placed,
                        delivered_at=rng.choice([None, placed + timedelta(days=2)]),
                        amount_minor=rng.randrange(100, 100_000),
                        currency="RUB",
                        status=rng.choice(["delivered", "delivered", "cancelled", "paid"]),
                        items=[],
                    )
                )
                step = rng.choice([0, 0, 3600, 86_400, 86_400 * 17, 86_400 * 95])
                placed = min(placed + timedelta(seconds=step), datetime(2026, 11, 1, tzinfo=UTC))


def _rhythm_rows(app: App) -> list[tuple[object, ...]]:
    with app.engine.connect() as connection:
        sql = f"SELECT {', '.join(RHYTHM_COLUMNS)} FROM customer_rhythm ORDER BY customer_id"
        return [tuple(row) for row in connection.execute(text(sql))]


def test_by_ids_refresh_equals_full_rebuild_and_the_reference(app: App) -> None:
    _seed_orders(app)
    refresh_rhythm(app.engine)
    full = _rhythm_rows(app)
    assert full
    with app.engine.begin() as connection:
        connection.execute(text("DELETE FROM customer_rhythm"))
        ids = [row[0] for row in connection.execute(text("SELECT id FROM customers"))]
    refresh_rhythm(app.engine, ids[::2])
    refresh_rhythm(app.engine, ids[1::2])
    assert _rhythm_rows(app) == full

    with app.engine.connect() as connection:
        orders = connection.execute(
            text(
                "SELECT customer_id, placed_at, delivered_at, id FROM orders"
                " WHERE status <> 'cancelled' ORDER BY customer_id, placed_at, id"
            )
        ).all()
    by_customer: dict[int, list[tuple[int, int | None]]] = {}
    for customer_id, placed_at, delivered_at, _id in orders:
        by_customer.setdefault(customer_id, []).append((placed_at, delivered_at))
    assert [row[0] for row in full] == sorted(by_customer)
    for row in full:
        placed = by_customer[int(str(row[0]))]
        days = [epoch // 86_400 for epoch, _ in placed]
        purchase_days, median, cv = reference(days)
        assert row[1] == len(placed)
        assert (row[2], row[6], row[8]) == (purchase_days, median, cv)
        assert (row[3], row[4], row[5]) == (placed[0][0], placed[-1][0], placed[0][1])


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_refresh_after_orders_change(app: App, share: float) -> None:
    """Re-running a refresh after orders were cancelled gives the full rebuild's figures."""
    _seed_orders(app, customers=20)
    refresh_rhythm(app.engine)
    with app.engine.begin() as connection:
        connection.execute(text("UPDATE orders SET status = 'cancelled' WHERE id % 3 = 0"))
        ids = [row[0] for row in connection.execute(text("SELECT id FROM customers"))]
    refresh_rhythm(app.engine, ids if share else None)
    incremental = _rhythm_rows(app)
    refresh_rhythm(app.engine)
    assert _rhythm_rows(app) == incremental
