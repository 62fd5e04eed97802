"""Bulk reads as plain DBAPI tuples, for the few queries that return a row per customer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql import Executable


def fetch_tuples(connection: Connection, statement: Executable) -> list[tuple[Any, ...]]:
    """All rows of `statement` as the driver returns them, skipping SQLAlchemy's per-row work.

    A million SQLAlchemy Row objects cost seconds to build and more to convert; the driver's own
    tuples cost a fraction. Values are raw: UtcTimestamp columns come back as epoch integers.
    """
    result = connection.execute(statement)
    try:
        cursor = result.cursor
        assert cursor is not None, "fetch_tuples needs a statement that returns rows"
        return list(cursor.fetchall())
    finally:
        result.close()
