"""The retention playbook: churn, retention, lifetime, LTV, win-back benefit, losses per manager."""

from __future__ import annotations

import pytest

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
