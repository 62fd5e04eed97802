"""The speech threads: a turn's final result is decoded before other calls' queued audio."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError, Future

import pytest

from bot.channel.voice.threads import FEED, URGENT, SpeechThreads


def occupy(threads: SpeechThreads) -> tuple[threading.Event, Future[bool]]:
    """Keep the (single) thread busy until the returned event is set; returns once it is busy."""
    started, release = threading.Event(), threading.Event()

    def decode() -> bool:
        started.set()
        return release.wait(10)

    busy = threads.submit(decode)
    assert started.wait(10)
    return release, busy


def test_urgent_work_goes_before_queued_feeds_and_feeds_keep_their_order() -> None:
    threads = SpeechThreads(1)
    release, busy = occupy(threads)  # the one thread is decoding someone's audio
    done: list[str] = []
    try:
        feeds = [threads.submit(done.append, f"feed {i}") for i in range(3)]
        final = threads.submit_at(URGENT, done.append, "finish")
        assert threads.pending() == 4
        release.set()
        for future in (busy, *feeds, final):
            future.result(timeout=10)
        assert done == ["finish", "feed 0", "feed 1", "feed 2"]
        assert threads.pending() == 0
    finally:
        release.set()
        threads.shutdown()


def test_results_errors_and_cancelled_jobs_reach_the_caller() -> None:
    threads = SpeechThreads(2)
    try:
        assert threads.submit_at(FEED, pow, 2, 10).result(timeout=10) == 1024
        failing = threads.submit(int, "not a number")
        with pytest.raises(ValueError):
            failing.result(timeout=10)
    finally:
        threads.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        threads.submit(pow, 2, 2)


def test_shutdown_can_cancel_what_is_still_queued() -> None:
    threads = SpeechThreads(1)
    release, busy = occupy(threads)
    queued = threads.submit(pow, 2, 2)
    threads.shutdown(wait=False, cancel_futures=True)
    release.set()
    assert busy.result(timeout=10) is True
    with pytest.raises(CancelledError):
        queued.result(timeout=10)
