"""The scheduler: APScheduler 3 fires each campaign's cron and the dispatcher's tick, nothing more.

Design decision 1: APScheduler only ticks. Its job store is a `MemoryJobStore`; no work state lives
in it. Every job does idempotent work on our tables:

- one cron job per enabled campaign (`schedule.trigger()`, coalesce, one instance at a time, a
  large misfire grace time): it plans the run of the campaign's most recent scheduled time with
  `plan_run`, which is idempotent per (campaign, scheduled_for);
- one interval job every `tick_seconds` that awaits `Dispatcher.tick()`;
- one daily job (00:30 UTC, and once on start) that runs `attribute_conversions` for the enabled
  campaigns: orders placed after a contact convert its row (idempotent).

On `start()` a **catch-up** plans, for each enabled campaign, its most recent scheduled time before
now once: a run missed while nothing was running is done once, not lost and not doubled.

The clock (design decision 8): APScheduler reads the wall clock itself to decide *when* to wake up;
that stays at this edge. What our code is given is always `app.clock.now()` or a scheduled time
computed from the trigger against `app.clock.now()` (`last_fire_time`). A job that wakes up works
out the scheduled time it stands for from the app clock, so a late wake-up (coalesced misfires)
plans the newest scheduled time, once.

All jobs run as coroutines on the event loop (APScheduler's `AsyncIOExecutor`), so the planner and
the dispatcher never run at the same time in this process (SQLite has one writer).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.jobstores.memory import MemoryJobStore  # type: ignore[import-untyped]
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from bot.app import App
from bot.campaign.conversion import Attribution, attribute_conversions
from bot.campaign.dispatcher import Dispatcher, TickSummary
from bot.campaign.loader import LoadedCampaign
from bot.campaign.planner import RunSummary, plan_run

logger = logging.getLogger(__name__)

MISFIRE_GRACE_SECONDS = 7 * 24 * 3600
"""A cron firing missed by up to a week (a blocked loop, a suspended host) still runs, once."""
LOOKBACK = timedelta(days=800)
"""How far back `last_fire_time` looks: more than a yearly cron's period."""


def last_fire_time(trigger: Any, now: datetime) -> datetime | None:
    """The newest time at or before `now` (aware) at which `trigger` fires, in UTC; None if none.

    Looks back one hour, then twice as far each time, up to LOOKBACK, and walks forward from the
    first firing found to the last one not after `now`.
    """
    if now.tzinfo is None:
        raise ValueError(f"now must be an aware datetime, got {now!r}")
    now = now.astimezone(UTC)
    span = timedelta(hours=1)
    while True:
        start = now - span
        fire: datetime | None = trigger.get_next_fire_time(None, start)
        if fire is not None and fire <= now:
            last = fire
            while True:
                following: datetime | None = trigger.get_next_fire_time(
                    last, last + timedelta(microseconds=1)
                )
                if following is None or following > now:
                    return last.astimezone(UTC)
                last = following
        if span >= LOOKBACK:
            return None
        span = min(span * 2, LOOKBACK)


class CampaignScheduler:
    """Plans campaign runs on their cron and ticks the dispatcher; start it in a running loop."""

    def __init__(
        self,
        app: App,
        campaigns: Sequence[LoadedCampaign],
        dispatcher: Dispatcher,
        tick_seconds: float = 5.0,
        misfire_grace_seconds: int = MISFIRE_GRACE_SECONDS,
    ) -> None:
        if tick_seconds <= 0:
            raise ValueError(f"tick_seconds must be positive, got {tick_seconds}")
        self.app = app
        self.campaigns = [c for c in campaigns if c.campaign.enabled]
        self.dispatcher = dispatcher
        self.tick_seconds = tick_seconds
        self.misfire_grace_seconds = misfire_grace_seconds
        self.scheduler = AsyncIOScheduler(jobstores={"default": MemoryJobStore()}, timezone=UTC)
        self._tick_task: asyncio.Task[TickSummary] | None = None

    def catch_up(self) -> list[RunSummary]:
        """Plan each enabled campaign's most recent scheduled time before now (idempotent)."""
        now = self.app.clock.now()
        planned: list[RunSummary] = []
        for loaded in self.campaigns:
            scheduled_for = last_fire_time(loaded.campaign.schedule.trigger(), now)
            if scheduled_for is None:
                continue
            planned.append(self._plan(loaded, scheduled_for))
        return planned

    def attribute(self) -> Attribution:
        """Attribute orders to the enabled campaigns' contacts up to the app clock's now."""
        attribution = attribute_conversions(
            self.app, self.app.clock.now(), [c.campaign for c in self.campaigns]
        )
        converted = sum(attribution.converted.values())
        if converted or attribution.won_back:
            logger.info(
                "conversions: %d rows converted, %d customers won back",
                converted,
                attribution.won_back,
            )
        return attribution

    def start(self) -> None:
        """Catch up, add the jobs and start APScheduler (needs a running asyncio loop)."""
        self.catch_up()
        self.attribute()
        for loaded in self.campaigns:
            self.scheduler.add_job(
                self._fire,
                trigger=loaded.campaign.schedule.trigger(),
                args=[loaded],
                id=f"campaign:{loaded.campaign.id}",
                name=f"plan {loaded.campaign.id}",
                coalesce=True,
                max_instances=1,
                misfire_grace_time=self.misfire_grace_seconds,
                replace_existing=True,
            )
        self.scheduler.add_job(
            self._tick,
            trigger=IntervalTrigger(seconds=self.tick_seconds, timezone=UTC),
            id="dispatcher:tick",
            name="dispatcher tick",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            replace_existing=True,
        )
        self.scheduler.add_job(
            self._attribute,
            trigger=CronTrigger(hour=0, minute=30, timezone=UTC),
            id="conversion:attribute",
            name="attribute conversions",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=self.misfire_grace_seconds,
            replace_existing=True,
        )
        self.scheduler.start()
        logger.info(
            "scheduler: %d campaigns, dispatcher tick every %ss",
            len(self.campaigns),
            self.tick_seconds,
        )

    async def shutdown(self) -> None:
        """Stop firing, then let a tick in progress finish (it is never cut off mid-row)."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        task = self._tick_task
        if task is not None and not task.done():
            await task

    async def _fire(self, loaded: LoadedCampaign) -> None:
        """A cron firing: plan the newest scheduled time not after the app clock's now."""
        scheduled_for = last_fire_time(loaded.campaign.schedule.trigger(), self.app.clock.now())
        if scheduled_for is not None:
            self._plan(loaded, scheduled_for)

    def _plan(self, loaded: LoadedCampaign, scheduled_for: datetime) -> RunSummary:
        summary = plan_run(self.app, loaded, scheduled_for)
        logger.info(
            "scheduler: %s run %s: %s planned, %s held out%s",
            loaded.campaign.id,
            scheduled_for.isoformat(),
            summary.planned,
            summary.held_out,
            "" if summary.created else " (planned before)",
        )
        return summary

    async def _attribute(self) -> None:
        self.attribute()

    async def _tick(self) -> None:
        # Shielded: a shutdown that cancels the job lets the tick itself run to its end.
        task = asyncio.ensure_future(self.dispatcher.tick())
        self._tick_task = task
        summary = await asyncio.shield(task)
        if summary.claimed or summary.reconciled:
            logger.info("dispatcher: %s", summary)
