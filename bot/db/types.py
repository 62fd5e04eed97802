"""Column types shared by all models: instants stored as integer UTC epoch seconds.

Why integers: date arithmetic over millions of orders is plain integer maths on both SQLite and
PostgreSQL (no string parsing, no dialect-specific interval functions), and an instant can never be
stored without its time zone by mistake.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Dialect
from sqlalchemy.types import TypeDecorator


class UtcTimestamp(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as whole seconds since 1970-01-01 UTC."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: Boomerang stores only aware instants")
        return int(value.timestamp())

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return from_epoch(int(value))


def to_epoch(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}")
    return int(value.timestamp())


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_epoch(value: int) -> datetime:
    # Adding a timedelta is several times faster than datetime.fromtimestamp(value, UTC).
    return _EPOCH + timedelta(seconds=value)


SECONDS_PER_DAY = 86_400
