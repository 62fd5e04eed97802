"""`boomerang demo run`: weeks of campaigns on the demo shop, in simulated time, in seconds.

A FixedClock starts at the app clock's now and moves one hour per step. Each step:

1. every enabled campaign whose cron fired in that hour plans the run of its newest scheduled time
   (`plan_run`, idempotent; on the first step the last run before now is caught up, as `serve`);
2. the dispatcher ticks until nothing is due, with simulated customers (MIXED_SHOP personas) on
   every channel;
3. customers buy again: a contacted customer places an order within `REPLY_DAYS` with a chance that
   depends on how the conversation ended (`BUY_AFTER`), and every customer, holdout included, buys
   at `BASE_DAILY_RATE` a day. Orders are inserted when their time comes (never in the clock's
   future), through SQLAlchemy Core, and the buyers' rhythm is refreshed;
4. once a simulated day (at 00:00 UTC, and at the end) `attribute_conversions` runs.

Everything random is drawn from one generator seeded by `seed`: the same database and seed give
the same run.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import insert, select

from bot.app import App
from bot.audience.rhythm import refresh_rhythm
from bot.campaign.conversion import attribute_conversions
from bot.campaign.dispatcher import Dispatcher
from bot.campaign.guard import GuardPolicy
from bot.campaign.loader import LoadedCampaign
from bot.campaign.planner import plan_run
from bot.campaign.scheduler import last_fire_time
from bot.campaign.states import DONE, IN_CONVERSATION
from bot.channel.simulated import MIXED_SHOP, SimulatedChannel
from bot.clock import FixedClock
from bot.db.models import Customer, Order
from bot.db.outreach import Outreach
from bot.db.types import to_epoch
from bot.demo.shop import is_empty, seed_demo
from bot.dialog.library import Library

STEP = timedelta(hours=1)
BUY_AFTER = {
    "offer_accepted": 0.55,
    "callback_booked": 0.35,
    "feedback_given": 0.12,
    "no_answer": 0.06,
    "declined": 0.03,
    "opted_out": 0.0,
}
"""Chance that a contacted customer orders within REPLY_DAYS, by the conversation's outcome."""
BUY_OTHERWISE = 0.06
"""The chance for an outcome not listed (or a conversation still going)."""
REPLY_DAYS = 10
BASE_DAILY_RATE = 0.002
"""Every customer's chance a day to order anyway (about 6 % in a 30-day attribution window)."""
TICK_LIMIT = 500
MAX_TICKS_PER_STEP = 1_000


@dataclass
class DemoRun:
    started: datetime
    ended: datetime
    seeded: int
    """Customers seeded because the database was empty (0 when it was not)."""
    runs: int = 0
    """Campaign runs planned (newly created)."""
    contacted: int = 0
    orders: int = 0
    """Orders the simulated customers placed."""
    converted: int = 0
    won_back: int = 0
    seconds: float = 0.0


def _dispatcher(app: App, campaigns: Sequence[LoadedCampaign], library: Library) -> Dispatcher:
    now = app.clock.now()
    channels: dict[str, Any] = {
        name: SimulatedChannel(MIXED_SHOP, seed=1, now=now, name=name)
        for name in ("telegram", "voice")
    }
    return Dispatcher(
        app, {c.campaign.id: c for c in campaigns}, library, channels, GuardPolicy(), "demo-run"
    )


