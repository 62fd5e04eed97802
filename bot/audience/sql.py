"""SQL expressions SQLite and PostgreSQL spell differently, written to give identical figures."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, Integer, cast, func
from sqlalchemy.sql.elements import ColumnElement


def median_sql(dialect: str, expression: str) -> str:
    """Median aggregate as SQL text: `median()` (registered on SQLite) or `percentile_cont(0.5)`."""
    if dialect == "postgresql":
        return f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {expression})"
    return f"median({expression})"


def median(dialect: str, expression: ColumnElement[Any]) -> ColumnElement[float]:
    """Median aggregate as a Core expression."""
    if dialect == "postgresql":
        return cast(func.percentile_cont(0.5).within_group(expression), Float)
    return cast(func.median(expression), Float)


def month_index_sql(day: str) -> str:
    """Calendar month (year * 12 + month - 1) of a day number (days since 1970-01-01), as SQL.

    Howard Hinnant's civil_from_days in integer arithmetic only, so SQLite and PostgreSQL give the
    same month without strftime or time zone functions (the same formula as
    `bot.db.sqlite_functions.month_of_day`). Valid for every day from year 0 on, where every
    operand is non-negative and integer division truncating or flooring is the same.
    """
    z = f"({day} + 719468)"
    era = f"({z} / 146097)"
    doe = f"({z} - {era} * 146097)"
    yoe = f"(({doe} - {doe} / 1460 + {doe} / 36524 - {doe} / 146096) / 365)"
    doy = f"({doe} - (365 * {yoe} + {yoe} / 4 - {yoe} / 100))"
    month_from_march = f"((5 * {doy} + 2) / 153)"
    # A year starting on 1 March: month index = that year * 12 + months since March + 2.
    return f"(({era} * 400 + {yoe}) * 12 + {month_from_march} + 2)"


def month_day_of_epoch(dialect: str, epoch: ColumnElement[Any]) -> ColumnElement[int]:
    """month * 100 + day of a UTC epoch-seconds column (e.g. 229 for 29 February)."""
    if dialect == "postgresql":
        stamp = func.timezone("UTC", func.to_timestamp(epoch))
        return _month_day_pg(stamp)
    text = func.strftime("%m%d", epoch, "unixepoch")
    return cast(text, Integer)


def month_day_of_date(dialect: str, day: ColumnElement[Any]) -> ColumnElement[int]:
    """month * 100 + day of a DATE column."""
    if dialect == "postgresql":
        return _month_day_pg(day)
    return cast(func.strftime("%m%d", day), Integer)


def _month_day_pg(value: ColumnElement[Any]) -> ColumnElement[int]:
    month = cast(func.extract("month", value), Integer)
    day = cast(func.extract("day", value), Integer)
    return month * 100 + day
