"""The speech threads: a bounded pool where a turn's final result goes before other calls' audio.

Decoding is CPU-bound C++ that releases the GIL, so the pool has one thread per core. Two kinds of
work reach it: `feed` (100 ms of a caller's audio, decoded while they speak; nobody waits for it)
and `finish` (the turn's final result: the caller has stopped speaking and waits for our answer).
With many calls a FIFO queue puts a `finish` behind every feed already queued -- 28-45 jobs at 50-75
calls in `scripts/bench/voice.py` -- so the caller's wait grew with everyone else's speech. Here a
`finish` is queued as `URGENT` and taken before any feed; within one priority the order is first
come, first served. A recogniser has at most one job queued at a time (its `asyncio.Lock`), so
moving a `finish` ahead never reorders one recogniser's own audio.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

T = TypeVar("T")

URGENT = 0
"""A caller is waiting for this result."""
FEED = 1
"""Audio decoded while the caller speaks."""
_STOP = 2
"""Shutdown markers: after every queued job."""

_Job = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class SpeechThreads(Executor):
    """`workers` threads taking the most urgent queued job first (FIFO within a priority).
    `submit` queues a `FEED` job; `submit_at(URGENT, ...)` one that goes first."""

    def __init__(self, workers: int, name: str = "vosk") -> None:
        if workers < 1:
            raise ValueError("at least one speech thread")
        self._queue: queue.PriorityQueue[tuple[int, int, _Job | None]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._shutdown = False
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return self.submit_at(FEED, fn, *args, **kwargs)

    def submit_at(
        self, priority: int, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("the speech threads are shut down")
            self._queue.put((priority, next(self._order), (future, fn, args, kwargs)))
        return future

    def pending(self) -> int:
        """Jobs queued and not yet taken by a thread."""
        return self._queue.qsize()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
            if cancel_futures:
                while True:
                    try:
                        _, _, job = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if job is not None:
                        job[0].cancel()
            for _ in self._threads:
                self._queue.put((_STOP, next(self._order), None))
        if wait:
            for thread in self._threads:
                thread.join()

    def _work(self) -> None:
        while True:
            _, _, job = self._queue.get()
            if job is None:
                return
            future, fn, args, kwargs = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:  # handed to the awaiting caller
                future.set_exception(error)
            else:
                future.set_result(result)
