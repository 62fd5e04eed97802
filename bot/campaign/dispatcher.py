"""The dispatcher: each tick claims a batch of due outreach rows and takes it through the channels.

A tick (`Dispatcher.tick`) works on a batch, with a constant number of statements per batch:

1. **Reconcile.** A row found in `sending` whose lease has expired was being talked to when its
   worker died: whether the customer got the message is unknown. It becomes `failed` with reason
   `interrupted` and is never sent again (design decision 2: a crash never sends twice).
2. **Claim**, in one short transaction: rows in `planned` or `retry` whose `next_attempt_at` is
   empty or due, and `due` rows whose lease expired (claimed but never sent: `sending` is committed
   before any provider call), become `due` under this worker's lease. On PostgreSQL the candidates
   are selected `FOR UPDATE SKIP LOCKED`, so any number of workers can tick at once; on SQLite (one
   writer) the UPDATE's own WHERE on the state guards the claim.
3. **Decide** (`bot.campaign.route`, the pure guard over the campaign's channels) for every row,
   with what `bot.campaign.people` read in bulk at the moment of sending: the customer, the consent
   ledger in force and the contacts by every campaign. One customer gets at most one conversation
   per tick: their rows are taken in campaign priority order, and once one is sent the others are
   released to the next tick, where the contact just made counts against the frequency cap.
4. **Commit the decisions** in one transaction: `Send` rows become `sending` (channel, attempts + 1,
   script version) *before* any channel is called; `Defer` puts a row back to `planned` with
   `next_attempt_at`; a skip or a manager reroute closes the row. Each UPDATE is conditioned on the
   state and on this worker's lease, and a read-back tells which rows really moved: a row another
   worker took over is left alone (`lost`).
5. **Talk**: the channels are called concurrently (at most `concurrency` at once) while a
   background task renews the lease of the rows in flight, so a long call is not reconciled.
6. **Store** every delivery in one transaction: `done` / `in_conversation` with the outcome, the
   conversation and `contacted_at`; `retry` per the campaign's attempts policy; `failed`. The
   customer's `last_contacted_at` (and `opted_out_at` when they opted out) and, for post-order
   feedback, the order's `feedback_requested_at` are written with it.

A crash between 4 and 6 leaves the batch in `sending`: reconciled as `interrupted`, never resent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from bot.app import App
from bot.campaign.attempts import verdict
from bot.campaign.definition import Campaign
from bot.campaign.definition import Channel as ChannelName
from bot.campaign.guard import MANAGER_TASK, Defer, GuardPolicy, Send, Skip
from bot.campaign.loader import LoadedCampaign
from bot.campaign.people import CHUNK, Person, load_people
from bot.campaign.route import route
from bot.campaign.states import (
    DONE,
    DUE,
    FAILED,
    IN_CONVERSATION,
    PLANNED,
    RETRY,
    SENDING,
    SKIPPED,
    can_move,
)
from bot.campaign.tasks import (
    TaskSpec,
    insert_tasks,
    rerouted_contact,
)
from bot.channel.base import Channel, Contact, Delivery, Status
from bot.channel.finish import Finished, conversations_finished
from bot.customers.zone import customer_zone
from bot.db.models import Customer, Order
from bot.db.outreach import Outreach
from bot.dialog.library import Library

logger = logging.getLogger(__name__)

INTERRUPTED = "interrupted"
"""skip_reason of a row found in `sending` with an expired lease: delivery unknown, not resent."""
UNREACHABLE = Status.UNREACHABLE.value
"""skip_reason of a row whose channel could not reach the customer: the next channel is tried."""
LINES_BUSY = "max_simultaneous_calls"
"""Defer reason of a voice row whose campaign already has `max_simultaneous_calls` in flight."""
LINES_BUSY_WAIT = timedelta(seconds=30)
STORE_EVERY = 0.2
"""Seconds between two stores of deliveries while a batch is still in flight."""
STORE_ROWS = 200
OUTREACH = cast(Table, Outreach.__table__)


@dataclass
class TickSummary:
    """What one tick did; `sent` counts channel calls."""

    reconciled: int = 0
    claimed: int = 0
    sent: int = 0
    done: int = 0
    in_conversation: int = 0
    retry: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    released: int = 0
    """Rows put back for the next tick because their customer is being contacted by another."""
    lost: int = 0
    """Rows whose lease another worker took over before this one wrote: left alone."""
    reasons: dict[str, int] = field(default_factory=dict)
    """skip, defer and failure reasons, counted."""

    def count(self, reason: str) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row this worker holds in `due`, as read by the claim."""

    id: int
    campaign_id: str
    customer_id: int
    cycle: str
    channel: str | None
    """The channel of the previous attempt, if any."""
    skip_reason: str | None
    """Why the previous attempt did not finish (`unreachable`, `no_answer`, ...)."""


