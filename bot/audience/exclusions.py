"""Who is never put in a cohort, and why: each excluded customer is counted under one reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, case, literal, null
from sqlalchemy.sql.elements import ColumnElement

from bot.audience.value import LET_GO

OPTED_OUT = "opted_out"
FLAGGED = "flagged"
LOST_TWICE = "lost_twice"
CONTACTED_RECENTLY = "contacted_recently"
LET_GO_PRIORITY = "let_go"
REASONS = (OPTED_OUT, FLAGGED, LOST_TWICE, CONTACTED_RECENTLY, LET_GO_PRIORITY)
"""In this order: a customer matching several reasons is counted under the first."""


@dataclass(frozen=True)
class Exclusions:
    opted_out: bool = True
    """customers.opted_out_at is set."""
    flagged: bool = True
    """customers.flagged is set (complaint, abuse, ...)."""
    lost_twice: bool = True
    """customers.won_back_at is set: won back once and lapsed again (lapsed cohort only)."""
    contacted_within_days: int | None = 14
    """customers.last_contacted_at is later than as_of minus this many days; None = no limit."""
    let_go: bool = False
    """Priority let_go (CZ customers)."""


def exclusion_reason(
    exclusions: Exclusions,
    customers: Table,
    as_of: datetime,
    lapsed_cohort: bool,
) -> ColumnElement[Any]:
    """SQL: the first reason that excludes the customer, or NULL when they stay in the cohort."""
    whens: list[tuple[ColumnElement[bool], ColumnElement[Any]]] = []
    if exclusions.opted_out:
        whens.append((customers.c.opted_out_at.is_not(None), literal(OPTED_OUT)))
    if exclusions.flagged:
        whens.append((customers.c.flagged.is_not(None), literal(FLAGGED)))
    if exclusions.lost_twice and lapsed_cohort:
        whens.append((customers.c.won_back_at.is_not(None), literal(LOST_TWICE)))
    if exclusions.contacted_within_days is not None:
        since = as_of - timedelta(days=exclusions.contacted_within_days)
        whens.append((customers.c.last_contacted_at > since, literal(CONTACTED_RECENTLY)))
    if not whens:
        return null()
    return case(*whens, else_=null())


def value_exclusion(exclusions: Exclusions, reason: str | None, priority: str | None) -> str | None:
    """The SQL reason, else let_go when that exclusion is on (value classes are known in Python)."""
    if reason is None and exclusions.let_go and priority == LET_GO:
        return LET_GO_PRIORITY
    return reason
