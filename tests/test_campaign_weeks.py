"""Weeks of campaigns on a fake clock: the real loader, planner, guard and dispatcher end to end.

Each test writes its campaigns as YAML, loads them with the real loader and the real dialog
library, and lets `World` run simulated weeks: every 15 minutes (the tick grid) the campaigns
whose cron fired are planned (`plan_run` at the trigger's exact fire time, as the scheduler does)
and the dispatcher ticks. Grid points where nothing can happen (no cron, no hook, no row whose
`next_attempt_at` or lease has come) are skipped, which is what keeps weeks fast.

The channels are `Phone`'s two faces (telegram, voice): every call is recorded as
(customer, channel, clock time) and answered with the status scripted for that customer and
attempt; `delivered` runs the real dialog engine through a simulated customer who answers, `stop`
through one who says a stop phrase (the conversation's outcome is then `opted_out`).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from bot.app import App
from bot.audience.rhythm import refresh_rhythm
from bot.campaign.dispatcher import Dispatcher, TickSummary
from bot.campaign.guard import GuardPolicy
from bot.campaign.loader import LoadedCampaign, load_campaign
from bot.campaign.planner import plan_run
from bot.channel.base import Contact, Delivery, Status
from bot.channel.simulated import Persona, SimulatedChannel, stopper
from bot.clock import FixedClock
from bot.db.models import Consent, Customer, Order
from bot.db.outreach import Outreach
from bot.dialog.library import Library, load_library

DIALOGS = Path(__file__).resolve().parent.parent / "dialogs"
START = datetime(2026, 10, 19, 0, 0, tzinfo=UTC)
"""A Monday, 00:00 UTC: the tick grid is anchored here."""
TICK = timedelta(minutes=15)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")

answers = Persona("answers", yes_no={"yes": 1.0}, scale=(0.8, 0.1))

CAMPAIGN = """\
id: {id}
title: {id}
audience:
  kind: welcome
  params: {{min_days: 0, max_days: 400, contacted_within: 0}}
script: welcome
channels: [{channels}]
purpose: {purpose}
schedule:
  cron: "{cron}"
  time_zone: {zone}
window:
  from: "{start}"
  to: "{end}"
frequency_cap: {{days: {cap}, exempt: {exempt}}}
attempts:
  no_answer: {{delay_minutes: 120, max: 2}}
  busy: {{delay_minutes: 30, max: 3}}
  voicemail: {{delay_minutes: 240, max: 1}}
  failed: {{delay_minutes: 60, max: 1}}
