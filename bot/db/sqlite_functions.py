"""SQL functions SQLite lacks and PostgreSQL has, registered on every SQLite connection."""

from __future__ import annotations

import sqlite3


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
