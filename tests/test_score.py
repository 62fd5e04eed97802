"""`customers score` and `audience preview`: what a user runs, and the CSV they get."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import bot.audience.alive as alive
from bot.app import App, open_app
from bot.audience.rhythm import refresh_rhythm
from bot.audience.score import score_customers
from bot.cli.app import app as cli
from bot.settings import Settings, get_settings
from tests.audience_factory import add_customer, add_order, add_orders_every, at

AS_OF = at("2026-11-22")


def _shop(app: App) -> None:
    """Twelve customers buying every 10..32 days since January; half stopped in the summer."""
    for index in range(12):
        customer = add_customer(app, f"c{index:02d}", phone="+74951234567")
        gap = 10 + 2 * index
        count = 6 if index % 2 else 25
        add_orders_every(app, customer, at("2026-01-05"), gap, count, amount_minor=1000 * index)
    late = add_customer(app, "late")
    add_order(app, late, at("2026-11-19"), delivered_at=at("2026-11-20"))
    refresh_rhythm(app.engine)


def test_scores_use_bgnbd_once_history_is_large_enough(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    _shop(app)
    small = score_customers(app.engine, AS_OF)
    assert small.params is None
    assert "repeat buyers" in small.model_note
    assert all(row.p_alive is None for row in small.rows)
    monkeypatch.setattr(alive, "MIN_REPEAT_BUYERS", 5)
    fitted = score_customers(app.engine, AS_OF, horizon_days=30)
    assert fitted.params is not None and fitted.params.customers == 13
    p_alive = {row.external_id: row.p_alive for row in fitted.rows}
    assert all(p is not None and 0.0 <= p <= 1.0 for p in p_alive.values())
    assert p_alive["c01"] < p_alive["c00"]  # stopped in the spring vs. still buying


def test_score_as_of_a_past_date_sees_only_earlier_orders(app: App) -> None:
    _shop(app)
    rows = {row.external_id: row for row in score_customers(app.engine, at("2026-02-01")).rows}
    assert "late" not in rows
    assert rows["c00"].orders == 3  # 5, 15, 25 January
    assert rows["c00"].age_days == 27.5  # from the start of 5 January; orders are at noon
    assert rows["c00"].recency_days == 20.0


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    shop = open_app(Settings(database_url=url))
    _shop(shop)
    customer = add_customer(shop, "opted-out", opted_out_at=at("2026-10-01"))
    add_orders_every(shop, customer, at("2026-01-05"), 10, 3)
    refresh_rhythm(shop.engine)
    shop.engine.dispose()
    yield url
    get_settings.cache_clear()


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_customers_score_writes_every_customer_with_their_scores(
    cli_database: str, tmp_path: Path
) -> None:
    out = tmp_path / "scores.csv"
    result = CliRunner().invoke(
        cli, ["customers", "score", "--as-of", "2026-11-22", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "BG/NBD not used" in result.output
    rows = _read(out)
    assert len(rows) == 14
    assert set(rows[0]) >= {
        "external_id",
        "orders",
        "first_order_at",
        "last_order_at",
        "recency_days",
        "age_days",
        "expected_gap_days",
        "lapsed",
        "p_alive",
        "expected_orders_90d",
        "revenue_minor",
        "abc",
        "xyz",
        "priority",
    }


def test_audience_preview_shows_cohort_exclusions_and_reasons(
    cli_database: str, tmp_path: Path
) -> None:
    out = tmp_path / "lapsed.csv"
    result = CliRunner().invoke(
        cli,
        [
            "audience",
            "preview",
            "--kind",
            "lapsed",
            "--as-of",
            "2026-11-22",
            "--limit",
            "3",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "excluded opted_out: 1" in result.output
    assert "days since last order" in result.output
    rows = _read(out)
    assert len(rows) > 3
    assert f"{len(rows) - 3} more" in result.output
    assert {"external_id", "reason", "expected_gap_days", "priority"} <= set(rows[0])


def test_audience_preview_post_order_lists_the_order_and_delivery_date(cli_database: str) -> None:
    result = CliRunner().invoke(
        cli, ["audience", "preview", "--kind", "post-order", "--as-of", "2026-11-22"]
    )
    assert result.exit_code == 0, result.output
    assert "1 customers" in result.output
    assert "2026-11-20" in result.output


def test_audience_preview_rejects_a_bad_date(cli_database: str) -> None:
    result = CliRunner().invoke(
        cli, ["audience", "preview", "--kind", "welcome", "--as-of", "22.11"]
    )
    assert result.exit_code != 0
    assert "--as-of" in str(result.exception) or "--as-of" in result.output


def test_preview_defaults_to_the_clock_as_of(cli_database: str) -> None:
    result = CliRunner().invoke(cli, ["audience", "preview", "--kind", "welcome"])
    assert result.exit_code == 0, result.output
    assert "audience welcome as of" in result.output
