"""`boomerang demo run`: weeks of simulated campaigns on a small demo shop end in the report."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.app import app as cli

ROOT = Path(__file__).resolve().parent.parent


def test_demo_run_seeds_simulates_and_prints_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'shop.db'}")
    result = CliRunner().invoke(
        cli,
        [
            "demo",
            "run",
            "--weeks",
            "3",
            "--customers",
            "300",
            "--campaigns",
            str(ROOT / "campaigns"),
            "--dialogs",
            str(ROOT / "dialogs"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "seeded a demo shop with 300 customers" in result.output
    summary = re.search(r"(\d+) contacts, (\d+) orders placed", result.output)
    assert summary is not None, result.output
    assert int(summary.group(1)) > 0 and int(summary.group(2)) > 0
    assert "uplift, 95% CI" in result.output
    winback = re.search(
        r"^winback\s+all\s+all\s+(\d+) .*\((\d+)/(\d+)\)\s+\S+ \((\d+)/(\d+)\)\s+(\S.*)$",
        result.output,
        re.MULTILINE,
    )
    assert winback is not None, result.output
    contacted, won, contacted_again, _held_won, held = map(int, winback.groups()[:5])
    assert contacted > 0 and contacted == contacted_again and won > 0
    assert held > 0, "the holdout's won back is shown"
    assert winback.group(6).endswith("]"), "an uplift with its confidence interval"
