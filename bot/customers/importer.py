"""The import pipeline: open a file, match its columns, feed batches to a writer, report.

`import_customers` and `import_orders` are the entry points; the CLI only parses options and
prints the report. Each batch is its own transaction, so a crash loses at most the batch in flight
and a re-run finishes the job (the upsert makes re-importing harmless).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from sqlalchemy import Connection, func, select

from bot.app import App
from bot.audience.rhythm import refresh_rhythm
from bot.customers.bulk import bulk_connection
from bot.customers.columns import (
    CUSTOMER_FIELDS,
    CUSTOMER_REQUIRED,
    ORDER_FIELDS,
    ORDER_REQUIRED,
    ColumnMap,
    match_columns,
)
from bot.customers.customer_rows import CustomerBatches
from bot.customers.order_rows import OrderBatches
from bot.customers.report import ImportReport
from bot.customers.source import Row, open_source
from bot.customers.values import InstantParser
from bot.db.models import Customer
from bot.errors import InputError
from bot.gcpause import paused_gc

# Above this share of all customers, refreshing everyone is cheaper than a long id list.
REFRESH_ALL_SHARE = 0.2


@dataclass(frozen=True)
class ImportOptions:
    encoding: str | None = None
    """None: detect (BOM -> utf-8-sig, valid UTF-8 -> utf-8, else cp1251)."""
    delimiter: str | None = None
    """None: detect from the header line."""
    column_map: Mapping[str, str] = field(default_factory=dict)
    """field -> header, from --map; wins over the built-in synonyms."""
    time_zone: str | None = None
    """Zone of date-times written without one; None: settings.default_time_zone."""
    region: str | None = None
    """Region of phone numbers written without a country code; None: settings.default_region."""
    batch_size: int = 5_000
    progress: bool = False


class _Batches(Protocol):
    def validate(self, rows: list[Row]) -> Any: ...

    def write(self, connection: Connection, valid: Any) -> None: ...


def import_customers(app: App, path: Path, options: ImportOptions | None = None) -> ImportReport:
    options = options or ImportOptions()
    region = (options.region or app.settings.default_region).upper()

    def writer(report: ImportReport, columns: ColumnMap, instants: InstantParser) -> _Batches:
        return CustomerBatches(app, report, columns, instants, region)

    return _run(app, path, options, "customers", CUSTOMER_FIELDS, CUSTOMER_REQUIRED, writer)


def import_orders(app: App, path: Path, options: ImportOptions | None = None) -> ImportReport:
    """Import orders, then refresh the buying rhythm of the customers whose orders changed."""
    options = options or ImportOptions()

    def writer(report: ImportReport, columns: ColumnMap, instants: InstantParser) -> _Batches:
        return OrderBatches(app, report, columns, instants)

    report = _run(app, path, options, "orders", ORDER_FIELDS, ORDER_REQUIRED, writer)
    changed = report.changed_customer_ids
    if changed:
        with app.engine.connect() as connection:
            total = connection.execute(select(func.count()).select_from(Customer)).scalar_one()
        refresh_rhythm(app.engine, None if len(changed) > REFRESH_ALL_SHARE * total else changed)
    return report


def _run(
    app: App,
    path: Path,
    options: ImportOptions,
    kind: str,
    synonyms: Mapping[str, tuple[str, ...]],
    required: Sequence[str],
    make_writer: Callable[[ImportReport, ColumnMap, InstantParser], _Batches],
) -> ImportReport:
    zone_name = options.time_zone or app.settings.default_time_zone
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError("--tz", f"unknown time zone {zone_name!r}") from None
    if options.batch_size < 1:
        raise InputError("--batch-size", "must be at least 1")
    report = ImportReport(path=path, kind=kind)
    with open_source(path, options.encoding, options.delimiter) as source:
        columns = match_columns(str(path), source.header, synonyms, required, options.column_map)
        if columns.unknown:
            report.notes.append(
                "ignored columns: " + ", ".join(repr(name) for name in columns.unknown)
            )
        writer = make_writer(report, columns, InstantParser(zone))
        with (
            _progress(options.progress, path, source.size) as advance,
            paused_gc(),
            bulk_connection(app.engine) as connection,
        ):
            # Sequential on purpose: a reader thread validating the next batch while this one is
            # written was measured slower, because the database driver then waits for the GIL.
            for batch in source.batches(options.batch_size):
                writer.write(connection, writer.validate(batch))
                advance(source.bytes_read)
    # Rows fail in two passes (parsing, then customer lookup); the reader wants file order.
    report.bad_rows.sort(key=lambda bad: bad.error.line)
    return report


@contextmanager
def _progress(enabled: bool, path: Path, size: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr driven by bytes read; a no-op when disabled."""
    if not enabled:
        yield lambda _done: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task(path.name, total=size)
        yield lambda done: progress.update(task, completed=min(done, size))
        progress.update(task, completed=size)
