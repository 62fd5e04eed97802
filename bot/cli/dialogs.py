"""`boomerang dialogs ...`: check the dialog scripts a manager wrote."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.dialog.library import Library, load_library
from bot.dialog.problem import Problem
from bot.dialog.simulator import try_command
from bot.dialog.validator import DEFAULT_MAX_SPOKEN_CHARS
from bot.errors import ConfigError
from bot.settings import Settings

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
    errors, warnings = library.errors, library.warnings + _vocabulary_warnings(library)
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


def _vocabulary_warnings(library: Library) -> list[Problem]:
    """With BOOMERANG_VOSK_MODEL set: phrases of voice asks the speech model cannot recognise."""
    folder = Settings().vosk_model
    if folder is None:
        return []
    from bot.channel.voice.recognizer import SpeechModel
    from bot.channel.voice.vocabulary import grammar_warnings

    try:
        model = SpeechModel.load(folder)
    except ConfigError as error:
        return [Problem(str(folder), 0, str(error), severity="warning")]
    return grammar_warnings(library, model)
