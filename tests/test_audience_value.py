"""ABC by revenue, XYZ by monthly order counts, the priority matrix, and the exclusions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.app import App
from bot.audience.exclusions import Exclusions
from bot.audience.lapse import lapsed_cohort
from bot.audience.rhythm import refresh_rhythm
from bot.audience.score import score_customers
from bot.audience.value import PRIORITY, priority_of
from tests.audience_factory import add_customer, add_order, add_orders_every, at

AS_OF = at("2026-11-22")


def test_abc_by_cumulative_revenue_share_with_ties_broken_by_customer_id(app: App) -> None:
    # Revenues (total 10,000), in rank order, with the revenue ranked before each customer:
    #   v1 5000 (before    0 =  0 %) A
    #   v2 2000 (before 5000 = 50 %) A
    #   v3 1000 (before 7000 = 70 %) A   <- reaches exactly 80 %: still A
    #   v4  700 (before 8000 = 80 %) B
    #   v5  500 (before 8700 = 87 %) B
    #   v6  400 (before 9200 = 92 %) B   <- ties with v7: the lower customer id ranks first
    #   v7  400 (before 9600 = 96 %) C
    for external_id, revenue in [
        ("v1", 5000),
        ("v2", 2000),
        ("v3", 1000),
        ("v4", 700),
        ("v5", 500),
        ("v6", 400),
        ("v7", 400),
    ]:
        customer = add_customer(app, external_id)
        add_order(app, customer, at("2026-06-01"), amount_minor=revenue)
    refresh_rhythm(app.engine)
    classes = {row.external_id: row.abc for row in score_customers(app.engine, AS_OF).rows}
    assert classes == {"v1": "A", "v2": "A", "v3": "A", "v4": "B", "v5": "B", "v6": "B", "v7": "C"}


def test_xyz_by_variation_of_monthly_order_counts(app: App) -> None:
    # Monthly counts over the 12 months ending with the month of the last order, zeros included;
    # CV = population std / mean = sqrt(12 * sum(n^2) / sum(n)^2 - 1):
    #   every month once            -> sqrt(12*12/144 - 1) = 0          X
    #   every other month once (6)  -> sqrt(12*6/36 - 1)   = 1.0        Y (<= 1.0)
    #   a single order              -> sqrt(12*1/1 - 1)    = 3.32       Z
    monthly = add_customer(app, "monthly")
    for month in range(12):
        add_order(app, monthly, at(f"{2025 + (month + 11) // 12}-{(month + 11) % 12 + 1:02d}-15"))
    bimonthly = add_customer(app, "bimonthly")
    for day in ["2025-12-15", "2026-02-15", "2026-04-15", "2026-06-15", "2026-08-15", "2026-10-15"]:
        add_order(app, bimonthly, at(day))
    once = add_customer(app, "once")
    add_order(app, once, at("2026-11-01"))
    refresh_rhythm(app.engine)
    classes = {row.external_id: row.xyz for row in score_customers(app.engine, AS_OF).rows}
    assert classes == {"monthly": "X", "bimonthly": "Y", "once": "Z"}


@pytest.mark.parametrize(
    ("abc", "xyz", "priority"),
    [
        ("A", "X", "win_back_first"),
        ("A", "Y", "win_back_first"),
        ("A", "Z", "must_win_back"),
        ("B", "X", "must_win_back"),
        ("B", "Y", "must_win_back"),
        ("B", "Z", "win_back_if_cheap"),
        ("C", "X", "win_back_if_cheap"),
        ("C", "Y", "win_back_if_cheap"),
        ("C", "Z", "let_go"),
    ],
)
def test_priority_matrix_follows_the_retention_playbook(abc: str, xyz: str, priority: str) -> None:
    assert priority_of(abc, xyz) == priority
    assert len(PRIORITY) == 9


def _lapsed_customer(app: App, external_id: str, revenue: int = 100_00, **fields: object) -> None:
    customer = add_customer(app, external_id, **fields)
    first = at("2026-06-01")
    add_orders_every(app, customer, first, 10, 3, amount_minor=revenue)


def test_each_exclusion_removes_the_customer_and_is_counted_by_reason(app: App) -> None:
    _lapsed_customer(app, "kept")
    _lapsed_customer(app, "contacted-long-ago", last_contacted_at=AS_OF - timedelta(days=20))
    _lapsed_customer(app, "opted-out", opted_out_at=at("2026-08-01"))
    _lapsed_customer(app, "flagged", flagged="complaint")
    _lapsed_customer(app, "won-back-before", won_back_at=at("2026-05-01"))
    _lapsed_customer(app, "contacted", last_contacted_at=AS_OF - timedelta(days=10))
    refresh_rhythm(app.engine)
    cohort = lapsed_cohort(app.engine, AS_OF)
    assert {m.external_id for m in cohort.members} == {"kept", "contacted-long-ago"}
    assert cohort.excluded == {
        "opted_out": 1,
        "flagged": 1,
        "lost_twice": 1,
        "contacted_recently": 1,
    }
    wider = lapsed_cohort(app.engine, AS_OF, exclusions=Exclusions(contacted_within_days=30))
    assert wider.excluded["contacted_recently"] == 2


def test_let_go_customers_are_excluded_only_when_asked(app: App) -> None:
    _lapsed_customer(app, "big", revenue=10_000_00)
    _lapsed_customer(app, "small", revenue=1_00)  # C by revenue, Z (3 orders in one month): CZ
    refresh_rhythm(app.engine)
    everyone = lapsed_cohort(app.engine, AS_OF)
    assert {m.external_id: m.priority for m in everyone.members}["small"] == "let_go"
    cohort = lapsed_cohort(app.engine, AS_OF, exclusions=Exclusions(let_go=True))
    assert [m.external_id for m in cohort.members] == ["big"]
    assert cohort.excluded == {"let_go": 1}
