"""A channel's periodic work (reminders, the outbox, calls with no news) until the service stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)


async def every(
    seconds: float, stop: asyncio.Event, work: Callable[[], Awaitable[Any]], what: str
) -> None:
    """Run `work` now and then every `seconds` until `stop` is set. A failing round is logged
    (naming `what`) and the next one runs as usual."""
    while not stop.is_set():
        try:
            await work()
        except Exception:  # a failing round must not end the loop
            logger.exception("%s failed", what)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
