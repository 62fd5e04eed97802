"""The Telegram service: receive updates (long polling or webhook), store them, act on them.

Every update is stored in `telegram_updates` by its `update_id` **before** it is acknowledged (the
webhook answers 200 only after the row is committed; polling confirms an offset only after the
rows are committed), and a stored update is processed once: a duplicate delivery finds its row
and stops. aiogram provides the Bot API client (`Bot`, pointed at `BOOMERANG_TELEGRAM_API`) and
the typed `Update`; the routing below is ours, because aiogram's own webhook handler acknowledges
before its handlers run and we must persist first (design.md, "Channels").

What an update does:

- `/start <token>`: links the chat to the token's customer (bot.channel.telegram.linking);
  `/start` alone asks for the phone with the contact button; a shared contact (the user's own)
  links by phone. Unknown users get a polite answer and stay unlinked contacts (`telegram_chats`).
- `/stop`, or a stop phrase outside a conversation: opts the customer out, with the locale pack's
  confirmation. Inside a conversation the engine hears the stop phrase itself.
- A pressed button, text or a shared contact of a linked customer in a conversation: the next step
  (`Conversations.answer`). A press on an old question's button is acknowledged as closed.
- Text with no conversation open: a short help message with a "contact a manager" button, which
  opens a manager task.
- `my_chat_member` "kicked" (the user blocked the bot): Telegram consent withdrawn (the campaign's
  next channel takes over) and the open conversation ends as hung up.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.types import CallbackQuery, Message, Update
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.app import App
from bot.campaign.states import DONE, IN_CONVERSATION
from bot.campaign.tasks import TaskSpec, insert_tasks
from bot.channel.periodic import every
from bot.channel.telegram import render
from bot.channel.telegram.channel import TelegramChannel
from bot.channel.telegram.conversations import Conversations
from bot.channel.telegram.linking import (
    customer_for_chat,
    forget_chat_on_block,
    link_by_phone,
    link_by_token,
    remember_chat,
    restore_consent_on_return,
)
from bot.channel.telegram.links import secret_from_settings
from bot.channel.telegram.managers import ManagersChat
from bot.channel.telegram.sender import Pace, Sender
from bot.channel.telegram.session import JsonSession
from bot.channel.telegram.texts import locale_of, text
from bot.db.models import Customer
from bot.db.outreach import Outreach
from bot.db.telegram import TelegramChat, TelegramUpdate
from bot.db.upsert import dialect_insert
from bot.dialog import matcher
from bot.dialog.events import Answer
from bot.dialog.library import Library
from bot.errors import InputError

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
CALL_ME = "m:call"
UPDATE_TYPES = ["message", "callback_query", "my_chat_member"]


class TelegramConfigError(InputError):
    """The Telegram settings do not allow the service to start."""


@dataclass(frozen=True, slots=True)
class Who:
    """The sender of an update, as far as we know them."""

    chat_id: int
    customer_id: int | None
    locale: str
    first_name: str | None


def make_bot(token: str, api: str) -> Bot:
    """aiogram's Bot for `token`, talking to the Bot API at `api` (Telegram, or an emulator), with
    JSON request bodies (bot.channel.telegram.session)."""
    session = JsonSession(api=TelegramAPIServer.from_base(api.rstrip("/")))
    return Bot(token, session=session)


class TelegramService:
    def __init__(self, app: App, library: Library, bot: Bot, sender: Sender) -> None:
        self.app = app
        self.library = library
        self.bot = bot
        self.sender = sender
        self.conversations = Conversations(app, library, sender)
        self.channel = TelegramChannel(self.conversations)
        self.secret = secret_from_settings(app.settings)
        self._processing = asyncio.Lock()
        group = app.settings.telegram_managers_chat
        self.managers = ManagersChat(app, sender, group) if group is not None else None
        self._offset: int | None = None

    @classmethod
    def from_settings(cls, app: App, library: Library) -> TelegramService:
        settings = app.settings
        if not settings.telegram_token:
            raise TelegramConfigError(
                "BOOMERANG_TELEGRAM_TOKEN", "not set: the Telegram channel needs the bot's token"
            )
        bot = make_bot(settings.telegram_token, settings.telegram_api)
        pace = Pace(settings.telegram_rate, settings.telegram_chat_interval)
        return cls(app, library, bot, Sender(bot, pace))

    async def close(self) -> None:
        await self.bot.session.close()

    async def recover(self) -> None:
        """At start-up: a crash's `sending` messages are not re-sent; `pending` ones go now;
        stored updates not yet processed are processed."""
        lost = self.conversations.interrupted_sends()
        if lost:
            logger.warning("telegram: %d messages left sending by a crash: not re-sent", lost)
        await self.conversations.flush_outbox()
        await self.process_stored()

    async def housekeeping(self, stop: asyncio.Event, every_seconds: float = 60.0) -> None:
        """Until `stop`: remind quiet conversations, send what the outbox still holds, post new
        manager tasks to the managers' chat."""
        idle = timedelta(hours=self.app.settings.telegram_reminder_hours)

        async def round_() -> None:
            await self.conversations.remind_idle(idle)
            await self.conversations.flush_outbox()
            if self.managers is not None:
                await self.managers.notify()

        await every(every_seconds, stop, round_, "telegram: housekeeping")

    # --- receiving ---

    def store(self, payload: Mapping[str, Any]) -> bool:
        """Commit the update; False when its update_id was stored before (a duplicate)."""
        update_id = payload.get("update_id")
        if not isinstance(update_id, int):
            raise ValueError("an update without an integer update_id")
        now = self.app.clock.now()
        with self.app.sessions.begin() as session:
            insert = dialect_insert(session)
            result = session.execute(
                insert(TelegramUpdate)
                .values(update_id=update_id, received_at=now, payload=dict(payload))
                .on_conflict_do_nothing(index_elements=["update_id"])
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def process_stored(self) -> int:
        """Process every stored, unprocessed update in update_id order; returns how many."""
        done = 0
        async with self._processing:
            while True:
                with self.app.sessions() as session:
                    pending = list(
                        session.execute(
                            select(TelegramUpdate.update_id, TelegramUpdate.payload)
                            .where(TelegramUpdate.processed_at.is_(None))
                            .order_by(TelegramUpdate.update_id)
                            .limit(100)
                        )
                    )
                if not pending:
                    return done
                for update_id, payload in pending:
                    await self._process(update_id, payload)
                    done += 1

    async def _process(self, update_id: int, payload: Mapping[str, Any]) -> None:
        try:
            parsed = Update.model_validate(dict(payload), context={"bot": self.bot})
            await self.handle(update_id, parsed)
            error = None
        except Exception as failure:  # one bad update must not stop the others
            logger.exception("telegram: update %s failed", update_id)
            error = f"{type(failure).__name__}: {failure}"[:1000]
        now = self.app.clock.now()
        with self.app.sessions.begin() as session:
            session.execute(
                update(TelegramUpdate)
                .where(TelegramUpdate.update_id == update_id, TelegramUpdate.processed_at.is_(None))
                .values(processed_at=now, error=error)
                .execution_options(synchronize_session=False)
            )

    async def poll(self, stop: asyncio.Event, wait_seconds: int = 25) -> None:
        """Long polling until `stop` is set."""
        await self.bot.delete_webhook(drop_pending_updates=False)
        while not stop.is_set():
            try:
                await self.poll_once(wait_seconds)
            except TelegramNetworkError as error:
                logger.warning("telegram: getUpdates failed: %s; retrying", error)
                await asyncio.sleep(1)

    async def poll_once(self, wait_seconds: int = 0) -> int:
        """One getUpdates: store the batch (committed before the next call confirms it by its
        offset), then process it; returns how many updates came."""
        updates = await self.bot.get_updates(
            offset=self._offset, timeout=wait_seconds, allowed_updates=UPDATE_TYPES
        )
        for item in updates:
            self.store(item.model_dump(mode="json", exclude_none=True, by_alias=True))
            self._offset = item.update_id + 1
        if updates:
            await self.process_stored()
        return len(updates)

    def check_webhook_settings(self) -> None:
        """TelegramConfigError unless webhook mode can start: a secret and a public URL."""
        settings = self.app.settings
        if not settings.telegram_webhook_secret:
            raise TelegramConfigError(
                "BOOMERANG_TELEGRAM_WEBHOOK_SECRET",
                "required in webhook mode: Telegram sends it with every update, and without it "
                "anyone could post updates",
            )
        if not settings.public_url:
            raise TelegramConfigError("BOOMERANG_PUBLIC_URL", "required in webhook mode")

    async def set_webhook(self) -> None:
        self.check_webhook_settings()
        settings = self.app.settings
        assert settings.public_url is not None
        await self.bot.set_webhook(
            settings.public_url.rstrip("/") + WEBHOOK_PATH,
            secret_token=settings.telegram_webhook_secret,
            allowed_updates=UPDATE_TYPES,
        )

    def secret_ok(self, given: str | None) -> bool:
        expected = self.app.settings.telegram_webhook_secret
        if not expected or given is None:
            return False
        return hmac.compare_digest(given.encode(), expected.encode())

    # --- acting ---

    async def handle(self, update_id: int, item: Update) -> None:
        if item.message is not None:
            await self._message(update_id, item.message)
        elif item.callback_query is not None:
            await self._press(update_id, item.callback_query)
        elif item.my_chat_member is not None:
            member = item.my_chat_member
            if member.new_chat_member.status == "kicked":
                await self._blocked(member.chat.id)

    def _who(self, session: Session, message_chat: int, user: Any) -> Who:
        now = self.app.clock.now()
        blocked_before = session.scalar(
            select(TelegramChat.blocked_at).where(TelegramChat.chat_id == message_chat)
        )
        remember_chat(
            session,
            message_chat,
            user.id if user else None,
            user.username if user else None,
            user.first_name if user else None,
            user.last_name if user else None,
            user.language_code if user else None,
            now,
        )
        customer_id = customer_for_chat(session, message_chat)
        if blocked_before is not None and customer_id is not None:
            restore_consent_on_return(session, customer_id, now)
        customer = session.get(Customer, customer_id) if customer_id is not None else None
        default = self.app.settings.default_locale
        locale = locale_of(
            customer.locale if customer else None, user.language_code if user else None, default
        )
        first_name = (customer.first_name if customer else None) or (
            user.first_name if user else None
        )
        return Who(message_chat, customer_id, locale, first_name)

    async def _message(self, update_id: int, message: Message) -> None:
        if message.chat.type != "private":
            return  # the managers' group and other chats are not customers
        with self.app.sessions.begin() as session:
            who = self._who(session, message.chat.id, message.from_user)
        words = (message.text or "").strip()
        if words.startswith("/start"):
            await self._start(who, words.removeprefix("/start").strip())
            return
        if words.split("@")[0] == "/stop":
            await self._opt_out(who)
            return
        if message.contact is not None:
            own = message.from_user is not None and message.contact.user_id == message.from_user.id
            if who.customer_id is not None and own:
                answered = await self.conversations.answer(
                    update_id,
                    who.chat_id,
                    who.customer_id,
                    Answer(text=message.contact.phone_number),
                )
                if answered:
                    return
            await self._link_phone(who, message.contact.phone_number, own)
            return
        if not words:
            return
        if who.customer_id is None:
            await self._ask_phone(who, "share_phone")
            return
        if await self.conversations.answer(
            update_id, who.chat_id, who.customer_id, Answer(text=words)
        ):
            return
        pack = self.library.packs.get(who.locale)
        if pack is not None and matcher.is_stop(words, matcher.vocabulary(pack, who.locale)):
            await self._opt_out(who)
            return
        keyboard = {
            "inline_keyboard": [[{"text": text(who.locale, "call_me"), "callback_data": CALL_ME}]]
        }
        await self.sender.send(who.chat_id, text(who.locale, "help"), keyboard)

    async def _start(self, who: Who, payload: str) -> None:
        name = f", {who.first_name}" if who.first_name else ""
        if payload:
            now = self.app.clock.now()
            with self.app.sessions.begin() as session:
                result = link_by_token(session, payload, who.chat_id, self.secret, now)
            if result.linked:
                locale = locale_of(result.locale, None, who.locale)
                first = self._first_name(result.customer_id) or who.first_name
                name = f", {first}" if first else ""
                await self.sender.send(who.chat_id, text(locale, "linked", name=name), None)
                return
            await self._ask_phone(who, "link_dead")
            return
        if who.customer_id is not None:
            await self.sender.send(who.chat_id, text(who.locale, "hello_linked", name=name), None)
            return
        await self._ask_phone(who, "share_phone")

    def _first_name(self, customer_id: int | None) -> str | None:
        if customer_id is None:
            return None
        with self.app.sessions() as session:
            return session.scalar(select(Customer.first_name).where(Customer.id == customer_id))

    async def _ask_phone(self, who: Who, key: str) -> None:
        keyboard = {
            "keyboard": [[{"text": text(who.locale, "share_button"), "request_contact": True}]],
            "resize_keyboard": True,
            "one_time_keyboard": True,
        }
        company = self.app.settings.company_name
        await self.sender.send(who.chat_id, text(who.locale, key, company=company), keyboard)

    async def _link_phone(self, who: Who, phone: str, own: bool) -> None:
        if not own:
            await self._ask_phone(who, "not_own_phone")
            return
        now = self.app.clock.now()
        with self.app.sessions.begin() as session:
            result = link_by_phone(
                session, who.chat_id, phone, self.app.settings.default_region, now
            )
        remove = {"remove_keyboard": True}
        if result.linked:
            locale = locale_of(result.locale, None, who.locale)
            first = self._first_name(result.customer_id) or who.first_name
            name = f", {first}" if first else ""
            await self.sender.send(who.chat_id, text(locale, "linked", name=name), remove)
            return
        await self.sender.send(who.chat_id, text(who.locale, "phone_unknown"), remove)

    async def _opt_out(self, who: Who) -> None:
        """The customer asked to be left alone: opted out everywhere, open talks closed."""
        now = self.app.clock.now()
        if who.customer_id is not None:
            with self.app.sessions.begin() as session:
                session.execute(
                    update(Customer)
                    .where(Customer.id == who.customer_id, Customer.opted_out_at.is_(None))
                    .values(opted_out_at=now, updated_at=now)
                    .execution_options(synchronize_session=False)
                )
                session.execute(
                    update(Outreach)
                    .where(
                        Outreach.customer_id == who.customer_id,
                        Outreach.state == IN_CONVERSATION,
                    )
                    .values(state=DONE, outcome="opted_out", updated_at=now)
                    .execution_options(synchronize_session=False)
                )
        pack = self.library.packs.get(who.locale) or next(iter(self.library.packs.values()))
        await self.sender.send(who.chat_id, pack.stop_confirmation, {"remove_keyboard": True})

    async def _press(self, update_id: int, query: CallbackQuery) -> None:
        if self.managers is not None and await self.managers.handle_press(query):
            return  # a task button in the managers' chat
        message = query.message
        chat_id = message.chat.id if message is not None else query.from_user.id
        with self.app.sessions.begin() as session:
            who = self._who(session, chat_id, query.from_user)
        data = query.data or ""
        if data == CALL_ME:
            await self._call_me(who, query)
            return
        press = render.read_callback(data)
        if press is None or who.customer_id is None:
            await self.sender.answer_callback(query.id, text(who.locale, "stale"))
            return
        with self.app.sessions() as session:
            active = self.conversations.active(session, who.customer_id)
        ask = self.conversations.current_ask(active) if active is not None else None
        choice = render.pressed(ask, press) if ask is not None else None
        if active is None or active.outreach_id != press.outreach_id or choice is None:
            await self.sender.answer_callback(query.id, text(who.locale, "stale"))
            return
        await self.sender.answer_callback(query.id)
        message_id = message.message_id if message is not None else None
        await self.conversations.answer(
            update_id, chat_id, who.customer_id, Answer(choice=choice), message_id
        )

    async def _call_me(self, who: Who, query: CallbackQuery) -> None:
        await self.sender.answer_callback(query.id)
        if who.customer_id is not None:
            now = self.app.clock.now()
            spec = TaskSpec(
                kind="handoff",
                customer_id=who.customer_id,
                outreach_id=None,
                campaign_id="telegram",
                due_at=now,
                note="asked for a manager in Telegram",
            )
            with self.app.sessions.begin() as session:
                insert_tasks(session, [spec], now)
        if query.message is not None:
            await self.sender.remove_keyboard(who.chat_id, query.message.message_id)
        await self.sender.send(who.chat_id, text(who.locale, "manager_called"), None)

    async def _blocked(self, chat_id: int) -> None:
        now = self.app.clock.now()
        with self.app.sessions.begin() as session:
            customer_id = forget_chat_on_block(session, chat_id, now)
        if customer_id is not None:
            await self.conversations.hang_up(chat_id, customer_id)


__all__ = ["TelegramAPIError", "TelegramService", "make_bot"]
