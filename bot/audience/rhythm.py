"""Per-customer buying rhythm snapshot (being built: see issue 2)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Engine


def refresh_rhythm(engine: Engine, customer_ids: Collection[int] | None = None) -> None:
    """Recompute the rhythm of the given customers (all when None)."""
