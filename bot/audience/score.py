"""Scoring every customer as of a date: rhythm, lapse flag, BG/NBD P(alive), value class."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import Engine, select

from bot.audience.alive import fit_alive_model
from bot.audience.bgnbd import BgNbdParams
from bot.audience.lapse import CUSTOMERS, LapseRule, lapse_columns, shop_median_gap
from bot.audience.rhythm import read_rhythm_arrays, rhythm_as_of
from bot.audience.value import value_classes
from bot.db.raw import fetch_tuples
from bot.db.types import SECONDS_PER_DAY, from_epoch, to_epoch
from bot.gcpause import paused_gc


class ScoreRow(NamedTuple):
    """One customer's scores. A NamedTuple: a million of them build in a second."""

    external_id: str
    orders: int
    purchase_days: int
    first_order_at: datetime
    last_order_at: datetime
    recency_days: float
    """Days from the first purchase day to the last (the BG/NBD's t_x)."""
    age_days: float
    """T: days from the start of the first purchase day to as_of."""
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
        names = list(ScoreRow._fields)
        names[names.index("expected_orders")] = f"expected_orders_{self.horizon_days}d"
        # Column by column with one formatter each: a million rows x 17 cells in a few seconds.
        columns = (
            (
                map(_formatter(column), values)
                for column, values in zip(
                    ScoreRow._fields, zip(*self.rows, strict=True), strict=True
                )
            )
            if self.rows
            else ()
        )
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(names)
            writer.writerows(zip(*columns, strict=True))


def score_customers(
    engine: Engine, as_of: datetime, horizon_days: int = 90, rule: LapseRule = LapseRule()
) -> Scoring:
    """One row per customer with orders placed before as_of, ordered by customer id."""
    with paused_gc():
        return _score_customers(engine, as_of, horizon_days, rule)


def _score_customers(
    engine: Engine, as_of: datetime, horizon_days: int, rule: LapseRule
) -> Scoring:
    with engine.connect() as connection, rhythm_as_of(connection, as_of) as rhythm:
        arrays = read_rhythm_arrays(connection, rhythm, as_of)
        shop_median = shop_median_gap(arrays)
        _own, expected, _since, lapsed = lapse_columns(rhythm, as_of, rule, shop_median)
        rows = fetch_tuples(
            connection,
            select(rhythm.c.customer_id, CUSTOMERS.c.external_id, expected, lapsed)
            .select_from(rhythm)
            .join(CUSTOMERS, CUSTOMERS.c.id == rhythm.c.customer_id)
            .where(rhythm.c.first_order_at < as_of)
            .order_by(rhythm.c.customer_id),
        )
    model = fit_alive_model(arrays)
    ids, external_ids, gaps, lapsed_flags = (
        (list(column) for column in zip(*rows, strict=True)) if rows else ([], [], [], [])
    )
    if ids != arrays.customer_id.tolist():
        raise RuntimeError("scoring: the snapshot changed while it was read")
    abc, xyz, priority = value_classes(arrays).classify_arrays(
        arrays.revenue_minor, arrays.customer_id, arrays.monthly_cv
    )
    p_alive = model.p_alive()
    expected_orders = model.expected_orders(horizon_days)
    alive = [None] * len(ids) if p_alive is None else p_alive.tolist()
    future = [None] * len(ids) if expected_orders is None else expected_orders.tolist()
    as_of_epoch = to_epoch(as_of)
    # Whole columns, then one C-level zip into rows in ScoreRow's field order.
    columns = zip(
        external_ids,
        arrays.orders.tolist(),
        (arrays.frequency + 1).astype(np.int64).tolist(),
        map(from_epoch, arrays.first_order_epoch.tolist()),
        map(from_epoch, arrays.last_order_epoch.tolist()),
        arrays.recency_days.tolist(),
        arrays.age_days.tolist(),
        ((as_of_epoch - arrays.last_order_epoch) / SECONDS_PER_DAY).tolist(),
        [None if gap is None else float(gap) for gap in gaps],
        [bool(flag) for flag in lapsed_flags],
        alive,
        future,
        arrays.revenue_minor.tolist(),
        (arrays.revenue_minor / arrays.orders).tolist(),
        abc,
        xyz,
        priority,
        strict=True,
    )
    scored = list(map(ScoreRow._make, columns))
    return Scoring(as_of, horizon_days, model.params, model.reason, scored)


def _formatter(column: str) -> Callable[[Any], str]:
    if column in ("first_order_at", "last_order_at"):
        return _instant
    if column == "lapsed":
        return _yes_no
    if column in _FLOAT_COLUMNS:
        return _decimal
    return _text


_FLOAT_COLUMNS = frozenset(
    (
        "recency_days",
        "age_days",
        "days_since_last_order",
        "expected_gap_days",
        "p_alive",
        "expected_orders",
        "average_order_minor",
    )
)


def _instant(value: datetime) -> str:
    return value.isoformat()


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _decimal(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _text(value: object) -> str:
    return "" if value is None else str(value)
