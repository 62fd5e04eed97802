"""The root `boomerang` command: wires the command groups together."""

from __future__ import annotations

import typer

from bot.cli import audience, campaigns, customers, db, demo, dialogs, imports, serve, start, tasks
from bot.cli import telegram as telegram_cli
from bot.cli.report import report
from bot.errors import BoomerangError

app = typer.Typer(
    name="boomerang",
    help="Boomerang: find lapsed customers, talk to them, count who came back.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(imports.app, name="import")
app.add_typer(audience.app, name="audience")
app.add_typer(customers.app, name="customers")
app.add_typer(demo.app, name="demo")
app.add_typer(dialogs.app, name="dialogs")
app.add_typer(campaigns.app, name="campaigns")
app.add_typer(tasks.app, name="tasks")
app.add_typer(telegram_cli.app, name="telegram")
app.command(name="start")(start.start)
app.command(name="report")(report)
app.command(name="serve")(serve.serve)


def main() -> None:
    try:
        app()
    except BoomerangError as error:
        typer.echo(f"error: {error}", err=True)
        raise SystemExit(2) from error