holdout_share: {holdout}
priority: {priority}
"""


def campaign(
    tmp_path: Path,
    id: str,
    *,
    cron: str,
    channels: str = "telegram",
    purpose: str = "survey",
    zone: str = "Europe/Moscow",
    start: str = "10:00",
    end: str = "20:00",
    cap: int = 14,
    exempt: bool = False,
    holdout: float = 0.0,
    priority: int = 100,
) -> LoadedCampaign:
    path = tmp_path / f"{id}.yaml"
    path.write_text(
        CAMPAIGN.format(
            id=id,
            cron=cron,
            channels=channels,
            purpose=purpose,
            zone=zone,
            start=start,
            end=end,
            cap=cap,
            exempt="true" if exempt else "false",
            holdout=holdout,
            priority=priority,
        ),
        encoding="utf-8",
    )
    return load_campaign(path)


@pytest.fixture(scope="module")
def library() -> Library:
    loaded = load_library(DIALOGS)
    assert not loaded.errors
    return loaded


# --- the shop ---


@dataclass(frozen=True)
class Spec:
    """One customer to add: their first (and only) order arrives when they are added."""

    key: str
    zone: str | None = "Europe/Moscow"
    phone: str | None = None
    chat: bool = True
    consents: tuple[tuple[str, str], ...] = ()
    """(channel, purpose) granted in the ledger."""
    locale: str = "en"


def add_customers(app: App, specs: Iterable[Spec]) -> dict[str, int]:
    """Insert customers whose first order was delivered an hour ago (placed a day before)."""
    now = app.clock.now()
    ids: dict[str, int] = {}
    with app.sessions.begin() as session:
        for spec in specs:
            customer = Customer(
                external_id=spec.key,
                name=spec.key,
                first_name=spec.key,
                phone=spec.phone,
                telegram_chat_id=zlib.crc32(spec.key.encode()) + 1 if spec.chat else None,
                time_zone=spec.zone,
                locale=spec.locale,
                tags=[],
                created_at=T0,
                updated_at=T0,
            )
            session.add(customer)
            session.flush()
            ids[spec.key] = customer.id
            session.add(
                Order(
                    external_id=f"order-{spec.key}",
                    customer_id=customer.id,
                    placed_at=now - timedelta(days=1),
                    delivered_at=now - timedelta(hours=1),
                    currency="RUB",
                    status="delivered",
                    amount_minor=1990_00,
                    items=[],
                )
            )
            for channel, purpose in spec.consents:
                session.add(
                    Consent(
                        customer_id=customer.id,
                        channel=channel,
                        purpose=purpose,
                        granted=True,
                        at=T0,
                        source="signed form",
                    )
                )
    refresh_rhythm(app.engine, set(ids.values()))
    return ids


# --- the channels ---


@dataclass(frozen=True)
class Call:
    customer_id: int
    channel: str
    at: datetime


class Phone:
    """Both channels: records every call and answers with the status scripted per attempt.

    `script[customer_id]` lists the statuses of that customer's calls in order (over all
    channels), `script[(customer_id, channel)]` those on one channel; the last one repeats.
    Unscripted calls are `delivered`.
    """

    def __init__(
        self,
        clock: FixedClock,
        script: Mapping[int | tuple[int, str], Sequence[str]] | None = None,
    ) -> None:
        self.clock = clock
        self.script = dict(script or {})
        self.calls: list[Call] = []
        self.talker = SimulatedChannel(answers, seed=1, now=clock.now(), name="talk")
        self.stopper = SimulatedChannel(stopper, seed=1, now=clock.now(), name="stop")

    def channel(self, name: str) -> Face:
        return Face(self, name)

    def answer(self, name: str, contact: Contact) -> Delivery:
        customer_id = contact.customer_id
        statuses = self.script.get((customer_id, name))
        if statuses is not None:
            done = sum(1 for c in self.calls if (c.customer_id, c.channel) == (customer_id, name))
        else:
            statuses = self.script.get(customer_id) or ("delivered",)
            done = sum(1 for c in self.calls if c.customer_id == customer_id)
        self.calls.append(Call(customer_id, name, self.clock.now()))
        status = statuses[min(done, len(statuses) - 1)]
        if status in ("delivered", "stop"):
            talker = self.talker if status == "delivered" else self.stopper
            talker.now = self.clock.now()
            delivery = talker.converse(contact)
            assert delivery.status == Status.DELIVERED, delivery
            return delivery
        if status == "failed":
            return Delivery.failed("provider error 503", retryable=True)
        if status == "failed_final":
            return Delivery.failed("number does not exist", retryable=False)
        if status == "unreachable":
            return Delivery.unreachable("the bot is blocked")
        return Delivery(Status(status), reason=f"scripted {status}")

    def of(self, customer_id: int) -> list[tuple[str, datetime]]:
        return [(c.channel, c.at) for c in self.calls if c.customer_id == customer_id]


class Face:
    """One named channel of a `Phone` (implements bot.channel.base.Channel)."""

    def __init__(self, phone: Phone, name: str) -> None:
        self.phone = phone
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    async def start_conversation(self, contact: Contact) -> Delivery:
        return self.phone.answer(self._name, contact)


# --- the world: cron firings, ticks and hooks on a fake clock ---


@dataclass
class World:
    app: App
    clock: FixedClock
    campaigns: Sequence[LoadedCampaign]
    library: Library
    phone: Phone
    hooks: list[tuple[datetime, Callable[[], None]]] = field(default_factory=list)
    ticks: list[tuple[datetime, TickSummary]] = field(default_factory=list)
    runs: list[tuple[str, datetime, int, int]] = field(default_factory=list)
    """(campaign, scheduled_for, planned, held out) of every run created."""

    def __post_init__(self) -> None:
        self.dispatcher = Dispatcher(
            self.app,
            {c.campaign.id: c for c in self.campaigns},
            self.library,
            {"telegram": self.phone.channel("telegram"), "voice": self.phone.channel("voice")},
            GuardPolicy(),
            worker_id="weeks",
            lease_seconds=60,
        )
        now = self.clock.now()
        self.fires: dict[str, datetime | None] = {
            c.campaign.id: c.campaign.schedule.trigger().get_next_fire_time(None, now)
            for c in self.campaigns
        }

    def at(self, moment: datetime, hook: Callable[[], None]) -> None:
        self.hooks.append((moment, hook))
        self.hooks.sort(key=lambda h: h[0])

    def run(self, until: datetime) -> None:
        asyncio.run(self._run(until))

    async def _run(self, until: datetime) -> None:
        while True:
            now = self.clock.now()
            while self.hooks and self.hooks[0][0] <= now:
                self.hooks.pop(0)[1]()
            for loaded in self.campaigns:
                trigger = loaded.campaign.schedule.trigger()
                fire = self.fires[loaded.campaign.id]
                while fire is not None and fire <= now:
                    summary = plan_run(self.app, loaded, fire)
                    if summary.created:
                        self.runs.append(
                            (loaded.campaign.id, fire, summary.planned, summary.held_out)
                        )
                    fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
                self.fires[loaded.campaign.id] = fire
            summary = await self.dispatcher.tick(limit=1000)
            if summary.claimed or summary.reconciled:
                self.ticks.append((now, summary))
            following = self._next(now)
            if following > until:
                return
            self.clock.set(following)

    def _next(self, now: datetime) -> datetime:
        """The next grid point after `now` at which a hook, a cron or a row is due."""
        candidates = [f for f in self.fires.values() if f is not None]
        candidates += [moment for moment, _ in self.hooks]
        with self.app.sessions() as session:
            waiting = session.scalar(
                select(func.count()).where(
                    Outreach.state.in_(("planned", "retry")), Outreach.next_attempt_at.is_(None)
                )
            )
            if waiting:
                candidates.append(now)
            attempt = session.scalar(
                select(func.min(Outreach.next_attempt_at)).where(
                    Outreach.state.in_(("planned", "retry"))
                )
            )
            lease = session.scalar(
                select(func.min(Outreach.lease_until)).where(Outreach.state.in_(("due", "sending")))
            )
        candidates += [moment for moment in (attempt, lease) if moment is not None]
        following = min(_grid(moment) for moment in candidates) if candidates else None
        if following is None or following <= now:
            return now + TICK
        return following

    def reasons(self, since: datetime, span: timedelta = timedelta(hours=1)) -> dict[str, int]:
        """The reasons the ticks in [since, since + span) counted, summed."""
        counted: dict[str, int] = {}
        for moment, summary in self.ticks:
            if since <= moment < since + span:
                for reason, count in summary.reasons.items():
                    counted[reason] = counted.get(reason, 0) + count
        return counted


def _grid(moment: datetime) -> datetime:
    """`moment` rounded up to the tick grid."""
    rest = (moment - EPOCH) % TICK
    return moment if not rest else moment + (TICK - rest)


def rows_of(app: App) -> dict[tuple[str, int], Outreach]:
    with app.sessions() as session:
        return {(r.campaign_id, r.customer_id): r for r in session.scalars(select(Outreach))}


def utc(day: str, hour: int, minute: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=UTC)


def hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def local(moment: datetime, zone: str) -> datetime:
    return moment.astimezone(ZoneInfo(zone))


def expected_contact(planned: datetime, zone: str, start: time, end: time) -> datetime:
    """When a window of start-end (every day) first lets a row planned at `planned` go out."""
    wall = planned.astimezone(ZoneInfo(zone))
    if start <= wall.time() < end:
        return planned
    day: date = wall.date() if wall.time() < start else wall.date() + timedelta(days=1)
    return datetime.combine(day, start, tzinfo=ZoneInfo(zone)).astimezone(UTC)


# --- 1. exact local times across zones, DST changes and UTC+14 ---

ZONED = {
    "moscow": Spec("moscow", "Europe/Moscow"),
    "vladivostok": Spec("vladivostok", "Asia/Vladivostok"),
    "new_york": Spec("new_york", "America/New_York"),
    "london": Spec("london", "Europe/London"),
    "kiritimati": Spec("kiritimati", "Pacific/Kiritimati"),
    "phone_london": Spec("phone_london", None, phone="+442079460958"),
    "phone_ru": Spec("phone_ru", None, phone="+79161234567"),
    "nothing": Spec("nothing", None),
}
"""The zone each key's customer is read in: their own, their phone's, else the campaign's."""
ZONE_OF = {
    "moscow": "Europe/Moscow",
    "vladivostok": "Asia/Vladivostok",
    "new_york": "America/New_York",
    "london": "Europe/London",
    "kiritimati": "Pacific/Kiritimati",
    "phone_london": "Europe/London",
    "phone_ru": "Europe/Moscow",
    "nothing": "Europe/Moscow",
}