async def run_demo(
    app: App,
    campaigns: Sequence[LoadedCampaign],
    library: Library,
    weeks: int = 8,
    customers: int = 3_000,
    seed: int = 1,
) -> DemoRun:
    """Simulate `weeks` of campaigns on `app`'s database (seeded with the demo shop when empty)."""
    started_at = time.perf_counter()
    clock = FixedClock(app.clock.now())
    app = replace(app, clock=clock)
    seeded = 0
    with app.engine.connect() as connection:
        empty = is_empty(connection)
    if empty:
        seeded = seed_demo(app, customers=customers, seed=seed).customers
    start = clock.now()
    result = DemoRun(started=start, ended=start, seeded=seeded)
    enabled = [c for c in campaigns if c.campaign.enabled]
    dispatcher = _dispatcher(app, enabled, library)
    rng = np.random.default_rng(seed)
    with app.sessions() as session:
        customer_ids = np.array(session.scalars(select(Customer.id).order_by(Customer.id)).all())
    pending: list[tuple[datetime, int]] = []
    order_number = 0
    prefix = f"DEMO-RUN-{to_epoch(start)}-"

    def plan(loaded: LoadedCampaign, now: datetime) -> None:
        fired = last_fire_time(loaded.campaign.schedule.trigger(), now)
        if fired is not None and plan_run(app, loaded, fired).created:
            result.runs += 1

    for loaded in enabled:
        plan(loaded, start)
    upcoming = {
        c.campaign.id: c.campaign.schedule.trigger().get_next_fire_time(None, start)
        for c in enabled
    }
    steps = weeks * 7 * 24
    for step in range(1, steps + 1):
        now = start + step * STEP
        clock.set(now)
        for channel in dispatcher.channels.values():
            if isinstance(channel, SimulatedChannel):
                channel.now = now
        for loaded in enabled:
            due = upcoming[loaded.campaign.id]
            if due is not None and due <= now:
                plan(loaded, now)
                upcoming[loaded.campaign.id] = (
                    loaded.campaign.schedule.trigger().get_next_fire_time(
                        None, now + timedelta(microseconds=1)
                    )
                )
        for _ in range(MAX_TICKS_PER_STEP):
            if (await dispatcher.tick(TICK_LIMIT)).claimed == 0:
                break
        for _customer, outcome in _contacted_at(app, now):
            result.contacted += 1
            if rng.random() < BUY_AFTER.get(outcome or "", BUY_OTHERWISE):
                at = now + timedelta(seconds=float(rng.uniform(3_600, REPLY_DAYS * 86_400)))
                heapq.heappush(pending, (at, _customer))
        if step % 24 == 0 and len(customer_ids):
            buyers = rng.choice(customer_ids, rng.binomial(len(customer_ids), BASE_DAILY_RATE))
            for customer_id in buyers:
                at = now + timedelta(seconds=float(rng.uniform(0, 86_400)))
                heapq.heappush(pending, (at, int(customer_id)))
        placed: list[tuple[datetime, int]] = []
        while pending and pending[0][0] <= now:
            placed.append(heapq.heappop(pending))
        if placed:
            rows = []
            for at, customer_id in placed:
                order_number += 1
                rows.append(
                    {
                        "external_id": f"{prefix}{order_number:07d}",
                        "customer_id": customer_id,
                        "placed_at": at,
                        "delivered_at": at + timedelta(days=2),
                        "amount_minor": int(rng.integers(1_500, 12_000)) * 100,
                        "currency": "RUB",
                        "status": "delivered",
                        "items": [],
                    }
                )
            with app.engine.begin() as connection:
                connection.execute(insert(Order), rows)
            refresh_rhythm(app.engine, {customer_id for _, customer_id in placed})
            result.orders += len(rows)
        if step % 24 == 0 or step == steps:
            attribution = attribute_conversions(app, now, [c.campaign for c in enabled])
            result.converted += sum(attribution.converted.values())
            result.won_back += attribution.won_back
    result.ended = clock.now()
    result.seconds = time.perf_counter() - started_at
    return result


def _contacted_at(app: App, now: datetime) -> list[tuple[int, str | None]]:
    """(customer, outcome) of the rows the dispatcher contacted at `now`."""
    with app.sessions() as session:
        found = session.execute(
            select(Outreach.customer_id, Outreach.outcome).where(
                Outreach.contacted_at == now,
                Outreach.state.in_((DONE, IN_CONVERSATION)),
                Outreach.holdout.is_(False),
            )
        )
        return [(int(customer_id), outcome) for customer_id, outcome in found]
