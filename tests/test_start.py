"""The README's run command: an empty database gets the demo shop and shows both cohorts."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.app import App
from bot.audience.exclusions import Exclusions
from bot.audience.lapse import LapseRule, lapsed_cohort
from bot.cli.app import app as cli
from bot.demo.shop import seed_demo


def test_start_seeds_an_empty_database_then_shows_lapsed_and_post_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'shop.db'}")
    runner = CliRunner()

    first = runner.invoke(cli, ["start", "--limit", "3"])
    assert first.exit_code == 0, first.output
    assert "seeded a demo shop with 3000 customers" in first.output
    assert "audience lapsed" in first.output
    assert "audience post-order" in first.output

    second = runner.invoke(cli, ["start", "--limit", "3"])
    assert second.exit_code == 0, second.output
    assert "seeded" not in second.output


def test_demo_shop_is_large_enough_for_bg_nbd_in_the_lapsed_cohort(app: App) -> None:
    seed_demo(app, customers=3_000, seed=7)
    cohort = lapsed_cohort(app.engine, app.clock.now(), LapseRule(), Exclusions())
    assert cohort.note.startswith("BG/NBD fitted"), cohort.note
    assert cohort.members
    assert all(m.p_alive is not None and 0.0 <= m.p_alive <= 1.0 for m in cohort.members)