def test_contacts_happen_at_exact_local_times_across_zones_and_dst(
    app: App, clock: FixedClock, library: Library, tmp_path: Path
) -> None:
    clock.set(START)
    # 00:00 and 06:00 Moscow = 21:00 and 03:00 UTC: closed for some zones, open for others
    hello = campaign(tmp_path, "hello", cron="0 0,6 * * *", cap=0)
    phone = Phone(clock)
    world = World(app, clock, [hello], library, phone)
    batches: dict[datetime, dict[str, int]] = {}
    firings = [
        utc(f"2026-{month:02d}-{day:02d}", hour)
        for month, day in [(10, d) for d in range(22, 32)] + [(11, d) for d in range(1, 5)]
        for hour in (3, 21)
    ]

    def adder(firing: datetime) -> Callable[[], None]:
        def add() -> None:
            stamp = f"{firing:%m%d%H}"
            batches[firing] = add_customers(
                app,
                [
                    Spec(
                        f"{key}-{stamp}",
                        spec.zone,
                        phone=spec.phone and spec.phone[:-4] + stamp[-4:],
                    )
                    for key, spec in ZONED.items()
                ],
            )

        return add

    for firing in firings:
        world.at(firing - timedelta(minutes=30), adder(firing))
    world.run(utc("2026-11-07", 0))

    start, end = time(10), time(20)
    expected: dict[int, list[tuple[str, datetime]]] = {}
    for firing, ids in batches.items():
        for key, customer_id in ids.items():
            zone = ZONE_OF[key.split("-")[0]]
            expected[customer_id] = [("telegram", expected_contact(firing, zone, start, end))]
    got = {customer_id: phone.of(customer_id) for customer_id in expected}
    assert got == expected
    for call in phone.calls:
        key = next(k for b in batches.values() for k, i in b.items() if i == call.customer_id)
        wall = local(call.at, ZONE_OF[key.split("-")[0]])
        assert start <= wall.time() < end, (key, wall)

    def contact_of(key: str, firing: datetime) -> datetime:
        return phone.of(batches[firing][f"{key}-{firing:%m%d%H}"])[0][1]

    # New York: planned 23:00 EDT the evening before; 10:00 EDT is 14:00 UTC, 10:00 EST 15:00 UTC
    assert contact_of("new_york", utc("2026-10-31", 3)) == utc("2026-10-31", 14)
    assert contact_of("new_york", utc("2026-11-01", 3)) == utc("2026-11-01", 15)  # DST ended
    assert contact_of("new_york", utc("2026-11-02", 3)) == utc("2026-11-02", 15)
    assert contact_of("new_york", utc("2026-11-01", 21)) == utc("2026-11-01", 21)  # 16:00 EST
    # London: 10:00 BST is 09:00 UTC until 25 October, then 10:00 GMT is 10:00 UTC
    assert contact_of("london", utc("2026-10-24", 3)) == utc("2026-10-24", 9)
    assert contact_of("london", utc("2026-10-25", 3)) == utc("2026-10-25", 10)
    assert contact_of("london", utc("2026-10-24", 21)) == utc("2026-10-25", 10)
    assert contact_of("phone_london", utc("2026-10-26", 3)) == utc("2026-10-26", 10)
    # Kiritimati (UTC+14): 21:00 UTC is 11:00 the next local day, 03:00 UTC is 17:00: both open
    assert contact_of("kiritimati", utc("2026-10-31", 21)) == utc("2026-10-31", 21)
    assert local(utc("2026-10-31", 21), "Pacific/Kiritimati").date() == date(2026, 11, 1)
    assert contact_of("kiritimati", utc("2026-11-01", 3)) == utc("2026-11-01", 3)
    # Vladivostok (UTC+10): 21:00 UTC is 07:00 local -> 10:00 local is 00:00 UTC
    assert contact_of("vladivostok", utc("2026-10-31", 21)) == utc("2026-11-01", 0)
    # Moscow, own or by phone or by the campaign's zone: 10:00 MSK is 07:00 UTC
    for key in ("moscow", "phone_ru", "nothing"):
        assert contact_of(key, utc("2026-10-25", 3)) == utc("2026-10-25", 7)


