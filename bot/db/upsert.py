"""The dialect's INSERT, for upserts: SQLite's and PostgreSQL's both have `on_conflict_do_nothing`
and `on_conflict_do_update` with the same signature; other databases are not supported."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def dialect_insert(session: Session) -> Any:
    """`postgresql.insert` or `sqlite.insert`, by the session's database."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"Boomerang supports SQLite and PostgreSQL, not {name}")
