"""`boomerang serve` and the scheduler: runs are planned once, the process stops cleanly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select

from bot.app import open_app
from bot.campaign.dispatcher import Dispatcher
from bot.campaign.guard import GuardPolicy
from bot.campaign.loader import load_campaign
from bot.campaign.scheduler import CampaignScheduler, last_fire_time
from bot.clock import FixedClock
from bot.db.models import Customer
from bot.db.outreach import CampaignRun, Outreach
from bot.demo.shop import seed_demo
from bot.dialog.library import Library
from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
FEEDBACK = ROOT / "campaigns" / "post_order_feedback.yaml"
TOKEN = "123456:TEST-TOKEN"


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
        loop = "asyncio" if sys.platform == "win32" else "uvloop"
        assert f"runtime: {loop} event loop;" in output  # bot.runtime runs the loop
    finally:
        engine.dispose()
        if process.poll() is None:
            process.kill()
            process.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _control(base: str, path: str, body: dict[str, object] | None = None) -> Any:
    data = json.dumps(body or {}).encode() if body is not None else None
    request = urllib.request.Request(
        base + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_serve_live_links_a_telegram_user_by_polling_and_stops_cleanly(tmp_path: Path) -> None:
    """`boomerang serve --channel live` against the Bot API emulator in its own process."""
    database = tmp_path / "live.db"
    url = f"sqlite:///{database}"
    app = open_app(Settings(database_url=url))
    try:
        with app.sessions.begin() as session:
            anna = Customer(
                external_id="A-1",
                name="Анна Петрова",
                first_name="Анна",
                locale="ru",
                tags=[],
                created_at=app.clock.now(),
                updated_at=app.clock.now(),
            )
            session.add(anna)
            session.flush()
            anna_id = anna.id
    finally:
        app.engine.dispose()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    emulator = subprocess.Popen(
        [sys.executable, "-m", "bot.testing.telegram", "--port", str(port), "--token", TOKEN],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "BOOMERANG_TELEGRAM_TOKEN": TOKEN,
        "BOOMERANG_TELEGRAM_API": base,
        "BOOMERANG_TELEGRAM_BOT_USERNAME": "boomerang_test_bot",
    }
    serve: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _control(base, "/_emulator/stats")
                break
            except OSError:
                assert time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.1)
        link = subprocess.run(
            [sys.executable, "-m", "bot", "telegram", "link", "A-1"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        token = link.rsplit("start=", 1)[1]
        campaigns = tmp_path / "campaigns"
        campaigns.mkdir()
        serve = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--channel", "live"]
            + ["--campaigns", str(campaigns), "--dialogs", str(ROOT / "dialogs")],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        _control(base, "/_emulator/users/7001/start", {"payload": token})
        engine = create_engine(url)
        try:
            deadline = time.monotonic() + 60
            linked = None
            while time.monotonic() < deadline and serve.poll() is None and linked is None:
                with engine.connect() as connection:
                    linked = connection.scalar(
                        select(Customer.telegram_chat_id).where(Customer.id == anna_id)
                    )
                time.sleep(0.2)
        finally:
            engine.dispose()
        assert serve.poll() is None, serve.communicate()[0]
        assert linked == 7001
        sent = _control(base, "/_emulator/sent/7001")["result"]
        assert "Готово, Анна!" in sent[-1]["text"]
        serve.send_signal(signal.SIGTERM)
        output, _ = serve.communicate(timeout=20)
        assert serve.returncode == 0, output
        assert "stopped" in output
    finally:
        for process in (serve, emulator):
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate()


def test_serve_refuses_webhook_mode_without_a_secret(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
        "BOOMERANG_TELEGRAM_TOKEN": TOKEN,
        "BOOMERANG_TELEGRAM_MODE": "webhook",
        "BOOMERANG_PUBLIC_URL": "https://shop.example",
    }
    env.pop("BOOMERANG_TELEGRAM_WEBHOOK_SECRET", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "serve",
            "--channel",
            "live",
            "--dialogs",
            str(ROOT / "dialogs"),
        ]
        + ["--campaigns", str(ROOT / "campaigns")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "BOOMERANG_TELEGRAM_WEBHOOK_SECRET" in done.stderr
