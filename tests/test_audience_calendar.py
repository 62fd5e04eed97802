"""Post-order, welcome, anniversary and birthday audiences count days on the local calendar."""

from __future__ import annotations

from datetime import date

from bot.app import App
from bot.audience.anniversary import anniversary_cohort
from bot.audience.birthday import birthday_cohort
from bot.audience.post_order import post_order_cohort
from bot.audience.rhythm import refresh_rhythm
from bot.audience.welcome import welcome_cohort
from bot.customers.zone import customer_zone
from tests.audience_factory import add_customer, add_order, at

# 2026-11-22 12:00 UTC: 15:00 in Moscow, 22:00 in Vladivostok, 04:00 in Los Angeles.
AS_OF = at("2026-11-22")


def _ids(cohort: object) -> set[str]:
    return {m.external_id for m in cohort.members}  # type: ignore[attr-defined]


def test_customer_zone_prefers_own_zone_then_phone_then_default() -> None:
    assert customer_zone("Asia/Vladivostok", "+14155552671", "Europe/Moscow").key == (
        "Asia/Vladivostok"
    )
    assert customer_zone(None, "+14155552671", "Europe/Moscow").key == "America/Los_Angeles"
    assert customer_zone(None, "+79123456789", "Europe/Moscow").key == "Europe/Moscow"
    assert customer_zone("Not/AZone", None, "Europe/Moscow").key == "Europe/Moscow"
    assert customer_zone(None, None, "Asia/Yekaterinburg").key == "Asia/Yekaterinburg"


def test_post_order_counts_days_in_the_customers_zone(app: App) -> None:
    # Delivered 2026-11-20 23:30 UTC is 21 Nov 02:30 in Moscow (1 local day before 22 Nov),
    # 21 Nov 09:30 in Vladivostok (as_of is 22 Nov 22:00 there: 1 day) and
    # 20 Nov 15:30 in Los Angeles (as_of is 22 Nov 04:00 there: 2 days).
    delivered = at("2026-11-20", 23, 30)
    for external_id, zone in [
        ("moscow", "Europe/Moscow"),
        ("vladivostok", "Asia/Vladivostok"),
        ("los-angeles", "America/Los_Angeles"),
    ]:
        customer = add_customer(app, external_id, time_zone=zone)
        add_order(app, customer, at("2026-11-18"), delivered_at=delivered)
    refresh_rhythm(app.engine)
    assert _ids(post_order_cohort(app.engine, AS_OF)) == {"los-angeles"}
    assert _ids(post_order_cohort(app.engine, AS_OF, min_days=1, max_days=1)) == {
        "moscow",
        "vladivostok",
    }


def test_post_order_window_ends_are_inclusive_and_asked_or_cancelled_orders_are_skipped(
    app: App,
) -> None:
    cases = {
        "two-days": dict(delivered_at=at("2026-11-20", 10)),
        "seven-days": dict(delivered_at=at("2026-11-15", 10)),
        "eight-days": dict(delivered_at=at("2026-11-14", 10)),
        "one-day": dict(delivered_at=at("2026-11-21", 10)),
        "placed-only": dict(delivered_at=None),
        "asked": dict(delivered_at=at("2026-11-19"), feedback_requested_at=at("2026-11-21")),
        "cancelled": dict(delivered_at=at("2026-11-19"), status="cancelled"),
    }
    for external_id, fields in cases.items():
        customer = add_customer(app, external_id, time_zone="Europe/Moscow")
        placed = at("2026-11-17") if external_id == "placed-only" else at("2026-11-10")
        add_order(app, customer, placed, **fields)  # type: ignore[arg-type]
    refresh_rhythm(app.engine)
    cohort = post_order_cohort(app.engine, AS_OF)
    assert _ids(cohort) == {"two-days", "seven-days", "placed-only"}
    by_id = {m.external_id: m for m in cohort.members}
    assert by_id["placed-only"].delivered_at == at("2026-11-17")
    assert by_id["two-days"].order_external_id is not None


