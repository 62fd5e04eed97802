"""Benchmark a campaign on SQLite: outreach rows planned and dispatched per second, peak memory.

Usage:

    .venv/bin/python scripts/bench/campaign.py --customers 100000 --dispatch 5000

Builds a shop of N customers (each with a delivered order and survey consent; the crash test's
shop, scripts/crash_test.py) in a fresh SQLite file, plans one post-order campaign over all of them
(`plan_run`) and dispatches `--dispatch` rows (default: all) through the simulated channel with one
in-process worker. Printed next to a baseline from the same run: a bare `executemany` INSERT of the
same number of outreach-shaped rows into a plain table.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from crash_test import (  # type: ignore[import-not-found]
    ANSWERS,
    CAMPAIGN_ID,
    DIALOGS,
    NOW,
    ShiftedClock,
    build_shop,
    campaign,
)
from sqlalchemy import func, select

from bot.app import open_app
from bot.campaign.dispatcher import Dispatcher
from bot.campaign.guard import GuardPolicy
from bot.campaign.planner import plan_run
from bot.channel.base import Contact
from bot.channel.simulated import SimulatedChannel
from bot.clock import FixedClock
from bot.db.outreach import Outreach
from bot.dialog.library import Library, load_library
from bot.settings import Settings


def baseline(path: Path, rows: int) -> float:
    """Seconds for a bare executemany of `rows` outreach-shaped rows, one transaction."""
    connection = sqlite3.connect(path)
    connection.execute(
        "CREATE TABLE o (id INTEGER PRIMARY KEY, campaign_id TEXT, customer_id INTEGER, "
        "cycle TEXT, state TEXT, created_at TEXT, UNIQUE (campaign_id, customer_id, cycle))"
    )
    data = [(CAMPAIGN_ID, i, f"order{i}", "planned", NOW.isoformat()) for i in range(rows)]
    started = time.perf_counter()
    with connection:
        connection.executemany(
            "INSERT INTO o (campaign_id, customer_id, cycle, state, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            data,
        )
    seconds = time.perf_counter() - started
    connection.close()
    return seconds


def conversations_only(library: Library, channel: SimulatedChannel, count: int) -> float:
    """Conversations per second of the simulated channel alone: engine and personas, no database."""
    script = library.scripts[("post_order_feedback", "ru")]
    pack = library.packs["ru"]
    contacts = [
        Contact(i, "ru", str(10_000 + i), script, pack, {"first_name": f"Name{i}"})
        for i in range(1, count + 1)
    ]

    async def talk() -> None:
        for contact in contacts:
            await channel.start_conversation(contact)

    started = time.perf_counter()
    asyncio.run(talk())
    return count / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--dispatch", type=int, default=None, help="rows to dispatch (all)")
    parser.add_argument("--limit", type=int, default=500, help="rows per tick")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        db = folder / "campaign.db"
        app = open_app(Settings(database_url=f"sqlite:///{db}"), clock=FixedClock(NOW))
        started = time.perf_counter()
        library = load_library(DIALOGS)
        channel = SimulatedChannel(ANSWERS, seed=7, now=NOW, name="telegram")
        build_shop(app, args.customers)
        print(f"shop of {args.customers:,} customers: {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        run = plan_run(app, campaign(folder), NOW)
        plan_seconds = time.perf_counter() - started
        app.engine.dispose()
        base_seconds = baseline(folder / "baseline.db", run.planned)
        print(
            f"planned {run.planned:,} rows in {plan_seconds:.2f} s = "
            f"{run.planned / plan_seconds:,.0f} rows/s (cohort query included); "
            f"baseline executemany: {base_seconds:.2f} s = {run.planned / base_seconds:,.0f} rows/s"
        )
        app = open_app(Settings(database_url=f"sqlite:///{db}"), clock=ShiftedClock(time.time()))
        worker = Dispatcher(
            app,
            {CAMPAIGN_ID: campaign(folder)},
            library,
            {"telegram": channel},
            GuardPolicy(),
            worker_id="bench",
        )
        target = run.planned if args.dispatch is None else min(args.dispatch, run.planned)
        sent = 0
        started = time.perf_counter()
        while sent < target:
            summary = asyncio.run(worker.tick(limit=min(args.limit, target - sent)))
            if summary.claimed == 0:
                break
            sent += summary.claimed
        seconds = time.perf_counter() - started
        with app.sessions() as session:
            done = session.scalar(select(func.count()).where(Outreach.state == "done"))
        print(
            f"dispatched {sent:,} rows in {seconds:.1f} s = {sent / seconds:,.0f} rows/s "
            f"(target 2,000/s; {done:,} done), {args.limit} rows per tick"
        )
        base_rate = conversations_only(library, channel, min(sent, 20_000))
        print(
            f"baseline: the same simulated conversations without the database: "
            f"{base_rate:,.0f} /s; dispatch / baseline = {sent / seconds / base_rate:.2f}"
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS: {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
