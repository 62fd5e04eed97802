"""`boomerang campaigns ...`: check the campaign definitions in `campaigns/`, dry-run one."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.app import open_app
from bot.campaign.check import check_paths
from bot.campaign.dryrun import ORDER, dry_run
from bot.campaign.loader import load_campaigns
from bot.cli.audience import parse_as_of
from bot.cli.serve import simulated_channels

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


@app.command("dry-run")
def dry_run_command(
    name: str = typer.Argument(..., help="The campaign id."),
    at: str | None = typer.Option(
        None, "--at", help="YYYY-MM-DD (12:00 UTC) or an ISO datetime with offset; default now."
    ),
    campaigns_dir: Path = typer.Option(Path("campaigns"), "--campaigns", help="Campaign folder."),
    limit: int = typer.Option(50, "--limit", help="Customers listed on screen."),
) -> None:
    """Who campaign NAME would contact at --at and what the guard decides; writes nothing."""
    loaded = load_campaigns(campaigns_dir)
    found = [c for c in loaded.campaigns if c.campaign.id == name]
    if not found:
        known = ", ".join(sorted(c.campaign.id for c in loaded.campaigns)) or "none"
        typer.echo(f"error: no campaign {name!r} in {campaigns_dir} (known: {known})", err=True)
        raise typer.Exit(1)
    opened = open_app()
    try:
        moment = parse_as_of(at, opened.clock.now())
        result = dry_run(opened, found[0], moment, simulated_channels(opened))
    finally:
        opened.engine.dispose()
    typer.echo(
        f"dry run of {name} at {moment.isoformat()}: {len(result.lines)} customers "
        "(nothing written)"
    )
    for line in result.lines[:limit]:
        who = f"{line.external_id} {line.name or ''}".strip()
        joint = " " if line.detail.startswith(("at ", "until ")) else ": "
        typer.echo(f"  {who}: {line.decision}{joint}{line.detail}")
    if len(result.lines) > limit:
        typer.echo(f"  ... {len(result.lines) - limit} more (--limit)")
    counts = result.counts
    typer.echo("counts: " + (", ".join(f"{d} {counts[d]}" for d in ORDER if d in counts) or "none"))
