"""`Pace` on a fake clock: a sliding window of release times, the per-chat gap, the 429 pause."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable

import pytest

from bot.channel.pace import MARGIN, SPREAD, Pace

WINDOW = 1.0 + MARGIN
SPACING = WINDOW / 30 * SPREAD


class FakeTime:
    """A monotonic clock that only moves when every coroutine is asleep (virtual time)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(seconds, 0.0), next(self._order), future))
        await future

    async def run(self, *coroutines: Awaitable[None]) -> None:
        """Run `coroutines` to the end, advancing the clock whenever all of them sleep."""
        tasks = [asyncio.ensure_future(c) for c in coroutines]
        while not all(task.done() for task in tasks):
            for _ in range(5):  # let every ready coroutine reach its next sleep
                await asyncio.sleep(0)
            if self._sleepers:  # everyone waits on a sleep: wake the earliest
                when, _, future = heapq.heappop(self._sleepers)
                self.now = max(self.now, when)
                future.set_result(None)
        for task in tasks:
            task.result()


def pace(clock: FakeTime, rate: float | None, chat_interval: float) -> Pace:
    return Pace(rate, chat_interval, monotonic=clock.monotonic, sleep=clock.sleep)


def most_in_any_window(times: list[float], window: float) -> int:
    """The largest number of `times` within any half-open window [t, t + window)."""
    times = sorted(times)
    most = start = 0
    for end, at in enumerate(times):
        while times[start] <= at - window + 1e-9:  # float rounding of the sleeps
            start += 1
        most = max(most, end - start + 1)
    return most


def released(clock: FakeTime, p: Pace, keys: list[int]) -> list[tuple[int, float]]:
    out: list[tuple[int, float]] = []

    async def one(key: int) -> None:
        await p.wait(key)
        out.append((key, clock.now))

    asyncio.run(clock.run(*(one(key) for key in keys)))
    return out


def test_never_more_than_rate_releases_in_any_window() -> None:
    clock = FakeTime()
    p = pace(clock, 30.0, 1.0)
    out = released(clock, p, list(range(200)))
    times = [at for _, at in out]
    assert len(times) == 200
    assert most_in_any_window(times, WINDOW) == 30
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) == pytest.approx(SPACING)  # spread out, never a burst
    # And it is not slower than it must be: 200 releases take about 6 windows.
    assert times[-1] == pytest.approx(6 * WINDOW + 19 * SPACING)


def test_fractional_rates_count_whole_messages() -> None:
    clock = FakeTime()
    out = released(clock, pace(clock, 0.5, 0.0), [0, 0, 0])
    assert [at for _, at in out] == pytest.approx([0.0, 2.0 + MARGIN, 2 * (2.0 + MARGIN)])


def test_one_chat_waits_its_interval_while_others_go() -> None:
    clock = FakeTime()
    out = released(clock, pace(clock, 30.0, 1.0), [7, 7, 7, 8, 9])
    seven = [at for key, at in out if key == 7]
    assert seven == pytest.approx([0.0, WINDOW, 2 * WINDOW])
    assert [at for key, at in out if key != 7] == pytest.approx([SPACING, 2 * SPACING])


def test_a_pause_holds_the_chat_and_everyone_exactly_that_long() -> None:
    clock = FakeTime()
    p = pace(clock, None, 0.0)
    clock.now = 10.0
    p.pause(5, 3.0)
    out = released(clock, p, [5, 6])
    assert [at for _, at in out] == [13.0, 13.0]  # exact: no margin on retry_after


def test_a_stall_followed_by_many_ready_senders_does_not_burst() -> None:
    clock = FakeTime()
    p = pace(clock, 30.0, 0.0)
    first = released(clock, p, list(range(45)))  # 30 at once, 15 a window later
    clock.now += 0.7  # the event loop was blocked: 0.7 s pass with nobody checking
    second = released(clock, p, list(range(100, 200)))
    times = [at for _, at in first + second]
    assert most_in_any_window(times, WINDOW) == 30
    after = sorted(at for _, at in second)
    assert min(b - a for a, b in zip(after, after[1:], strict=False)) >= SPACING - 1e-9


def test_a_late_answer_keeps_its_place_in_the_window_until_the_server_surely_had_it() -> None:
    clock = FakeTime()
    p = pace(clock, 1.0, 0.0)  # 1 in any 1.02 s

    async def slow() -> None:  # released at 0, answered at 0.5: the server had it by then
        async with p.sending(1):
            await clock.sleep(0.5)

    async def next_one() -> None:
        await clock.sleep(0.1)
        await p.wait(2)

    asyncio.run(clock.run(slow(), next_one()))
    # Not 1.02 after the release: 1.02 after the answer less the margin.
    assert clock.now == pytest.approx(0.5 - MARGIN + WINDOW)


def test_a_quick_answer_counts_from_its_release() -> None:
    clock = FakeTime()
    p = pace(clock, 1.0, 0.0)

    async def go() -> None:
        async with p.sending(1):
            await clock.sleep(MARGIN / 2)
        await p.wait(2)

    asyncio.run(clock.run(go()))
    assert clock.now == pytest.approx(WINDOW)


def test_no_limits_never_sleeps() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    p = Pace(None, 0.0, monotonic=lambda: 0.0, sleep=sleep)

    async def many() -> None:
        for key in range(1000):
            await p.wait(key % 3)

    asyncio.run(many())
    assert slept == []


def test_the_voice_channels_single_key_is_paced_by_rate() -> None:
    clock = FakeTime()
    out = released(clock, pace(clock, 2.0, 0.0), [0] * 5)
    spacing = WINDOW / 2 * SPREAD
    expected = [0.0, spacing, WINDOW, WINDOW + spacing, 2 * WINDOW]
    assert [at for _, at in out] == pytest.approx(expected)
