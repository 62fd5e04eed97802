"""The campaign report: pure aggregation over rows, a simulated known uplift, and the CLI."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.analytics.report import ReportRow, Segment, aggregate, segment_dict
from bot.app import open_app
from bot.cli.app import app as cli
from bot.clock import SystemClock
from bot.db.models import Customer, Manager, Order
from bot.db.outreach import CampaignRun, Outreach
from bot.settings import Settings, get_settings
from tests.test_analytics_retention import small_shop


def contacted(
    answers: dict[str, Any] | None = None,
    *,
    outcome: str | None = "completed",
    converted: bool = False,
    version: str = "v1",
    channel: str = "telegram",
    state: str = "done",
    campaign: str = "winback",
) -> ReportRow:
    return ReportRow(campaign, version, channel, state, False, outcome, answers or {}, converted)


def held(converted: bool = False, campaign: str = "winback") -> ReportRow:
    return ReportRow(campaign, None, None, "skipped", True, None, {}, converted)


def by(segments: list[Segment], breakdown: str, value: str, campaign: str = "winback") -> Segment:
    found = [
        s for s in segments if (s.campaign_id, s.breakdown, s.value) == (campaign, breakdown, value)
    ]
    assert len(found) == 1, found
    return found[0]


def test_aggregate_counts_every_measure_per_campaign_version_and_channel() -> None:
    rows = [
        contacted(
            {"nps": 10, "csat": 5, "reason": "price", "offer_accepted": True}, converted=True
        ),
        contacted({"nps": 9, "reason": "price"}, outcome="offer_accepted", version="v2"),
        contacted({"nps": 3, "csat": 2, "reason": "quality"}, channel="voice", converted=True),
        contacted({"opt_out": True}, outcome="opted_out"),
        contacted(outcome=None, state="in_conversation"),  # sent, no reply yet: not reached
        contacted({"nps": "ten", "csat": 9}),  # off-scale answers are not scores
        ReportRow("winback", "v1", "telegram", "failed", False, None, {}, True),  # not contacted
        ReportRow("winback", None, None, "planned", False, None, {}, False),
        held(converted=True),
        held(),
        held(),
        held(),
    ]

    segments = aggregate(rows)

    total = by(segments, "all", "all")
    assert (total.contacted, total.reached, total.completed, total.opted_out) == (6, 5, 5, 1)
    assert (total.nps.total, total.nps.score) == (3, pytest.approx(100 * (2 - 1) / 3))
    assert (total.csat.total, total.csat.satisfied) == (2, 1)
    assert [(r.reason, r.count, r.share) for r in total.reasons] == [
        ("price", 2, pytest.approx(2 / 3)),
        ("quality", 1, pytest.approx(1 / 3)),
    ]
    assert total.offers_accepted == 2
    assert (total.won_back, total.won_back_rate) == (2, pytest.approx(2 / 6))
    assert (total.holdout, total.holdout_won_back, total.holdout_rate) == (4, 1, 0.25)
    assert total.uplift is not None
    assert total.uplift.absolute == pytest.approx(2 / 6 - 1 / 4)
    assert total.uplift.interval.low < 0 < total.uplift.interval.high
    assert [s.value for s in segments if s.breakdown == "script_version"] == ["v1", "v2"]
    assert [s.value for s in segments if s.breakdown == "channel"] == ["telegram", "voice"]
    voice = by(segments, "channel", "voice")
    assert (voice.contacted, voice.won_back, voice.holdout, voice.nps.score) == (1, 1, 4, -100.0)
    assert by(segments, "script_version", "v2").offers_accepted == 1


def test_an_empty_holdout_or_no_contacts_gives_no_uplift() -> None:
    segments = aggregate([contacted(converted=True), held(campaign="survey")])

    winback = by(segments, "all", "all")
    assert winback.uplift is None and winback.holdout_rate is None
    survey = by(segments, "all", "all", campaign="survey")
    assert survey.contacted == 0 and survey.won_back_rate is None and survey.uplift is None
    assert segment_dict(winback)["uplift"] is None
    assert aggregate([]) == []


def test_uplift_on_simulated_data_with_a_known_effect_lands_within_its_interval() -> None:
    rng = random.Random(20261122)
    true_contacted, true_holdout = 0.12, 0.06
    rows = [contacted(converted=rng.random() < true_contacted) for _ in range(5_000)]
    rows += [held(converted=rng.random() < true_holdout) for _ in range(1_000)]

    result = by(aggregate(rows), "all", "all").uplift

    assert result is not None
    assert (result.contacted, result.holdout) == (5_000, 1_000)
    assert true_contacted - true_holdout in result.interval
    assert result.interval.low > 0  # an effect this size on groups this big is visible


# --- through the CLI, on SQLite ---

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'report.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)  # no stray .env from the checkout
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def seed(url: str) -> None:
    """Four contacted (two won back, one NPS 10 and one 4) and two held out (one won back)."""
    app = open_app(Settings(database_url=url))
    try:
        with app.sessions.begin() as session:
            ann = Manager(name="Ann")
            session.add(ann)
            run = CampaignRun(campaign_id="winback", scheduled_for=NOW, created_at=NOW)
            session.add(run)
            session.flush()
            plan = [
                ("done", False, {"nps": 10, "reason": "price"}, "offer_accepted", True),
                ("done", False, {"nps": 4, "reason": "quality"}, "completed", True),
                ("done", False, {"opt_out": True}, "opted_out", False),
                ("in_conversation", False, {}, None, False),
                ("skipped", True, None, None, True),
                ("skipped", True, None, None, False),
            ]
            for i, (state, holdout, answers, outcome, won) in enumerate(plan):
                customer = Customer(
                    external_id=f"c{i}", manager_id=ann.id, created_at=NOW, updated_at=NOW
                )
                session.add(customer)
                session.flush()
                conversation = None if answers is None else {"format": 1, "answers": answers}
                session.add(
                    Outreach(
                        campaign_id="winback",
                        customer_id=customer.id,
                        cycle="2026-11",
                        run_id=run.id,
                        state=state,
                        holdout=holdout,
                        skip_reason="holdout" if holdout else None,
                        channel=None if holdout else "telegram",
                        script_id="winback",
                        script_version=None if holdout else "abc123",
                        conversation=conversation,
                        outcome=outcome,
                        converted_at=NOW + timedelta(days=2) if won else None,
                        created_at=NOW,
                        updated_at=NOW,
                    )
                )
                session.add(
                    Order(
                        external_id=f"o{i}",
                        customer_id=customer.id,
                        placed_at=NOW - timedelta(days=400),
                        currency="RUB",
                        status="delivered",
                        items=[],
                    )
                )
    finally:
        app.engine.dispose()


def test_the_report_command_prints_table_json_and_csv(database: str) -> None:
    seed(database)
    runner = CliRunner()

    table = runner.invoke(cli, ["report"])
    as_json = runner.invoke(cli, ["report", "--campaign", "winback", "--format", "json"])
    as_csv = runner.invoke(cli, ["report", "--format", "csv", "--since", "2026-11-01"])
    none = runner.invoke(cli, ["report", "--since", "2026-12-01"])
    bad = runner.invoke(cli, ["report", "--since", "yesterday"])

    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split()[:3] == ["campaign", "by", "value"]
    assert lines[1].split()[:7] == ["winback", "all", "all", "4", "3", "3", "1"]
    assert "50.0% (2/4)" in lines[1] and "50.0% (1/2)" in lines[1]
    assert "reasons for leaving: price 1 (50%); quality 1 (50%)" in table.output
    assert as_json.exit_code == 0, as_json.output
    segments = json.loads(as_json.output)
    assert [(s["breakdown"], s["value"]) for s in segments] == [
        ("all", "all"),
        ("script_version", "abc123"),
        ("channel", "telegram"),
    ]
    total = segments[0]
    assert (total["contacted"], total["reached"], total["opted_out"]) == (4, 3, 1)
    assert (total["nps"], total["nps_answers"], total["offers_accepted"]) == (0.0, 2, 1)
    assert (total["won_back_rate"], total["holdout_rate"], total["uplift"]) == (0.5, 0.5, 0.0)
    assert total["uplift_low"] < 0 < total["uplift_high"]
    assert as_csv.exit_code == 0, as_csv.output
    parsed = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert len(parsed) == 3 and parsed[0]["contacted"] == "4"
    assert parsed[0]["reasons"] == "price 1 (50%); quality 1 (50%)"
    assert none.exit_code == 0 and "no outreach rows to report" in none.output
    assert bad.exit_code != 0


def test_report_managers_counts_lapsed_customers_per_manager(database: str) -> None:
    seed(database)
    today = SystemClock().now()  # the command runs on the system clock
    app = open_app(Settings(database_url=database))
    try:
        with app.sessions.begin() as session:
            for i in range(6):  # Ann's customers: a 30-day rhythm, the last order a year ago
                session.add(
                    Order(
                        external_id=f"again{i}",
                        customer_id=i + 1,
                        placed_at=NOW - timedelta(days=370),
                        currency="RUB",
                        status="delivered",
                        items=[],
                    )
                )
            loner = Customer(external_id="loner", created_at=NOW, updated_at=NOW)
            session.add(loner)
            session.flush()
            for days in (20, 5):  # buying lately: not lost
                session.add(
                    Order(
                        external_id=f"loner{days}",
                        customer_id=loner.id,
                        placed_at=today - timedelta(days=days),
                        currency="RUB",
                        status="delivered",
                        items=[],
                    )
                )
    finally:
        app.engine.dispose()

    result = CliRunner().invoke(cli, ["report", "--managers", "--format", "json"])
    table = CliRunner().invoke(cli, ["report", "--managers"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {"manager": "Ann", "customers": 6, "lost": 6, "share": 1.0},
        {"manager": "(no manager)", "customers": 1, "lost": 0, "share": 0.0},
    ]
    assert table.exit_code == 0, table.output
    assert table.output.splitlines()[1].split() == ["Ann", "6", "6", "100.0%"]


def test_report_retention_over_a_period_as_table_json_and_csv(database: str) -> None:
    app = open_app(Settings(database_url=database))
    try:
        small_shop(app)  # hand-computed in tests/test_analytics_retention.py
    finally:
        app.engine.dispose()
    runner = CliRunner()
    period = ["report", "--retention", "--since", "2026-10-01", "--until", "2026-11-01"]

    as_json = runner.invoke(cli, [*period, "--format", "json"])
    as_csv = runner.invoke(cli, [*period, "--format", "csv", "--margin", "0.5"])
    table = runner.invoke(cli, period)
    default = runner.invoke(cli, ["report", "--retention", "--format", "json"])
    bad_margin = runner.invoke(cli, [*period, "--margin", "30"])
    alone = runner.invoke(cli, ["report", "--until", "2026-11-01"])

    assert as_json.exit_code == 0, as_json.output
    months = 31 / 30.4375
    lifetime = months * 3 / 2
    assert json.loads(as_json.output) == [
        {
            "since": "2026-10-01",
            "until": "2026-11-01",
            "months": round(months, 4),
            "customers_start": 3,
            "customers_end": 3,
            "new": 2,
            "new_active": 1,
            "kept": 1,
            "lost": 2,
            "returned": 1,
            "churn": 0.6667,
            "retention": 0.3333,
            "monthly_churn": round(2 / 3 / months, 4),
            "lifetime_months": round(lifetime, 2),
            "orders": 6,
            "revenue": 900.0,
            "orders_per_month": round(2 / months, 4),
            "average_order": 150.0,
            "margin": 0.3,
            "margin_per_order": 45.0,
            "ltv": round(45 * 2 / months * lifetime, 2),
            "win_back_benefit": round(30 * 30.4375 / 30 * lifetime, 2),
            "currency": "RUB",
        }
    ]
    assert as_csv.exit_code == 0, as_csv.output
    (row,) = csv.DictReader(io.StringIO(as_csv.output))
    assert (row["lost"], row["margin"], row["margin_per_order"]) == ("2", "0.5", "75.0")
    assert table.exit_code == 0, table.output
    assert table.output.splitlines()[0].startswith("retention 2026-10-01 .. 2026-11-01")
    assert "churn" in table.output and "66.7%" in table.output
    assert default.exit_code == 0, default.output  # the last full month before today
    assert bad_margin.exit_code != 0 and alone.exit_code != 0
