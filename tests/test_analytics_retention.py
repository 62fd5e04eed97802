"""The retention playbook: churn, retention, lifetime, LTV, win-back benefit, losses per manager."""

from __future__ import annotations

import pytest

from bot.analytics.period import last_full_month, retention_over
from bot.analytics.retention import (
    ManagerLoss,
    PeriodRetention,
    average_lifetime,
    churn_rate,
    lost_share_by_manager,
    ltv,
    period_retention,
    retention_rate,
    win_back_benefit,
    worth_winning_back,
)
from bot.app import App
from tests.audience_factory import add_customer, add_order, at


def test_churn_rate() -> None:
    # 50 lost of 1,000 at the start = 5 %
    assert churn_rate(50, 1_000) == pytest.approx(0.05)
    assert churn_rate(0, 10) == 0.0
    assert churn_rate(10, 10) == 1.0


def test_retention_rate() -> None:
    # 1,000 at the start, 1,100 at the end of whom 150 are new: (1100 - 150) / 1000 = 95 %
    assert retention_rate(1_000, 1_100, 150) == pytest.approx(0.95)


def test_period_retention_ties_churn_and_retention_together() -> None:
    # lost = 1000 + 150 - 1100 = 50; churn 0.05; lifetime 1 / 0.05 = 20 periods
    assert period_retention(1_000, 1_100, 150) == PeriodRetention(
        1_000, 1_100, 150, 50, pytest.approx(0.05), pytest.approx(0.95), pytest.approx(20.0)
    )
    assert period_retention(10, 12, 2).lifetime is None  # nobody lost


@pytest.mark.parametrize(
    "call",
    [
        lambda: churn_rate(1, 0),
        lambda: churn_rate(-1, 10),
        lambda: churn_rate(11, 10),
        lambda: retention_rate(0, 5, 1),
        lambda: retention_rate(10, 5, 6),
        lambda: retention_rate(10, 20, 5),  # 15 kept of 10 at the start
        lambda: average_lifetime(1.5),
        lambda: ltv(100.0, -1.0, 5.0),
        lambda: win_back_benefit(100.0, 1.0, -2.0),
        lambda: worth_winning_back(100.0, -1.0),
    ],
)
def test_impossible_inputs_are_rejected(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]


def test_average_lifetime() -> None:
    assert average_lifetime(0.05) == pytest.approx(20.0)
    assert average_lifetime(1.0) == 1.0
    assert average_lifetime(0.0) is None  # nobody leaves: unbounded


def test_ltv() -> None:
    # margin 400 per order x 1.5 orders a month x 20 months = 12,000
    assert ltv(400.0, 1.5, 20.0) == pytest.approx(12_000.0)
    assert ltv(400.0, 1.5, average_lifetime(0.05)) == pytest.approx(12_000.0)
    assert ltv(400.0, 1.5, None) is None


def test_win_back_benefit_and_whether_it_is_worth_it() -> None:
    # one customer: margin 250 x 0.5 orders a month x 12 more months = 1,500
    benefit = win_back_benefit(250.0, 0.5, 12.0)
    assert benefit == pytest.approx(1_500.0)
    assert worth_winning_back(benefit, cost=300.0)
    assert not worth_winning_back(benefit, cost=2_000.0)
    assert not worth_winning_back(1_500.0, cost=1_500.0)  # break-even is not worth the effort


def test_lost_share_by_manager() -> None:
    rows = [
        ("Anna", True),
        ("Anna", False),
        ("Anna", False),
        ("Anna", False),  # Anna: 1 of 4 = 0.25
        ("Boris", True),
        ("Boris", True),  # Boris: 2 of 2 = 1.0
        ("Vera", False),  # Vera: 0 of 1 = 0.0
        ("Gleb", True),
        ("Gleb", False),
        ("Gleb", False),
        ("Gleb", False),  # Gleb: 1 of 4 = 0.25, after Anna by name
    ]
    assert lost_share_by_manager(rows) == (
        ManagerLoss("Boris", 2, 2, 1.0),
        ManagerLoss("Anna", 4, 1, 0.25),
        ManagerLoss("Gleb", 4, 1, 0.25),
        ManagerLoss("Vera", 1, 0, 0.0),
    )
    assert lost_share_by_manager([]) == ()


# --- retention over a period, from the database (bot.analytics.period) ---

