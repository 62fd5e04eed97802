"""How a long-running Boomerang process runs: its event loop and its garbage collector.

`run(main)` is `asyncio.run` for `boomerang serve` (and the benchmarks that measure it), with two
differences, both measured on the Telegram campaign benchmark (docs/benchmarks.md, "Telegram"):

- **The heap loaded at start-up is frozen** (`gc.freeze()` after a full collection). Everything a
  service holds for its whole life -- the dialog library and its compiled templates, the Russian
  morphology dictionary, SQLAlchemy's mappers, aiogram's and pydantic's models: about 300,000
  objects -- is moved out of the collector's generations. With the default collector the cyclic
  GC's full collections walked all of them again and again: 2.25 s of a 13.6 s dispatch of
  10,000 messages went to 8 full collections (2.9 s to collections in all). Frozen, the same
  collections take 0.34 s. Objects made after start-up are collected as usual.
- **The youngest generation is collected every 10,000 net allocations** instead of 700
  (`YOUNG_THRESHOLD`). A message in flight is a few hundred short-lived containers (aiohttp's
  request and response, the engine's state, SQLAlchemy's rows); at 700 the collector ran 1,391
  young and 126 middle collections per 10,000 messages (0.58 s); at 10,000, 21 and 1 (0.10 s).
  Garbage in reference cycles waits a little longer to be freed: at most 10,000 objects' worth.
- **uvloop** is the event loop when it is installed (every platform but Windows: it is a
  dependency there): asyncio's protocol and transport work in C, ~10 % of the per-message cost of
  aiohttp's requests and uvicorn's webhooks.

`run` restores the collector when `main` returns, so a test (or a second `run` in one process)
starts from the collector's usual state.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

logger = logging.getLogger(__name__)

YOUNG_THRESHOLD = 10_000
"""Net allocations of container objects between two collections of the youngest generation
(Python's default: 700; 2,000 from Python 3.13)."""


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed, else None (asyncio's default loop)."""
    try:
        import uvloop
    except ImportError:  # Windows has no uvloop
        return None
    return uvloop.new_event_loop


def settle_heap() -> int:
    """Collect, then freeze everything still alive: it lives as long as the process. Returns how
    many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on uvloop (when installed) with the start-up heap frozen and the
    youngest generation collected less often; the collector's settings are restored after."""
    thresholds = gc.get_threshold()
    frozen = settle_heap()
    gc.set_threshold(YOUNG_THRESHOLD, *thresholds[1:])
    factory = loop_factory()
    logger.info(
        "runtime: %s event loop; %d start-up objects frozen; young collections every %d",
        "uvloop" if factory is not None else "asyncio",
        frozen,
        YOUNG_THRESHOLD,
    )
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(main)
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
