"""Lapsed customers: longer since the last order than `factor` x their usual gap between orders."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat
from operator import itemgetter
from typing import Any

import numpy as np
from sqlalchemy import (
    BigInteger,
    Engine,
    Float,
    Table,
    and_,
    case,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.sql.elements import ColumnElement

from bot.audience.alive import fit_alive_model
from bot.audience.cohort import Cohort, CohortMember
from bot.audience.exclusions import Exclusions, exclusion_reason, value_exclusion
from bot.audience.rhythm import RhythmArrays, read_rhythm_arrays, rhythm_as_of
from bot.audience.value import value_classes
from bot.db.models import Customer
from bot.db.raw import fetch_tuples
from bot.db.types import SECONDS_PER_DAY, from_epoch, to_epoch
from bot.gcpause import paused_gc

CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class LapseRule:
    factor: float = 4 / 3
    """Lapsed when days since the last order exceed factor x the expected gap."""
    min_orders: int = 3
    """Purchase days needed before a customer's own median gap is trusted (else the shop's)."""


def shop_median_gap(arrays: RhythmArrays) -> float | None:
    """The median of the customers' median gaps (customers with at least two purchase days)."""
    gaps = arrays.median_gap_days[~np.isnan(arrays.median_gap_days)]
    return float(np.median(gaps)) if gaps.size else None


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
    """Lapsed customers as a cohort: members most valuable first, exclusions counted by reason."""
    with paused_gc():
        return _lapsed_cohort(engine, as_of, rule, exclusions)


def _lapsed_cohort(
    engine: Engine,
    as_of: datetime,
    rule: LapseRule = LapseRule(),
    exclusions: Exclusions = Exclusions(),
) -> Cohort:
    with engine.connect() as connection, rhythm_as_of(connection, as_of) as rhythm:
        arrays = read_rhythm_arrays(connection, rhythm, as_of)
        shop_median = shop_median_gap(arrays)
        if shop_median is None:
            return Cohort(
                "lapsed", as_of, [], {}, "no customer has two purchase days: no gap to go by"
            )
        _own, _expected, _since, is_lapsed = lapse_columns(rhythm, as_of, rule, shop_median)
        reason = exclusion_reason(exclusions, CUSTOMERS, as_of, True)
        query = (
            select(CUSTOMERS.c.id, CUSTOMERS.c.external_id, CUSTOMERS.c.name, reason)
            .select_from(rhythm)
            .join(CUSTOMERS, CUSTOMERS.c.id == rhythm.c.customer_id)
            .where(is_lapsed)
        )
        rows = fetch_tuples(connection, query)
    model = fit_alive_model(arrays)
    if not rows:
        return Cohort("lapsed", as_of, [], {}, model.reason)
    # SQL decided who lapsed; the figures shown come from the snapshot's columns. Column-wise from
    # here on: a cohort can hold most of a million customers, and per-row Python dominated.
    ids, external_ids, names, sql_reasons = (list(column) for column in zip(*rows, strict=True))
    at = arrays.positions(np.array(ids, dtype=np.int64))
    revenue = arrays.revenue_minor[at]
    abc, xyz, priority = value_classes(arrays).classify_arrays(
        revenue, arrays.customer_id[at], arrays.monthly_cv[at]
    )
    reasons = [
        value_exclusion(exclusions, why, value)
        for why, value in zip(sql_reasons, priority, strict=True)
    ]
    counts = Counter(why for why in reasons if why is not None)
    kept = [why is None for why in reasons]
    # Most valuable first: revenue descending, then customer id.
    order = np.array(
        [i for i in np.lexsort((arrays.customer_id[at], -revenue)).tolist() if kept[i]],
        dtype=np.int64,
    )
    if order.size == 0:
        return Cohort("lapsed", as_of, [], dict(counts), model.reason)
    pick = itemgetter(*order.tolist())  # gathers a list in cohort order, in C
    chosen = at[order]
    gap = arrays.median_gap_days[chosen]
    own = ((arrays.frequency[chosen] + 1 >= rule.min_orders) & ~np.isnan(gap)).tolist()
    expected = np.where(own, gap, shop_median).tolist()
    days_since = ((to_epoch(as_of) - arrays.last_order_epoch[chosen]) / SECONDS_PER_DAY).tolist()
    p_alive = model.p_alive()
    alive = [None] * order.size if p_alive is None else p_alive[chosen].tolist()
    factor = f"{rule.factor:.2f}"
    reasons_shown = [
        f"{days:.0f} days since last order > {factor} x {gap:.1f} days "
        + ("(own median gap)" if mine else "(shop median gap)")
        for days, gap, mine in zip(days_since, expected, own, strict=True)
    ]
    members = list(
        map(
            CohortMember._make,
            zip(
                _as_list(pick(ids)),
                _as_list(pick(external_ids)),
                _as_list(pick(names)),
                reasons_shown,
                arrays.orders[chosen].tolist(),
                map(from_epoch, arrays.last_order_epoch[chosen].tolist()),
                days_since,
                expected,
                alive,
                _as_list(pick(abc)),
                _as_list(pick(xyz)),
                _as_list(pick(priority)),
                repeat(None),
                repeat(None),
            ),
        )
    )
    excluded = dict(counts)
    return Cohort("lapsed", as_of, members, excluded, model.reason)


def _as_list(picked: Any) -> list[Any]:
    """itemgetter returns a bare value, not a tuple, when it picks exactly one item."""
    return list(picked) if isinstance(picked, tuple) else [picked]