MONTHS = 31 / 30.4375  # October 2026 in average months


def small_shop(app: App) -> dict[str, int]:
    """A shop where every multi-day buyer has a 30-day median gap (shop median 30, so a one-day
    buyer lapses after 40 days), orders at noon UTC, 100.00 unless said:

    A: 1 Jul, 31 Jul, 30 Aug, 29 Sep, 29 Oct       active on 1 Oct and 1 Nov: kept
    B: 1 Jul, 31 Jul, 30 Aug                       63.5 days on 1 Nov > 40: lost
    C: 10 Jan, 9 Feb, 11 Mar, 15 Oct               lapsed on 1 Oct, active on 1 Nov: returned
    D: 10 Oct (400.00)                             new, active on 1 Nov
    E: 1, 3, 5 Oct                                 new, own gap 2 days: lapsed on 1 Nov
    F: 20 Sep                                      10.5 days on 1 Oct, 41.5 on 1 Nov: lost
    G: 12 Oct, cancelled                           no customer, no order
    """
    days = {
        "A": ["2026-07-01", "2026-07-31", "2026-08-30", "2026-09-29", "2026-10-29"],
        "B": ["2026-07-01", "2026-07-31", "2026-08-30"],
        "C": ["2026-01-10", "2026-02-09", "2026-03-11", "2026-10-15"],
        "D": ["2026-10-10"],
        "E": ["2026-10-01", "2026-10-03", "2026-10-05"],
        "F": ["2026-09-20"],
    }
    ids = {}
    for name, dates in days.items():
        ids[name] = add_customer(app, name)
        for day in dates:
            add_order(app, ids[name], at(day), amount_minor=400_00 if name == "D" else 100_00)
    ids["G"] = add_customer(app, "G")
    add_order(app, ids["G"], at("2026-10-12"), status="cancelled")
    return ids


def test_retention_over_a_month_counts_by_the_lapse_rule(app: App) -> None:
    small_shop(app)

    r = retention_over(app.engine, at("2026-10-01", 0), at("2026-11-01", 0), margin=0.3)

    assert (r.start, r.end, r.new, r.new_active) == (3, 3, 2, 1)  # A B F; A C D; D E; D
    assert (r.kept, r.lost, r.returned) == (1, 2, 1)  # A; B F; C
    assert r.months == pytest.approx(MONTHS)
    assert (r.churn, r.retention) == (pytest.approx(2 / 3), pytest.approx(1 / 3))
    assert r.monthly_churn == pytest.approx(2 / 3 / MONTHS)
    lifetime = MONTHS * 3 / 2
    assert r.lifetime_months == pytest.approx(lifetime)
    # October's non-void orders: A 29, C 15, D 10 (400.00), E 1, 3, 5.
    assert (r.orders, r.revenue_minor) == (6, 900_00)
    assert r.average_order_minor == pytest.approx(150_00)
    assert r.margin_per_order_minor == pytest.approx(45_00)
    per_month = 6 / 3 / MONTHS  # per average active customer ((3 + 3) / 2)
    assert r.orders_per_month == pytest.approx(per_month)
    assert r.ltv_minor == pytest.approx(45_00 * per_month * lifetime)
    # B: 3 orders over 60 days + 30 = 90 days; F: 1 order, the shop's 30 days. Both buy
    # 30.4375 / 30 orders a month at 30.00 margin an order.
    assert r.win_back_benefit_minor == pytest.approx(30_00 * 30.4375 / 30 * lifetime)


def test_retention_of_an_empty_period_and_bad_input(app: App) -> None:
    r = retention_over(app.engine, at("2026-10-01", 0), at("2026-11-01", 0))

    assert (r.start, r.end, r.orders) == (0, 0, 0)
    assert r.churn is r.lifetime_months is r.ltv_minor is r.win_back_benefit_minor is None
    with pytest.raises(ValueError, match="start before"):
        retention_over(app.engine, at("2026-11-01"), at("2026-10-01"))
    with pytest.raises(ValueError, match="margin"):
        retention_over(app.engine, at("2026-10-01"), at("2026-11-01"), margin=1.5)


def test_last_full_month() -> None:
    assert last_full_month(at("2026-11-22")) == (at("2026-10-01", 0), at("2026-11-01", 0))
    assert last_full_month(at("2026-01-01", 0)) == (at("2025-12-01", 0), at("2026-01-01", 0))
