"""`boomerang dialogs ...`: check the dialog scripts a manager wrote."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.dialog.library import load_library
from bot.dialog.simulator import try_command
from bot.dialog.validator import DEFAULT_MAX_SPOKEN_CHARS

app = typer.Typer(help="Dialog scripts.", no_args_is_help=True)


@app.command("check")
def check(
    paths: list[Path] | None = typer.Argument(
        None, help="Script files or folders (default: dialogs/). Files starting with _ are packs."
    ),
    max_spoken_chars: int = typer.Option(
        DEFAULT_MAX_SPOKEN_CHARS,
        "--max-spoken-chars",
        help="Warn when a prompt spoken on a call is longer than this.",
    ),
) -> None:
    """Validate scripts: errors and warnings with file:line and step; exit 1 on any error."""
    library = load_library(paths or [Path("dialogs")], max_spoken_chars)
    errors, warnings = library.errors, library.warnings
    if errors:
        typer.echo(f"errors ({len(errors)}):")
        for problem in errors:
            typer.echo(f"  {problem}")
    if warnings:
        typer.echo(f"warnings ({len(warnings)}):")
        for problem in warnings:
            typer.echo(f"  {problem}")
    typer.echo(
        f"checked {library.files} scripts, {len(library.packs)} locale packs: "
        f"{len(errors)} errors, {len(warnings)} warnings"
    )
    if errors:
        raise typer.Exit(1)


app.command("try")(try_command)
