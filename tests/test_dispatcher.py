"""The dispatcher: due rows go through the real guard and a channel once, crash-safe."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.app import App
from bot.audience.rhythm import refresh_rhythm
from bot.campaign.dispatcher import INTERRUPTED, Dispatcher, TickSummary
from bot.campaign.guard import GuardPolicy
from bot.campaign.loader import LoadedCampaign, load_campaign
from bot.campaign.planner import plan_run
from bot.channel.base import Contact, Delivery
from bot.channel.simulated import Persona, SimulatedChannel
from bot.clock import FixedClock
from bot.db.models import Consent, Customer, Order
from bot.db.outreach import Outreach
from bot.db.tasks import ManagerTask
from bot.dialog.library import Library, load_library
from tests.audience_factory import T0

DIALOGS = Path(__file__).resolve().parent.parent / "dialogs"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
"""15:00 in Moscow, inside the 10:00-20:00 window."""
CUSTOMERS = 50

answers = Persona("answers", yes_no={"yes": 0.7, "no": 0.3}, scale=(0.8, 0.2))
never = Persona("never", no_answer=1.0)

CAMPAIGN = """\
id: {id}
title: Test campaign
audience:
  kind: post-order
  params: {{min_days: 2, max_days: 7, contacted_within: 14}}
script: post_order_feedback
channels: [{channels}]
purpose: {purpose}
schedule:
  cron: "0 12 * * *"
  time_zone: Europe/Moscow
window:
  from: "10:00"
  to: "20:00"
attempts:
  no_answer: {{delay_minutes: 120, max: 2}}
