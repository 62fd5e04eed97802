"""`boomerang demo ...`: a realistic demo shop to try Boomerang without real customer data."""

from __future__ import annotations

import typer

from bot.app import open_app
from bot.demo.shop import seed_demo

app = typer.Typer(help="Demo data.", no_args_is_help=True)


@app.command("seed")
def seed_command(
    customers: int = typer.Option(3_000, "--customers", min=0, help="How many customers."),
    seed: int = typer.Option(1, "--seed", help="Random seed: the same seed gives the same shop."),
    force: bool = typer.Option(
        False, "--force", help="Seed even when the database already has customers or orders."
    ),
) -> None:
    """Create a demo shop: customers, consents and 2.5 years of orders ending now."""
    opened = open_app()
    try:
        summary = seed_demo(opened, customers=customers, seed=seed, force=force)
    finally:
        opened.engine.dispose()
    span = ""
    if summary.first_order_at and summary.last_order_at:
        span = f", {summary.first_order_at:%Y-%m-%d} .. {summary.last_order_at:%Y-%m-%d}"
    typer.echo(
        f"demo shop seeded (seed {summary.seed}): {summary.customers} customers, "
        f"{summary.orders} orders{span}, {summary.consents} consent entries, "
        f"{summary.managers} managers"
    )