@dataclass(frozen=True, slots=True)
class Move:
    """One intended state change of a claimed row."""

    row: Claimed
    state: str
    values: Mapping[str, Any]
    task: TaskSpec | None = None
    """A manager task to open with the move (a contact the guard handed to a manager)."""


@dataclass(frozen=True, slots=True)
class Talk:
    """A row committed as `sending`: the conversation to hold."""

    row: Claimed
    campaign: Campaign
    channel: ChannelName
    contact: Contact
    zone: tzinfo
    """The customer's zone: a callback time they said is read in it."""
    attempts: int = 0
    """The row's attempts, this one included (read back after `sending` is committed)."""


@dataclass
class Plan:
    talks: list[Talk] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    """Campaign id -> voice calls in flight (other batches' and this plan's)."""


class Dispatcher:
    """Moves due outreach rows through the guard and the channels; one `tick` at a time."""

    def __init__(
        self,
        app: App,
        campaigns: Mapping[str, LoadedCampaign],
        library: Library,
        channels: Mapping[str, Channel],
        policy: GuardPolicy,
        worker_id: str,
        lease_seconds: int = 60,
        concurrency: int = 50,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, got {lease_seconds}")
        if concurrency <= 0:
            raise ValueError(f"concurrency must be positive, got {concurrency}")
        self.app = app
        self.campaigns = campaigns
        self.library = library
        self.channels = channels
        self.policy = policy
        self.worker_id = worker_id
        self.lease = timedelta(seconds=lease_seconds)
        self.concurrency = concurrency

    async def tick(self, limit: int = 100) -> TickSummary:
        summary = TickSummary()
        summary.reconciled = self._reconcile()
        claimed = self._claim(limit)
        summary.claimed = len(claimed)
        if not claimed:
            return summary
        now = self.app.clock.now()
        with self.app.sessions() as session:
            people = self.people(session, {row.customer_id for row in claimed}, now)
            calls = self._calls_in_flight(session)
        plan = self._plan(claimed, people, now, calls)
        talks = self._commit(plan, now, summary)
        await self._talk(talks, summary)
        return summary

    def people(self, session: Session, customer_ids: set[int], now: datetime) -> dict[int, Person]:
        """What the guard and the scripts get for these customers, read at `now`."""
        company = self.app.settings.company_name
        return load_people(session, customer_ids, self.campaigns, company, now)

    # --- claiming ---

    def _reconcile(self) -> int:
        now = self.app.clock.now()
        assert can_move(SENDING, FAILED)
        with self.app.sessions.begin() as session:
            result = session.execute(
                update(Outreach)
                .where(Outreach.state == SENDING, Outreach.lease_until < now)
                .values(
                    state=FAILED,
                    skip_reason=INTERRUPTED,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            count: int = result.rowcount  # type: ignore[attr-defined]
        if count:
            logger.warning("dispatcher: %d rows left in sending by a crash marked failed", count)
        return count

    def _claimable(self, now: datetime) -> Any:
        return or_(
            and_(
                Outreach.state.in_((PLANNED, RETRY)),
                or_(Outreach.next_attempt_at.is_(None), Outreach.next_attempt_at <= now),
            ),
            and_(Outreach.state == DUE, Outreach.lease_until < now),
        )

    def _candidates(self, session: Session, now: datetime, limit: int) -> list[int]:
        """Up to `limit` claimable ids: expired claims, then rows whose time has come (oldest
        first), then new rows (by id). Three queries, each an index range on (state,
        next_attempt_at), so a claim does not scan the queue's history."""
        postgres = session.get_bind().dialect.name == "postgresql"
        queries = (
            select(Outreach.id)
            .where(Outreach.state == DUE, Outreach.lease_until < now)
            .order_by(Outreach.id),
            select(Outreach.id)
            .where(Outreach.state.in_((PLANNED, RETRY)), Outreach.next_attempt_at <= now)
            .order_by(Outreach.next_attempt_at, Outreach.id),
            select(Outreach.id)
            .where(Outreach.state == PLANNED, Outreach.next_attempt_at.is_(None))
            .order_by(Outreach.id),
        )
        ids: list[int] = []
        for query in queries:
            if len(ids) >= limit:
                break
            query = query.limit(limit - len(ids))
            if postgres:
                query = query.with_for_update(skip_locked=True)
            ids += session.scalars(query)
        return ids

    def _claim(self, limit: int) -> list[Claimed]:
        now = self.app.clock.now()
        until = now + self.lease
        with self.app.sessions.begin() as session:
            ids = self._candidates(session, now, limit)
            if not ids:
                return []
            claimed = session.execute(
                update(Outreach)
                .where(Outreach.id.in_(ids), self._claimable(now))
                .values(state=DUE, lease_owner=self.worker_id, lease_until=until, updated_at=now)
                .returning(
                    Outreach.id,
                    Outreach.campaign_id,
                    Outreach.customer_id,
                    Outreach.cycle,
                    Outreach.channel,
                    Outreach.skip_reason,
                )
                .execution_options(synchronize_session=False)
            )
            return sorted((Claimed(*row) for row in claimed), key=lambda row: row.id)

    # --- deciding ---

    @staticmethod
    def _calls_in_flight(session: Session) -> dict[str, int]:
        """Voice rows being sent or talked to, per campaign (for `max_simultaneous_calls`)."""
        query = (
            select(Outreach.campaign_id, func.count())
            .where(Outreach.channel == "voice", Outreach.state.in_((SENDING, IN_CONVERSATION)))
            .group_by(Outreach.campaign_id)
        )
        return {campaign_id: int(count) for campaign_id, count in session.execute(query)}

    def _plan(
        self,
        claimed: Sequence[Claimed],
        people: Mapping[int, Person],
        now: datetime,
        calls: Mapping[str, int],
    ) -> Plan:
        plan = Plan(calls=dict(calls))
        by_customer: dict[int, list[Claimed]] = defaultdict(list)
        for row in claimed:
            by_customer[row.customer_id].append(row)
        for customer_id, rows in by_customer.items():
            rows.sort(key=lambda row: (self._priority(row.campaign_id), row.id))
            person = people.get(customer_id)
            talking = False
            for row in rows:
                loaded = self.campaigns.get(row.campaign_id)
                if person is None or loaded is None:
                    # A customer deleted, or a campaign removed or renamed since planning.
                    reason = "unknown_customer" if person is None else "unknown_campaign"
                    plan.moves.append(self._closing(row, SKIPPED, reason))
                elif talking:
                    plan.moves.append(Move(row, PLANNED, {"next_attempt_at": now}))
                else:
                    talking = self._plan_row(plan, row, loaded.campaign, person, now)
        return plan

    def _priority(self, campaign_id: str) -> int:
        loaded = self.campaigns.get(campaign_id)
        return loaded.campaign.priority if loaded is not None else 0

    def _plan_row(
        self, plan: Plan, row: Claimed, campaign: Campaign, person: Person, now: datetime
    ) -> bool:
        """Add what to do with `row` to `plan`; True when it is a conversation."""
        skip: list[str] = []
        if row.skip_reason == UNREACHABLE and row.channel in campaign.channels:
            # The previous attempt's channel could not reach the customer: the ones after it.
            for channel in campaign.channels:
                skip.append(channel)
                if channel == row.channel:
                    break
        decision = route(person.recipient, campaign, self.policy, now, self.channels, skip)
        if isinstance(decision, Send) and decision.channel == "voice":
            in_flight = plan.calls.get(campaign.id, 0)
            if in_flight >= campaign.max_simultaneous_calls:
                # Every line of the campaign is busy: the row waits a little, re-checked then.
                values = {"next_attempt_at": now + LINES_BUSY_WAIT, "skip_reason": LINES_BUSY}
                plan.moves.append(Move(row, PLANNED, values))
                return False
            plan.calls[campaign.id] = in_flight + 1
        if isinstance(decision, Send):
            contact = self._contact(campaign, decision.channel, person, row.id)
            if contact is None:
                plan.moves.append(self._closing(row, FAILED, "no_script"))
                return False
            recipient = person.recipient
            zone = customer_zone(recipient.time_zone, recipient.phone, campaign.schedule.time_zone)
            plan.talks.append(Talk(row, campaign, decision.channel, contact, zone))
            return True
        if isinstance(decision, Defer):
            logger.info(
                "dispatcher: row %s deferred until %s: %s",
                row.id,
                decision.until.isoformat(),
                decision.text,
            )
            values = {"next_attempt_at": decision.until, "skip_reason": decision.reason.value}
            plan.moves.append(Move(row, PLANNED, values))
            return False
        if isinstance(decision, Skip):
            plan.moves.append(self._closing(row, SKIPPED, decision.reason.value))
            return False
        assert decision.to == MANAGER_TASK
        # A contact the guard hands to a manager: the row is closed, a manager task opened.
        task = rerouted_contact(
            customer_id=row.customer_id,
            outreach_id=row.id,
            campaign_id=row.campaign_id,
            reason=decision.text,
            now=now,
        )
        plan.moves.append(Move(row, SKIPPED, {"skip_reason": MANAGER_TASK}, task))
        return False

    def _contact(
        self, campaign: Campaign, channel: ChannelName, person: Person, outreach_id: int
    ) -> Contact | None:
        default = self.app.settings.default_locale
        locale = person.locale or default
        key = (campaign.script, locale)
        if key not in self.library.scripts:
            key = (campaign.script, default)
        script = self.library.scripts.get(key)
        pack = self.library.packs.get(key[1])
        if script is None or pack is None:
            return None
        recipient = person.recipient
        address = str(recipient.telegram_chat_id) if channel == "telegram" else recipient.phone
        return Contact(
            recipient.customer_id, key[1], address or "", script, pack, person.context, outreach_id
        )

    @staticmethod
    def _closing(row: Claimed, state: str, reason: str) -> Move:
        return Move(row, state, {"skip_reason": reason})

    # --- writing ---

    def _apply(self, session: Session, current: str, moves: Sequence[Move], now: datetime) -> None:
        """UPDATE each row from `current` to its move's state, if this worker still holds it."""
        by_shape: dict[tuple[str, tuple[str, ...]], list[Move]] = defaultdict(list)
        for move in moves:
            assert can_move(current, move.state), f"outreach cannot move {current} -> {move.state}"
            by_shape[(move.state, tuple(sorted(move.values)))].append(move)
        for (state, names), group in by_shape.items():
            values: dict[str, Any] = {"state": state, "updated_at": now}
            values.update({name: bindparam(f"b_{name}") for name in names})
            if state == IN_CONVERSATION and "conversation" in names:
                # A channel may have stored the conversation already (a call answered and
                # talking before this batch is stored): never overwrite its progress.
                column = OUTREACH.c.conversation
                values["conversation"] = func.coalesce(
                    column, bindparam("b_conversation", type_=column.type)
                )
            if state not in (DUE, SENDING):
                values.update(lease_owner=None, lease_until=None)
            statement = (
                update(OUTREACH)
                .where(
                    OUTREACH.c.id == bindparam("b_id"),
                    OUTREACH.c.state == current,
                    OUTREACH.c.lease_owner == self.worker_id,
                )
                .values(values)
            )
            params = [
                {"b_id": move.row.id, **{f"b_{name}": move.values[name] for name in names}}
                for move in group
            ]
            session.connection().execute(statement, params)

    def _landed(self, session: Session, moves: Sequence[Move]) -> dict[int, int]:
        """Row id -> attempts, for the `moves` whose row is now in the move's state (and leased to
        this worker, when the state is leased)."""
        wanted = {move.row.id: move.state for move in moves}
        landed: dict[int, int] = {}
        ids = list(wanted)
        for start in range(0, len(ids), CHUNK):
            for row_id, state, owner, attempts in session.execute(
                select(Outreach.id, Outreach.state, Outreach.lease_owner, Outreach.attempts).where(
                    Outreach.id.in_(ids[start : start + CHUNK])
                )
            ):
                leased = state in (DUE, SENDING)
                if state == wanted[row_id] and (not leased or owner == self.worker_id):
                    landed[row_id] = attempts
        return landed

    def _commit(self, plan: Plan, now: datetime, summary: TickSummary) -> list[Talk]:
        """Commit every decision in one transaction; the talks whose rows are now `sending`."""
        sending = [
            Move(
                talk.row,
                SENDING,
                {
                    "channel": talk.channel,
                    "script_version": talk.contact.script.version,
                    "lease_until": now + self.lease,
                    "next_attempt_at": None,
                },
            )
            for talk in plan.talks
        ]
        moves = [*plan.moves, *sending]
        with self.app.sessions.begin() as session:
            self._apply(session, DUE, moves, now)
            if sending:
                session.execute(
                    update(Outreach)
                    .where(
                        Outreach.id.in_([talk.row.id for talk in plan.talks]),
                        Outreach.state == SENDING,
                        Outreach.lease_owner == self.worker_id,
                    )
                    .values(attempts=Outreach.attempts + 1)
                    .execution_options(synchronize_session=False)
                )
            landed = self._landed(session, moves)
            tasks = [m.task for m in plan.moves if m.task is not None and m.row.id in landed]
            insert_tasks(session, tasks, now)
        for move in plan.moves:
            if move.row.id not in landed:
                summary.lost += 1
            elif move.state == PLANNED and "skip_reason" not in move.values:
                summary.released += 1
            elif move.state == PLANNED:
                summary.deferred += 1
                summary.count(str(move.values["skip_reason"]))
            else:
                summary.skipped += move.state == SKIPPED
                summary.failed += move.state == FAILED
                summary.count(str(move.values["skip_reason"]))
        talks = [
            replace(talk, attempts=landed[talk.row.id])
            for talk in plan.talks
            if talk.row.id in landed
        ]
        summary.lost += len(plan.talks) - len(talks)
        return talks

    # --- talking ---

    async def _talk(self, talks: Sequence[Talk], summary: TickSummary) -> None:
        """Call the channels concurrently; store deliveries as they come, in small groups.

        A group is stored once `STORE_EVERY` seconds have passed since the last one, or it has
        `STORE_ROWS` rows, or nothing is left in flight. So a slow channel's early results are
        in the database while later calls are still waiting (a call answered before its batch is
        over finds its conversation), and a fast channel still writes once per batch.
        """
        if not talks:
            return
        gate = asyncio.Semaphore(self.concurrency)

        async def one(talk: Talk) -> Delivery:
            async with gate:
                try:
                    return await self.channels[talk.channel].start_conversation(talk.contact)
                except Exception as error:  # a channel bug must not lose the row: retried
                    logger.exception(
                        "dispatcher: channel %s raised for row %s", talk.channel, talk.row.id
                    )
                    return Delivery.failed(f"{type(error).__name__}: {error}", retryable=True)

        renewal = asyncio.create_task(self._renew_leases([talk.row.id for talk in talks]))
        flying = {asyncio.ensure_future(one(talk)): talk for talk in talks}
        ready: list[tuple[Talk, Delivery]] = []
        loop = asyncio.get_running_loop()
        stored_at = loop.time()
        try:
            while flying:
                done, _ = await asyncio.wait(
                    flying, timeout=STORE_EVERY, return_when=asyncio.FIRST_COMPLETED
                )
                ready += [(flying.pop(task), task.result()) for task in done]
                due = loop.time() - stored_at >= STORE_EVERY or len(ready) >= STORE_ROWS
                if ready and (due or not flying):
                    self._store([t for t, _ in ready], [d for _, d in ready], summary)
                    ready, stored_at = [], loop.time()
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
            for task in flying:
                task.cancel()

    async def _renew_leases(self, ids: list[int]) -> None:
        """Every third of a lease, push the lease of this batch's `sending` rows forward."""
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            now = self.app.clock.now()
            with self.app.sessions.begin() as session:
                session.execute(
                    update(Outreach)
                    .where(
                        Outreach.id.in_(ids),
                        Outreach.state == SENDING,
                        Outreach.lease_owner == self.worker_id,
                    )
                    .values(lease_until=now + self.lease)
                    .execution_options(synchronize_session=False)
                )

    # --- storing ---

    def _store(
        self, talks: Sequence[Talk], deliveries: Sequence[Delivery], summary: TickSummary
    ) -> None:
        now = self.app.clock.now()
        summary.sent += len(talks)
        moves = [
            self._outcome_move(talk, delivery, now)
            for talk, delivery in zip(talks, deliveries, strict=True)
        ]
        with self.app.sessions.begin() as session:
            self._apply(session, SENDING, moves, now)
            landed = self._landed(session, moves)
            contacted = [
                (talk, delivery)
                for talk, delivery, move in zip(talks, deliveries, moves, strict=True)
                if move.row.id in landed and move.state in (DONE, IN_CONVERSATION)
            ]
            self._contacted(session, contacted, now)
            conversations_finished(session, self._finished(contacted), now)
        for talk, delivery, move in zip(talks, deliveries, moves, strict=True):
            if move.row.id not in landed:
                summary.lost += 1
            elif move.state == DONE:
                summary.done += 1
            elif move.state == IN_CONVERSATION:
                summary.in_conversation += 1
            else:
                reason = str(move.values["skip_reason"])
                if delivery.reason:
                    logger.info(
                        "dispatcher: row %s %s: %s (%s)",
                        talk.row.id,
                        move.state,
                        reason,
                        delivery.reason,
                    )
                summary.retry += move.state == RETRY
                summary.failed += move.state == FAILED
                summary.count(reason)

    def _outcome_move(self, talk: Talk, delivery: Delivery, now: datetime) -> Move:
        conversation = delivery.state.to_dict() if delivery.state is not None else None
        if delivery.status in (Status.DELIVERED, Status.IN_CONVERSATION):
            state = DONE if delivery.status == Status.DELIVERED else IN_CONVERSATION
            values = {
                "outcome": delivery.outcome,
                "conversation": conversation,
                "contacted_at": now,
                "skip_reason": None,
            }
            return Move(talk.row, state, values)
        reason = delivery.status.value
        base = {"conversation": conversation, "skip_reason": reason}
        if delivery.status == Status.DEFERRED:
            return Move(talk.row, RETRY, {**base, "next_attempt_at": now, "contacted_at": None})
        if delivery.status == Status.UNREACHABLE:
            channels = talk.campaign.channels
            if channels.index(talk.channel) + 1 < len(channels):
                return Move(talk.row, RETRY, {**base, "next_attempt_at": now})
            return Move(talk.row, FAILED, base)
        decided = verdict(
            talk.campaign, delivery.status, talk.attempts, now, retryable=delivery.retryable
        )
        if decided.retry_at is not None:
            return Move(talk.row, RETRY, {**base, "next_attempt_at": decided.retry_at})
        return Move(talk.row, FAILED, base)

    @staticmethod
    def _finished(contacted: Sequence[tuple[Talk, Delivery]]) -> list[Finished]:
        """The conversations that ended within their first delivery."""
        return [
            Finished(
                talk.row.id,
                talk.row.customer_id,
                talk.row.campaign_id,
                delivery.state,
                delivery.outputs,
                talk.zone,
            )
            for talk, delivery in contacted
            if delivery.state is not None and delivery.finished
        ]

    def _contacted(
        self, session: Session, contacted: Sequence[tuple[Talk, Delivery]], now: datetime
    ) -> None:
        """The customer's `last_contacted_at` and the order's feedback request."""
        if not contacted:
            return
        customer_ids = sorted({talk.row.customer_id for talk, _ in contacted})
        session.execute(
            update(Customer)
            .where(Customer.id.in_(customer_ids))
            .values(last_contacted_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        # Post-order feedback: the order is the row's cycle (external ids are unique).
        feedback = sorted(
            talk.row.cycle for talk, _ in contacted if talk.campaign.audience.kind == "post-order"
        )
        if feedback:
            session.execute(
                update(Order)
                .where(
                    Order.external_id.in_(feedback),
                    Order.customer_id.in_(customer_ids),
                    Order.feedback_requested_at.is_(None),
                )
                .values(feedback_requested_at=now)
                .execution_options(synchronize_session=False)
            )