holdout_share: {holdout}
"""


@pytest.fixture(scope="module")
def library() -> Library:
    loaded = load_library(DIALOGS)
    assert not loaded.errors
    return loaded


class Recording:
    """A channel that records every contact it is given and lets a simulated one talk."""

    def __init__(self, name: str, persona: Persona = answers) -> None:
        self.name = name
        self.inner = SimulatedChannel(persona, seed=3, now=NOW, name=name)
        self.contacts: list[Contact] = []

    async def start_conversation(self, contact: Contact) -> Delivery:
        self.contacts.append(contact)
        return await self.inner.start_conversation(contact)

    @property
    def customers(self) -> list[int]:
        return [c.customer_id for c in self.contacts]


def campaign(
    tmp_path: Path,
    id: str = "feedback",
    channels: str = "telegram, voice",
    purpose: str = "survey",
    holdout: float = 0.0,
) -> LoadedCampaign:
    path = tmp_path / f"{id}.yaml"
    text = CAMPAIGN.format(id=id, channels=channels, purpose=purpose, holdout=holdout)
    path.write_text(text, encoding="utf-8")
    return load_campaign(path)


def shop(app: App, count: int = CUSTOMERS, *, telegram: bool = True) -> list[int]:
    """`count` Moscow customers with a phone, a Telegram chat (optional), survey consent and an
    order delivered three days before NOW."""
    with app.sessions.begin() as session:
        customers = [
            Customer(
                external_id=f"c{i}",
                name=f"Customer {i}",
                first_name=f"Name{i}",
                phone=f"+7916{i:07d}",
                telegram_chat_id=10_000 + i if telegram else None,
                time_zone="Europe/Moscow",
                locale="ru",
                tags=["demo"] if i % 10 == 0 else [],
                created_at=T0,
                updated_at=T0,
            )
            for i in range(count)
        ]
        session.add_all(customers)
        session.flush()
        for i, customer in enumerate(customers):
            session.add(
                Order(
                    external_id=f"order{i}",
                    customer_id=customer.id,
                    placed_at=NOW - timedelta(days=5),
                    delivered_at=NOW - timedelta(days=3),
                    currency="RUB",
                    status="delivered",
                    amount_minor=1990_00,
                    items=[],
                )
            )
            session.add(
                Consent(
                    customer_id=customer.id,
                    channel="telegram",
                    purpose="survey",
                    granted=True,
                    at=T0,
                    source="checkout form",
                )
            )
        ids = [c.id for c in customers]
    refresh_rhythm(app.engine)
    return ids


def dispatcher(
    app: App, library: Library, loaded: LoadedCampaign, **channels: Recording
) -> Dispatcher:
    return Dispatcher(
        app,
        {loaded.campaign.id: loaded},
        library,
        channels or {"telegram": Recording("telegram"), "voice": Recording("voice")},
        GuardPolicy(),
        worker_id="test-worker",
    )


def tick(worker: Dispatcher) -> TickSummary:
    return asyncio.run(worker.tick(limit=1000))


def rows(app: App) -> dict[int, Outreach]:
    with app.sessions() as session:
        return {r.customer_id: r for r in session.scalars(select(Outreach))}


def test_one_tick_sends_each_eligible_row_once(app: App, library: Library, tmp_path: Path) -> None:
    ids = shop(app)
    loaded = campaign(tmp_path, holdout=0.2)
    run = plan_run(app, loaded, NOW)
    assert run.planned + run.held_out == CUSTOMERS and run.held_out > 0
    telegram, voice = Recording("telegram"), Recording("voice")
    worker = dispatcher(app, library, loaded, telegram=telegram, voice=voice)

    first = tick(worker)

    planned = [i for i, r in rows(app).items() if not r.holdout]
    held = [i for i, r in rows(app).items() if r.holdout]
    assert sorted(telegram.customers) == sorted(planned)
    assert voice.contacts == []
    assert first.claimed == first.sent == run.planned
    assert first.done + first.in_conversation + first.retry + first.failed == run.planned
    after = rows(app)
    for customer_id in planned:
        row = after[customer_id]
        assert row.state == "done" and row.channel == "telegram" and row.attempts == 1
        assert row.outcome is not None and row.conversation is not None
        assert row.script_version == library.script("post_order_feedback", "ru").version
        assert row.lease_owner is None
    for customer_id in held:
        assert (after[customer_id].state, after[customer_id].skip_reason) == ("skipped", "holdout")
    contact = telegram.contacts[0]
    assert contact.address == str(10_000 + ids.index(contact.customer_id))
    assert contact.context["company_name"] == app.settings.company_name
    assert contact.context["first_name"] == f"Name{ids.index(contact.customer_id)}"
    with app.sessions() as session:
        customers = {c.id: c for c in session.scalars(select(Customer))}
        orders = {o.customer_id: o for o in session.scalars(select(Order))}
    assert all(customers[i].last_contacted_at == NOW for i in planned)
    assert all(orders[i].feedback_requested_at == NOW for i in planned)
    assert all(customers[i].last_contacted_at is None for i in held)
    opted = [i for i in planned if after[i].outcome == "opted_out"]
    assert all(customers[i].opted_out_at == NOW for i in opted)

    second = tick(worker)

    assert (second.claimed, second.sent) == (0, 0)
    assert len(telegram.contacts) == run.planned
    assert {i: (r.state, r.updated_at) for i, r in rows(app).items()} == {
        i: (r.state, r.updated_at) for i, r in after.items()
    }


def test_an_opted_out_customer_is_skipped_with_the_reason(
    app: App, library: Library, tmp_path: Path, clock: FixedClock
) -> None:
    ids = shop(app, 3)
    loaded = campaign(tmp_path)
    plan_run(app, loaded, NOW)
    with app.sessions.begin() as session:
        session.execute(
            update(Customer).where(Customer.id == ids[1]).values(opted_out_at=NOW - timedelta(1))
        )
    telegram = Recording("telegram")
    summary = tick(dispatcher(app, library, loaded, telegram=telegram, voice=Recording("voice")))

    assert ids[1] not in telegram.customers and len(telegram.contacts) == 2
    row = rows(app)[ids[1]]
    assert (row.state, row.skip_reason, row.attempts) == ("skipped", "opted_out", 0)
    assert summary.reasons == {"opted_out": 1}


def test_marketing_by_voice_to_plus_7_goes_by_telegram_or_to_a_manager(
    app: App, library: Library, tmp_path: Path
) -> None:
    ids = shop(app, 4)
    with app.sessions.begin() as session:
        for customer_id in ids[:2]:  # marketing consent in Telegram
            session.add(
                Consent(
                    customer_id=customer_id,
                    channel="telegram",
                    purpose="marketing",
                    granted=True,
                    at=T0,
                    source="newsletter opt-in",
                )
            )
        # no Telegram chat: nowhere to reroute to
        session.execute(update(Customer).where(Customer.id == ids[3]).values(telegram_chat_id=None))
    loaded = campaign(tmp_path, id="promo", channels="voice, telegram", purpose="marketing")
    plan_run(app, loaded, NOW)
    telegram, voice = Recording("telegram"), Recording("voice")

    tick(dispatcher(app, library, loaded, telegram=telegram, voice=voice))

    assert voice.contacts == []
    assert sorted(telegram.customers) == sorted(ids[:2])
    after = rows(app)
    assert {after[i].channel for i in ids[:2]} == {"telegram"}
    assert {after[i].state for i in ids[:2]} == {"done"}
    # ids[2]: a chat but no marketing consent; ids[3]: no chat -> a human calls instead
    for customer_id in ids[2:]:
        row = after[customer_id]
        assert (row.state, row.skip_reason, row.attempts) == ("skipped", "manager_task", 0)
    with app.sessions() as session:
        tasks = session.execute(
            select(
                ManagerTask.customer_id, ManagerTask.kind, ManagerTask.due_at, ManagerTask.note
            ).where(ManagerTask.kind == "contact")
        ).all()
    assert sorted((t.customer_id, t.kind, t.due_at) for t in tasks) == [
        (customer_id, "contact", NOW) for customer_id in sorted(ids[2:])
    ]
    assert all("38-FZ" in t.note for t in tasks)


def test_a_row_left_sending_by_a_crash_is_failed_not_sent_again(
    app: App, library: Library, tmp_path: Path
) -> None:
    ids = shop(app, 3)
    loaded = campaign(tmp_path)
    plan_run(app, loaded, NOW)
    with app.sessions.begin() as session:
        session.execute(
            update(Outreach)
            .where(Outreach.customer_id == ids[0])
            .values(
                state="sending",
                channel="telegram",
                attempts=1,
                lease_owner="dead-worker",
                lease_until=NOW - timedelta(seconds=1),
            )
        )
        session.execute(  # still within its lease: another worker is talking right now
            update(Outreach)
            .where(Outreach.customer_id == ids[1])
            .values(
                state="sending",
                channel="telegram",
                attempts=1,
                lease_owner="live-worker",
                lease_until=NOW + timedelta(seconds=30),
            )
        )
    telegram = Recording("telegram")
    summary = tick(dispatcher(app, library, loaded, telegram=telegram, voice=Recording("voice")))

    assert telegram.customers == [ids[2]]
    assert summary.reconciled == 1
    after = rows(app)
    assert (after[ids[0]].state, after[ids[0]].skip_reason, after[ids[0]].attempts) == (
        "failed",
        INTERRUPTED,
        1,
    )
    assert (after[ids[1]].state, after[ids[1]].lease_owner) == ("sending", "live-worker")


def test_a_claimed_row_whose_worker_died_before_sending_is_claimed_again(
    app: App, library: Library, tmp_path: Path
) -> None:
    ids = shop(app, 1)
    loaded = campaign(tmp_path)
    plan_run(app, loaded, NOW)
    with app.sessions.begin() as session:
        session.execute(
            update(Outreach).values(
                state="due", lease_owner="dead-worker", lease_until=NOW - timedelta(seconds=1)
            )
        )
    telegram = Recording("telegram")
    tick(dispatcher(app, library, loaded, telegram=telegram, voice=Recording("voice")))
    assert telegram.customers == ids
    assert rows(app)[ids[0]].state == "done"


def test_no_answer_is_retried_per_policy_then_failed(
    app: App, library: Library, tmp_path: Path, clock: FixedClock
) -> None:
    ids = shop(app, 2)
    loaded = campaign(tmp_path)
    plan_run(app, loaded, NOW)
    telegram = Recording("telegram", never)
    worker = dispatcher(app, library, loaded, telegram=telegram, voice=Recording("voice"))

    first = tick(worker)
    assert first.retry == 2
    row = rows(app)[ids[0]]
    assert (row.state, row.attempts, row.skip_reason) == ("retry", 1, "no_answer")
    assert row.next_attempt_at == NOW + timedelta(minutes=120)
    assert tick(worker).sent == 0  # not due yet

    clock.advance(timedelta(minutes=120))
    assert tick(worker).retry == 2
    row = rows(app)[ids[0]]
    assert (row.state, row.attempts) == ("retry", 2)
    assert row.next_attempt_at == NOW + timedelta(minutes=240)

    clock.advance(timedelta(minutes=120))
    third = tick(worker)
    assert (third.failed, third.reasons) == (2, {"no_answer": 2})
    row = rows(app)[ids[0]]
    assert (row.state, row.attempts, row.next_attempt_at) == ("failed", 3, None)

    clock.advance(timedelta(days=1))
    assert tick(worker).sent == 0
    assert len(telegram.contacts) == 6  # three attempts each, never more


def test_outside_the_local_window_rows_wait_for_the_next_opening(
    app: App, library: Library, tmp_path: Path, clock: FixedClock
) -> None:
    shop(app, 3)
    loaded = campaign(tmp_path)
    plan_run(app, loaded, NOW)
    clock.set(datetime(2026, 11, 22, 20, 0, tzinfo=UTC))  # 23:00 in Moscow
    telegram = Recording("telegram")
    worker = dispatcher(app, library, loaded, telegram=telegram, voice=Recording("voice"))

    summary = tick(worker)

    assert (summary.deferred, summary.sent) == (3, 0)
    assert summary.reasons == {"outside_window": 3}
    opening = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 10:00 in Moscow
    for row in rows(app).values():
        assert (row.state, row.next_attempt_at, row.attempts) == ("planned", opening, 0)
        assert row.lease_owner is None
    assert tick(worker).claimed == 0

    clock.set(opening)
    assert tick(worker).done == 3
    assert len(telegram.contacts) == 3


class Interleaving(Recording):
    """During its first conversation, another worker ticks: as if two processes ran at once."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.other: Dispatcher | None = None
        self.other_summary: TickSummary | None = None

    async def start_conversation(self, contact: Contact) -> Delivery:
        if self.other is not None and self.other_summary is None:
            self.other_summary = await self.other.tick(limit=1000)
        return await super().start_conversation(contact)


