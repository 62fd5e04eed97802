"""Crash test of the dispatcher (design decision 2): SIGKILL workers mid-campaign, never resend.

Usage:

    .venv/bin/python scripts/crash_test.py run --customers 10000 --kills 20 --seed 1
    .venv/bin/python scripts/crash_test.py worker DB LOG --base EPOCH   (started by `run`)

`run` builds a shop of N customers in a fresh SQLite database, plans one post-order campaign
(one outreach row per customer) and starts a dispatcher worker subprocess. The worker's only
channel wraps the simulated one as "the provider": before it returns the delivery it appends one
line per contact (campaign, customer, cycle) to the contacts log with flush + fsync, so the log is
what the outside world saw. The parent SIGKILLs the worker `--kills` times at random moments (a
fixed seed), restarting it each time, then lets the last one finish, and checks:

- duplicates: no (campaign, customer, cycle) appears twice in the log;
- every row is final (done, failed, skipped; `failed`/interrupted rows count as final);
- no lost outcome: every logged contact's row is `done` with an outcome or `failed`/interrupted
  (its outcome died with the worker), and every `done` row was logged.

It prints one JSON object with the counts; exit status 1 when a check fails. The clock is the
wall clock shifted to a fixed weekday afternoon in Moscow (inside the sending window), so leases
(2 s) expire in real time and the guard decides the same way on any day.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Runnable as a plain script from a checkout: make `bot` importable without installing.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select

from bot.app import App, open_app
from bot.audience.rhythm import refresh_rhythm
from bot.campaign.dispatcher import INTERRUPTED, Dispatcher
from bot.campaign.guard import GuardPolicy
from bot.campaign.loader import LoadedCampaign, load_campaign
from bot.campaign.planner import RunSummary, plan_run
from bot.campaign.states import DONE, FAILED, FINAL
from bot.channel.base import Contact, Delivery
from bot.channel.simulated import Persona, SimulatedChannel
from bot.clock import FixedClock
from bot.db.models import Consent, Customer, Order
from bot.db.outreach import Outreach
from bot.dialog.library import load_library
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
"""A Monday, 15:00 in Moscow: inside the 10:00-20:00 window for hours."""
CAMPAIGN_ID = "crash"
LEASE_SECONDS = 2
TICK_LIMIT = 20
DIALOGS = ROOT / "dialogs"
CAMPAIGN = f"""\
id: {CAMPAIGN_ID}
title: Crash test
audience:
  kind: post-order
  params: {{min_days: 2, max_days: 7, contacted_within: 14}}
script: post_order_feedback
channels: [telegram]
purpose: survey
schedule:
  cron: "0 12 * * *"
  time_zone: Europe/Moscow
window:
  from: "10:00"
  to: "20:00"
