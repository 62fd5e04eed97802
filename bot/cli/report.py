"""`boomerang report`: the campaign report (per campaign, script version and channel); with
`--managers`, the share of lost customers per responsible manager; with `--retention`, churn,
retention, lifetime, LTV and the benefit of winning a customer back over a period."""

from __future__ import annotations

import calendar
import csv
import io
import json
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any

import typer
from sqlalchemy import select

from bot.analytics.period import (
    DEFAULT_MARGIN,
    Retention,
    last_full_month,
    minor_per_major,
    retention_over,
)
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


def _since(value: str | None, option: str = "--since") -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(0), UTC)
    except ValueError as error:
        raise InputError(option, f"{value!r} is not a date (YYYY-MM-DD)") from error


def retention_period(
    since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """Both given: [since, until). Neither: the last full calendar month before now. Only since:
    up to the start of today (UTC). Only until: the calendar month before it."""
    if since is not None and until is not None:
        return since, until
    if since is not None:
        return since, datetime.combine(now.astimezone(UTC).date(), time(0), UTC)
    if until is not None:
        year, month = (until.year, until.month - 1) if until.month > 1 else (until.year - 1, 12)
        day = min(until.day, calendar.monthrange(year, month)[1])
        return until.replace(year=year, month=month, day=day), until
    return last_full_month(now)


def retention_dict(r: Retention) -> dict[str, Any]:
    """The retention report as plain values: rates as fractions, money in major units."""
    unit = minor_per_major(r.currency)
    digits = len(str(unit)) - 1

    def money(value: float | int | None) -> float | None:
        return None if value is None else round(value / unit, digits)

    def rounded(value: float | None, places: int = 4) -> float | None:
        return None if value is None else round(value, places)

    return {
        "since": r.since.date().isoformat(),
        "until": r.until.date().isoformat(),
        "months": round(r.months, 4),
        "customers_start": r.start,
        "customers_end": r.end,
        "new": r.new,
        "new_active": r.new_active,
        "kept": r.kept,
        "lost": r.lost,
        "returned": r.returned,
        "churn": rounded(r.churn),
        "retention": rounded(r.retention),
        "monthly_churn": rounded(r.monthly_churn),
        "lifetime_months": rounded(r.lifetime_months, 2),
        "orders": r.orders,
        "revenue": money(r.revenue_minor),
        "orders_per_month": rounded(r.orders_per_month),
        "average_order": money(r.average_order_minor),
        "margin": r.margin,
        "margin_per_order": money(r.margin_per_order_minor),
        "ltv": money(r.ltv_minor),
        "win_back_benefit": money(r.win_back_benefit_minor),
        "currency": r.currency,
    }


RETENTION_LINES = (
    ("customers at the start", "customers_start", ""),
    ("customers at the end", "customers_end", ""),
    ("new (first order in the period)", "new", ""),
    ("  of them active at the end", "new_active", ""),
    ("kept", "kept", ""),
    ("lost", "lost", ""),
    ("returned (lapsed before, active again)", "returned", ""),
    ("churn", "churn", "%"),
    ("retention", "retention", "%"),
    ("monthly churn", "monthly_churn", "%"),
    ("average lifetime, months", "lifetime_months", ""),
    ("orders", "orders", ""),
    ("orders per month per active customer", "orders_per_month", ""),
    ("average order", "average_order", "$"),
    ("margin share", "margin", "%"),
    ("margin per order", "margin_per_order", "$"),
    ("LTV", "ltv", "$"),
    ("benefit of winning a lost customer back", "win_back_benefit", "$"),
)


def render_retention(row: dict[str, Any]) -> str:
    out = [f"retention {row['since']} .. {row['until']} (until excluded, {row['months']} months)"]
    for label, key, kind in RETENTION_LINES:
        value = row[key]
        if value is None:
            text = "n/a"
        elif kind == "%":
            text = f"{value * 100:.1f}%"
        elif kind == "$":
            text = f"{value:,.2f} {row['currency']}"
        elif isinstance(value, float):
            text = f"{value:.2f}"
        else:
            text = str(value)
        out.append(f"  {label:<42} {text}")
    return "\n".join(out)


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
    retention: bool = typer.Option(
        False,
        "--retention",
        help="Churn, retention, lifetime, LTV and win-back benefit over [--since, --until) "
        "instead (default: the last full calendar month, UTC).",
    ),
    until: str | None = typer.Option(
        None, "--until", help="With --retention: the period ends at the start of this day (UTC)."
    ),
    margin: float = typer.Option(
        DEFAULT_MARGIN, "--margin", help="With --retention: margin share of an order (0.3 = 30%)."
    ),
) -> None:
    """Campaign results: reach, NPS, CSAT, reasons, offers, won back vs. holdout with uplift."""
    start = _since(since)
    end = _since(until, "--until")
    if not 0 < margin <= 1:
        raise InputError("--margin", f"{margin} is not a share in (0, 1] (0.3 is 30%)")
    if (until is not None or margin != DEFAULT_MARGIN) and not retention:
        raise InputError("--until/--margin", "these options go with --retention")
    app = open_app()
    try:
        segments: list[Segment] = []
        period: dict[str, Any] | None = None
        if retention:
            first, last = retention_period(start, end, app.clock.now())
            if not first < last:
                raise InputError(
                    "--until", f"the period {first:%Y-%m-%d} .. {last:%Y-%m-%d} is empty"
                )
            period = retention_dict(
                retention_over(
                    app.engine, first, last, margin=margin, currency=app.settings.default_currency
                )
            )
            rows = [period]
        elif managers:
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
    elif period is not None:
        typer.echo(render_retention(period))
    elif managers:
        typer.echo(f"{'manager':<24} {'customers':>9} {'lost':>6} {'share':>7}")
        for m in rows:
            typer.echo(
                f"{m['manager']:<24} {m['customers']:>9} {m['lost']:>6} {m['share'] * 100:>6.1f}%"
            )
    else:
        typer.echo(render_table(segments))
