"""Campaign definitions: the starters load and pass; a broken one is named by file:line."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.campaign.check import check_campaigns, check_paths
from bot.campaign.definition import LapsedAudience, PostOrderAudience
from bot.campaign.loader import CampaignError, load_campaign, load_campaigns
from bot.cli.app import app
from bot.dialog.library import load_library

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGNS = ROOT / "campaigns"
DIALOGS = ROOT / "dialogs"
STARTERS = ["post_order_feedback", "winback", "welcome", "anniversary"]


def run_check(*paths: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["campaigns", "check", *map(str, paths), "--dialogs", str(DIALOGS)]
    )
    return result.exit_code, result.output


def broken(tmp_path: Path, starter: str, old: str, new: str, name: str | None = None) -> Path:
    """A copy of a starter campaign with `old` replaced by `new` (which must be there)."""
    text = (CAMPAIGNS / f"{starter}.yaml").read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / f"{name or starter}.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def line_of(path: Path, fragment: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, 1) if fragment in line)


@pytest.mark.parametrize("starter", STARTERS)
def test_each_starter_campaign_loads_and_passes_the_checks(starter: str) -> None:
    path = CAMPAIGNS / f"{starter}.yaml"
    assert load_campaign(path).campaign.id == starter
    assert check_campaigns(load_campaigns(path), load_library(DIALOGS)) == []


def test_the_campaigns_folder_checks_clean_through_the_cli() -> None:
    code, output = run_check(CAMPAIGNS)
    assert code == 0, output
    assert "checked 4 campaigns: 0 errors, 0 warnings" in output


def test_starter_campaigns_say_what_the_issue_asks() -> None:
    feedback = load_campaign(CAMPAIGNS / "post_order_feedback.yaml").campaign
    assert isinstance(feedback.audience, PostOrderAudience)
    assert (feedback.audience.params.min_days, feedback.audience.params.max_days) == (2, 7)
    assert feedback.purpose == "survey" and feedback.channels == ("telegram", "voice")
    assert feedback.frequency_cap.exempt
    assert (feedback.window.start, feedback.window.end) == (time(10), time(20))
    assert len(feedback.window.weekdays) == 7
    winback = load_campaign(CAMPAIGNS / "winback.yaml").campaign
    assert isinstance(winback.audience, LapsedAudience)
    assert winback.audience.params.classes == ("A", "B")
    assert winback.purpose == "marketing" and winback.channels == ("telegram",)
    assert (winback.frequency_cap.days, winback.holdout_share, winback.attribution_days) == (
        14,
        0.1,
        30,
    )


def test_the_schedule_fires_at_the_cron_time_in_the_campaigns_time_zone() -> None:
    schedule = load_campaign(CAMPAIGNS / "post_order_feedback.yaml").campaign.schedule
    after = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)  # 11:00 in Moscow: today's 10:00 has passed
    fired = schedule.trigger().get_next_fire_time(None, after)
    assert fired.astimezone(UTC) == datetime(2027, 3, 2, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("starter", "old", "new", "at", "message"),
    [
        ("winback", "kind: lapsed", "kind: lapsd", "kind:", "unknown audience kind 'lapsd'"),
        (
            "winback",
            "factor: 1.33",
            "factr: 1.33",
            "factr:",
            "unknown field 'audience.params.factr'",
        ),
        ("winback", "classes: [A, B]", "classes: [A, D]", "classes:", "audience.params.classes.1"),
        (
            "welcome",
            "script: welcome",
            "script: nosuch",
            "script:",
            "script 'nosuch' has no valid en",
        ),
        ("welcome", "channels: [telegram]", "channels: []", "channels:", "at least one channel"),
        (
            "welcome",
            "channels: [telegram]",
            "channels: [telegram, telegram]",
            "channels:",
            "channel 'telegram' is listed twice",
        ),
        ("welcome", "purpose: service", "purpose: sales", "purpose:", "purpose: 'sales' is not"),
        ("welcome", '"0 12 * * *"', '"0 12 * *"', "cron:", "schedule.cron: cron '0 12 * *'"),
        ("welcome", "Europe/Moscow", "Mars/Base", "time_zone:", "'Mars/Base' is not an IANA"),
        ("welcome", 'to: "20:00"', 'to: "09:00"', "to:", "'from' 10:00 must be before 'to' 09:00"),
        ("welcome", 'from: "10:00"', "from: 10", "from:", 'write it as "HH:MM"'),
        ("welcome", "holdout_share: 0.1", "holdout_share: 1.5", "holdout_share:", "less than 1"),
        ("welcome", "holdout_share: 0.1", "holdout_share: -0.1", "holdout_share:", "holdout_share"),
        (
            "anniversary",
            "  days: 14",
            "  days: 14\n  exempt: true",
            "exempt:",
            "a marketing campaign cannot be exempt",
        ),
        ("welcome", "priority: 30", "priority: 30\npriority: 31", "priority: 31", "duplicate key"),
        ("winback", "margin: 0.3", "margin: 1.5", "margin:", "economics.margin"),
        ("winback", "margin: 0.3", "margin: 0", "margin:", "economics.margin"),
        (
            "winback",
            "cost_to_win_back: 150.00",
            "cost_to_win_back: -1",
            "cost_to_win_back:",
            "cost",
        ),
        ("winback", "  margin: 0.3", "  margins: 0.3", "margins:", "margins"),
        (
            "welcome",
            "priority: 30",
            "priority: 30\neconomics: {margin: 0.3, cost_to_win_back: 100}",
            "economics:",
            "only a lapsed (win-back) audience can be judged worth winning back",
        ),
        ("welcome", "title: Welcome a new customer\n", "", "id:", "missing field 'title'"),
    ],
)
def test_a_broken_campaign_is_an_error_at_its_file_and_line(
    tmp_path: Path, starter: str, old: str, new: str, at: str, message: str
) -> None:
    path = broken(tmp_path, starter, old, new)
    code, output = run_check(path)
    assert code == 1, output
    line = line_of(path, at) if new else 1
    errors = [row.strip() for row in output.split("warnings")[0].splitlines()[1:]]
    assert any(row.startswith(f"{path}:{line}: ") and message in row for row in errors), output


def test_a_campaign_id_used_twice_is_an_error_at_the_second_file(tmp_path: Path) -> None:
    first = broken(tmp_path, "welcome", "priority: 30", "priority: 30", name="a_welcome")
    second = broken(tmp_path, "welcome", "priority: 30", "priority: 31", name="b_welcome")
    code, output = run_check(tmp_path)
    assert code == 1, output
    assert (
        f"{second}:{line_of(second, 'id:')}: duplicate campaign id 'welcome' (first in {first}:"
        in output
    )


def test_voice_for_marketing_is_a_warning_naming_38_fz(tmp_path: Path) -> None:
    path = broken(tmp_path, "winback", "channels: [telegram]", "channels: [telegram, voice]")
    code, output = run_check(path)
    assert code == 0, output
    assert (
        f"{path}:{line_of(path, 'channels:')}: voice for a marketing campaign: 38-FZ art. 18"
        in output
    )


def test_a_large_holdout_is_a_warning_not_an_error(tmp_path: Path) -> None:
    path = broken(tmp_path, "welcome", "holdout_share: 0.1", "holdout_share: 0.7")
    code, output = run_check(path)
    assert code == 0, output
    assert f"{path}:{line_of(path, 'holdout_share')}: holdout_share 0.7: more than half" in output


def test_a_missing_script_locale_is_reported_for_each_locale(tmp_path: Path) -> None:
    dialogs = tmp_path / "dialogs"
    (dialogs / "_locale").mkdir(parents=True)
    for name in ("_locale/ru.yaml", "_locale/en.yaml", "welcome.ru.yaml"):
        (dialogs / name).write_bytes((DIALOGS / name).read_bytes())
    checked = check_paths([CAMPAIGNS / "welcome.yaml"], dialogs)
    messages = [problem.message for problem in checked.errors]
    assert any("script 'welcome' has no valid en version" in m for m in messages), messages
    assert not any("no valid ru version" in m for m in messages), messages


def test_load_campaign_raises_with_every_problem(tmp_path: Path) -> None:
    path = broken(tmp_path, "welcome", "purpose: service", "purpose: sales\nspam: 1")
    with pytest.raises(CampaignError) as raised:
        load_campaign(path)
    assert len(raised.value.problems) == 2
    assert f"{path}:{line_of(path, 'spam:')}: unknown field 'spam'" in str(raised.value)


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    code, output = run_check(tmp_path / "nowhere")
    assert code == 1
    assert "no such file or folder" in output
