"""Sending slots within a global rate and a per-recipient interval: Telegram's 30 messages/s and
1/s per chat, Twilio's calls per second. Each caller reserves its own slot before it awaits, so
concurrent senders never share one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

MARGIN = 0.985
"""Slots are spaced for 98.5 % of the limits: timing jitter on the way must not make a 429."""


class Pace:
    """Sending slots within a global rate and a per-chat interval (monotonic seconds)."""

    def __init__(
        self,
        rate: float | None,
        chat_interval: float,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.gap = 1.0 / (rate * MARGIN) if rate else 0.0
        self.chat_gap = chat_interval / MARGIN if chat_interval else 0.0
        self.monotonic = monotonic
        self.sleep = sleep
        self._next = 0.0
        self._next_chat: dict[int, float] = {}

    async def wait(self, chat_id: int) -> None:
        """Sleep until this caller's slot for `chat_id`."""
        now = self.monotonic()
        slot = max(now, self._next, self._next_chat.get(chat_id, 0.0))
        self._next = max(self._next, slot + self.gap) if self.gap else self._next
        if self.chat_gap:
            self._next_chat[chat_id] = slot + self.chat_gap
            if len(self._next_chat) > 100_000:
                self._forget(now)
        if slot > now:
            await self.sleep(slot - now)

    def pause(self, chat_id: int, seconds: float) -> None:
        """Telegram said: retry after `seconds` -- nothing to this chat, nor to anyone, before."""
        until = self.monotonic() + seconds
        self._next = max(self._next, until)
        self._next_chat[chat_id] = max(self._next_chat.get(chat_id, 0.0), until)

    def _forget(self, now: float) -> None:
        self._next_chat = {chat: at for chat, at in self._next_chat.items() if at > now}
