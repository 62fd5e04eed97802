"""`boomerang audience ...`: preview who an audience selects today (or as of a date), and why."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from enum import StrEnum
from pathlib import Path

import typer
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.table import Table

from bot.app import open_app
from bot.audience.cohort import Cohort, write_cohort_csv
from bot.audience.lapse import LapseRule
from bot.campaign.definition import Audience
from bot.campaign.planner import audience_cohort
from bot.errors import InputError

AUDIENCE: TypeAdapter[Audience] = TypeAdapter(Audience)

app = typer.Typer(help="Audiences: who would be contacted, and why.", no_args_is_help=True)


class Kind(StrEnum):
    lapsed = "lapsed"
    post_order = "post-order"
    welcome = "welcome"
    anniversary = "anniversary"
    birthday = "birthday"


def parse_as_of(value: str | None, now: datetime) -> datetime:
    """None -> now; `YYYY-MM-DD` -> that day 12:00 UTC; an ISO datetime with offset -> itself."""
    if value is None:
        return now
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(12), UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise InputError("--as-of", f"{value!r} is not a date (YYYY-MM-DD)") from error
    if parsed.tzinfo is None:
        raise InputError("--as-of", f"{value!r} has no UTC offset; give a date or add +00:00")
    return parsed.astimezone(UTC)


@app.command("preview")
def preview(
    kind: Kind = typer.Option(..., "--kind", help="Which audience."),
    as_of: str | None = typer.Option(None, "--as-of", help="YYYY-MM-DD (12:00 UTC); default now."),
    factor: float = typer.Option(LapseRule.factor, "--factor", help="lapsed: x expected gap."),
    min_orders: int = typer.Option(LapseRule.min_orders, "--min-orders", help="lapsed."),
    min_days: int | None = typer.Option(None, "--min-days", help="post-order 2, welcome 0."),
    max_days: int | None = typer.Option(None, "--max-days", help="post-order 7, welcome 3."),
    years: int | None = typer.Option(None, "--years", help="anniversary: exactly N years."),
    days_ahead: int = typer.Option(0, "--days-ahead", help="birthday: today .. +N days."),
    contacted_within: int = typer.Option(
        14, "--contacted-within", help="Exclude customers contacted in the last N days."
    ),
    exclude_let_go: bool = typer.Option(False, "--exclude-let-go", help="Skip CZ customers."),
    limit: int = typer.Option(20, "--limit", help="Rows shown on screen."),
    out: Path | None = typer.Option(None, "--out", help="Write all members to this CSV."),
) -> None:
    """Show the cohort size, who was excluded and why, and the first members with their reason."""
    opened = open_app()
    try:
        moment = parse_as_of(as_of, opened.clock.now())
        params: dict[str, object] = {
            "contacted_within": contacted_within,
            "exclude_let_go": exclude_let_go,
        }
        if kind is Kind.lapsed:
            params.update(factor=factor, min_orders=min_orders)
        elif kind in (Kind.post_order, Kind.welcome):
            given = {"min_days": min_days, "max_days": max_days}
            params.update({key: value for key, value in given.items() if value is not None})
        elif kind is Kind.anniversary:
            params["years"] = years
        else:
            params["days_ahead"] = days_ahead
        try:
            audience = AUDIENCE.validate_python({"kind": kind.value, "params": params})
        except ValidationError as error:
            raise InputError("audience preview", str(error)) from error
        # The same definition -> cohort path the campaign planner uses.
        cohort = audience_cohort(opened.engine, audience, moment, opened.settings.default_time_zone)
    finally:
        opened.engine.dispose()
    show_cohort(cohort, limit)
    if out is not None:
        write_cohort_csv(cohort, out)
        typer.echo(f"wrote {len(cohort.members)} members to {out}")


def show_cohort(cohort: Cohort, limit: int) -> None:
    console = Console(width=160)
    console.print(
        f"audience {cohort.kind} as of {cohort.as_of.isoformat()}: "
        f"{len(cohort.members)} customers, {cohort.excluded_total} excluded"
    )
    for reason, count in sorted(cohort.excluded.items()):
        console.print(f"  excluded {reason}: {count}")
    if cohort.note:
        console.print(cohort.note)
    lapsed = cohort.kind == "lapsed"
    post_order = cohort.kind == "post-order"
    table = Table(show_lines=False)
    headers = ["customer", "name", "days since last order"]
    if lapsed:
        headers += ["expected gap", "P(alive)"]
    headers += ["class", "priority"]
    if post_order:
        headers += ["order", "delivered"]
    else:
        headers.append("reason")
    for header in headers:
        table.add_column(header, overflow="fold")
    for member in cohort.members[:limit]:
        cells = [member.external_id, member.name or "", _number(member.days_since_last_order, 0)]
        if lapsed:
            cells += [_number(member.expected_gap_days, 1), _number(member.p_alive, 2)]
        cells += [f"{member.abc or ''}{member.xyz or ''}", member.priority or ""]
        if post_order:
            delivered = member.delivered_at.date().isoformat() if member.delivered_at else ""
            cells += [member.order_external_id or "", delivered]
        else:
            cells.append(member.reason)
        table.add_row(*cells)
    console.print(table)
    if len(cohort.members) > limit:
        console.print(f"... {len(cohort.members) - limit} more (--limit, --out FILE.csv)")


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"
