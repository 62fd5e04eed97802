"""`boomerang start`: the README's run command (being built)."""

from __future__ import annotations


def start() -> None:
    """Open the database, seed demo data when it is empty, show the cohorts."""
