"""`boomerang demo ...`: a realistic demo shop to try Boomerang without real customer data."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from sqlalchemy import func, select

from bot.analytics.report import aggregate
from bot.app import open_app
from bot.cli.report import load_rows, render_table
from bot.cli.serve import load_or_exit
from bot.db.tasks import ManagerTask
from bot.demo.run import run_demo
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


@app.command("run")
def run_command(
    weeks: int = typer.Option(8, "--weeks", min=1, help="Simulated weeks."),
    customers: int = typer.Option(
        3_000, "--customers", min=1, help="Customers of the demo shop, when it has to be seeded."
    ),
    seed: int = typer.Option(
        1, "--seed", help="Random seed of the shop and the customers' replies."
    ),
    campaigns_dir: Path = typer.Option(Path("campaigns"), "--campaigns", help="Campaign folder."),
    dialogs_dir: Path = typer.Option(Path("dialogs"), "--dialogs", help="Dialog scripts folder."),
) -> None:
    """Run the campaigns for weeks of simulated time on the demo shop, then print the report."""
    campaigns, library = load_or_exit(campaigns_dir, dialogs_dir)
    opened = open_app()
    try:
        result = asyncio.run(run_demo(opened, campaigns, library, weeks, customers, seed))
        segments = aggregate(load_rows(opened, since=result.started))
        with opened.sessions() as session:
            opened_tasks = session.execute(
                select(ManagerTask.kind, func.count())
                .where(ManagerTask.created_at >= result.started)
                .group_by(ManagerTask.kind)
                .order_by(ManagerTask.kind)
            )
            tasks = {str(kind): int(count) for kind, count in opened_tasks}
    finally:
        opened.engine.dispose()
    if result.seeded:
        typer.echo(f"the database was empty: seeded a demo shop with {result.seeded} customers")
    typer.echo(
        f"simulated {weeks} week{'' if weeks == 1 else 's'} ({result.started:%Y-%m-%d %H:%M} .. "
        f"{result.ended:%Y-%m-%d %H:%M} UTC) in {result.seconds:.1f} s: {result.runs} campaign "
        f"runs, {result.contacted} contacts, {result.orders} orders placed, "
        f"{result.converted} conversions, {result.won_back} customers won back"
    )
    if tasks:
        listed = ", ".join(f"{count} {kind}" for kind, count in tasks.items())
        typer.echo(f"manager tasks opened: {listed} (boomerang tasks list)")
    typer.echo("")
    typer.echo(render_table(segments))
