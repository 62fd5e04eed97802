"""Scoring every customer as of a date: rhythm, lapse flag, BG/NBD P(alive), value class."""

from __future__ import annotations

import csv
from dataclasses import astuple, dataclass, fields
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, select

from bot.audience.alive import fit_alive_model
from bot.audience.bgnbd import BgNbdParams
from bot.audience.lapse import CUSTOMERS, LapseRule, lapse_columns, shop_median_gap
from bot.audience.rhythm import rhythm_as_of
from bot.audience.value import value_classes
from bot.db.types import SECONDS_PER_DAY, to_epoch


@dataclass(frozen=True)
class ScoreRow:
    external_id: str
    orders: int
    purchase_days: int
    first_order_at: datetime
    last_order_at: datetime
    recency_days: float
    """Days from the first to the last order."""
    age_days: float
    """T: days from the first order to as_of."""
    days_since_last_order: float
    expected_gap_days: float | None
    lapsed: bool
    p_alive: float | None
    expected_orders: float | None
    """Expected orders within the horizon (BG/NBD); blank when the model is not used."""
    revenue_minor: int
    average_order_minor: float
    abc: str
    xyz: str
    priority: str


@dataclass(frozen=True)
class Scoring:
    as_of: datetime
    horizon_days: int
    params: BgNbdParams | None
    """None when the history is too small for BG/NBD (see `model_note`)."""
    model_note: str
    rows: list[ScoreRow]

    def write_csv(self, path: Path) -> None:
        names = [f.name for f in fields(ScoreRow)]
        names[names.index("expected_orders")] = f"expected_orders_{self.horizon_days}d"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(names)
            for row in self.rows:
                writer.writerow([_cell(value) for value in astuple(row)])


def score_customers(
    engine: Engine, as_of: datetime, horizon_days: int = 90, rule: LapseRule = LapseRule()
) -> Scoring:
    """One row per customer with orders placed before as_of, ordered by customer id."""
    with engine.connect() as connection, rhythm_as_of(connection, as_of) as rhythm:
        shop_median = shop_median_gap(connection, rhythm)
        _own, expected, _since, lapsed = lapse_columns(rhythm, as_of, rule, shop_median)
        values = value_classes(rhythm).subquery("value")
        rows = connection.execute(
            select(
                rhythm.c.customer_id,
                CUSTOMERS.c.external_id,
                rhythm.c.orders,
                rhythm.c.purchase_days,
                rhythm.c.first_order_at,
                rhythm.c.last_order_at,
                expected.label("expected"),
                lapsed.label("lapsed"),
                rhythm.c.revenue_minor,
                values.c.abc,
                values.c.xyz,
                values.c.priority,
            )
            .select_from(rhythm)
            .join(CUSTOMERS, CUSTOMERS.c.id == rhythm.c.customer_id)
            .join(values, values.c.customer_id == rhythm.c.customer_id)
            .order_by(rhythm.c.customer_id)
        ).all()
        model = fit_alive_model(connection, rhythm, as_of)
    p_alive = model.p_alive()
    expected_orders = model.expected_orders(horizon_days)
    assert model.arrays.customer_id.tolist() == [row.customer_id for row in rows]
    as_of_epoch = to_epoch(as_of)
    scored: list[ScoreRow] = []
    for index, row in enumerate(rows):
        first, last = to_epoch(row.first_order_at), to_epoch(row.last_order_at)
        scored.append(
            ScoreRow(
                external_id=row.external_id,
                orders=row.orders,
                purchase_days=row.purchase_days,
                first_order_at=row.first_order_at,
                last_order_at=row.last_order_at,
                recency_days=(last - first) / SECONDS_PER_DAY,
                age_days=(as_of_epoch - first) / SECONDS_PER_DAY,
                days_since_last_order=(as_of_epoch - last) / SECONDS_PER_DAY,
                expected_gap_days=None if row.expected is None else float(row.expected),
                lapsed=bool(row.lapsed),
                p_alive=None if p_alive is None else float(p_alive[index]),
                expected_orders=None if expected_orders is None else float(expected_orders[index]),
                revenue_minor=int(row.revenue_minor),
                average_order_minor=int(row.revenue_minor) / row.orders,
                abc=row.abc,
                xyz=row.xyz,
                priority=row.priority,
            )
        )
    return Scoring(as_of, horizon_days, model.params, model.reason, scored)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return f"{float(value):.4f}".rstrip("0").rstrip(".")
    return str(value)
