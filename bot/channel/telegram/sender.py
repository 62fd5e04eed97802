"""Sending to the Bot API within Telegram's limits: the one seam between Boomerang and Telegram.

`Pace` hands out sending slots: at most `rate` messages per second for the whole bot and at least
`chat_interval` seconds between two messages to one chat (Telegram: about 30/s and 1/s). Each
caller reserves its own slot before it awaits, so concurrent senders never share one. `Sender`
sends through aiogram's `Bot` and turns the answers into `SendResult`s:

- 429: waits exactly the `retry_after` Telegram gave (the chat, and the whole bot, are paused that
  long) and tries again;
- 403 (blocked, or a chat that never started the bot): `Blocked` -- the customer is unreachable
  here, the campaign falls back to its next channel;
- 400: `Rejected`, logged, never retried (the same request would fail again);
- a network error or a 5xx: retried a few times with a growing pause, then `Unavailable`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import (
    InlineKeyboardMarkup,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from bot.channel.pace import Pace as Pace  # re-exported: the Sender is built with one

logger = logging.getLogger(__name__)

NETWORK_TRIES = 4
RETRY_AFTER_TRIES = 10

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


@dataclass(frozen=True, slots=True)
class Sent:
    message_id: int


@dataclass(frozen=True, slots=True)
class Blocked:
    description: str


@dataclass(frozen=True, slots=True)
class Rejected:
    description: str


@dataclass(frozen=True, slots=True)
class Unavailable:
    description: str


SendResult = Sent | Blocked | Rejected | Unavailable


def markup(data: dict[str, Any] | None) -> Markup | None:
    """aiogram's type for a reply_markup JSON dict."""
    if data is None:
        return None
    if "inline_keyboard" in data:
        return InlineKeyboardMarkup.model_validate(data)
    if "keyboard" in data:
        return ReplyKeyboardMarkup.model_validate(data)
    if data.get("remove_keyboard"):
        return ReplyKeyboardRemove()
    raise ValueError(f"not a reply_markup: {sorted(data)}")


class Sender:
    """Sends messages through `bot` within `pace`; never raises for a Telegram answer."""

    def __init__(
        self,
        bot: Bot,
        pace: Pace,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.bot = bot
        self.pace = pace
        self.sleep = sleep
        self.retry_after_waits = 0
        """How many 429s were waited out (should stay 0 when the limits are right)."""

    async def send(
        self, chat_id: int, text: str, reply_markup: dict[str, Any] | None
    ) -> SendResult:
        keyboard = markup(reply_markup)

        async def call() -> int:
            message = await self.bot.send_message(chat_id, text, reply_markup=keyboard)
            return message.message_id

        result = await self._paced(chat_id, call)
        return Sent(result) if isinstance(result, int) else result

    async def remove_keyboard(self, chat_id: int, message_id: int) -> SendResult:
        """Take the inline keyboard off a message that was answered."""

        async def call() -> int:
            await self.bot.edit_message_reply_markup(
                chat_id=chat_id, message_id=message_id, reply_markup=None
            )
            return message_id

        result = await self._paced(chat_id, call)
        return Sent(result) if isinstance(result, int) else result

    async def edit_text(
        self, chat_id: int, message_id: int, text: str, reply_markup: dict[str, Any] | None
    ) -> SendResult:
        """Replace a sent message's text (and its inline keyboard; None removes it)."""
        keyboard = markup(reply_markup)
        assert keyboard is None or isinstance(keyboard, InlineKeyboardMarkup)

        async def call() -> int:
            await self.bot.edit_message_text(
                text=text, chat_id=chat_id, message_id=message_id, reply_markup=keyboard
            )
            return message_id

        result = await self._paced(chat_id, call)
        return Sent(result) if isinstance(result, int) else result

    async def answer_callback(self, callback_query_id: str, text: str | None = None) -> None:
        """Acknowledge a button press (not a message: outside the sending limits)."""
        try:
            await self.bot.answer_callback_query(callback_query_id, text=text)
        except (TelegramBadRequest, TelegramNetworkError, TelegramServerError) as error:
            logger.info("telegram: answerCallbackQuery failed: %s", error)

    async def _paced(
        self, chat_id: int, call: Callable[[], Awaitable[int]]
    ) -> int | Blocked | Rejected | Unavailable:
        network_failures = waits = 0
        while True:
            await self.pace.wait(chat_id)
            try:
                return await call()
            except TelegramRetryAfter as error:
                waits += 1
                self.retry_after_waits += 1
                logger.warning(
                    "telegram: 429 for chat %s: waiting %s s", chat_id, error.retry_after
                )
                if waits > RETRY_AFTER_TRIES:
                    return Unavailable(f"still 429 after {waits} waits")
                self.pace.pause(chat_id, error.retry_after)
            except TelegramForbiddenError as error:
                return Blocked(error.message)
            except TelegramBadRequest as error:
                logger.warning("telegram: 400 for chat %s, not retried: %s", chat_id, error)
                return Rejected(error.message)
            except (TelegramNetworkError, TelegramServerError) as error:
                network_failures += 1
                if network_failures >= NETWORK_TRIES:
                    return Unavailable(str(error))
                await self.sleep(0.5 * 2**network_failures)
