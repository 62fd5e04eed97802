"""Telegram conversations: the first step from the dispatcher, every later step from an update.

`TelegramChannel.start_conversation` (the dispatcher's call; the outreach row is `sending`) runs the
script's first step, sends its message and returns `in_conversation` with the state; the dispatcher
stores it. A 403 is `unreachable` and the chat is recorded as blocked (the consent ledger withdraws
Telegram, so the campaign's next channel is tried).

`Conversations.answer` takes one customer event from an update (a pressed button, text, a shared
contact) and, in ONE transaction: marks the update processed (an update already processed is
skipped: exactly once), advances the engine on the script version the conversation is pinned to,
stores the new state (`done` with the outcome when it ended; the opt-out and the manager tasks
with it) and puts the step's messages in the outbox. Then the outbox is sent: each message is
marked `sending` before the Bot API call and `sent` after, so a crash never sends a step twice;
`flush_outbox` at start-up sends what a crash left `pending`.

The first step's messages are recorded in `telegram_messages` (state `sent`, with their
`message_id`: later steps are numbered after them by max(seq)+1, and an answered keyboard is found
through them) without a transaction per message: `start` adds the rows to a buffer, written in ONE
INSERT ... ON CONFLICT (outreach_id, seq) DO NOTHING when `RECORD_BATCH` rows are waiting and
whenever the last `start` in flight returns -- so the dispatcher's batch is written before the
dispatcher stores its rows `in_conversation`, and `answer` writes the buffer before it reads. A
crash can lose only buffered rows, and those belong to outreach rows still `sending` (the
dispatcher has not stored them): they are reconciled as `interrupted` and never continued, so the
lost rows are never needed to number a reply; what is lost is the record that those messages were
sent (their keyboards stay on screen; a press on one finds no open conversation and is answered
as closed).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from bot.app import App
from bot.campaign.states import DONE, IN_CONVERSATION
from bot.channel.base import Contact, Delivery, begin
from bot.channel.finish import conversations_finished
from bot.channel.telegram import render
from bot.channel.telegram.linking import forget_chat_on_block
from bot.channel.telegram.sender import Blocked, Rejected, Sender, Sent, Unavailable
from bot.channel.versions import ScriptVersions, Stored
from bot.db.models import Customer
from bot.db.outreach import Outreach
from bot.db.telegram import TelegramMessage, TelegramUpdate
from bot.db.upsert import dialect_insert
from bot.dialog import engine
from bot.dialog.events import Answer, Ask, Event, HangUp, NoInput, Output
from bot.dialog.library import Library
from bot.dialog.offers import issue_offers
from bot.dialog.state import State

logger = logging.getLogger(__name__)

CHANNEL = "telegram"
RECORD_BATCH = 200
"""Buffered first-step rows written at once (one INSERT, one commit)."""


Active = Stored
"""The conversation a chat's customer is in."""