# --- 2. the frequency cap across campaigns ---


def cap_world(
    app: App, clock: FixedClock, library: Library, tmp_path: Path
) -> tuple[World, dict[str, int]]:
    """Monday 12:00 MSK: promo_a (priority 20) and promo_c (priority 10) plan the same customers
    in the same run; Wednesday promo_b (50); Thursday the cap-exempt survey."""
    clock.set(START)
    marketing = {"purpose": "marketing", "cap": 14}
    campaigns = [
        campaign(tmp_path, "promo_a", cron="0 12 * * mon", priority=20, **marketing),
        campaign(tmp_path, "promo_b", cron="0 12 * * wed", priority=50, **marketing),
        campaign(tmp_path, "promo_c", cron="0 12 * * mon", priority=10, **marketing),
        campaign(tmp_path, "survey", cron="0 12 * * thu", cap=14, exempt=True, priority=5),
    ]
    ids = add_customers(
        app,
        [Spec(f"c{i}", consents=(("telegram", "marketing"),)) for i in range(4)],
    )
    phone = Phone(clock)
    world = World(app, clock, campaigns, library, phone)
    world.run(utc("2026-11-21", 0))
    return world, ids


def test_frequency_cap_holds_marketing_across_campaigns_but_not_the_exempt_survey(
    app: App, clock: FixedClock, library: Library, tmp_path: Path
) -> None:
    world, ids = cap_world(app, clock, library, tmp_path)
    phone = world.phone
    rows = rows_of(app)
    monday, wednesday, thursday = utc("2026-10-19", 9), utc("2026-10-21", 9), utc("2026-10-22", 9)
    second, third = utc("2026-11-02", 9), utc("2026-11-16", 9)
    for customer_id in ids.values():
        calls = phone.of(customer_id)
        # one marketing contact per 14 days, each the moment the cap ends; the survey between
        assert [at for _, at in calls] == [monday, thursday, second, third], calls
        by_time = {
            row.updated_at: campaign_id
            for (campaign_id, cid), row in rows.items()
            if cid == customer_id and row.state == "done"
        }
        assert by_time[thursday] == "survey"
        assert {by_time[monday], by_time[second], by_time[third]} == {
            "promo_a",
            "promo_b",
            "promo_c",
        }
        for campaign_id in ("promo_a", "promo_b", "promo_c", "survey"):
            row = rows[(campaign_id, customer_id)]
            assert (row.state, row.attempts) == ("done", 1)
    # Monday: both promo rows come due in one tick; one per customer is sent, the other deferred
    # by the cap (in that tick or the next); Wednesday promo_b is deferred; Thursday the exempt
    # survey goes out at once
    assert world.reasons(monday) == {"frequency_cap": len(ids)}
    assert world.reasons(wednesday) == {"frequency_cap": len(ids)}
    assert world.reasons(thursday) == {}
    # 2 November: the two deferred rows come due together again; one goes, one waits
    assert world.reasons(second) == {"frequency_cap": len(ids)}
    assert len(phone.calls) == 4 * len(ids)