def test_two_workers_never_take_the_same_row(app: App, library: Library, tmp_path: Path) -> None:
    ids = shop(app, 6)
    loaded = campaign(tmp_path)
    plan_run(app, loaded, NOW)
    telegram = Interleaving("telegram")
    channels = {"telegram": telegram, "voice": Recording("voice")}
    first = Dispatcher(app, {"feedback": loaded}, library, channels, GuardPolicy(), "first")
    telegram.other = Dispatcher(
        app, {"feedback": loaded}, library, channels, GuardPolicy(), "second"
    )

    mine = asyncio.run(first.tick(limit=2))

    assert mine.claimed == 2 and telegram.other_summary is not None
    assert telegram.other_summary.claimed == 4
    assert sorted(telegram.customers) == sorted(ids)
    assert {r.state for r in rows(app).values()} == {"done"}


class SlowCalls:
    """A voice channel whose calls take a while: records how many are in flight at once."""

    name = "voice"

    def __init__(self) -> None:
        self.inner = SimulatedChannel(answers, seed=3, now=NOW, name="voice")
        self.in_flight = 0
        self.most = 0
        self.calls = 0

    async def start_conversation(self, contact: Contact) -> Delivery:
        self.in_flight += 1
        self.calls += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            return await self.inner.start_conversation(contact)
        finally:
            self.in_flight -= 1


