"""`boomerang db ...`: schema migrations."""

from __future__ import annotations

import typer

from bot.db.migrate import current_revision, head_revision, upgrade
from bot.db.session import create_db_engine
from bot.settings import get_settings

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    engine = create_db_engine(get_settings().database_url)
    before = current_revision(engine)
    upgrade(engine, revision)
    after = current_revision(engine)
    typer.echo(f"database {engine.url.render_as_string()}: {before or 'empty'} -> {after}")


@app.command("status")
def status_command() -> None:
    """Show the schema revision of the database and the newest one."""
    engine = create_db_engine(get_settings().database_url)
    typer.echo(f"current: {current_revision(engine) or 'empty'}; head: {head_revision(engine)}")
