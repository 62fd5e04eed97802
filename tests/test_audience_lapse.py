"""Lapsed customers: the rule, its edge cases, the as-of cutoff, and incremental refresh."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.app import App
from bot.audience.cohort import CohortMember
from bot.audience.lapse import LapseRule, lapsed, lapsed_cohort
from bot.audience.rhythm import RHYTHM, frequency_recency_age, refresh_rhythm
from tests.audience_factory import add_customer, add_order, add_orders_every, at

AS_OF = at("2026-11-22")


def _by_id(members: list[CohortMember]) -> dict[str, CohortMember]:
    return {m.external_id: m for m in members}


def _regular(app: App, external_id: str, gap_days: int, count: int, last: str) -> int:
    customer = add_customer(app, external_id)
    first = at(last) - timedelta(days=gap_days * (count - 1))
    add_orders_every(app, customer, first, gap_days, count)
    return customer


def test_customer_with_own_rhythm_lapses_one_day_past_the_threshold_not_at_it(app: App) -> None:
    # gap 30 days, factor 4/3: threshold 40 days since the last order
    _regular(app, "at-threshold", 30, 4, "2026-10-13")  # 40 days before as_of
    _regular(app, "one-day-past", 30, 4, "2026-10-12")  # 41 days
    refresh_rhythm(app.engine)
    members = _by_id(lapsed(app.engine, AS_OF))
    assert set(members) == {"one-day-past"}
    assert members["one-day-past"].expected_gap_days == 30.0
    assert members["one-day-past"].days_since_last_order == 41.0
    assert "own median gap" in members["one-day-past"].reason


def test_a_one_order_customer_is_judged_by_the_shop_median_gap(app: App) -> None:
    _regular(app, "a", 10, 4, "2026-11-20")
    _regular(app, "b", 20, 4, "2026-11-20")
    _regular(app, "c", 30, 4, "2026-11-20")  # shop median of medians: 20 days -> threshold 26.67
    once_recent = add_customer(app, "once-recent")
    add_order(app, once_recent, at("2026-10-27"))  # 26 days ago
    once_old = add_customer(app, "once-old")
    add_order(app, once_old, at("2026-10-26"))  # 27 days ago
    refresh_rhythm(app.engine)
    members = _by_id(lapsed(app.engine, AS_OF))
    assert set(members) == {"once-old"}
    assert members["once-old"].expected_gap_days == 20.0
    assert "shop median gap" in members["once-old"].reason


def test_fewer_purchase_days_than_min_orders_use_the_shop_median(app: App) -> None:
    _regular(app, "a", 10, 3, "2026-11-20")
    _regular(app, "b", 10, 3, "2026-11-20")  # shop median 10 days (2-day customer's 90 too)
    _regular(app, "two-orders", 90, 2, "2026-10-22")  # own gap 90, but only 2 purchase days
    refresh_rhythm(app.engine)
    members = _by_id(lapsed(app.engine, AS_OF))
    assert set(members) == {"two-orders"}
    assert members["two-orders"].expected_gap_days == 10.0
    assert _by_id(lapsed(app.engine, AS_OF, LapseRule(min_orders=2))) == {}


def test_several_orders_on_one_day_are_one_purchase_and_do_not_shorten_the_gap(app: App) -> None:
    customer = _regular(app, "busy-day", 30, 4, "2026-10-12")
    add_order(app, customer, at("2026-10-12", 8))
    add_order(app, customer, at("2026-10-12", 20))
    refresh_rhythm(app.engine)
    with app.engine.connect() as connection:
        row = connection.execute(select(RHYTHM)).one()
    assert (row.orders, row.purchase_days, row.median_gap_days) == (6, 4, 30.0)
    assert _by_id(lapsed(app.engine, AS_OF))["busy-day"].expected_gap_days == 30.0


def test_cancelled_orders_are_ignored(app: App) -> None:
    customer = _regular(app, "cancelled-last", 30, 4, "2026-10-12")
    add_order(app, customer, at("2026-11-15"), status="cancelled")
    refresh_rhythm(app.engine)
    members = _by_id(lapsed(app.engine, AS_OF))
    assert members["cancelled-last"].orders == 4
    assert members["cancelled-last"].days_since_last_order == 41.0


def test_orders_after_as_of_are_ignored_for_backtests(app: App) -> None:
    customer = _regular(app, "came-back", 30, 4, "2026-06-01")
    add_order(app, customer, at("2026-11-01"))  # after the backtest date
    refresh_rhythm(app.engine)
    assert lapsed(app.engine, AS_OF) == []
    backtest = at("2026-07-15")  # 44 days after the 2026-06-01 order, before the comeback
    members = _by_id(lapsed(app.engine, backtest))
    assert members["came-back"].orders == 4
    assert members["came-back"].days_since_last_order == 44.0
    arrays = frequency_recency_age(app.engine, backtest)
    assert arrays.frequency.tolist() == [3.0]
    assert arrays.recency_days.tolist() == [90.0]
    # Age runs from the start of the first purchase day (orders placed at noon): 134 days + 12 h.
    assert arrays.age_days.tolist() == [134.5]


def test_refreshing_some_customers_equals_a_full_rebuild(app: App) -> None:
    first = _regular(app, "a", 10, 5, "2026-09-01")
    second = _regular(app, "b", 20, 3, "2026-10-01")
    refresh_rhythm(app.engine)
    add_order(app, first, at("2026-11-01"), amount_minor=55_00)
    add_order(app, second, at("2026-10-01", 18), status="cancelled")
    refresh_rhythm(app.engine, [first])
    with app.engine.connect() as connection:
        incremental = connection.execute(select(RHYTHM).order_by(RHYTHM.c.customer_id)).all()
    refresh_rhythm(app.engine)
    with app.engine.connect() as connection:
        full = connection.execute(select(RHYTHM).order_by(RHYTHM.c.customer_id)).all()
    assert incremental == full
    assert full[0].orders == 6


def test_without_enough_history_p_alive_is_blank_and_the_reason_is_given(app: App) -> None:
    _regular(app, "a", 30, 4, "2026-09-01")
    refresh_rhythm(app.engine)
    cohort = lapsed_cohort(app.engine, AS_OF)
    assert [m.p_alive for m in cohort.members] == [None]
    assert cohort.note is not None and "repeat buyers" in cohort.note
