"""Worth winning back: the per-customer benefit and the planner's `not_worth_it` skips."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from bot.analytics.period import shop_lifetime_months
from bot.analytics.retention import (
    AVERAGE_MONTH_DAYS,
    customer_orders_per_month,
    customer_win_back_benefit,
)
from bot.app import App
from bot.audience.lapse import LapseRule
from bot.campaign.loader import LoadedCampaign, load_campaign
from bot.campaign.planner import NOT_WORTH_IT, in_holdout, plan_run
from bot.db.outreach import Outreach
from tests.audience_factory import add_customer, add_order, at

DAY = 86_400
RUN = at("2026-11-22")

CAMPAIGN = """\
id: winback
title: Win back
audience:
  kind: lapsed
  params: {{contacted_within: 0}}
script: winback
channels: [telegram]
purpose: marketing
schedule:
  cron: "0 11 * * mon"
  time_zone: Europe/Moscow
window:
  from: "11:00"
  to: "19:00"
holdout_share: {holdout}
economics: {economics}
"""


def campaign(tmp_path: Path, economics: str, holdout: float = 0.0) -> LoadedCampaign:
    path = tmp_path / "winback.yaml"
    path.write_text(CAMPAIGN.format(economics=economics, holdout=holdout), encoding="utf-8")
    return load_campaign(path)


def test_orders_per_month_counts_one_expected_gap_after_the_last_order() -> None:
    # Every 30 days exactly: 30.4375 / 30 orders a month, however many orders.
    assert customer_orders_per_month(3.0, 0.0, 60.0 * DAY, 30.0) == pytest.approx(
        AVERAGE_MONTH_DAYS / 30
    )
    assert customer_orders_per_month(1.0, 0.0, 0.0, 30.0) == pytest.approx(AVERAGE_MONTH_DAYS / 30)
    # 4 orders over 90 days plus one 10-day gap: 4 orders in 100 days.
    assert customer_orders_per_month(4.0, 0.0, 90.0 * DAY, 10.0) == pytest.approx(4 * 30.4375 / 100)


def test_benefit_is_margin_per_order_times_orders_per_month_times_lifetime() -> None:
    # 4 orders, 4,000.00 in all: 1,000.00 an order, 300.00 margin; 1.2175 orders a month; 10 months.
    benefit = customer_win_back_benefit(4.0, 4000_00.0, 0.0, 90.0 * DAY, 10.0, 0.3, 10.0)
    assert benefit == pytest.approx(300_00 * 1.2175 * 10)
    many = customer_win_back_benefit(
        np.array([4.0, 1.0]),
        np.array([4000_00.0, 50_00.0]),
        np.array([0.0, 0.0]),
        np.array([90.0 * DAY, 0.0]),
        np.array([10.0, 30.0]),
        0.3,
        10.0,
    )
    assert many.tolist() == pytest.approx([benefit, 15_00 * (30.4375 / 30) * 10])
    with pytest.raises(ValueError, match="margin"):
        customer_win_back_benefit(1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="lifetime"):
        customer_win_back_benefit(1.0, 1.0, 0.0, 0.0, 1.0, 0.3, -1.0)


def shop(app: App) -> tuple[int, int]:
    """Two lapsed customers with the same rhythm (3 orders 30 days apart, the last 100 days ago):
    one spends 1,000.00 an order, the other 10.00."""
    rich, poor = add_customer(app, "rich"), add_customer(app, "poor")
    for customer, amount in ((rich, 1000_00), (poor, 10_00)):
        for days in (160, 130, 100):
            add_order(app, customer, RUN - timedelta(days=days), amount_minor=amount)
    return rich, poor


def rows(app: App) -> dict[int, tuple[str, str | None, bool]]:
    with app.sessions() as session:
        found = session.execute(
            select(Outreach.customer_id, Outreach.state, Outreach.skip_reason, Outreach.holdout)
        )
        return {customer: (state, reason, held) for customer, state, reason, held in found}


def test_the_planner_skips_customers_worth_less_than_the_cost(app: App, tmp_path: Path) -> None:
    rich, poor = shop(app)
    # Own gap 30 days; orders a month 3 x 30.4375 / 90 = 1.014583; lifetime 6 months:
    # rich 300.00 x 1.014583 x 6 = 1,826.25 > 150.00; poor 3.00 x 1.014583 x 6 = 18.26 <= 150.00.
    loaded = campaign(tmp_path, "{margin: 0.3, cost_to_win_back: 150.00, lifetime_months: 6}")

    summary = plan_run(app, loaded, RUN)
    again = plan_run(app, loaded, RUN + timedelta(days=7))

    assert rows(app) == {
        rich: ("planned", None, False),
        poor: ("skipped", NOT_WORTH_IT, False),
    }
    assert (summary.planned, summary.held_out, summary.not_worth_it) == (1, 0, 1)
    assert summary.already_present == 0
    assert (again.planned, again.not_worth_it, again.already_present) == (0, 0, 2)


def test_the_holdout_is_drawn_from_the_customers_worth_it(app: App, tmp_path: Path) -> None:
    rich, poor = shop(app)
    loaded = campaign(
        tmp_path, "{margin: 0.3, cost_to_win_back: 150.00, lifetime_months: 6}", holdout=0.99
    )

    summary = plan_run(app, loaded, RUN)

    found = rows(app)
    assert found[poor] == ("skipped", NOT_WORTH_IT, False)
    assert in_holdout("winback", rich, 0.99) and in_holdout("winback", poor, 0.99)
    assert found[rich] == ("skipped", "holdout", True)
    assert (summary.planned, summary.held_out, summary.not_worth_it) == (0, 1, 1)


def test_without_churn_the_lifetime_is_unbounded_and_nobody_is_skipped(
    app: App, tmp_path: Path
) -> None:
    rich, poor = shop(app)  # nobody was active on 1 October: the lifetime cannot be told
    loaded = campaign(tmp_path, "{margin: 0.3, cost_to_win_back: 150.00}")

    summary = plan_run(app, loaded, RUN)

    assert shop_lifetime_months(app.engine, RUN, LapseRule()) is None
    assert rows(app) == {rich: ("planned", None, False), poor: ("planned", None, False)}
    assert summary.not_worth_it == 0


def test_the_shop_lifetime_comes_from_last_months_churn(app: App, tmp_path: Path) -> None:
    rich, poor = shop(app)  # both lapsed on 1 October (last order 14 August, gap 30)
    # Active on 1 October (one order each, shop median gap 30: lapsed after 40 days): two.
    # One buys again on 25 October, the other is lapsed on 1 November: churn 1/2 over 31 days,
    # lifetime 31 / 30.4375 / 0.5 = 2.03696 months. Benefits: rich 300.00 x 1.014583 x 2.03696
    # = 620.00, poor 3.00 x 1.014583 x 2.03696 = 6.20; a cost of 7.00 skips only the poor one.
    stays, goes = add_customer(app, "stays"), add_customer(app, "goes")
    add_order(app, stays, at("2026-09-25"))
    add_order(app, stays, at("2026-10-25"))
    add_order(app, goes, at("2026-09-20"))
    loaded = campaign(tmp_path, "{margin: 0.3, cost_to_win_back: 7.00}")

    plan_run(app, loaded, RUN)

    assert shop_lifetime_months(app.engine, RUN, LapseRule()) == pytest.approx(31 / 30.4375 / 0.5)
    found = rows(app)
    assert found[poor] == ("skipped", NOT_WORTH_IT, False)
    assert found[rich] == ("planned", None, False)