class Conversations:
    """Telegram conversations over the outreach rows; one per service."""

    def __init__(self, app: App, library: Library, sender: Sender) -> None:
        self.app = app
        self.library = library
        self.sender = sender
        self.versions = ScriptVersions(app, library)
        self._records: list[dict[str, object]] = []
        self._starting = 0

    # --- the first step (from the dispatcher) ---

    async def start(self, contact: Contact) -> Delivery:
        if contact.outreach_id is None:
            raise ValueError("a Telegram conversation needs the outreach row's id")
        try:
            chat_id = int(contact.address)
        except ValueError:
            return Delivery.unreachable("no Telegram chat")
        self._starting += 1
        try:
            return await self._start(contact, contact.outreach_id, chat_id)
        finally:
            self._starting -= 1
            if self._starting == 0 or len(self._records) >= RECORD_BATCH:
                self.write_records()

    def write_records(self) -> int:
        """Write the buffered first-step rows in one statement; returns how many. A failed write
        keeps them for the next call (ON CONFLICT makes writing twice harmless)."""
        rows, self._records = self._records, []
        if not rows:
            return 0
        try:
            with self.app.sessions.begin() as session:
                # The table, not the mapped class: a Core executemany, without the ORM's bulk
                # insert bookkeeping per row.
                session.connection().execute(
                    dialect_insert(session)(TelegramMessage.__table__).on_conflict_do_nothing(
                        index_elements=["outreach_id", "seq"]
                    ),
                    rows,
                )
        except Exception:
            logger.exception("telegram: writing %d sent-message rows failed; kept", len(rows))
            self._records = rows + self._records
            return 0
        return len(rows)

    async def _start(self, contact: Contact, outreach_id: int, chat_id: int) -> Delivery:
        self.versions.remember(contact.script)
        delivery = begin(contact)
        assert delivery.state is not None
        state, context = issue_offers(
            contact.script,
            delivery.state,
            delivery.outputs,
            contact.context,
            self.app.clock.now().date(),
        )
        delivery = Delivery.talked(state, delivery.outputs)
        outgoing = render.messages(
            delivery.outputs, contact.script, contact.pack, context, outreach_id
        )
        sent: list[tuple[render.Outgoing, int]] = []
        for message in outgoing:
            result = await self.sender.send(chat_id, message.text, message.reply_markup)
            if isinstance(result, Sent):
                sent.append((message, result.message_id))
                continue
            if sent:  # the customer got part of the step: the conversation stands
                logger.warning("telegram: chat %s: a later message failed: %s", chat_id, result)
                break
            return self._not_sent(chat_id, result)
        now = self.app.clock.now()
        self._records += [  # written by `start` (write_records): no transaction per message
            {
                "outreach_id": outreach_id,
                "seq": seq,
                "chat_id": chat_id,
                "text": message.text,
                "reply_markup": message.reply_markup,
                "state": "sent",
                "message_id": message_id,
                "created_at": now,
                "sent_at": now,
                "error": None,
            }
            for seq, (message, message_id) in enumerate(sent)
        ]
        return delivery

    def _not_sent(self, chat_id: int, result: Blocked | Rejected | Unavailable) -> Delivery:
        if isinstance(result, Blocked):
            now = self.app.clock.now()
            with self.app.sessions.begin() as session:
                forget_chat_on_block(session, chat_id, now)
            return Delivery.unreachable(f"Telegram: {result.description}")
        if isinstance(result, Rejected):
            return Delivery.failed(f"Telegram: {result.description}", retryable=False)
        return Delivery.failed(f"Telegram: {result.description}", retryable=True)

    # --- later steps (from updates) ---

    def active(self, session: Session, customer_id: int) -> Active | None:
        """The customer's open Telegram conversation (the newest, if several)."""
        row = session.execute(
            select(Outreach.id, Outreach.campaign_id, Outreach.conversation)
            .where(
                Outreach.customer_id == customer_id,
                Outreach.state == IN_CONVERSATION,
                Outreach.channel == CHANNEL,
            )
            .order_by(Outreach.contacted_at.desc(), Outreach.id.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        return self.versions.load(session, row.id, customer_id, row.campaign_id, row.conversation)

    async def answer(
        self,
        update_id: int | None,
        chat_id: int,
        customer_id: int,
        event: Event,
        answered_message_id: int | None = None,
    ) -> bool:
        """Feed `event` to the customer's open conversation; False when there is none (or the
        update was processed before)."""
        self.write_records()  # replies are numbered after the first step's rows
        now = self.app.clock.now()
        with self.app.sessions.begin() as session:
            if update_id is not None and not _claim_update(session, update_id, now):
                return True
            active = self.active(session, customer_id)
            if active is None:
                return False
            if isinstance(event, Answer) and event.at is None:
                event = Answer(
                    text=event.text,
                    choice=event.choice,
                    digits=event.digits,
                    confidence=event.confidence,
                    at=now.astimezone(active.zone),
                )
            state, outputs = engine.advance(
                active.loaded.script,
                active.pack,
                active.state,
                event,
                version=active.loaded.version,
            )
            self._store(session, active, state, outputs, chat_id, now)
        if answered_message_id is not None:
            await self.sender.remove_keyboard(chat_id, answered_message_id)
        await self.flush_outbox(active.outreach_id)
        return True

    @staticmethod
    def current_ask(active: Active) -> Ask | None:
        return engine.ask_output(active.loaded.script, active.pack, active.state.step)

    def _store(
        self,
        session: Session,
        active: Active,
        state: State,
        outputs: Sequence[Output],
        chat_id: int,
        now: datetime,
    ) -> None:
        today = now.astimezone(active.zone).date()
        state, context = issue_offers(active.loaded, state, outputs, active.context, today)
        values: dict[str, object] = {"conversation": state.to_dict(), "updated_at": now}
        if state.finished:
            values.update(state=DONE, outcome=state.outcome)
        moved = session.execute(
            update(Outreach)
            .where(Outreach.id == active.outreach_id, Outreach.state == IN_CONVERSATION)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            raise RuntimeError(f"outreach {active.outreach_id} is no longer in conversation")
        if state.finished:
            conversations_finished(session, [active.finished(state, outputs)], now)
        outgoing = render.messages(outputs, active.loaded, active.pack, context, active.outreach_id)
        if outgoing:
            seq = session.scalar(
                select(func.coalesce(func.max(TelegramMessage.seq) + 1, 0)).where(
                    TelegramMessage.outreach_id == active.outreach_id
                )
            )
            session.execute(
                insert(TelegramMessage),
                [
                    {
                        "outreach_id": active.outreach_id,
                        "seq": int(seq or 0) + index,
                        "chat_id": chat_id,
                        "text": message.text,
                        "reply_markup": message.reply_markup,
                        "state": "pending",
                        "created_at": now,
                    }
                    for index, message in enumerate(outgoing)
                ],
            )

    async def remind_idle(self, idle: timedelta) -> int:
        """Conversations without a reply for `idle` get the engine's NoInput: the script's
        reminder (its `no_input` reprompt), and once its reprompts are used up, its ending.
        Each reminder moves `updated_at`, so the next one comes after another `idle`."""
        now = self.app.clock.now()
        with self.app.sessions() as session:
            quiet = list(
                session.execute(
                    select(Outreach.customer_id, Customer.telegram_chat_id)
                    .join(Customer, Customer.id == Outreach.customer_id)
                    .where(
                        Outreach.state == IN_CONVERSATION,
                        Outreach.channel == CHANNEL,
                        Outreach.updated_at <= now - idle,
                        Customer.telegram_chat_id.is_not(None),
                    )
                    .order_by(Outreach.updated_at)
                    .limit(500)
                )
            )
        for customer_id, chat_id in quiet:
            assert chat_id is not None  # selected so
            await self.answer(None, chat_id, customer_id, NoInput())
        return len(quiet)

    async def hang_up(self, chat_id: int, customer_id: int) -> None:
        """The chat is gone (the bot was blocked): its open conversation ends as hung up."""
        await self.answer(None, chat_id, customer_id, HangUp())

    # --- the outbox ---

    async def flush_outbox(self, outreach_id: int | None = None) -> int:
        """Send `pending` messages (of one outreach, or all), in order; returns how many went."""
        sent = 0
        while True:
            with self.app.sessions.begin() as session:
                query = select(TelegramMessage).where(TelegramMessage.state == "pending")
                if outreach_id is not None:
                    query = query.where(TelegramMessage.outreach_id == outreach_id)
                message = session.scalars(
                    query.order_by(TelegramMessage.outreach_id, TelegramMessage.seq).limit(1)
                ).first()
                if message is None:
                    return sent
                message.state = "sending"
                chat_id, text, markup, message_pk = (
                    message.chat_id,
                    message.text,
                    message.reply_markup,
                    message.id,
                )
            result = await self.sender.send(chat_id, text, markup)
            now = self.app.clock.now()
            with self.app.sessions.begin() as session:
                values: dict[str, object]
                if isinstance(result, Sent):
                    values = {"state": "sent", "message_id": result.message_id, "sent_at": now}
                    sent += 1
                else:
                    values = {"state": "failed", "error": result.description}
                    if isinstance(result, Blocked):
                        forget_chat_on_block(session, chat_id, now)
                session.execute(
                    update(TelegramMessage)
                    .where(TelegramMessage.id == message_pk)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )

    def interrupted_sends(self) -> int:
        """Messages left `sending` by a crash: whether Telegram got them is unknown -- never
        re-sent, marked failed. Called once at start-up, before `flush_outbox`."""
        with self.app.sessions.begin() as session:
            result = session.execute(
                update(TelegramMessage)
                .where(TelegramMessage.state == "sending")
                .values(state="failed", error="interrupted: delivery unknown, not re-sent")
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]


def _claim_update(session: Session, update_id: int, now: datetime) -> bool:
    """Mark a stored update processed; False when it was processed already."""
    result = session.execute(
        update(TelegramUpdate)
        .where(TelegramUpdate.update_id == update_id, TelegramUpdate.processed_at.is_(None))
        .values(processed_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
