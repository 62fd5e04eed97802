"""`boomerang campaigns ...`: check the campaign definitions in `campaigns/`."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.campaign.check import check_paths

app = typer.Typer(help="Campaigns.", no_args_is_help=True)


@app.command("check")
def check(
    paths: list[Path] | None = typer.Argument(
        None, help="Campaign files or folders (default: campaigns/)."
    ),
    dialogs: Path = typer.Option(
        Path("dialogs"), "--dialogs", help="The dialog scripts the campaigns name."
    ),
) -> None:
    """Validate campaigns: errors and warnings with file:line; exit 1 on any error."""
    checked = check_paths(paths or [Path("campaigns")], dialogs)
    errors, warnings = checked.errors, checked.warnings
    if errors:
        typer.echo(f"errors ({len(errors)}):")
        for problem in sorted(errors):
            typer.echo(f"  {problem}")
    if warnings:
        typer.echo(f"warnings ({len(warnings)}):")
        for problem in sorted(warnings):
            typer.echo(f"  {problem}")
    typer.echo(f"checked {checked.files} campaigns: {len(errors)} errors, {len(warnings)} warnings")
    if errors:
        raise typer.Exit(1)