def test_when_campaigns_compete_in_one_tick_the_lower_priority_number_goes_first(
    app: App, clock: FixedClock, library: Library, tmp_path: Path
) -> None:
    """docs/campaigns.md: `priority` (100), lower goes first when campaigns compete."""
    world, ids = cap_world(app, clock, library, tmp_path)
    rows = rows_of(app)
    for customer_id in ids.values():
        sent = {
            campaign_id: row.updated_at
            for (campaign_id, cid), row in rows.items()
            if cid == customer_id and campaign_id != "survey"
        }
        assert sent == {
            "promo_c": utc("2026-10-19", 9),  # priority 10 beats promo_a's 20 on Monday
            "promo_a": utc("2026-11-02", 9),  # 20 beats promo_b's 50 when both come due
            "promo_b": utc("2026-11-16", 9),
        }


# --- 3. retries per outcome ---


def test_each_outcome_is_retried_by_its_own_policy_then_failed(
    app: App, clock: FixedClock, library: Library, tmp_path: Path
) -> None:
    clock.set(START)
    # 17:00 Moscow (14:00 UTC): a retry that lands after 20:00 MSK waits for 10:00 MSK
    retry = campaign(tmp_path, "retry", cron="0 17 * * *", channels="telegram, voice", cap=0)
    script = {
        "no_answer": ["no_answer"],
        "busy": ["busy"],
        "voicemail": ["voicemail"],
        "failed": ["failed"],
        "failed_final": ["failed_final"],
        "mixed": ["no_answer", "busy", "delivered"],
        "unreachable": ["unreachable", "delivered"],
    }
    ids = add_customers(app, [Spec(key, phone=f"+7916000000{i}") for i, key in enumerate(script)])
    phone = Phone(clock, {ids[key]: statuses for key, statuses in script.items()})
    world = World(app, clock, [retry], library, phone)
    world.run(utc("2026-10-26", 0))

    t = utc("2026-10-19", 14)  # 17:00 MSK
    next_opening = utc("2026-10-20", 7)  # 10:00 MSK the next day
    telegram = "telegram"
    assert phone.of(ids["no_answer"]) == [
        (telegram, t),
        (telegram, t + timedelta(minutes=120)),  # 19:00 MSK
        (telegram, next_opening),  # 21:00 MSK is outside the window
    ]
    assert phone.of(ids["busy"]) == [(telegram, t + timedelta(minutes=30 * n)) for n in range(4)]
    assert phone.of(ids["voicemail"]) == [(telegram, t), (telegram, next_opening)]
    assert phone.of(ids["failed"]) == [(telegram, t), (telegram, t + timedelta(minutes=60))]
    assert phone.of(ids["failed_final"]) == [(telegram, t)]
    assert phone.of(ids["mixed"]) == [
        (telegram, t),
        (telegram, t + timedelta(minutes=120)),
        (telegram, t + timedelta(minutes=150)),
    ]
    rows = rows_of(app)
    final = {key: rows[("retry", ids[key])] for key in script}
    assert {k: (r.state, r.skip_reason, r.attempts) for k, r in final.items()} == {
        "no_answer": ("failed", "no_answer", 3),
        "busy": ("failed", "busy", 4),
        "voicemail": ("failed", "voicemail", 2),
        "failed": ("failed", "failed", 2),
        "failed_final": ("failed", "failed", 1),
        "mixed": ("done", None, 3),
        "unreachable": ("done", None, 2),
    }
    assert all(r.next_attempt_at is None for r in final.values())
    # unreachable on Telegram: the next channel of the campaign, voice, is tried (in this tick
    # or the next one), and the row is done by voice
    calls = phone.of(ids["unreachable"])
    assert [channel for channel, _ in calls] == ["telegram", "voice"]
    assert t <= calls[1][1] <= t + TICK
    assert final["unreachable"].channel == "voice"