def test_voice_calls_never_exceed_the_campaigns_simultaneous_calls(
    app: App, library: Library, tmp_path: Path
) -> None:
    ids = shop(app, 10, telegram=False)
    path = tmp_path / "calls.yaml"
    text = CAMPAIGN.format(id="calls", channels="voice", purpose="survey", holdout=0.0)
    path.write_text(text + "max_simultaneous_calls: 3\n", encoding="utf-8")
    loaded = load_campaign(path)
    plan_run(app, loaded, NOW)
    # One call of this campaign is already in flight (another worker, or a call still going on).
    with app.sessions.begin() as session:
        session.execute(
            update(Outreach)
            .where(Outreach.customer_id == ids[0])
            .values(state="in_conversation", channel="voice", contacted_at=NOW)
        )
    phone = SlowCalls()
    worker = Dispatcher(app, {"calls": loaded}, library, {"voice": phone}, GuardPolicy(), "w")

    first = tick(worker)

    assert (phone.calls, phone.most) == (2, 2)  # 3 lines, 1 busy
    assert first.reasons == {"max_simultaneous_calls": 7}
    waiting = [r for r in rows(app).values() if r.state == "planned"]
    assert len(waiting) == 7
    assert {r.next_attempt_at for r in waiting} == {NOW + timedelta(seconds=30)}
    # Thirty seconds later the lines are free again (the two calls ended): two more calls.
    assert isinstance(app.clock, FixedClock)
    app.clock.advance(timedelta(seconds=30))
    tick(worker)
    assert (phone.calls, phone.most) == (4, 2)
