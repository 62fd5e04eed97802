"""`boomerang customers ...`: score every customer as of a date."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.app import open_app
from bot.audience.score import score_customers
from bot.cli.audience import parse_as_of

app = typer.Typer(help="Customers.", no_args_is_help=True)


@app.command("score")
def score(
    out: Path = typer.Option(..., "--out", help="CSV file to write, one row per customer."),
    as_of: str | None = typer.Option(None, "--as-of", help="YYYY-MM-DD (12:00 UTC); default now."),
    horizon: int = typer.Option(90, "--horizon", help="Days to predict orders for."),
) -> None:
    """Recency, age, expected gap, lapsed flag, P(alive), expected orders, ABC/XYZ, priority."""
    opened = open_app()
    try:
        moment = parse_as_of(as_of, opened.clock.now())
        scoring = score_customers(opened.engine, moment, horizon)
    finally:
        opened.engine.dispose()
    params = scoring.params
    if params is None:
        typer.echo(scoring.model_note)
    else:
        typer.echo(
            f"BG/NBD: r={params.r:.4f} alpha={params.alpha:.4f} a={params.a:.4f} "
            f"b={params.b:.4f} customers={params.customers} "
            f"log-likelihood={params.log_likelihood:.2f}"
        )
    scoring.write_csv(out)
    typer.echo(f"wrote {len(scoring.rows)} customers as of {moment.isoformat()} to {out}")
