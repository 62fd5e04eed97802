"""Local sending windows: is a moment inside a customer's window, and when does it next open."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

HORIZON_DAYS = 14
"""How far ahead `next_opening` looks before it gives up (covers the Russian New Year break)."""

ALL_WEEKDAYS: frozenset[int] = frozenset(range(7))


@dataclass(frozen=True)
class SendingWindow:
    """When a campaign may reach a customer, in the customer's own wall-clock time.

    `weekdays` uses `date.weekday()` numbering (Monday 0 ... Sunday 6); the window is
    `start <= local time < end` on an allowed day; `holidays` are local calendar dates, skipped
    when `skip_holidays` is set.
    """

    weekdays: frozenset[int] = ALL_WEEKDAYS
    start: time = time(10, 0)
    end: time = time(20, 0)
    holidays: frozenset[date] = frozenset()
    skip_holidays: bool = True

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValueError(f"window start {self.start} must be before its end {self.end}")
        if not self.weekdays <= ALL_WEEKDAYS:
            raise ValueError(f"weekdays must be 0 (Monday) ... 6 (Sunday), got {self.weekdays}")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("window times are local wall-clock times: no tzinfo")


def day_allowed(day: date, window: SendingWindow) -> bool:
    """Whether `day` (a local calendar date) is a sending day of `window`."""
    if day.weekday() not in window.weekdays:
        return False
    return not (window.skip_holidays and day in window.holidays)


def hours(
    window: SendingWindow, voice_hours: tuple[time, time] | None = None
) -> tuple[time, time] | None:
    """The daily from-to of `window`, intersected with `voice_hours`; None when they don't meet."""
    start, end = window.start, window.end
    if voice_hours is not None:
        start, end = max(start, voice_hours[0]), min(end, voice_hours[1])
    return (start, end) if start < end else None


def is_open(
    now_utc: datetime,
    zone: ZoneInfo,
    window: SendingWindow,
    voice_hours: tuple[time, time] | None = None,
) -> bool:
    """Whether the local wall-clock time of `now_utc` in `zone` lies inside the window."""
    local = _utc(now_utc).astimezone(zone)
    span = hours(window, voice_hours)
    if span is None or not day_allowed(local.date(), window):
        return False
    return span[0] <= local.time().replace(tzinfo=None) < span[1]


def next_opening(
    now_utc: datetime,
    zone: ZoneInfo,
    window: SendingWindow,
    voice_hours: tuple[time, time] | None = None,
    horizon_days: int = HORIZON_DAYS,
) -> datetime | None:
    """The first moment (UTC) at or after `now_utc` when the window is open, else None.

    `now_utc` itself when the window is open; None when it stays shut for `horizon_days`. Each
    candidate day's opening is built as a local wall-clock datetime and converted to UTC, so DST
    changes never shift it: an opening inside a spring-forward gap (02:30 on a day that skips
    02:00-03:00) falls on the first instant after the gap (03:00 new time); an ambiguous one
    (fall-back) is its first occurrence.
    """
    now_utc = _utc(now_utc)
    if is_open(now_utc, zone, window, voice_hours):
        return now_utc
    span = hours(window, voice_hours)
    if span is None:
        return None
    today = now_utc.astimezone(zone).date()
    for offset in range(horizon_days + 1):
        day = today + timedelta(days=offset)
        if not day_allowed(day, window):
            continue
        opening = _opening(day, span[0], zone)
        if opening > now_utc:
            return opening
    return None


def _opening(day: date, start: time, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) of `day` whose wall-clock time in `zone` is `start` or later."""
    wall = datetime.combine(day, start)
    first = wall.replace(tzinfo=zone).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first  # the wall time exists (fold=0: the first of two in a fall-back)
    # `start` lies in a spring-forward gap: fold=0 reads it with the old offset, i.e. after the
    # gap, fold=1 with the new one, i.e. before it; the gap's end lies between the two.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = first
    if low > high:
        low, high = high, low
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"an aware datetime is required, got naive {moment!r}")
    return moment.astimezone(UTC)