# --- 4. the holdout ---


def test_the_holdout_is_never_contacted_over_weeks(
    app: App, clock: FixedClock, library: Library, tmp_path: Path
) -> None:
    clock.set(START)
    daily = campaign(tmp_path, "daily", cron="0 12 * * *", cap=0, holdout=0.2)
    phone = Phone(clock)
    world = World(app, clock, [daily], library, phone)
    added: dict[str, int] = {}
    for week in range(3):
        specs = [Spec(f"w{week}c{i}") for i in range(100)]
        world.at(
            START + timedelta(days=7 * week, hours=2),
            lambda s=specs: added.update(add_customers(app, s)),
        )
    world.run(utc("2026-11-09", 0))

    rows = rows_of(app)
    assert len(rows) == len(added) == 300
    held = {cid for (_, cid), row in rows.items() if row.holdout}
    contacted = {call.customer_id for call in phone.calls}
    assert not held & contacted
    assert contacted == set(added.values()) - held
    assert len(phone.calls) == len(contacted)  # once each
    for (_, cid), row in rows.items():
        if cid in held:
            assert (row.state, row.skip_reason, row.attempts, row.channel) == (
                "skipped",
                "holdout",
                0,
                None,
            )
        else:
            assert (row.state, row.attempts) == ("done", 1)
    assert 0.14 <= len(held) / len(rows) <= 0.26
    assert sum(r[3] for r in world.runs) == len(held)


