"""SQL expressions SQLite and PostgreSQL spell differently, written to give identical figures."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Float, Integer, cast, func
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


def month_index_sql(dialect: str, epoch: str) -> str:
    """Calendar month (year * 12 + month - 1) of a UTC epoch-seconds column, as SQL text."""
    if dialect == "postgresql":
        stamp = f"(to_timestamp({epoch}) AT TIME ZONE 'UTC')"
        return (
            f"(CAST(EXTRACT(YEAR FROM {stamp}) AS INTEGER) * 12"
            f" + CAST(EXTRACT(MONTH FROM {stamp}) AS INTEGER) - 1)"
        )
    return (
        f"(CAST(strftime('%Y', {epoch}, 'unixepoch') AS INTEGER) * 12"
        f" + CAST(strftime('%m', {epoch}, 'unixepoch') AS INTEGER) - 1)"
    )


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


def ensure_sqrt(connection: Connection) -> None:
    """SQLite builds without math functions lack sqrt(); register Python's on this connection."""
    if connection.dialect.name != "sqlite":
        return
    import math

    raw: Any = connection.connection.driver_connection
    raw.create_function("sqrt", 1, _sqrt(math.sqrt), deterministic=True)


def _sqrt(root: Any) -> Any:
    def sqrt(value: float | None) -> float | None:
        return None if value is None else float(root(value))

    return sqrt
