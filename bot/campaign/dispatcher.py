"""The dispatcher: one tick claims due outreach rows and moves each through the guard and a channel.

A tick (`Dispatcher.tick`) does, in order:

1. **Reconcile.** A row found in `sending` whose lease has expired was being talked to when its
   worker died: whether the customer got the message is unknown. It becomes `failed` with reason
   `interrupted` and is never sent again (design decision 2: a crash never sends twice). For the
   synchronous channels we have (the simulated one, voice) this is the only safe answer; an
   asynchronous channel that can ask its provider what happened may refine it later.
2. **Claim**, in one short transaction: rows in `planned` or `retry` whose `next_attempt_at` is
   empty or due, and `due` rows whose lease expired (claimed but never sent: `sending` is committed
   before any provider call), become `due` with `lease_owner` and `lease_until`. On PostgreSQL the
   candidates are selected `FOR UPDATE SKIP LOCKED`, so any number of workers can tick at once; on
   SQLite (one writer) the UPDATE's own WHERE on the state guards the claim.
3. **Decide and send**, row by row: the guard (`bot.campaign.guard.decide`) gets the customer, the
   consent ledger's entries in force and the customer's other contacts, at the moment of sending.
   `Send` commits the row as `sending` (channel, attempts + 1, script version) *before* the channel
   is called, then stores the `Delivery`; `Defer` puts it back to `planned` with
   `next_attempt_at`; `Skip` tries the next channel of the campaign (an opt-out or a flag closes
   the row at once); `Reroute("telegram")` decides again for Telegram; `Reroute("manager_task")`
   closes the row as `skipped` with reason `manager_task` (manager tasks are not modelled yet).

Every state change is an UPDATE conditioned on the state the dispatcher read and on its lease,
checked with `can_move`: a final state (`done`, `failed`, `skipped`) is never overwritten, and a row
another worker took over is left alone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from bot.app import App
from bot.campaign.definition import Campaign, Retry
from bot.campaign.definition import Channel as ChannelName
from bot.campaign.guard import (
    MANAGER_TASK,
    ConsentEntry,
    ContactRecord,
    Decision,
    Defer,
    GuardPolicy,
    Reason,
    Recipient,
    Reroute,
    Send,
    SendRequest,
    Skip,
    consents_in_force,
    decide,
)
from bot.campaign.loader import LoadedCampaign
from bot.campaign.states import (
    DONE,
    DUE,
    FAILED,
    FINAL,
    IN_CONVERSATION,
    PLANNED,
    RETRY,
    SENDING,
    SKIPPED,
    can_move,
)
from bot.campaign.window import SendingWindow
from bot.channel.base import Channel, Contact, Delivery, Status
from bot.db.models import VOID_ORDER_STATUSES, Consent, Customer, Order
from bot.db.outreach import Outreach
from bot.dialog.context import Plain
from bot.dialog.library import Library

logger = logging.getLogger(__name__)

INTERRUPTED = "interrupted"
"""skip_reason of a row found in `sending` with an expired lease: delivery unknown, not resent."""
WEEKDAY_NUMBERS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
CONTACTED = (DONE, IN_CONVERSATION)
"""States of rows that count as a contact for the frequency cap."""


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
    lost: int = 0
    """Rows whose lease another worker took over before this one wrote: left alone."""
    reasons: dict[str, int] = field(default_factory=dict)
    """skip, defer and failure reasons, counted."""

    def count(self, reason: str) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


def sending_window(campaign: Campaign) -> SendingWindow:
    window = campaign.window
    return SendingWindow(
        weekdays=frozenset(WEEKDAY_NUMBERS[day] for day in window.weekdays),
        start=window.start,
        end=window.end,
        holidays=frozenset(window.holidays),
        skip_holidays=window.skip_holidays,
    )


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
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, got {lease_seconds}")
        self.app = app
        self.campaigns = campaigns
        self.library = library
        self.channels = channels
        self.policy = policy
        self.worker_id = worker_id
        self.lease = timedelta(seconds=lease_seconds)

    async def tick(self, limit: int = 100) -> TickSummary:
        summary = TickSummary()
        summary.reconciled = self._reconcile()
        claimed = self._claim(limit)
        summary.claimed = len(claimed)
        for row_id in claimed:
            await self._dispatch(row_id, summary)
        return summary

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

    def _claim(self, limit: int) -> list[int]:
        now = self.app.clock.now()
        until = now + self.lease
        with self.app.sessions.begin() as session:
            query = (
                select(Outreach.id)
                .where(self._claimable(now))
                .order_by(Outreach.next_attempt_at, Outreach.id)
                .limit(limit)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = list(session.scalars(query))
            if not ids:
                return []
            session.execute(
                update(Outreach)
                .where(Outreach.id.in_(ids), self._claimable(now))
                .values(state=DUE, lease_owner=self.worker_id, lease_until=until, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            return list(
                session.scalars(
                    select(Outreach.id)
                    .where(
                        Outreach.id.in_(ids),
                        Outreach.state == DUE,
                        Outreach.lease_owner == self.worker_id,
                        Outreach.lease_until == until,
                    )
                    .order_by(Outreach.id)
                )
            )

    def _move(self, row_id: int, current: str, target: str, **values: Any) -> bool:
        """Move a row this worker holds from `current` to `target`; False when it is not so."""
        assert current not in FINAL, f"a final state ({current}) is never changed"
        assert can_move(current, target), f"outreach cannot move {current} -> {target}"
        now = self.app.clock.now()
        with self.app.sessions.begin() as session:
            result = session.execute(
                update(Outreach)
                .where(
                    Outreach.id == row_id,
                    Outreach.state == current,
                    Outreach.lease_owner == self.worker_id,
                )
                .values(state=target, updated_at=now, **values)
                .execution_options(synchronize_session=False)
            )
            moved: int = result.rowcount  # type: ignore[attr-defined]
        return moved == 1

    # --- one row ---

    async def _dispatch(self, row_id: int, summary: TickSummary) -> None:
        now = self.app.clock.now()
        with self.app.sessions() as session:
            row = session.get(Outreach, row_id)
            assert row is not None
            customer = session.get(Customer, row.customer_id)
            assert customer is not None
            loaded = self.campaigns.get(row.campaign_id)
            if loaded is None:
                # A campaign removed or renamed since planning: nothing to send with.
                self._close(row_id, SKIPPED, "unknown_campaign", summary)
                return
            campaign = loaded.campaign
            recipient = self._recipient(session, customer, row_id)
            context = self._context(session, customer)
        decision = self._decide(recipient, campaign, now)
        if isinstance(decision, Send):
            await self._send(row_id, customer, campaign, decision.channel, context, summary)
            return
        if isinstance(decision, Defer):
            if self._move(
                row_id,
                DUE,
                PLANNED,
                next_attempt_at=decision.until,
                lease_owner=None,
                lease_until=None,
                skip_reason=None,
            ):
                summary.deferred += 1
                summary.count(decision.reason.value)
                logger.info(
                    "dispatcher: row %s deferred until %s: %s",
                    row_id,
                    decision.until.isoformat(),
                    decision.text,
                )
            else:
                summary.lost += 1
            return
        reason = decision.reason.value if isinstance(decision, Skip) else MANAGER_TASK
        # Manager tasks are not modelled yet: a row the guard hands to a manager is closed as
        # `skipped`/manager_task so the report can count it.
        self._close(row_id, SKIPPED, reason, summary)

    def _decide(self, recipient: Recipient, campaign: Campaign, now: datetime) -> Decision:
        """The guard over the campaign's channels in order; Skip moves on, Reroute decides again."""
        order: tuple[ChannelName, ...] = campaign.channels
        tried: set[str] = set()
        last: Decision | None = None
        queue: list[ChannelName] = list(order)
        while queue:
            channel = queue.pop(0)
            if channel in tried:
                continue
            tried.add(channel)
            request = SendRequest(
                campaign_id=campaign.id,
                purpose=campaign.purpose,
                channel=channel,
                channels_in_order=order,
                window=sending_window(campaign),
                campaign_time_zone=campaign.schedule.time_zone,
                cap_days=campaign.frequency_cap.days,
                cap_exempt=campaign.frequency_cap.exempt,
            )
            decision = decide(recipient, request, self.policy, now)
            if isinstance(decision, Send) and channel not in self.channels:
                last = Skip(Reason.NO_ADDRESS, f"no {channel} channel is configured")
                continue
            if isinstance(decision, Send | Defer):
                return decision
            if isinstance(decision, Skip):
                if decision.reason in (Reason.OPTED_OUT, Reason.FLAGGED):
                    return decision
                last = decision
                continue
            if decision.to == MANAGER_TASK or decision.to in tried:
                return Reroute(MANAGER_TASK, decision.reason, decision.text)
            queue.insert(0, decision.to)
            last = decision
        assert last is not None, "a campaign lists at least one channel"
        return last

    async def _send(
        self,
        row_id: int,
        customer: Customer,
        campaign: Campaign,
        channel_name: ChannelName,
        context: Mapping[str, Plain],
        summary: TickSummary,
    ) -> None:
        locale = customer.locale or self.app.settings.default_locale
        key = (campaign.script, locale)
        if key not in self.library.scripts:
            key = (campaign.script, self.app.settings.default_locale)
        script = self.library.scripts.get(key)
        pack = self.library.packs.get(key[1])
        if script is None or pack is None:
            self._close(row_id, FAILED, "no_script", summary)
            return
        address = (
            str(customer.telegram_chat_id) if channel_name == "telegram" else customer.phone or ""
        )
        now = self.app.clock.now()
        # Committed before the provider call (design decision 2): a crash after this line leaves
        # the row in `sending`, which the next tick reconciles instead of sending again.
        with self.app.sessions.begin() as session:
            result = session.execute(
                update(Outreach)
                .where(
                    Outreach.id == row_id,
                    Outreach.state == DUE,
                    Outreach.lease_owner == self.worker_id,
                )
                .values(
                    state=SENDING,
                    channel=channel_name,
                    attempts=Outreach.attempts + 1,
                    script_version=script.version,
                    lease_until=now + self.lease,
                    next_attempt_at=None,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            claimed: int = result.rowcount  # type: ignore[attr-defined]
            attempts = session.scalar(select(Outreach.attempts).where(Outreach.id == row_id))
        if claimed != 1 or attempts is None:
            summary.lost += 1
            return
        contact = Contact(customer.id, key[1], address, script, pack, context)
        summary.sent += 1
        try:
            delivery = await self.channels[channel_name].start_conversation(contact)
        except Exception as error:  # a channel bug must not lose the row: it is retried by policy
            logger.exception("dispatcher: channel %s raised for row %s", channel_name, row_id)
            delivery = Delivery.failed(f"{type(error).__name__}: {error}", retryable=True)
        self._store(row_id, customer.id, campaign, delivery, attempts, summary)

    def _store(
        self,
        row_id: int,
        customer_id: int,
        campaign: Campaign,
        delivery: Delivery,
        attempts: int,
        summary: TickSummary,
    ) -> None:
        now = self.app.clock.now()
        conversation = json.loads(delivery.state.to_json()) if delivery.state is not None else None
        done = {"lease_owner": None, "lease_until": None, "conversation": conversation}
        if delivery.status in (Status.DELIVERED, Status.IN_CONVERSATION):
            target = DONE if delivery.status == Status.DELIVERED else IN_CONVERSATION
            if not self._move(row_id, SENDING, target, outcome=delivery.outcome, **done):
                summary.lost += 1
                return
            self._contacted(customer_id, campaign, row_id, delivery, now)
            if target == DONE:
                summary.done += 1
            else:
                summary.in_conversation += 1
            return
        policy = self._retry_policy(campaign, delivery)
        reason = delivery.status.value
        if policy is not None and attempts <= policy.max:
            moved = self._move(
                row_id,
                SENDING,
                RETRY,
                next_attempt_at=now + timedelta(minutes=policy.delay_minutes),
                skip_reason=reason,
                **done,
            )
            if moved:
                summary.retry += 1
                summary.count(reason)
            else:
                summary.lost += 1
            return
        if delivery.reason:
            logger.info("dispatcher: row %s failed: %s (%s)", row_id, reason, delivery.reason)
        if self._move(row_id, SENDING, FAILED, skip_reason=reason, **done):
            summary.failed += 1
            summary.count(reason)
        else:
            summary.lost += 1

    @staticmethod
    def _retry_policy(campaign: Campaign, delivery: Delivery) -> Retry | None:
        attempts = campaign.attempts
        if delivery.status == Status.NO_ANSWER:
            return attempts.no_answer
        if delivery.status == Status.BUSY:
            return attempts.busy
        if delivery.status == Status.VOICEMAIL:
            return attempts.voicemail
        if delivery.status == Status.FAILED and delivery.retryable:
            return attempts.failed
        return None  # unreachable, or a failure that will not get better

    def _contacted(
        self, customer_id: int, campaign: Campaign, row_id: int, delivery: Delivery, now: datetime
    ) -> None:
        with self.app.sessions.begin() as session:
            values: dict[str, Any] = {"last_contacted_at": now, "updated_at": now}
            if delivery.outcome == "opted_out":
                values["opted_out_at"] = now
            session.execute(update(Customer).where(Customer.id == customer_id).values(**values))
            if campaign.audience.kind == "post-order":
                cycle = session.scalar(select(Outreach.cycle).where(Outreach.id == row_id))
                session.execute(
                    update(Order)
                    .where(
                        Order.external_id == cycle,
                        Order.customer_id == customer_id,
                        Order.feedback_requested_at.is_(None),
                    )
                    .values(feedback_requested_at=now)
                )

    def _close(self, row_id: int, state: str, reason: str, summary: TickSummary) -> None:
        if self._move(row_id, DUE, state, skip_reason=reason, lease_owner=None, lease_until=None):
            if state == SKIPPED:
                summary.skipped += 1
            else:
                summary.failed += 1
            summary.count(reason)
        else:
            summary.lost += 1

    # --- what the guard and the script get ---

    def _recipient(self, session: Session, customer: Customer, row_id: int) -> Recipient:
        entries = session.execute(
            select(Consent.channel, Consent.purpose, Consent.granted, Consent.at, Consent.source)
            .where(Consent.customer_id == customer.id)
            .order_by(Consent.at, Consent.id)
        )
        consents = consents_in_force(
            (channel, purpose, ConsentEntry(granted, at, source))
            for channel, purpose, granted, at, source in entries
        )
        contacts: list[ContactRecord] = []
        for campaign_id, at in session.execute(
            select(Outreach.campaign_id, Outreach.updated_at).where(
                Outreach.customer_id == customer.id,
                Outreach.id != row_id,
                Outreach.state.in_(CONTACTED),
            )
        ):
            other = self.campaigns.get(campaign_id)
            if other is None:  # an unknown campaign counts as marketing, against the cap
                contacts.append(ContactRecord(at, campaign_id, "marketing"))
            else:
                contacts.append(
                    ContactRecord(
                        at,
                        campaign_id,
                        other.campaign.purpose,
                        other.campaign.frequency_cap.exempt,
                    )
                )
        return Recipient(
            customer_id=customer.id,
            phone=customer.phone,
            time_zone=customer.time_zone,
            opted_out_at=customer.opted_out_at,
            flagged=customer.flagged,
            telegram_chat_id=customer.telegram_chat_id,
            consents=consents,
            last_contacts=tuple(contacts),
        )

    def _context(self, session: Session, customer: Customer) -> dict[str, Plain]:
        first_name = customer.first_name or (customer.name or "").split(" ")[0] or None
        context: dict[str, Plain] = {
            "customer_id": customer.id,
            "first_name": first_name,
            "company_name": self.app.settings.company_name,
        }
        last = session.execute(
            select(Order.external_id, Order.placed_at, Order.amount_minor)
            .where(Order.customer_id == customer.id, Order.status.not_in(VOID_ORDER_STATUSES))
            .order_by(Order.placed_at.desc(), Order.id.desc())
            .limit(1)
        ).first()
        if last is not None:
            external_id, placed_at, amount_minor = last
            context["order_number"] = external_id
            context["last_order_date"] = placed_at.date()
            context["last_order_amount"] = Decimal(amount_minor) / 100
            context["days_since_last_order"] = (self.app.clock.now() - placed_at).days
        return context