# --- 5. robot marketing calls to +7 ---


def test_marketing_voice_never_calls_plus_7_and_calls_others_in_voice_hours(
    app: App, clock: FixedClock, library: Library, tmp_path: Path
) -> None:
    clock.set(START)
    # window 07:00-23:00 local: voice hours (08:00-21:00) are the tighter bound
    calls = campaign(
        tmp_path,
        "calls",
        cron="0 5 * * *",  # 02:00 UTC: 22:00 in New York, 03:00 in London
        channels="voice, telegram",
        purpose="marketing",
        start="07:00",
        end="23:00",
        cap=0,
    )
    tg, voice = ("telegram", "marketing"), ("voice", "marketing")
    ids = add_customers(
        app,
        [
            Spec("ru_tg", phone="+79160000001", consents=(tg,)),
            Spec("ru_tg_voice", phone="+79160000002", consents=(tg, voice)),
            Spec("ru_no_chat", phone="+79160000003", chat=False, consents=(voice,)),
            Spec("ru_no_tg_consent", phone="+79160000004", consents=(voice,)),
            Spec("kz", "Asia/Almaty", phone="+77012345678", chat=False, consents=(voice,)),
            Spec("us", "America/New_York", phone="+12125550134", consents=(voice,)),
            Spec("uk", None, phone="+442079460958", chat=False, consents=(voice,)),
            Spec("us_tg_only", "America/New_York", phone="+12125550135", consents=(tg,)),
        ],
    )
    phone = Phone(clock)
    world = World(app, clock, [calls], library, phone)
    world.run(utc("2026-10-26", 0))

    plus_7 = {ids[k] for k in ("ru_tg", "ru_tg_voice", "ru_no_chat", "ru_no_tg_consent", "kz")}
    assert [c for c in phone.calls if c.channel == "voice" and c.customer_id in plus_7] == []
    assert phone.of(ids["ru_tg"]) == [("telegram", utc("2026-10-19", 4))]  # 07:00 MSK
    assert phone.of(ids["ru_tg_voice"]) == [("telegram", utc("2026-10-19", 4))]
    assert phone.of(ids["ru_no_chat"]) == []
    assert phone.of(ids["ru_no_tg_consent"]) == []
    assert phone.of(ids["kz"]) == []
    # +1 and +44: called by voice at 08:00 local, the start of the voice hours
    assert phone.of(ids["us"]) == [("voice", utc("2026-10-19", 12))]  # 08:00 EDT
    assert phone.of(ids["uk"]) == [("voice", utc("2026-10-19", 7))]  # 08:00 BST (by phone)
    # no voice consent: Telegram, whose window (07:00-23:00) is open at 22:00 EDT
    assert phone.of(ids["us_tg_only"]) == [("telegram", utc("2026-10-19", 2))]
    for call in phone.calls:
        if call.channel == "voice":
            zone = "America/New_York" if call.customer_id == ids["us"] else "Europe/London"
            assert time(8) <= local(call.at, zone).time() < time(21)
    rows = rows_of(app)
    for key in ("ru_no_chat", "ru_no_tg_consent", "kz"):
        row = rows[("calls", ids[key])]
        assert (row.state, row.skip_reason, row.attempts) == ("skipped", "manager_task", 0)
    assert all(row.state == "done" for (_, cid), row in rows.items() if cid not in plus_7)


