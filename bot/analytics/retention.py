"""The retention playbook: churn, retention, lifetime, LTV and whether a lost customer is worth it.

Rates are fractions of the customers at the start of a period (0.05 is 5 %); lifetimes are in
periods, so an LTV built from a monthly churn needs orders per month. Money is whatever unit the
caller passes (Boomerang stores minor units); nothing here rounds it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

AVERAGE_MONTH_DAYS = 365.25 / 12
"""Days in an average month: periods of any length are converted to months with it."""
SECONDS_PER_DAY = 86_400

Number = TypeVar("Number", float, npt.NDArray[np.float64])


def _require_start(start: int) -> None:
    if start <= 0:
        raise ValueError(f"customers at the start must be positive, got {start}")


def churn_rate(lost: int, start: int) -> float:
    """Customers lost during the period / customers at its start."""
    _require_start(start)
    if not 0 <= lost <= start:
        raise ValueError(f"customers lost must be between 0 and {start}, got {lost}")
    return lost / start


def retention_rate(start: int, end: int, new: int) -> float:
    """Customer retention rate: (customers at the end - new ones) / customers at the start."""
    _require_start(start)
    if new < 0 or end < new:
        raise ValueError(f"need 0 <= new <= end, got new={new}, end={end}")
    if end - new > start:
        raise ValueError(f"{end - new} kept customers cannot exceed {start} at the start")
    return (end - new) / start


def average_lifetime(churn: float) -> float | None:
    """Expected lifetime in periods, 1 / churn; None (unbounded) when nobody churns."""
    if not 0.0 <= churn <= 1.0:
        raise ValueError(f"churn must be between 0 and 1, got {churn}")
    return 1.0 / churn if churn else None


def _value(margin_per_order: float, orders_per_period: float, lifetime: float) -> float:
    if orders_per_period < 0:
        raise ValueError(f"orders per period cannot be negative, got {orders_per_period}")
    if lifetime < 0:
        raise ValueError(f"lifetime cannot be negative, got {lifetime}")
    return margin_per_order * orders_per_period * lifetime


def ltv(margin_per_order: float, orders_per_period: float, lifetime: float | None) -> float | None:
    """Lifetime value: average margin per order x orders per period x lifetime in periods.

    None when the lifetime is unbounded (churn 0): the data cannot say what a customer is worth.
    """
    if lifetime is None:
        return None
    return _value(margin_per_order, orders_per_period, lifetime)


def win_back_benefit(margin_per_order: float, orders_per_period: float, lifetime: float) -> float:
    """What winning one customer back brings: the LTV formula with that customer's own numbers.

    margin_per_order and orders_per_period are the customer's history; lifetime is how many more
    periods they are expected to stay once back (for example the shop's average lifetime).
    """
    return _value(margin_per_order, orders_per_period, lifetime)


def worth_winning_back(benefit: float, cost: float) -> bool:
    """True when the benefit of winning the customer back exceeds the cost of trying."""
    if cost < 0:
        raise ValueError(f"cost cannot be negative, got {cost}")
    return benefit > cost


def customer_orders_per_month(
    orders: Number, first_order_epoch: Number, last_order_epoch: Number, expected_gap_days: Number
) -> Number:
    """How often a customer ordered while buying: orders / (first..last order + one expected gap).

    n orders span n - 1 gaps from the first to the last; one more expected gap (the lapse rule's:
    the customer's own median gap, or the shop's) makes it n gaps of time, so a customer who
    bought every g days exactly gets AVERAGE_MONTH_DAYS / g, and a one-order customer 1 order per
    expected gap. Works on floats and on numpy arrays alike (epoch seconds, gap in days).
    """
    days = (last_order_epoch - first_order_epoch) / SECONDS_PER_DAY + expected_gap_days
    return orders * AVERAGE_MONTH_DAYS / days


def customer_win_back_benefit(
    orders: Number,
    revenue: Number,
    first_order_epoch: Number,
    last_order_epoch: Number,
    expected_gap_days: Number,
    margin: float,
    lifetime_months: float,
) -> Number:
    """What winning this customer back brings (in the unit of `revenue`): their own average margin
    per order (revenue / orders x margin share) x their orders per month
    (`customer_orders_per_month`) x the months they are expected to stay (the shop's lifetime).

    Floats or numpy arrays (one element per customer); compare with `worth_winning_back`.
    """
    if not 0 < margin <= 1:
        raise ValueError(f"margin must be a share in (0, 1], got {margin}")
    if lifetime_months < 0:
        raise ValueError(f"lifetime cannot be negative, got {lifetime_months}")
    per_month = customer_orders_per_month(
        orders, first_order_epoch, last_order_epoch, expected_gap_days
    )
    return revenue / orders * margin * per_month * lifetime_months


@dataclass(frozen=True)
class PeriodRetention:
    start: int
    end: int
    new: int
    lost: int
    """start + new - end."""
    churn: float
    retention: float
    lifetime: float | None
    """1 / churn in periods; None when nobody was lost."""


def period_retention(start: int, end: int, new: int) -> PeriodRetention:
    """Churn, retention and lifetime of one period from its head counts (churn = 1 - retention)."""
    retention = retention_rate(start, end, new)
    lost = start + new - end
    churn = churn_rate(lost, start)
    return PeriodRetention(start, end, new, lost, churn, retention, average_lifetime(churn))


@dataclass(frozen=True)
class ManagerLoss:
    manager: str
    customers: int
    lost: int
    share: float
    """lost / customers."""


def lost_share_by_manager(rows: Iterable[tuple[str, bool]]) -> tuple[ManagerLoss, ...]:
    """Share of lost customers per responsible manager, from (manager name, lost?) rows.

    One row per customer. The result is ordered by share descending, then by manager name, so
    the manager who loses the most comes first.
    """
    customers: dict[str, int] = {}
    lost: dict[str, int] = {}
    for manager, is_lost in rows:
        customers[manager] = customers.get(manager, 0) + 1
        lost[manager] = lost.get(manager, 0) + (1 if is_lost else 0)
    result = [ManagerLoss(m, n, lost[m], lost[m] / n) for m, n in customers.items()]
    result.sort(key=lambda r: (-r.share, r.manager))
    return tuple(result)
