"""Customers import, one batch at a time: validate rows, upsert managers and customers, add consent.

Columns present in the file are mirrored (an empty cell clears the stored value); columns absent
from the file are left alone. Two exceptions, because they protect people: `opted_out` can set an
opt-out but never clears one, and consent only appends to the ledger.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Table, Text, and_, cast, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from bot.app import App
from bot.customers.columns import ColumnMap
from bot.customers.consents import Statement, add_ledger_rows, in_force, parse_consent
from bot.customers.phones import normalise_phone
from bot.customers.report import ImportReport
from bot.customers.source import Row
from bot.customers.values import InstantParser, parse_date, parse_flag, parse_tags, parse_yes_no
from bot.db.models import Customer, Manager

_CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]
_MANAGERS: Table = Manager.__table__  # type: ignore[assignment]
# Mirrored columns in the order they are compared; `manager` arrives as a name, stored as an id.
MIRRORED = (
    "name",
    "first_name",
    "phone",
    "email",
    "telegram_chat_id",
    "locale",
    "time_zone",
    "birthday",
    "tags",
    "manager",
    "flagged",
)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_LOCALE_WORDS = {"русский": "ru", "russian": "ru", "english": "en", "английский": "en"}


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _text(limit: int) -> Callable[[str], str | None]:
    def parse(text: str) -> str | None:
        text = text.strip()
        if len(text) > limit:
            raise ValueError(f"longer than {limit} characters")
        return text or None

    return parse


def _email(text: str) -> str | None:
    text = text.strip().lower()
    if not text:
        return None
    if not _EMAIL.fullmatch(text) or len(text) > 320:
        raise ValueError(f"not an e-mail address: {text!r}")
    return text


def _chat_id(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"not a Telegram chat id: {text!r}") from None
    if abs(value) >= 2**63:
        raise ValueError(f"not a Telegram chat id: {text!r}")
    return value


def _locale(text: str) -> str | None:
    word = text.strip().casefold().replace("_", "-")
    word = _LOCALE_WORDS.get(word, word)
    if len(word) > 8:
        raise ValueError(f"not a language code: {text!r}")
    return word or None


def _time_zone(text: str) -> str | None:
    text = text.strip()
    if text and text not in _zones():
        raise ValueError(f"unknown time zone {text!r} (use IANA names like Europe/Moscow)")
    return text or None


class CustomerBatches:
    def __init__(
        self,
        app: App,
        report: ImportReport,
        columns: ColumnMap,
        parse_instant: InstantParser,
        region: str,
    ) -> None:
        self.app = app
        self.report = report
        self.columns = columns.fields
        self.parse_instant = parse_instant
        self.now = app.clock.now().astimezone(UTC)
        self.source_name = report.path.name
        self.seen: dict[str, int] = {}
        self.mirrored = [name for name in MIRRORED if name in self.columns]
        parsers: dict[str, Callable[[str], Any]] = {
            "name": _text(300),
            "first_name": _text(100),
            "phone": lambda t: normalise_phone(t, region) if t.strip() else None,
            "email": _email,
            "telegram_chat_id": _chat_id,
            "locale": _locale,
            "time_zone": _time_zone,
            "birthday": lambda t: parse_date(t) if t.strip() else None,
            "tags": parse_tags,
            "manager": _text(200),
            "flagged": parse_flag,
        }
        self.parsers = [(name, self.columns[name], parsers[name]) for name in self.mirrored]
        self.stmt = self._upsert_statement()

    def write(self, connection: Connection, valid: list[dict[str, Any]]) -> None:
        """Write one validated batch in its own transaction."""
        if valid:
            with connection.begin():
                self._write(connection, valid)

    def validate(self, rows: Sequence[Row]) -> list[dict[str, Any]]:
        report, f = self.report, self.columns
        valid: list[dict[str, Any]] = []
        for row in rows:
            line = row.line
            if row.error is not None:
                report.bad(line, None, row.error)
                continue
            cells = row.cells
            external_id = cells[f["external_id"]].strip()
            if not external_id:
                report.bad(line, "external_id", "missing customer id")
                continue
            if len(external_id) > 100:
                report.bad(
                    line, "external_id", "customer id longer than 100 characters", external_id
                )
                continue
            first = self.seen.get(external_id)
            if first is not None:
                report.bad(
                    line,
                    "external_id",
                    f"duplicate customer id {external_id!r}: first seen on line {first}",
                    external_id,
                )
                continue
            record: dict[str, Any] = {"line": line, "external_id": external_id}
            failed = False
            for name, index, parse in self.parsers:
                text = cells[index]
                try:
                    record[name] = parse(text)
                except ValueError as error:
                    report.bad(line, name, str(error), text)
                    failed = True
                    break
            if failed:
                continue
            try:
                record["opted_out"] = "opted_out" in f and parse_yes_no(cells[f["opted_out"]])
            except ValueError as error:
                report.bad(line, "opted_out", str(error), cells[f["opted_out"]])
                continue
            statements: list[Statement] = []
            consent_at = int(self.now.timestamp())
            if "consent" in f:
                text = cells[f["consent"]]
                try:
                    statements = parse_consent(text)
                except ValueError as error:
                    report.bad(line, "consent", str(error), text)
                    continue
                if statements and "consent_at" in f and cells[f["consent_at"]].strip():
                    text = cells[f["consent_at"]]
                    try:
                        consent_at = self.parse_instant(text)
                    except ValueError as error:
                        report.bad(line, "consent_at", str(error), text)
                        continue
                    if consent_at > int(self.now.timestamp()):
                        report.bad(line, "consent_at", "consent date is in the future", text)
                        continue
            record["consent"] = statements
            record["consent_at"] = consent_at
            self.seen[external_id] = line
            valid.append(record)
        return valid

    def _write(self, connection: Connection, valid: list[dict[str, Any]]) -> None:
        report = self.report
        if "manager" in self.columns:
            managers = _manager_ids(connection, {r["manager"] for r in valid if r["manager"]})
            for record in valid:
                record["manager_id"] = managers.get(record.pop("manager"))
        compared = ["manager_id" if name == "manager" else name for name in self.mirrored]
        stored = _stored_customers(connection, [r["external_id"] for r in valid], compared)
        to_write: list[dict[str, Any]] = []
        changed: set[str] = set()
        for record in valid:
            before = stored.get(record["external_id"])
            opt_out = record["opted_out"] and (before is None or before[1] is None)
            if (
                before is not None
                and not opt_out
                and all(before[2][i] == record[name] for i, name in enumerate(compared))
            ):
                continue
            values = {name: record[name] for name in compared}
            values["external_id"] = record["external_id"]
            values.setdefault("tags", [])
            values["opted_out_at"] = self.now if record["opted_out"] else None
            values["created_at"] = values["updated_at"] = self.now
            to_write.append(values)
            changed.add(record["external_id"])
        if to_write:
            connection.execute(self.stmt, to_write)
        ids = {key: value[0] for key, value in stored.items()}
        new = [r["external_id"] for r in valid if r["external_id"] not in ids]
        if new:
            ids.update(_ids(connection, new))
        added_consent = self._add_consent(connection, valid, ids)
        for record in valid:
            external_id = record["external_id"]
            if external_id not in stored:
                report.created += 1
            elif external_id in changed or external_id in added_consent:
                report.updated += 1
            else:
                report.unchanged += 1

    def _add_consent(
        self, connection: Connection, valid: list[dict[str, Any]], ids: dict[str, int]
    ) -> set[str]:
        """Ledger rows for statements that change the consent in force; returns whose changed."""
        with_consent = [r for r in valid if r["consent"]]
        if not with_consent:
            return set()
        current = in_force(connection, {ids[r["external_id"]] for r in with_consent})
        rows: list[dict[str, object]] = []
        changed: set[str] = set()
        for record in with_consent:
            customer_id = ids[record["external_id"]]
            at = record["consent_at"]
            for channel, purpose, granted in record["consent"]:
                now_in_force = current.get((customer_id, channel, purpose))
                if now_in_force is not None and (
                    now_in_force[0] == granted or now_in_force[1] > at
                ):
                    # Same as in force, or the ledger already knows something newer than the file.
                    continue
                rows.append(
                    {
                        "customer_id": customer_id,
                        "channel": channel,
                        "purpose": purpose,
                        "granted": granted,
                        "at": datetime.fromtimestamp(at, UTC),
                        "source": f"import {self.source_name}:{record['line']}",
                    }
                )
                current[(customer_id, channel, purpose)] = (granted, at)
                changed.add(record["external_id"])
        add_ledger_rows(connection, rows)
        return changed

    def _upsert_statement(self) -> Any:
        dialect = self.app.engine.dialect
        insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        stmt = insert(_CUSTOMERS)
        excluded = stmt.excluded
        c = _CUSTOMERS.c
        compared = ["manager_id" if name == "manager" else name for name in self.mirrored]
        differs = [
            cast(c[name], Text).is_distinct_from(cast(excluded[name], Text))
            if name == "tags"
            else c[name].is_distinct_from(excluded[name])
            for name in compared
        ]
        differs.append(and_(c.opted_out_at.is_(None), excluded.opted_out_at.is_not(None)))
        set_: dict[str, Any] = {name: excluded[name] for name in compared}
        set_["opted_out_at"] = func.coalesce(c.opted_out_at, excluded.opted_out_at)
        set_["updated_at"] = excluded.updated_at
        return stmt.on_conflict_do_update(
            index_elements=[c.external_id], set_=set_, where=or_(*differs)
        )


def _manager_ids(connection: Connection, names: set[str]) -> dict[str, int]:
    """Managers by name, creating the ones not seen before."""
    if not names:
        return {}
    m = _MANAGERS.c
    query = select(m.name, m.id).where(m.name.in_(names))
    found = {name: id_ for name, id_ in connection.execute(query)}
    missing = names - found.keys()
    if missing:
        insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        connection.execute(
            insert(_MANAGERS).on_conflict_do_nothing(index_elements=[m.name]),
            [{"name": name} for name in sorted(missing)],
        )
        found = {name: id_ for name, id_ in connection.execute(query)}
    return found


def _stored_customers(
    connection: Connection, external_ids: list[str], compared: list[str]
) -> dict[str, tuple[int, datetime | None, tuple[Any, ...]]]:
    """external_id -> (id, opted_out_at, compared values) for this batch's customers."""
    c = _CUSTOMERS.c
    query = select(c.external_id, c.id, c.opted_out_at, *(c[name] for name in compared)).where(
        c.external_id.in_(external_ids)
    )
    return {row[0]: (row[1], row[2], tuple(row[3:])) for row in connection.execute(query)}


def _ids(connection: Connection, external_ids: list[str]) -> dict[str, int]:
    c = _CUSTOMERS.c
    query = select(c.external_id, c.id).where(c.external_id.in_(external_ids))
    return {external_id: id_ for external_id, id_ in connection.execute(query)}
