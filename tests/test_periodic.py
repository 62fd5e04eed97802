"""bot.channel.periodic.every: the housekeeping loop survives a failing round and stops."""

from __future__ import annotations

import asyncio

import pytest

from bot.channel.periodic import every


def test_every_runs_again_after_a_failing_round_and_stops_when_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds: list[int] = []

    async def scenario() -> None:
        stop = asyncio.Event()

        async def work() -> None:
            rounds.append(len(rounds))
            if len(rounds) == 1:
                raise RuntimeError("the database is away")
            if len(rounds) == 3:
                stop.set()

        await asyncio.wait_for(every(0.01, stop, work, "test: housekeeping"), timeout=5)

    asyncio.run(scenario())
    assert rounds == [0, 1, 2]
    assert "test: housekeeping failed" in caplog.text
    assert "the database is away" in caplog.text
