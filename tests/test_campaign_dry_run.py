"""`boomerang campaigns dry-run`: who would be contacted and what the guard decides; no writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, inspect, select, table
from typer.testing import CliRunner

from bot.app import open_app
from bot.cli.app import app as cli
from bot.demo.shop import seed_demo
from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            names = inspect(connection).get_table_names()
            return {
                name: connection.scalar(select(func.count()).select_from(table(name))) or 0
                for name in names
            }
    finally:
        engine.dispose()


def test_dry_run_lists_decisions_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    app = open_app(Settings(database_url=url))
    try:
        seed_demo(app, customers=300)
        now = app.clock.now()
    finally:
        app.engine.dispose()
    campaigns = tmp_path / "campaigns"
    campaigns.mkdir()
    text = (ROOT / "campaigns" / "post_order_feedback.yaml").read_text(encoding="utf-8")
    (campaigns / "post_order_feedback.yaml").write_text(
        text.replace("holdout_share: 0.0", "holdout_share: 0.5"), encoding="utf-8"
    )
    monkeypatch.setenv("DATABASE_URL", url)
    # 12:00 UTC today: 15:00 in Moscow, inside the 10:00-20:00 window.
    at = now.replace(hour=12, minute=0, second=0, microsecond=0).isoformat()
    before = counts(url)

    result = CliRunner().invoke(
        cli,
        ["campaigns", "dry-run", "post_order_feedback", "--at", at, "--campaigns", str(campaigns)],
    )

    assert result.exit_code == 0, result.output
    assert counts(url) == before
    assert before["outreach"] == 0 and before["campaign_runs"] == 0
    assert "nothing written" in result.output
    assert ": held out" in result.output
    assert ": send at " in result.output
    summary = result.output.strip().splitlines()[-1]
    assert summary.startswith("counts: send ") and "held out" in summary


def test_dry_run_of_an_unknown_campaign_names_the_known_ones(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["campaigns", "dry-run", "nope", "--campaigns", str(ROOT / "campaigns")]
    )
    assert result.exit_code == 1
    assert "post_order_feedback" in result.output
