"""Sending within a global rate and a per-recipient interval: Telegram's 30 messages/s and 1/s per
chat, Twilio's calls per second.

`Pace` paces on the moments requests are really released, not on slots reserved in advance: it
keeps the last `rate` release times (a sliding window, the way Telegram counts) and each chat's
last release. A caller may go when the oldest of those `rate` releases is more than `window`
seconds old (1 s plus `MARGIN`) and its chat's last release is more than `chat_interval` (plus
`MARGIN`) old; otherwise it sleeps until then and checks again. Reserved slots were an absolute
schedule: after an event-loop stall every sleeper whose slot had passed woke and sent at once, and
the server's window saw more than `rate`. Released moments cannot burst: at most `rate` of them lie
in any `window`, whatever the loop did, and two releases are at least `SPREAD * window / rate`
apart. A request sent inside `sending(key)` is tracked until its answer: answered late, it counts
from its answer less `MARGIN` (see `Release.counts_from`), because what the server counts is when
it got the request, and that is known only to lie between the release and the answer.

The check and the record happen with no await in between, so on one event loop (the only place a
`Pace` is used) no other coroutine can run between them: no lock is needed, and two callers never
take the same place in the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

MARGIN = 0.010
"""How late an answer may come and its request still count from its release (seconds; also added
to the window and to the chat interval). Safety does not rest on it: the server had a request by
the time its answer came, so a request counts from max(release, answer - MARGIN) and the next one
in its place goes a window of 1 s + MARGIN later -- at least 1 s after the server got it, whatever
the trip. The margin sets what a message costs: 1 s + max(MARGIN, release to answer). Measured
against the emulator (scripts/bench/telegram.py, limited, 10,000): release to answer p50 6.4 ms,
p99 46 ms (our event loop's stalls); 10 ms lets the usual answer count from its release, pads the
server's clock rounding, and keeps 30/1.01 = 0.99 of the limit as the ceiling."""

SPREAD = 0.5
"""Two releases are at least SPREAD * window / rate apart (17 ms at 30/s): the window alone lets
30 requests go at once, they queue at the server and the last of them arrives 30+ ms after its
release (measured: 40 429s in 1,500 messages, release to answer p50 13 ms); spread out, nothing
queues, and a stall can still be caught up at twice the rate until the window is full."""

FORGET_AFTER = 100_000
"""Chats remembered before the ones whose interval is over are dropped."""

_UNTRACKED = -1.0


class Release:
    """One release in the window: its time and, for a request tracked by `Pace.sending`, when its
    answer came (+inf while in flight)."""

    __slots__ = ("answered", "at")

    def __init__(self, at: float) -> None:
        self.at = at
        self.answered = _UNTRACKED

    def counts_from(self, now: float, margin: float) -> float:
        """The time this release counts from in the window. The server got the request before
        its answer came: a request whose answer took longer than `margin` (a stall of our event
        loop before the body was written, a queue at the server) counts from its answer less
        `margin`, one still in flight from now less `margin`."""
        if self.answered == _UNTRACKED:
            return self.at
        return max(self.at, min(self.answered, now) - margin)


class Pace:
    """At most `rate` releases in any `floor(rate)/rate + margin` seconds for everyone (1.02 s at
    30/s), releases at least `SPREAD * window / rate` apart, and at least `chat_interval + margin`
    between two releases for one key (monotonic seconds). `rate` None or 0 and `chat_interval` 0
    disable a limit."""

    def __init__(
        self,
        rate: float | None,
        chat_interval: float,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        margin: float = MARGIN,
    ) -> None:
        # `count` releases in any `window`: 30/s -> 30 in 1 s; 0.5/s -> 1 in 2 s.
        self.count = max(1, math.floor(rate)) if rate else 0
        self.margin = margin
        self.window = self.count / rate + margin if rate else 0.0
        self.spacing = self.window / self.count * SPREAD if self.count else 0.0
        self.chat_gap = chat_interval + margin if chat_interval else 0.0
        self.monotonic = monotonic
        self.sleep = sleep
        self._released: deque[Release] = deque(maxlen=self.count or None)
        self._last: dict[int, float] = {}
        self._paused_until = 0.0
        self._chat_paused: dict[int, float] = {}

    def delay(self, key: int, now: float) -> float:
        """Seconds until a release for `key` would be allowed at `now` (0.0 or less: now)."""
        wait = self._paused_until - now
        if self._released:
            wait = max(wait, self._released[-1].at + self.spacing - now)
            if len(self._released) >= self.count:
                oldest = min(r.counts_from(now, self.margin) for r in self._released)
                wait = max(wait, oldest + self.window - now)
        if self.chat_gap:
            last = self._last.get(key)
            if last is not None:
                wait = max(wait, last + self.chat_gap - now)
        if self._chat_paused:
            until = self._chat_paused.get(key)
            if until is not None:
                wait = max(wait, until - now)
        return wait

    async def wait(self, key: int) -> Release | None:
        """Return when a request for `key` may go, with its release recorded (None: no limits)."""
        if not self.count and not self.chat_gap and not self._paused_until:
            return None  # no limits: nothing to record, no await
        while True:
            now = self.monotonic()
            wait = self.delay(key, now)
            if wait <= 0.0:
                # Check and record, no await in between: one event loop, so no lock.
                release = Release(now)
                if self.count:
                    self._released.append(release)  # maxlen drops the oldest
                if self.chat_gap:
                    self._last[key] = now
                    if len(self._last) > FORGET_AFTER:
                        self._forget(now)
                return release
            await self.sleep(wait)

    @contextlib.asynccontextmanager
    async def sending(self, key: int) -> AsyncIterator[None]:
        """`wait(key)`, then the request inside the block is tracked until the block ends (its
        answer, or its error): it counts in the window from the later of its release and its
        answer less `margin` (see `Release.counts_from`)."""
        release = await self.wait(key)
        if release is not None:
            release.answered = math.inf
        try:
            yield
        finally:
            if release is not None:
                release.answered = self.monotonic()

    def pause(self, key: int, seconds: float) -> None:
        """Telegram said: retry after `seconds` -- nothing to this key, nor to anyone, before.
        Exact: no margin is added."""
        until = self.monotonic() + seconds
        self._paused_until = max(self._paused_until, until)
        self._chat_paused[key] = max(self._chat_paused.get(key, 0.0), until)

    def _forget(self, now: float) -> None:
        self._last = {key: at for key, at in self._last.items() if at + self.chat_gap > now}
        self._chat_paused = {key: at for key, at in self._chat_paused.items() if at > now}
