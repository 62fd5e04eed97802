"""Sending to the Bot API within Telegram's limits: the one seam between Boomerang and Telegram.

`Pace` releases requests within the limits: at most `rate` releases in any second (a sliding
window of the real release times, plus a small margin for the trip) for the whole bot and at least
`chat_interval` seconds between two releases to one chat (Telegram: about 30/s and 1/s). The
request is built before the wait, so a release is followed by the HTTP call with no work between,
and each call is tracked (`Pace.sending`) until its answer: one whose answer came late (our event
loop stalled before aiohttp wrote the body, which on Python 3.11 happens in a separate task) keeps
its place in the window until the server surely had it.
`Sender` sends through aiogram's `Bot` (with `JsonSession`, see session.py: the rendered keyboard
goes as prepared JSON, the answer is read for its message_id) and turns the answers into
`SendResult`s:

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
from bot.channel.telegram.session import lean_send_message

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
        method = lean_send_message(chat_id, text, reply_markup)  # built before the wait

        async def call() -> int:
            answer: Any = await self.bot(method)
            # JsonSession answers a lean method with the message_id; another session, a Message.
            return answer if isinstance(answer, int) else int(answer.message_id)

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
            try:
                async with self.pace.sending(chat_id):
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