def test_welcome_takes_one_order_customers_whose_first_delivery_was_recent(app: App) -> None:
    fresh = add_customer(app, "fresh", time_zone="Europe/Moscow")
    add_order(app, fresh, at("2026-11-18"), delivered_at=at("2026-11-19"))  # 3 days ago
    stale = add_customer(app, "stale", time_zone="Europe/Moscow")
    add_order(app, stale, at("2026-11-17"), delivered_at=at("2026-11-18"))  # 4 days ago
    repeat = add_customer(app, "repeat", time_zone="Europe/Moscow")
    add_order(app, repeat, at("2026-11-18"), delivered_at=at("2026-11-20"))
    add_order(app, repeat, at("2026-11-21"))
    undelivered = add_customer(app, "undelivered", time_zone="Europe/Moscow")
    add_order(app, undelivered, at("2026-11-21"))
    refresh_rhythm(app.engine)
    assert _ids(welcome_cohort(app.engine, AS_OF)) == {"fresh"}


def test_anniversary_of_the_first_order_including_29_february(app: App) -> None:
    two_years = add_customer(app, "two-years", time_zone="Europe/Moscow")
    add_order(app, two_years, at("2024-11-22", 9))
    add_order(app, two_years, at("2026-05-01"))
    one_year = add_customer(app, "one-year", time_zone="Europe/Moscow")
    add_order(app, one_year, at("2025-11-22", 9))
    this_year = add_customer(app, "this-year", time_zone="Europe/Moscow")
    add_order(app, this_year, at("2026-11-22", 9))
    # 2025-11-21 22:00 UTC is already 22 Nov in Moscow, still 21 Nov in Los Angeles.
    late_evening_moscow = add_customer(app, "late-moscow", time_zone="Europe/Moscow")
    add_order(app, late_evening_moscow, at("2025-11-21", 22))
    late_evening_la = add_customer(app, "late-la", time_zone="America/Los_Angeles")
    add_order(app, late_evening_la, at("2025-11-21", 22))
    leap = add_customer(app, "leap", time_zone="Europe/Moscow")
    add_order(app, leap, at("2024-02-29"))
    refresh_rhythm(app.engine)
    assert _ids(anniversary_cohort(app.engine, AS_OF)) == {"two-years", "one-year", "late-moscow"}
    assert _ids(anniversary_cohort(app.engine, AS_OF, years=2)) == {"two-years"}
    assert _ids(anniversary_cohort(app.engine, at("2025-02-28"))) == {"leap"}
    assert _ids(anniversary_cohort(app.engine, at("2028-02-28"))) == set()
    assert _ids(anniversary_cohort(app.engine, at("2028-02-29"))) == {"leap"}


def test_birthday_today_or_within_days_ahead(app: App) -> None:
    add_customer(app, "today", birthday=date(1990, 11, 22), time_zone="Europe/Moscow")
    add_customer(app, "tomorrow", birthday=date(1985, 11, 23), time_zone="Europe/Moscow")
    add_customer(app, "in-four", birthday=date(1985, 11, 26), time_zone="Europe/Moscow")
    # Kiritimati is UTC+14: at 12:00 UTC on 22 Nov it is already 02:00 on 23 Nov there.
    add_customer(app, "kiritimati", birthday=date(2000, 11, 23), time_zone="Pacific/Kiritimati")
    add_customer(app, "leap", birthday=date(2000, 2, 29), time_zone="Europe/Moscow")
    assert _ids(birthday_cohort(app.engine, AS_OF)) == {"today", "kiritimati"}
    assert _ids(birthday_cohort(app.engine, AS_OF, days_ahead=1)) == {
        "today",
        "tomorrow",
        "kiritimati",
    }
    assert _ids(birthday_cohort(app.engine, at("2027-02-28"))) == {"leap"}
    cohort = birthday_cohort(app.engine, AS_OF, days_ahead=4)
    assert {m.external_id: m.reason for m in cohort.members}["in-four"] == "birthday in 4 days"