# --- 6. an opt-out mid-campaign ---


def test_an_opt_out_stops_every_campaign_at_once(
    app: App, clock: FixedClock, library: Library, tmp_path: Path
) -> None:
    clock.set(START)
    noon = "0 12 * * mon"  # 09:00 UTC
    campaigns = [
        campaign(tmp_path, "survey1", cron=noon, cap=0),
        campaign(tmp_path, "promo_same", cron=noon, purpose="marketing", cap=0),
        campaign(tmp_path, "promo_late", cron=noon, purpose="marketing", start="16:00", cap=0),
        campaign(tmp_path, "promo_wed", cron="0 12 * * wed", purpose="marketing", cap=0),
        campaign(tmp_path, "calls", cron=noon, channels="voice", cap=0),
    ]
    consents = (("telegram", "marketing"),)
    ids = add_customers(
        app,
        [
            Spec(key, phone=f"+7916111000{i}", consents=consents)
            for i, key in enumerate(["talker", "importer", "control"])
        ],
    )
    talker, importer, control = ids["talker"], ids["importer"], ids["control"]
    imported_at = utc("2026-10-19", 10)  # 13:00 MSK: the import marks the opt-out

    def import_opt_out() -> None:
        with app.sessions.begin() as session:
            session.execute(
                update(Customer).where(Customer.id == importer).values(opted_out_at=imported_at)
            )

    # the talker opts out in the first conversation; the importer does not answer the voice call
    phone = Phone(clock, {talker: ["stop"], (importer, "voice"): ["no_answer"]})
    world = World(app, clock, campaigns, library, phone)
    world.at(imported_at, import_opt_out)
    world.run(utc("2026-11-02", 0))
    monday = utc("2026-10-19", 9)

    # the control customer shows what would have happened: every campaign reaches them (one
    # conversation per customer per tick: Monday's three may take three ticks of that hour)
    assert sorted((channel, hour(at)) for channel, at in phone.of(control)) == [
        ("telegram", monday),
        ("telegram", monday),
        ("telegram", utc("2026-10-19", 13)),  # promo_late: 16:00 MSK
        ("telegram", utc("2026-10-21", 9)),  # promo_wed
        ("voice", monday),
    ]
    rows = rows_of(app)
    # talker: the first conversation ends opted out; nothing after it, in that tick or later
    assert len(phone.of(talker)) == 1, phone.of(talker)
    ((_, stopped_at),) = phone.of(talker)
    assert stopped_at == monday
    with app.sessions() as session:
        opted = session.get(Customer, talker)
        assert opted is not None and opted.opted_out_at == stopped_at
    talker_rows = {c: r for (c, cid), r in rows.items() if cid == talker}
    assert [r.outcome for r in talker_rows.values() if r.state == "done"] == ["opted_out"]
    for campaign_id, row in talker_rows.items():
        if row.state != "done":
            assert (row.state, row.skip_reason, row.attempts) == ("skipped", "opted_out", 0), (
                campaign_id
            )
    # importer: Monday's 09:00 UTC contacts, the voice call unanswered and waiting to retry at
    # 11:00 UTC; the import at 10:00 UTC stops that retry, the 16:00 MSK row and Wednesday's run
    assert sorted((channel, hour(at)) for channel, at in phone.of(importer)) == [
        ("telegram", monday),
        ("telegram", monday),
        ("voice", monday),
    ]
    assert all(at < imported_at for _, at in phone.of(importer))
    importer_rows = {c: r for (c, cid), r in rows.items() if cid == importer}
    # Wednesday's run after the opt-out: not planned at all (the audience leaves opted-out
    # customers out) or planned and skipped
    wednesday = importer_rows.pop("promo_wed", None)
    assert wednesday is None or (wednesday.state, wednesday.skip_reason) == ("skipped", "opted_out")
    assert {c: (r.state, r.skip_reason, r.attempts) for c, r in importer_rows.items()} == {
        "survey1": ("done", None, 1),
        "promo_same": ("done", None, 1),
        "calls": ("skipped", "opted_out", 1),
        "promo_late": ("skipped", "opted_out", 0),
    }
