"""Consent cells of an import and the ledger rows they add.

A cell lists tokens `channel:purpose` separated by spaces, commas or `|`; `*` stands for every
channel or purpose (`*` alone for everything); a leading `-` or `!` withdraws instead of grants.
Ledger rows are added only when they change the consent in force, so importing the same file twice
adds nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import Connection, Table, insert, select

from bot.db.models import CHANNELS, PURPOSES, Consent

Statement = tuple[str, str, bool]
"""(channel, purpose, granted)."""

_CONSENTS: Table = Consent.__table__  # type: ignore[assignment]


def parse_consent(text: str) -> list[Statement]:
    statements: dict[tuple[str, str], bool] = {}
    for token in re.split(r"[\s,|;]+", text.strip().casefold()):
        if not token:
            continue
        granted = token[0] not in "-!"
        body = token.lstrip("-!")
        channel, sep, purpose = body.partition(":")
        if not sep:
            if body != "*":
                raise ValueError(
                    f"consent token {token!r} must be channel:purpose, e.g. telegram:marketing"
                )
            purpose = "*"
        channels = CHANNELS if channel == "*" else (channel,)
        purposes = PURPOSES if purpose == "*" else (purpose,)
        if channel != "*" and channel not in CHANNELS:
            raise ValueError(f"unknown consent channel {channel!r} (one of {', '.join(CHANNELS)})")
        if purpose != "*" and purpose not in PURPOSES:
            raise ValueError(f"unknown consent purpose {purpose!r} (one of {', '.join(PURPOSES)})")
        for c in channels:
            for p in purposes:
                statements[(c, p)] = granted  # a later token wins, as the reader would expect
    return [(c, p, granted) for (c, p), granted in statements.items()]


def in_force(
    connection: Connection, customer_ids: Iterable[int]
) -> dict[tuple[int, str, str], tuple[bool, int]]:
    """(customer, channel, purpose) -> (granted, at as epoch seconds) of the newest ledger entry."""
    c = _CONSENTS.c
    query = (
        select(c.customer_id, c.channel, c.purpose, c.granted, c.at)
        .where(c.customer_id.in_(list(customer_ids)))
        .order_by(c.at, c.id)
    )
    current: dict[tuple[int, str, str], tuple[bool, int]] = {}
    for customer_id, channel, purpose, granted, at in connection.execute(query):
        current[(customer_id, channel, purpose)] = (bool(granted), int(at.timestamp()))
    return current


def add_ledger_rows(connection: Connection, rows: list[dict[str, object]]) -> None:
    if rows:
        connection.execute(insert(_CONSENTS), rows)
