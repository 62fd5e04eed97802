"""Customer value: ABC by revenue, XYZ by steadiness of monthly orders, and the priority matrix."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, Select, String, Table, case, cast, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

A_SHARE_PERCENT = 80
"""Customers are A while the revenue of the customers ranked before them is below 80 % of all."""
B_SHARE_PERCENT = 95
X_MAX_CV = 0.5
"""XYZ: monthly_cv <= 0.5 is X (steady), <= 1.0 is Y (irregular), above is Z (sporadic)."""
Y_MAX_CV = 1.0

WIN_BACK_FIRST = "win_back_first"
MUST_WIN_BACK = "must_win_back"
WIN_BACK_IF_CHEAP = "win_back_if_cheap"
LET_GO = "let_go"

PRIORITY: dict[str, str] = {
    "AX": WIN_BACK_FIRST,
    "AY": WIN_BACK_FIRST,
    "AZ": MUST_WIN_BACK,
    "BX": MUST_WIN_BACK,
    "BY": MUST_WIN_BACK,
    "BZ": WIN_BACK_IF_CHEAP,
    "CX": WIN_BACK_IF_CHEAP,
    "CY": WIN_BACK_IF_CHEAP,
    "CZ": LET_GO,
}
"""The retention playbook: ABC class + XYZ class -> what to do about a customer who lapses."""


def priority_of(abc: str, xyz: str) -> str:
    return PRIORITY[abc + xyz]


def value_classes(rhythm: Table) -> Select[Any]:
    """customer_id, abc, xyz, priority for every customer of `rhythm`, computed in SQL.

    ABC: customers sorted by revenue_minor descending, ties by customer id ascending; a running
    SUM window gives the revenue ranked before each customer. A while that is below 80 % of the
    total (so the customer who crosses 80 % is still A), B below 95 %, C the rest; all C when the
    total revenue is not positive.
    """
    revenue = rhythm.c.revenue_minor
    running = func.sum(revenue).over(
        order_by=(revenue.desc(), rhythm.c.customer_id), rows=(None, 0)
    )
    total = func.sum(revenue).over()
    before = running - revenue
    abc = case(
        (total <= 0, literal("C")),
        (before * 100 < total * A_SHARE_PERCENT, literal("A")),
        (before * 100 < total * B_SHARE_PERCENT, literal("B")),
        else_=literal("C"),
    )
    cv = cast(rhythm.c.monthly_cv, Float)
    xyz = case((cv <= X_MAX_CV, literal("X")), (cv <= Y_MAX_CV, literal("Y")), else_=literal("Z"))
    inner = select(
        rhythm.c.customer_id,
        cast(abc, String).label("abc"),
        cast(xyz, String).label("xyz"),
    ).subquery("value_inner")
    return select(
        inner.c.customer_id,
        inner.c.abc,
        inner.c.xyz,
        priority_expression(inner.c.abc, inner.c.xyz).label("priority"),
    )


def priority_expression(abc: ColumnElement[Any], xyz: ColumnElement[Any]) -> ColumnElement[str]:
    return case(
        *((((abc == key[0]) & (xyz == key[1])), literal(value)) for key, value in PRIORITY.items()),
        else_=literal(LET_GO),
    )
