"""Local sending windows: exact openings across DST, extreme zones, weekdays and holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.campaign.window import SendingWindow, hours, is_open, next_opening

NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
MOSCOW = ZoneInfo("Europe/Moscow")
KIRITIMATI = ZoneInfo("Pacific/Kiritimati")  # UTC+14
PAGO_PAGO = ZoneInfo("Pacific/Pago_Pago")  # UTC-11
DAYTIME = SendingWindow(start=time(9), end=time(20))
WORKDAYS = frozenset(range(5))
VOICE = (time(8), time(21))


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_new_york_spring_forward_opens_at_nine_new_time() -> None:
    # Saturday 2026-03-07 21:00 EST; clocks go 02:00 -> 03:00 on Sunday morning.
    now = utc(2026, 3, 8, 2, 0)
    opening = next_opening(now, NEW_YORK, DAYTIME)
    assert opening == utc(2026, 3, 8, 13, 0)  # 09:00 EDT (UTC-4), not 14:00 as 24 h later
    assert opening is not None and opening.astimezone(NEW_YORK).hour == 9


def test_new_york_fall_back_opens_at_nine_old_time() -> None:
    # Saturday 2026-10-31 22:00 EDT; clocks go 02:00 -> 01:00 on Sunday morning.
    now = utc(2026, 11, 1, 2, 0)
    assert next_opening(now, NEW_YORK, DAYTIME) == utc(2026, 11, 1, 14, 0)  # 09:00 EST (UTC-5)


def test_london_spring_forward() -> None:
    # Saturday 2026-03-28 21:00 GMT; BST starts 01:00 GMT on Sunday.
    now = utc(2026, 3, 28, 21, 0)
    assert next_opening(now, LONDON, DAYTIME) == utc(2026, 3, 29, 8, 0)  # 09:00 BST


def test_opening_inside_the_spring_forward_gap_is_the_end_of_the_gap() -> None:
    window = SendingWindow(start=time(2, 30), end=time(5))  # 02:30 does not exist on 2026-03-08
    now = utc(2026, 3, 8, 5, 0)  # Sunday 00:00 EST
    assert next_opening(now, NEW_YORK, window) == utc(2026, 3, 8, 7, 0)  # 03:00 EDT
    assert is_open(utc(2026, 3, 8, 7, 0), NEW_YORK, window)
    assert not is_open(utc(2026, 3, 8, 6, 59), NEW_YORK, window)  # 01:59 EST


def test_ambiguous_opening_on_fall_back_is_the_first_occurrence() -> None:
    window = SendingWindow(start=time(1, 30), end=time(5))  # 01:30 happens twice on 2026-11-01
    now = utc(2026, 11, 1, 4, 0)  # Sunday 00:00 EDT
    assert next_opening(now, NEW_YORK, window) == utc(2026, 11, 1, 5, 30)  # 01:30 EDT


def test_kiritimati_is_a_day_ahead_of_utc() -> None:
    # Monday 2026-06-01 07:00 UTC is Monday 21:00 in Kiritimati: closed until Tuesday 09:00 there,
    # which is still Monday in UTC.
    assert next_opening(utc(2026, 6, 1, 7, 0), KIRITIMATI, DAYTIME) == utc(2026, 6, 1, 19, 0)
    # Monday 20:00 UTC is Tuesday 10:00 in Kiritimati: open.
    assert is_open(utc(2026, 6, 1, 20, 0), KIRITIMATI, DAYTIME)


def test_pago_pago_is_a_day_behind_and_weekdays_are_local() -> None:
    window = SendingWindow(weekdays=WORKDAYS, start=time(9), end=time(20))
    # Saturday 2026-06-06 08:00 UTC is Friday 21:00 in Pago Pago: the next workday there is Monday.
    now = utc(2026, 6, 6, 8, 0)
    assert next_opening(now, PAGO_PAGO, window) == utc(2026, 6, 8, 20, 0)  # Mon 09:00 SST
    # Saturday 2026-06-06 05:00 UTC is still Friday 18:00 there: open, although UTC says Saturday.
    assert is_open(utc(2026, 6, 6, 5, 0), PAGO_PAGO, window)


def test_holidays_are_skipped_in_the_customers_calendar() -> None:
    new_year = frozenset(date(2027, 1, day) for day in range(1, 9))
    window = SendingWindow(weekdays=WORKDAYS, start=time(10), end=time(20), holidays=new_year)
    now = utc(2026, 12, 31, 17, 30)  # Thursday 20:30 MSK, after the window
    assert next_opening(now, MOSCOW, window) == utc(2027, 1, 11, 7, 0)  # Monday 10:00 MSK
    working = SendingWindow(
        weekdays=WORKDAYS, start=time(10), end=time(20), holidays=new_year, skip_holidays=False
    )
    assert next_opening(now, MOSCOW, working) == utc(2027, 1, 1, 7, 0)  # Friday 10:00 MSK


def test_boundaries_start_inclusive_end_exclusive() -> None:
    tuesday = datetime(2026, 11, 17, tzinfo=MOSCOW)
    assert is_open(tuesday.replace(hour=9), MOSCOW, DAYTIME)
    assert not is_open(tuesday.replace(hour=8, minute=59, second=59), MOSCOW, DAYTIME)
    assert not is_open(tuesday.replace(hour=20), MOSCOW, DAYTIME)
    assert next_opening(tuesday.replace(hour=12), MOSCOW, DAYTIME) == tuesday.replace(hour=12)


def test_voice_hours_narrow_a_wide_window() -> None:
    wide = SendingWindow(start=time(7), end=time(23))
    assert hours(wide, VOICE) == (time(8), time(21))
    early = datetime(2026, 11, 17, 7, 30, tzinfo=MOSCOW)
    assert is_open(early, MOSCOW, wide)
    assert not is_open(early, MOSCOW, wide, VOICE)
    assert next_opening(early, MOSCOW, wide, VOICE) == early.replace(hour=8, minute=0)
    late = datetime(2026, 11, 17, 21, 0, tzinfo=MOSCOW)
    assert next_opening(late, MOSCOW, wide, VOICE) == datetime(2026, 11, 18, 8, tzinfo=MOSCOW)


def test_a_window_that_never_opens_gives_none() -> None:
    evening = SendingWindow(start=time(21), end=time(23))
    now = utc(2026, 11, 17, 12, 0)
    assert hours(evening, VOICE) is None
    assert next_opening(now, MOSCOW, evening, VOICE) is None
    no_days = SendingWindow(weekdays=frozenset())
    assert next_opening(now, MOSCOW, no_days) is None
    every_day_off = frozenset(date(2026, 11, 17) + timedelta(days=n) for n in range(16))
    assert next_opening(now, MOSCOW, SendingWindow(holidays=every_day_off)) is None


def test_naive_datetimes_and_bad_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        is_open(datetime(2026, 11, 17, 12), MOSCOW, DAYTIME)  # noqa: DTZ001
    with pytest.raises(ValueError, match="before its end"):
        SendingWindow(start=time(20), end=time(9))
    with pytest.raises(ValueError, match="weekdays"):
        SendingWindow(weekdays=frozenset({7}))