holdout_share: 0.0
"""
ANSWERS = Persona("answers", yes_no={"yes": 0.7, "no": 0.3}, scale=(0.8, 0.2), typed=0.3)
"""Everyone answers: a delivered contact always ends `done` with an outcome."""


class ShiftedClock:
    """The wall clock moved so that `base` (a Unix time) reads as NOW; leases expire for real."""

    def __init__(self, base: float) -> None:
        self.base = base

    def now(self) -> datetime:
        return NOW + timedelta(seconds=time.time() - self.base)


class LoggingProvider:
    """The simulated channel as a provider: each contact is logged (fsync) before it returns."""

    def __init__(self, app: App, log: Path, name: str = "telegram") -> None:
        self.name = name
        self.app = app
        self.inner = SimulatedChannel(ANSWERS, seed=7, now=NOW, name=name)
        self.fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def start_conversation(self, contact: Contact) -> Delivery:
        with self.app.sessions() as session:
            # The row is committed in `sending` before any provider call: that is what we log.
            cycles = list(
                session.scalars(
                    select(Outreach.cycle).where(
                        Outreach.customer_id == contact.customer_id,
                        Outreach.campaign_id == CAMPAIGN_ID,
                        Outreach.state == "sending",
                    )
                )
            )
        if len(cycles) != 1:
            raise AssertionError(f"customer {contact.customer_id}: rows in sending: {cycles}")
        delivery = await self.inner.start_conversation(contact)
        os.write(self.fd, f"{CAMPAIGN_ID}\t{contact.customer_id}\t{cycles[0]}\n".encode())
        os.fsync(self.fd)
        return delivery


def build_shop(app: App, customers: int) -> None:
    """`customers` Moscow customers, each with a delivered order and survey consent in Telegram."""
    placed, delivered = NOW - timedelta(days=5), NOW - timedelta(days=3)
    created = NOW - timedelta(days=400)
    with app.engine.begin() as connection:
        connection.execute(
            insert(Customer),
            [
                {
                    "id": i,
                    "external_id": f"c{i}",
                    "name": f"Customer {i}",
                    "first_name": f"Name{i}",
                    "phone": f"+7916{i:07d}",
                    "telegram_chat_id": 10_000 + i,
                    "time_zone": "Europe/Moscow",
                    "locale": "ru",
                    "tags": [],
                    "created_at": created,
                    "updated_at": created,
                }
                for i in range(1, customers + 1)
            ],
        )
        connection.execute(
            insert(Order),
            [
                {
                    "external_id": f"order{i}",
                    "customer_id": i,
                    "placed_at": placed,
                    "delivered_at": delivered,
                    "currency": "RUB",
                    "status": "delivered",
                    "amount_minor": 1990_00,
                    "items": [],
                }
                for i in range(1, customers + 1)
            ],
        )
        connection.execute(
            insert(Consent),
            [
                {
                    "customer_id": i,
                    "channel": "telegram",
                    "purpose": "survey",
                    "granted": True,
                    "at": created,
                    "source": "checkout form",
                }
                for i in range(1, customers + 1)
            ],
        )
    refresh_rhythm(app.engine)


def campaign(folder: Path) -> LoadedCampaign:
    path = folder / f"{CAMPAIGN_ID}.yaml"
    path.write_text(CAMPAIGN, encoding="utf-8")
    return load_campaign(path)


def setup(db: Path, customers: int) -> RunSummary:
    app = open_app(Settings(database_url=f"sqlite:///{db}"), clock=FixedClock(NOW))
    try:
        build_shop(app, customers)
        return plan_run(app, campaign(db.parent), NOW)
    finally:
        app.engine.dispose()


def dispatcher(app: App, db: Path, log: Path) -> Dispatcher:
    library = load_library(DIALOGS)
    loaded = campaign(db.parent)
    return Dispatcher(
        app,
        {CAMPAIGN_ID: loaded},
        library,
        {"telegram": LoggingProvider(app, log)},
        GuardPolicy(),
        worker_id=f"crash-worker-{os.getpid()}",
        lease_seconds=LEASE_SECONDS,
    )


def open_rows(app: App) -> int:
    with app.sessions() as session:
        count = session.scalar(
            select(func.count()).select_from(Outreach).where(Outreach.state.not_in(FINAL))
        )
    return int(count or 0)


def worker(db: Path, log: Path, base: float) -> None:
    """Tick until every row is final; wait out leases a killed worker left behind."""
    app = open_app(Settings(database_url=f"sqlite:///{db}"), clock=ShiftedClock(base))
    worker = dispatcher(app, db, log)
    while True:
        summary = asyncio.run(worker.tick(limit=TICK_LIMIT))
        if summary.claimed == 0 and summary.reconciled == 0:
            if open_rows(app) == 0:
                return
            time.sleep(0.2)  # rows under a dead worker's lease: reconcile once it expires


def check(db: Path, log: Path) -> dict[str, Any]:
    """The assertions, as counts; `ok` is whether all of them hold."""
    keys: list[tuple[str, int, str]] = []
    for line in log.read_text(encoding="utf-8").splitlines():
        campaign_id, customer, cycle = line.split("\t")
        keys.append((campaign_id, int(customer), cycle))
    logged = Counter(keys)
    duplicates = sum(count - 1 for count in logged.values() if count > 1)
    app = open_app(Settings(database_url=f"sqlite:///{db}"), clock=FixedClock(NOW))
    try:
        with app.sessions() as session:
            rows = session.execute(
                select(
                    Outreach.campaign_id,
                    Outreach.customer_id,
                    Outreach.cycle,
                    Outreach.state,
                    Outreach.skip_reason,
                    Outreach.outcome,
                )
            ).all()
    finally:
        app.engine.dispose()
    states = Counter(row.state for row in rows)
    not_final = sum(1 for row in rows if row.state not in FINAL)
    interrupted_logged = interrupted_unlogged = lost = done_unlogged = done_no_outcome = 0
    for row in rows:
        key = (row.campaign_id, row.customer_id, row.cycle)
        interrupted = row.state == FAILED and row.skip_reason == INTERRUPTED
        if interrupted:
            if key in logged:
                interrupted_logged += 1
            else:
                interrupted_unlogged += 1
        if row.state == DONE:
            done_no_outcome += row.outcome is None
            done_unlogged += key not in logged
        if key in logged and not interrupted and not (row.state == DONE and row.outcome):
            lost += 1
    unknown = len(set(logged) - {(r.campaign_id, r.customer_id, r.cycle) for r in rows})
    result = {
        "rows": len(rows),
        "contacts_logged": len(keys),
        "duplicates": duplicates,
        "not_final": not_final,
        "states": dict(states),
        "interrupted": interrupted_logged + interrupted_unlogged,
        "interrupted_logged": interrupted_logged,
        "interrupted_unlogged": interrupted_unlogged,
        "lost_outcomes": lost,
        "done_without_outcome": done_no_outcome,
        "done_not_logged": done_unlogged,
        "logged_without_row": unknown,
    }
    result["ok"] = (
        duplicates == not_final == lost == done_no_outcome == done_unlogged == unknown == 0
    )
    return result


def _start(db: Path, log: Path, base: float) -> subprocess.Popen[bytes]:
    command = [sys.executable, __file__, "worker", str(db), str(log), "--base", repr(base)]
    return subprocess.Popen(command)


def _lines(log: Path) -> int:
    return log.read_bytes().count(b"\n") if log.exists() else 0


def run(customers: int, kills: int, seed: int, folder: Path) -> dict[str, Any]:
    db, log = folder / "crash.db", folder / "contacts.log"
    started = time.monotonic()
    run = setup(db, customers)
    setup_seconds = time.monotonic() - started
    base = time.time()
    rng = random.Random(seed)
    killed = 0
    for _ in range(kills):
        before = _lines(log)
        process = _start(db, log, base)
        # Kill while it is sending: once it has logged a contact, after a random delay.
        deadline = time.monotonic() + 60
        while _lines(log) == before and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.1))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.wait()
    process = _start(db, log, base)
    if process.wait() != 0:
        raise SystemExit(f"the last worker exited with {process.returncode}")
    result = check(db, log)
    result.update(
        customers=customers,
        planned=run.planned,
        kills=killed,
        seed=seed,
        setup_seconds=round(setup_seconds, 1),
        seconds=round(time.monotonic() - started, 1),
    )
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="the whole crash test; prints JSON")
    run_parser.add_argument("--customers", type=int, default=10_000)
    run_parser.add_argument("--kills", type=int, default=20)
    run_parser.add_argument("--seed", type=int, default=1)
    run_parser.add_argument("--folder", type=Path, default=None, help="default: a temporary one")
    worker_parser = commands.add_parser("worker", help="one dispatcher worker (started by run)")
    worker_parser.add_argument("db", type=Path)
    worker_parser.add_argument("log", type=Path)
    worker_parser.add_argument("--base", type=float, required=True)
    args = parser.parse_args(argv)
    if args.command == "worker":
        worker(args.db, args.log, args.base)
        return
    if args.folder is None:
        with tempfile.TemporaryDirectory() as folder:
            result = run(args.customers, args.kills, args.seed, Path(folder))
    else:
        args.folder.mkdir(parents=True, exist_ok=True)
        result = run(args.customers, args.kills, args.seed, args.folder)
    print(json.dumps(result))
    if not result["ok"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
