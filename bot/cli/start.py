"""`boomerang start`: the README's run command — open (and migrate) the database, seed the demo
shop when it is empty, and show today's lapsed and post-order cohorts."""

from __future__ import annotations

import typer

from bot.app import open_app
from bot.audience.exclusions import Exclusions
from bot.audience.lapse import LapseRule, lapsed_cohort
from bot.audience.post_order import post_order_cohort
from bot.cli.audience import show_cohort
from bot.demo.shop import is_empty, seed_demo


def start(
    limit: int = typer.Option(10, "--limit", help="Members of each cohort shown on screen."),
) -> None:
    """Open the database, seed a demo shop when it is empty, show lapsed and post-order cohorts."""
    app = open_app()
    try:
        typer.echo(f"database: {app.engine.url.render_as_string()}")
        with app.engine.connect() as connection:
            empty = is_empty(connection)
        if empty:
            summary = seed_demo(app)
            typer.echo(
                f"the database was empty: seeded a demo shop with {summary.customers} customers "
                f"and {summary.orders} orders"
            )
        now = app.clock.now()
        exclusions = Exclusions()
        zone = app.settings.default_time_zone
        lapsed = lapsed_cohort(app.engine, now, LapseRule(), exclusions)
        post_order = post_order_cohort(
            app.engine, now, min_days=2, max_days=7, exclusions=exclusions, default_zone=zone
        )
    finally:
        app.engine.dispose()
    show_cohort(lapsed, limit)
    typer.echo("")
    show_cohort(post_order, limit)
