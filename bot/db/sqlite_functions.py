"""SQL functions SQLite lacks and PostgreSQL has, registered on every SQLite connection.

Besides `median()`, the buying rhythm (`bot.audience.rhythm`) uses three scalar functions over
`group_concat(day)` of one customer's orders (UTC day numbers, one per order, any order):
`rhythm_purchase_days`, `rhythm_median_gap` and `rhythm_monthly_cv`. They replace, on SQLite, the
DISTINCT + LAG window + median aggregate and the month GROUP BY that PostgreSQL runs, and give the
same figures (see `rhythm_figures`). The three are called on the same text one after the other, so
the figures of the last text are kept and the second and third calls cost a string comparison.
"""

from __future__ import annotations

import math
import sqlite3
from functools import cache

DAYS_PER_ERA = 146_097
# Month index (year * 12 + month - 1) of every day from 1970-01-01 on, for the next 300 years.
_TABLE_DAYS = 300 * 366
# One order in 12 months: counts (1, 0 x 11), population std / mean = sqrt(11).
_ONE_ORDER_CV = math.sqrt(12.0 * 1.0 / (1.0 * 1.0) - 1.0)


def month_of_day(day: int) -> int:
    """Calendar month (year * 12 + month - 1) of a day number (days since 1970-01-01).

    Howard Hinnant's civil_from_days in integer arithmetic: the same formula
    `bot.audience.sql.month_index_sql` writes in SQL. Floor division throughout, valid for
    every day from year 0 on.
    """
    z = day + 719_468
    era = z // DAYS_PER_ERA
    doe = z - era * DAYS_PER_ERA
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    # A year starting on 1 March: month index = that year * 12 + mp + 2 (March is mp 0).
    return (era * 400 + yoe) * 12 + mp + 2


@cache
def _month_table() -> tuple[list[int], dict[int, int]]:
    """Month index of every day in the table, and the first day of each of those months."""
    months = [month_of_day(day) for day in range(_TABLE_DAYS)]
    starts: dict[int, int] = {}
    for day in range(_TABLE_DAYS - 1, -1, -1):
        starts[months[day]] = day
    return months, starts


def _month_start(month: int, starts: dict[int, int]) -> int:
    start = starts.get(month)
    if start is None:  # outside the table: search from an estimate
        start = (month // 12 - 1970) * 365 + (month % 12) * 28 - 40
        while month_of_day(start) < month:
            start += 1
        while month_of_day(start - 1) >= month:
            start -= 1
    return start


def rhythm_figures(days_text: str) -> tuple[int, float | None, float]:
    """(purchase_days, median_gap_days, monthly_cv) from one customer's order days.

    `days_text` is `group_concat(day)`: comma-separated day numbers, one per order. Purchase days
    are the distinct days; the median gap is the median of the gaps between consecutive purchase
    days (None below two); monthly_cv is computed exactly as the PostgreSQL SQL does (order counts
    per calendar month over the 12 months ending with the last order's month, zero months
    included, population std / mean), with the same floating-point operations in the same order.
    """
    days = list(map(int, days_text.split(",")))
    if len(days) == 1:
        return 1, None, _ONE_ORDER_CV
    days.sort()
    unique = list(dict.fromkeys(days))
    purchase_days = len(unique)
    median: float | None = None
    if purchase_days > 1:
        gaps = [b - a for a, b in zip(unique, unique[1:], strict=False)]
        gaps.sort()
        half = len(gaps) // 2
        median = float(gaps[half]) if len(gaps) % 2 else (gaps[half - 1] + gaps[half]) / 2.0
    counts: dict[int, int] = {}
    get = counts.get
    months, starts = _month_table()
    if days[0] >= 0 and days[-1] < _TABLE_DAYS:
        start = _month_start(months[days[-1]] - 11, starts)
        for day in days:
            if day >= start:
                month = months[day]
                counts[month] = get(month, 0) + 1
    else:
        last_month = month_of_day(days[-1])
        for month in map(month_of_day, days):
            if month > last_month - 12:
                counts[month] = get(month, 0) + 1
    total = 0
    squares = 0
    for n in counts.values():
        total += n
        squares += n * n
    s, ss = float(total), float(squares)
    ratio = 12.0 * ss / (s * s)
    return purchase_days, median, math.sqrt(ratio - 1.0 if ratio > 1.0 else 0.0)


class _RhythmCache:
    """The figures of the last `group_concat(day)` text: three functions read them in turn."""

    __slots__ = ("figures", "text")

    def __init__(self) -> None:
        self.text: str | None = None
        self.figures: tuple[int, float | None, float] = (0, None, 0.0)

    def get(self, text: str) -> tuple[int, float | None, float]:
        if text != self.text:
            self.figures = rhythm_figures(text)
            self.text = text
        return self.figures


class _Median:
    """median(x): the same result as PostgreSQL's percentile_cont(0.5) WITHIN GROUP (ORDER BY x)."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: list[float] = []

    def step(self, value: float | None) -> None:
        if value is not None:
            self.values.append(value)

    def finalize(self) -> float | None:
        values = self.values
        n = len(values)
        if n == 0:
            return None
        values.sort()
        half = n // 2
        if n % 2:
            return float(values[half])
        return (values[half - 1] + values[half]) / 2.0


def register(connection: sqlite3.Connection) -> None:
    connection.create_aggregate("median", 1, _Median)  # type: ignore[arg-type]
    cache = _RhythmCache()

    def purchase_days(text: str | None) -> int | None:
        return None if text is None else cache.get(text)[0]

    def median_gap(text: str | None) -> float | None:
        return None if text is None else cache.get(text)[1]

    def monthly_cv(text: str | None) -> float | None:
        return None if text is None else cache.get(text)[2]

    connection.create_function("rhythm_purchase_days", 1, purchase_days, deterministic=True)
    connection.create_function("rhythm_median_gap", 1, median_gap, deterministic=True)
    connection.create_function("rhythm_monthly_cv", 1, monthly_cv, deterministic=True)
