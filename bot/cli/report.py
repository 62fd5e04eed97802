"""`boomerang report`: the campaign report (per campaign, script version and channel) or, with
`--managers`, the share of lost customers per responsible manager."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any

import typer
from sqlalchemy import select

from bot.analytics.report import ReportRow, Segment, aggregate, segment_dict
from bot.analytics.retention import ManagerLoss, lost_share_by_manager
from bot.app import App, open_app
from bot.audience.exclusions import Exclusions
from bot.audience.lapse import LapseRule, lapsed_cohort
from bot.db.models import Customer, Manager
from bot.db.outreach import Outreach
from bot.errors import InputError

NO_MANAGER = "(no manager)"
EVERYONE = Exclusions(
    opted_out=False, flagged=False, lost_twice=False, contacted_within_days=None, let_go=False
)
"""Lost means lapsed, whatever would keep the customer out of a campaign."""


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def load_rows(
    app: App, campaign: str | None = None, since: datetime | None = None
) -> list[ReportRow]:
    """The outreach rows (optionally of one campaign, created at or after `since`) as ReportRows."""
    query = select(
        Outreach.campaign_id,
        Outreach.script_version,
        Outreach.channel,
        Outreach.state,
        Outreach.holdout,
        Outreach.outcome,
        Outreach.conversation,
        Outreach.converted_at,
    ).order_by(Outreach.id)
    if campaign is not None:
        query = query.where(Outreach.campaign_id == campaign)
    if since is not None:
        query = query.where(Outreach.created_at >= since)
    out: list[ReportRow] = []
    with app.sessions() as session:
        for (
            cid,
            version,
            channel,
            state,
            holdout,
            outcome,
            conversation,
            converted,
        ) in session.execute(query):
            answers = conversation.get("answers") if isinstance(conversation, dict) else None
            out.append(
                ReportRow(
                    campaign_id=cid,
                    script_version=version,
                    channel=channel,
                    state=state,
                    holdout=bool(holdout),
                    outcome=outcome,
                    answers=answers if isinstance(answers, dict) else {},
                    converted=converted is not None,
                )
            )
    return out


def manager_rows(app: App, now: datetime) -> list[tuple[str, bool]]:
    """(manager name, lapsed today?) per customer; customers without a manager are grouped."""
    lost = {m.customer_id for m in lapsed_cohort(app.engine, now, LapseRule(), EVERYONE).members}
    with app.sessions() as session:
        found = session.execute(
            select(Customer.id, Manager.name).outerjoin(Manager, Customer.manager_id == Manager.id)
        )
        return [(name or NO_MANAGER, customer_id in lost) for customer_id, name in found]


def _text(value: Any, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value * 100:.1f}%" if percent else f"{value:.1f}"
    return str(value)


def _reasons(row: dict[str, Any]) -> str:
    return "; ".join(
        f"{r['reason']} {r['count']} ({r['share'] * 100:.0f}%)" for r in row["reasons"]
    )


def _uplift(row: dict[str, Any]) -> str:
    if row["uplift"] is None:
        return "n/a"
    return (
        f"{row['uplift'] * 100:+.1f} pp "
        f"[{row['uplift_low'] * 100:+.1f}, {row['uplift_high'] * 100:+.1f}]"
    )


TABLE_COLUMNS = (
    ("campaign", "campaign"),
    ("by", "breakdown"),
    ("value", "value"),
    ("contacted", "contacted"),
    ("reached", "reached"),
    ("completed", "completed"),
    ("opted out", "opted_out"),
    ("NPS", "nps"),
    ("CSAT", "csat_share"),
    ("offers", "offers_accepted"),
    ("won back", "won_back_rate"),
    ("holdout", "holdout_rate"),
)


def render_table(segments: list[Segment]) -> str:
    header = [title for title, _ in TABLE_COLUMNS] + ["uplift, 95% CI"]
    lines: list[list[str]] = []
    notes: list[str] = []
    for segment in segments:
        row = segment_dict(segment)
        cells = []
        for _, key in TABLE_COLUMNS:
            value = row[key]
            if key == "csat_share" and value is not None:
                cells.append(f"{value:.1f}%")
            elif key in ("won_back_rate", "holdout_rate"):
                counts = (
                    f"{row['won_back']}/{row['contacted']}"
                    if key == "won_back_rate"
                    else f"{row['holdout_won_back']}/{row['holdout']}"
                )
                cells.append(f"{_text(value, percent=True)} ({counts})")
            else:
                cells.append(_text(value))
        lines.append([*cells, _uplift(row)])
        if row["breakdown"] == "all" and row["reasons"]:
            notes.append(f"{row['campaign']}: reasons for leaving: {_reasons(row)}")
    if not lines:
        return "no outreach rows to report"
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    out = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *lines]
    ]
    return "\n".join(out + ([""] + notes if notes else []))


def render_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    if not rows:
        return ""
    flat = [{**row, "reasons": _reasons(row)} if "reasons" in row else row for row in rows]
    writer = csv.DictWriter(buffer, fieldnames=list(flat[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return buffer.getvalue()


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(0), UTC)
    except ValueError as error:
        raise InputError("--since", f"{value!r} is not a date (YYYY-MM-DD)") from error


def _manager_dicts(losses: tuple[ManagerLoss, ...]) -> list[dict[str, Any]]:
    return [
        {"manager": m.manager, "customers": m.customers, "lost": m.lost, "share": round(m.share, 4)}
        for m in losses
    ]


def report(
    campaign: str | None = typer.Option(None, "--campaign", help="Only this campaign's rows."),
    since: str | None = typer.Option(
        None, "--since", help="Only rows planned on or after this date (YYYY-MM-DD, UTC)."
    ),
    output: Format = typer.Option(Format.table, "--format", help="table, json or csv."),
    managers: bool = typer.Option(
        False, "--managers", help="Lost customers (lapsed today) per responsible manager instead."
    ),
) -> None:
    """Campaign results: reach, NPS, CSAT, reasons, offers, won back vs. holdout with uplift."""
    start = _since(since)
    app = open_app()
    try:
        segments: list[Segment] = []
        if managers:
            rows = _manager_dicts(lost_share_by_manager(manager_rows(app, app.clock.now())))
        else:
            segments = aggregate(load_rows(app, campaign, start))
            rows = [segment_dict(s) for s in segments]
    finally:
        app.engine.dispose()
    if output == Format.json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    elif output == Format.csv:
        typer.echo(render_csv(rows), nl=False)
    elif managers:
        typer.echo(f"{'manager':<24} {'customers':>9} {'lost':>6} {'share':>7}")
        for m in rows:
            typer.echo(
                f"{m['manager']:<24} {m['customers']:>9} {m['lost']:>6} {m['share'] * 100:>6.1f}%"
            )
    else:
        typer.echo(render_table(segments))
