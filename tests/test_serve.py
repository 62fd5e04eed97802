"""`boomerang serve` and the scheduler: runs are planned once, the process stops cleanly."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, select

from bot.app import open_app
from bot.campaign.dispatcher import Dispatcher
from bot.campaign.guard import GuardPolicy
from bot.campaign.loader import load_campaign
from bot.campaign.scheduler import CampaignScheduler, last_fire_time
from bot.clock import FixedClock
from bot.db.outreach import CampaignRun, Outreach
from bot.demo.shop import seed_demo
from bot.dialog.library import Library
from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
FEEDBACK = ROOT / "campaigns" / "post_order_feedback.yaml"


def test_last_fire_time_is_the_newest_firing_not_after_now() -> None:
    trigger = load_campaign(FEEDBACK).campaign.schedule.trigger()  # 10:00 Moscow = 07:00 UTC
    at = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
    assert last_fire_time(trigger, at) == at
    assert last_fire_time(trigger, at - timedelta(seconds=1)) == at - timedelta(days=1)
    assert last_fire_time(trigger, at + timedelta(hours=23)) == at


def test_catch_up_plans_the_missed_run_once(tmp_path: Path) -> None:
    clock = FixedClock(datetime(2026, 11, 22, 12, 0, tzinfo=UTC))
    app = open_app(Settings(database_url=f"sqlite:///{tmp_path / 'b.db'}"), clock=clock)
    try:
        seed_demo(app, customers=100)
        loaded = load_campaign(FEEDBACK)
        dispatcher = Dispatcher(app, {}, Library(), {}, GuardPolicy(), "w")
        scheduler = CampaignScheduler(app, [loaded], dispatcher)
        first = scheduler.catch_up()
        again = scheduler.catch_up()
        assert [r.scheduled_for for r in first] == [datetime(2026, 11, 22, 7, 0, tzinfo=UTC)]
        assert first[0].created and not again[0].created
        with app.sessions() as session:
            assert session.scalar(select(func.count()).select_from(CampaignRun)) == 1
        # The daily job: attribution for the enabled campaigns (nothing contacted yet).
        assert scheduler.attribute().converted == {"post_order_feedback": 0}
    finally:
        app.engine.dispose()


def test_serve_plans_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    database = tmp_path / "serve.db"
    url = f"sqlite:///{database}"
    app = open_app(Settings(database_url=url))
    try:
        seed_demo(app, customers=100)
    finally:
        app.engine.dispose()
    campaigns = tmp_path / "campaigns"
    campaigns.mkdir()
    shutil.copy(FEEDBACK, campaigns / FEEDBACK.name)
    env = {**os.environ, "DATABASE_URL": url, "BOOMERANG_DATABASE_URL": url}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot",
            "serve",
            "--campaigns",
            str(campaigns),
            "--dialogs",
            str(ROOT / "dialogs"),
            "--tick-seconds",
            "0.5",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    engine = create_engine(url)
    try:
        deadline = time.monotonic() + 60
        rows = 0
        while time.monotonic() < deadline and process.poll() is None:
            with engine.connect() as connection:
                rows = connection.scalar(select(func.count()).select_from(Outreach)) or 0
            if rows:
                break
            time.sleep(0.2)
        assert process.poll() is None, process.communicate()[0]
        assert rows > 0, "no outreach rows within 60 s"
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
        assert process.returncode == 0, output
        assert "stopped" in output
    finally:
        engine.dispose()
        if process.poll() is None:
            process.kill()
            process.wait()
