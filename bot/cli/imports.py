"""`boomerang import customers|orders FILE`: thin wrapper that prints the import report."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import typer

from bot.app import App, open_app
from bot.customers.columns import parse_map_options
from bot.customers.importer import ImportOptions, import_customers, import_orders
from bot.customers.report import ImportReport, write_errors_csv
from bot.customers.source import parse_delimiter
from bot.errors import BoomerangError

app = typer.Typer(help="Import customers and orders from CSV or JSON lines.", no_args_is_help=True)

SHOWN_BAD_ROWS = 50

FILE = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="CSV or JSON lines.")
MAP = typer.Option([], "--map", help="field=Header: read FIELD from column Header (repeatable).")
ENCODING = typer.Option(None, help="File encoding (default: detect utf-8 / cp1251).")
DELIMITER = typer.Option(None, help="CSV delimiter: ',' ';' or 'tab' (default: detect).")
TZ = typer.Option(None, "--tz", help="Zone of times written without one (default: settings).")
REGION = typer.Option(None, help="Region of phones without a country code (default: settings).")
ERRORS = typer.Option(None, "--errors", help="Write every bad row to this CSV file.")
PROGRESS = typer.Option(
    None, "--progress/--no-progress", help="Progress bar on stderr (default: when a terminal)."
)
BATCH = typer.Option(ImportOptions.batch_size, "--batch-size", help="Rows per transaction.")


@app.command("customers")
def customers_command(
    file: Path = FILE,
    map_: list[str] = MAP,
    encoding: str | None = ENCODING,
    delimiter: str | None = DELIMITER,
    tz: str | None = TZ,
    region: str | None = REGION,
    errors: Path | None = ERRORS,
    progress: bool | None = PROGRESS,
    batch_size: int = BATCH,
) -> None:
    """Create or update customers by their external id."""
    _run(
        import_customers, file, map_, encoding, delimiter, tz, region, errors, progress, batch_size
    )


@app.command("orders")
def orders_command(
    file: Path = FILE,
    map_: list[str] = MAP,
    encoding: str | None = ENCODING,
    delimiter: str | None = DELIMITER,
    tz: str | None = TZ,
    region: str | None = REGION,
    errors: Path | None = ERRORS,
    progress: bool | None = PROGRESS,
    batch_size: int = BATCH,
) -> None:
    """Create or update orders by their external id (customers must be imported first)."""
    _run(import_orders, file, map_, encoding, delimiter, tz, region, errors, progress, batch_size)


def _run(
    importer: Callable[[App, Path, ImportOptions], ImportReport],
    file: Path,
    map_: list[str],
    encoding: str | None,
    delimiter: str | None,
    tz: str | None,
    region: str | None,
    errors: Path | None,
    progress: bool | None,
    batch_size: int,
) -> None:
    try:
        options = ImportOptions(
            encoding=encoding,
            delimiter=parse_delimiter(delimiter) if delimiter else None,
            column_map=parse_map_options(map_),
            time_zone=tz,
            region=region,
            batch_size=batch_size,
            progress=sys.stderr.isatty() if progress is None else progress,
        )
        opened = open_app()
        try:
            report = importer(opened, file, options)
        finally:
            opened.engine.dispose()
    except BoomerangError as error:
        # A file-level problem (missing column, unreadable file): nothing was stored.
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    for note in report.notes:
        typer.echo(f"note: {note}")
    typer.echo(report.summary())
    for bad in report.bad_rows[:SHOWN_BAD_ROWS]:
        typer.echo(f"  {bad}")
    if report.failed > SHOWN_BAD_ROWS:
        more = report.failed - SHOWN_BAD_ROWS
        hint = f"see {errors}" if errors else "use --errors FILE.csv to get all"
        typer.echo(f"  ... and {more} more bad rows ({hint})")
    if errors is not None:
        write_errors_csv([report], errors)
        typer.echo(f"bad rows written to {errors}")
    if not report.ok:
        raise typer.Exit(1)
