"""Benchmark a Telegram campaign against the Bot API emulator: share of the limit, 429s, msgs/s.

Usage:

    .venv/bin/python scripts/bench/telegram.py --customers 10000
    .venv/bin/python scripts/bench/telegram.py --customers 1000 --run limited

Builds a shop of N customers (each with a Telegram chat, survey consent in Telegram and a delivered
order; the crash test's shop, scripts/crash_test.py) in a fresh SQLite file, plans one post-order
campaign over all of them and dispatches every row with the real `Dispatcher` through
`TelegramService.channel` to the Bot API emulator, which runs as a separate process (`python -m
bot.testing.telegram`) so it does not share the service's event loop. Every simulated user has
pressed Start (control API, before the timed part).

- `limited`: the emulator enforces 30 messages/s for the bot and 1 s between two messages to one
  chat; the Sender paces with `Pace(30, 1)`. Printed: messages, the rate from the first to the last
  message and its share of the limit (target 0.97), the 429s the emulator answered, the Sender's
  `retry_after_waits`, duplicates (the emulator's per-chat sent lists, sampled, and
  `telegram_messages`), the time from the Pace's release of each message to its answer (what the
  Pace's margin must cover) and the outreach rows' final states (all `in_conversation`).
- `unlimited`: the emulator enforces nothing, the Sender paces with `Pace(None, 0)`; the messages
  per second the service pushes end to end (dispatcher included; target 1,000/s), next to a
  baseline from the same run: raw aiogram `bot.send_message` to the same emulator with the same
  concurrency and no database.
- The timed parts run as `boomerang serve` runs its loop: `bot.runtime.run` (uvloop, the start-up
  heap frozen out of the garbage collector, young collections every 10,000 allocations), after
  `Library.compile_words()`. `--plain-asyncio` runs them with `asyncio.run` and the default
  collector instead, for comparison. Each timed part prints the time spent in collections.
- `--workers N`: also the unlimited run with N dispatcher processes (worker ids `bench-0`, ...) on
  the same SQLite file; the claim's conditional UPDATE keeps them off each other's rows.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aiohttp import ClientSession
from crash_test import (  # type: ignore[import-not-found]
    CAMPAIGN_ID,
    DIALOGS,
    NOW,
    ShiftedClock,
    build_shop,
    campaign,
)
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from bot import runtime
from bot.app import open_app
from bot.campaign.dispatcher import Dispatcher
from bot.campaign.guard import GuardPolicy
from bot.campaign.planner import plan_run
from bot.channel.pace import MARGIN, Release
from bot.channel.telegram.sender import Pace, Sender, SendResult, Sent, markup
from bot.channel.telegram.service import TelegramService, make_bot
from bot.clock import FixedClock
from bot.db.outreach import Outreach
from bot.db.telegram import TelegramMessage
from bot.dialog.library import Library, load_library
from bot.settings import Settings

TOKEN = "123456:BENCH-TOKEN"
CHAT_BASE = 10_000
"""build_shop gives customer i the Telegram chat 10,000 + i."""
RATE = 30.0
CHAT_INTERVAL = 1.0
SAMPLE = 200
"""Chats whose sent list is read back from the emulator to look for duplicates."""


class TimedPace(Pace):
    """The Pace, noting when it last released a request for each key."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.released_at: dict[int, float] = {}

    async def wait(self, key: int) -> Release | None:
        release = await super().wait(key)
        self.released_at[key] = time.monotonic()
        return release


class TimedSender(Sender):
    """The Sender, noting when each message was accepted (monotonic seconds) and how long it took
    from its release by the Pace to the answer (an upper bound of the trip to the server)."""

    def __init__(self, bot: Any, pace: TimedPace) -> None:
        super().__init__(bot, pace)
        self.timed_pace = pace
        self.times: list[float] = []
        self.trips: list[float] = []

    async def send(
        self, chat_id: int, text: str, reply_markup: dict[str, Any] | None
    ) -> SendResult:
        result = await super().send(chat_id, text, reply_markup)
        if isinstance(result, Sent):
            now = time.monotonic()
            self.times.append(now)
            self.trips.append(now - self.timed_pace.released_at[chat_id])
        return result


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


@dataclass
class Emulator:
    process: subprocess.Popen[str]
    base: str

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) of this process, or of `pid` (from /proc)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class GcTime:
    """Collections of the cyclic garbage collector in this process while open: count and seconds
    per generation."""

    def __init__(self) -> None:
        self.count: Counter[int] = Counter()
        self.seconds: dict[int, float] = {}
        self._started = 0.0

    def __enter__(self) -> GcTime:
        gc.callbacks.append(self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._note)

    def _note(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.count[info["generation"]] += 1
        generation = info["generation"]
        elapsed = time.perf_counter() - self._started
        self.seconds[generation] = self.seconds.get(generation, 0.0) + elapsed

    def __str__(self) -> str:
        total = sum(self.seconds.values())
        parts = ", ".join(
            f"gen{g} {self.count[g]} ({self.seconds[g]:.2f} s)" for g in sorted(self.count)
        )
        return f"{total:.2f} s in collections ({parts or 'none'})"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_emulator(rate: str, chat_interval: str) -> Emulator:
    """The emulator as a subprocess; returns once it printed its base URL (it is serving)."""
    command = [
        sys.executable,
        "-m",
        "bot.testing.telegram",
        "--port",
        str(free_port()),
        "--token",
        TOKEN,
        "--rate",
        rate,
        "--chat-interval",
        chat_interval,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2]
    )
    assert process.stdout is not None
    base = process.stdout.readline().strip()
    if not base.startswith("http"):
        process.kill()
        raise SystemExit(f"the emulator did not start (said {base!r})")
    return Emulator(process, base)


async def control(base: str, chats: list[int]) -> None:
    """Every simulated user presses Start (control API), 100 requests at a time."""
    gate = asyncio.Semaphore(100)
    async with ClientSession() as http:

        async def one(chat: int) -> None:
            async with gate:
                url = f"{base}/_emulator/users/{chat}/start"
                async with http.post(url, json={"first_name": f"Name{chat}"}) as response:
                    body = await response.json()
                    if not body.get("ok"):
                        raise SystemExit(f"start {chat}: {body}")

        await asyncio.gather(*(one(chat) for chat in chats))


async def emulator_stats(base: str) -> dict[str, Any]:
    async with ClientSession() as http, http.get(f"{base}/_emulator/stats") as response:
        return dict((await response.json())["result"])


async def first_message(base: str, chat: int) -> tuple[str, dict[str, Any] | None]:
    """The text and reply_markup of the first message the emulator holds for `chat`."""
    async with ClientSession() as http, http.get(f"{base}/_emulator/sent/{chat}") as response:
        message = (await response.json())["result"][0]
    return str(message["text"]), message["reply_markup"]


async def sent_counts(base: str, chats: list[int]) -> dict[int, int]:
    """How many messages the emulator holds for each of `chats`."""
    async with ClientSession() as http:

        async def one(chat: int) -> tuple[int, int]:
            async with http.get(f"{base}/_emulator/sent/{chat}") as response:
                return chat, len((await response.json())["result"])

        return dict(await asyncio.gather(*(one(chat) for chat in chats)))


@dataclass
class Outcome:
    rows: int
    messages: int
    seconds: float
    """Wall time of the dispatch loop (first claim to the last tick's store)."""
    first_to_last: float
    retry_after_waits: int
    ticks: int
    trips: list[float]
    collections: GcTime


async def dispatch(
    db: Path,
    library: Library,
    base: str,
    pace: TimedPace,
    limit: int,
    concurrency: int,
    worker_id: str = "bench",
    url: str | None = None,
) -> Outcome:
    database = url or f"sqlite:///{db}"
    settings = Settings(database_url=database, telegram_token=TOKEN, telegram_api=base)
    app = open_app(settings, clock=ShiftedClock(time.time()))
    bot = make_bot(TOKEN, base)
    sender = TimedSender(bot, pace)
    service = TelegramService(app, library, bot, sender)
    worker = Dispatcher(
        app,
        {CAMPAIGN_ID: campaign(db.parent)},
        library,
        {"telegram": service.channel},
        GuardPolicy(),
        worker_id=worker_id,
        concurrency=concurrency,
    )
    rows = ticks = 0
    try:
        with GcTime() as collections:
            started = time.perf_counter()
            while True:
                summary = await worker.tick(limit=limit)
                if summary.claimed == 0:
                    break
                rows += summary.claimed
                ticks += 1
            seconds = time.perf_counter() - started
    finally:
        await service.close()
        app.engine.dispose()
    times = sender.times
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return Outcome(
        rows, len(times), seconds, span, sender.retry_after_waits, ticks, sender.trips, collections
    )


RUN: Any = runtime.run
"""How the timed parts run: `bot.runtime.run`, as `boomerang serve` runs; `--plain-asyncio`:
`asyncio.run` with the default collector (the comparison for what `bot.runtime` buys)."""

DATABASE_URL: str | None = None
"""--postgres: a fresh PostgreSQL database for this run instead of a SQLite file."""


def prepare(folder: Path, customers: int) -> Path:
    """A fresh shop with the campaign planned; returns the database file."""
    db = folder / "telegram.db"
    app = open_app(Settings(database_url=DATABASE_URL or f"sqlite:///{db}"), clock=FixedClock(NOW))
    try:
        build_shop(app, customers)
        run = plan_run(app, campaign(folder), NOW)
    finally:
        app.engine.dispose()
    if run.planned != customers:
        raise SystemExit(f"planned {run.planned} rows for {customers} customers")
    return db


def checks(db: Path) -> tuple[Counter[str], int, int]:
    """Outreach states, (outreach, seq) pairs stored twice, and telegram_messages rows."""
    app = open_app(Settings(database_url=DATABASE_URL or f"sqlite:///{db}"), clock=FixedClock(NOW))
    try:
        with app.sessions() as session:
            states = Counter(
                {
                    state: count
                    for state, count in session.execute(
                        select(Outreach.state, func.count()).group_by(Outreach.state)
                    )
                }
            )
            doubled = (
                select(TelegramMessage.outreach_id, TelegramMessage.seq)
                .group_by(TelegramMessage.outreach_id, TelegramMessage.seq)
                .having(func.count() > 1)
                .subquery()
            )
            twice = int(session.scalar(select(func.count()).select_from(doubled)) or 0)
            stored = int(session.scalar(select(func.count()).select_from(TelegramMessage)) or 0)
    finally:
        app.engine.dispose()
    return states, twice, stored


async def duplicates_at_emulator(base: str, customers: int, per_chat: int) -> tuple[int, int]:
    """(chats sampled, chats holding more messages than one first step sends)."""
    chats = random.Random(5).sample(range(CHAT_BASE + 1, CHAT_BASE + customers + 1), SAMPLE)
    counts = await sent_counts(base, chats[: min(SAMPLE, customers)])
    return len(counts), sum(1 for count in counts.values() if count > per_chat)


def peak_rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def limited(customers: int, limit: int, concurrency: int, library: Library) -> None:
    print(f"== limited: {RATE:.0f} msg/s per bot, {CHAT_INTERVAL:.0f} s per chat ==")
    with tempfile.TemporaryDirectory() as temp:
        started = time.perf_counter()
        db = prepare(Path(temp), customers)
        emulator = start_emulator(str(RATE), str(CHAT_INTERVAL))
        try:
            chats = [CHAT_BASE + i for i in range(1, customers + 1)]
            asyncio.run(control(emulator.base, chats))
            print(
                f"setup (shop, plan, emulator, {customers:,} users pressed Start): "
                f"{time.perf_counter() - started:.1f} s"
            )
            pace = TimedPace(RATE, CHAT_INTERVAL)
            outcome = RUN(dispatch(db, library, emulator.base, pace, limit, concurrency))
            stats = asyncio.run(emulator_stats(emulator.base))
            per_chat = round(outcome.messages / max(outcome.rows, 1))
            sampled, doubled_chats = asyncio.run(
                duplicates_at_emulator(emulator.base, customers, per_chat)
            )
        finally:
            emulator.stop()
        states, twice, stored = checks(db)
    sent = int(stats["messages_sent"])
    rate = (outcome.messages - 1) / outcome.first_to_last if outcome.first_to_last else 0.0
    end_to_end = outcome.messages / outcome.seconds
    expected = customers * per_chat
    print(
        f"dispatched {outcome.rows:,} rows in {outcome.ticks} ticks of {limit} "
        f"(concurrency {concurrency}): {outcome.seconds:.1f} s"
    )
    print(
        f"messages: {outcome.messages:,} accepted by the Sender, {sent:,} held by the emulator, "
        f"{stored:,} in telegram_messages ({per_chat} per customer)"
    )
    print(
        f"rate, first to last message: {rate:.2f} msg/s over {outcome.first_to_last:.1f} s = "
        f"{rate / RATE:.3f} of the limit (target 0.97); end to end {end_to_end:.2f} msg/s = "
        f"{end_to_end / RATE:.3f}"
    )
    print(
        f"429s: {stats['too_many_requests']} answered by the emulator (target 0), "
        f"Sender retry_after_waits {outcome.retry_after_waits}"
    )
    print(
        f"duplicates: {sent - expected} extra messages at the emulator, "
        f"{doubled_chats} of {sampled} sampled chats with more than {per_chat}, "
        f"{twice} (outreach, seq) stored twice (target 0)"
    )
    trips = outcome.trips
    print(
        f"release to answer: p50 {quantile(trips, 0.5) * 1000:.1f} ms, "
        f"p99 {quantile(trips, 0.99) * 1000:.1f} ms, p99.9 {quantile(trips, 0.999) * 1000:.1f} ms, "
        f"max {max(trips, default=0.0) * 1000:.1f} ms (Pace margin {MARGIN * 1000:.0f} ms)"
    )
    print(f"outreach states: {dict(states)} (all {customers:,} in_conversation expected)")
    print(f"peak RSS: {peak_rss():,.0f} MiB")


async def raw_sends(
    base: str, chats: list[int], text: str, reply: dict[str, Any] | None, concurrency: int
) -> tuple[float, GcTime]:
    """Seconds (and the collections in them) for one aiogram send_message per chat (the
    service's first message: its text and keyboard), `concurrency` at once; no database, no
    engine, no pacing."""
    bot = make_bot(TOKEN, base)
    gate = asyncio.Semaphore(concurrency)

    async def one(chat: int) -> None:
        async with gate:
            await bot.send_message(chat, text, reply_markup=markup(reply))

    try:
        with GcTime() as collections:
            started = time.perf_counter()
            await asyncio.gather(*(one(chat) for chat in chats))
            return time.perf_counter() - started, collections
    finally:
        await bot.session.close()


def unlimited(customers: int, limit: int, concurrency: int, library: Library) -> None:
    print("== unlimited: the emulator enforces no limit, Pace(None, 0) ==")
    with tempfile.TemporaryDirectory() as temp:
        started = time.perf_counter()
        db = prepare(Path(temp), customers)
        emulator = start_emulator("none", "none")
        try:
            chats = [CHAT_BASE + i for i in range(1, customers + 1)]
            asyncio.run(control(emulator.base, chats))
            print(
                f"setup (shop, plan, emulator, {customers:,} users pressed Start): "
                f"{time.perf_counter() - started:.1f} s"
            )
            pid = emulator.process.pid
            cpu, cpu_emulator = cpu_seconds(), cpu_seconds(pid)
            outcome = RUN(
                dispatch(
                    db,
                    library,
                    emulator.base,
                    TimedPace(None, 0),
                    limit,
                    concurrency,
                    url=DATABASE_URL,
                )
            )
            cpu, cpu_emulator = cpu_seconds() - cpu, cpu_seconds(pid) - cpu_emulator
            stats = asyncio.run(emulator_stats(emulator.base))
            text, reply = asyncio.run(first_message(emulator.base, chats[0]))
            raw_cpu, raw_cpu_emulator = cpu_seconds(), cpu_seconds(pid)
            raw_seconds, gc_raw = RUN(raw_sends(emulator.base, chats, text, reply, concurrency))
            raw_cpu, raw_cpu_emulator = cpu_seconds() - raw_cpu, cpu_seconds(pid) - raw_cpu_emulator
        finally:
            emulator.stop()
        states, twice, stored = checks(db)
    rate = outcome.messages / outcome.seconds
    raw_rate = len(chats) / raw_seconds
    print(
        f"dispatched {outcome.rows:,} rows in {outcome.ticks} ticks of {limit} "
        f"(concurrency {concurrency}): {outcome.messages:,} messages in {outcome.seconds:.1f} s = "
        f"{rate:,.0f} msg/s end to end, dispatcher included (target 1,000/s)"
    )
    print(
        f"  CPU during the dispatch: service {cpu:.1f} s ({cpu / outcome.seconds:.0%} of a core), "
        f"emulator {cpu_emulator:.1f} s ({cpu_emulator / outcome.seconds:.0%}); "
        f"{outcome.collections}"
    )
    print(
        f"baseline: raw aiogram send_message, same emulator and concurrency, no database: "
        f"{len(chats):,} in {raw_seconds:.1f} s = {raw_rate:,.0f} msg/s; "
        f"service / baseline = {rate / raw_rate:.2f}"
    )
    print(
        f"  CPU during the baseline: client {raw_cpu:.1f} s ({raw_cpu / raw_seconds:.0%} of a "
        f"core), emulator {raw_cpu_emulator:.1f} s ({raw_cpu_emulator / raw_seconds:.0%}); "
        f"{gc_raw}"
    )
    print(
        f"429s {stats['too_many_requests']}, emulator holds {stats['messages_sent']:,} messages "
        f"({stored:,} in telegram_messages, {twice} stored twice); states {dict(states)}"
    )
    print(f"peak RSS: {peak_rss():,.0f} MiB")


def _worker(
    db: Path,
    base: str,
    limit: int,
    concurrency: int,
    index: int,
    go: Any,
    out: Any,
    url: str | None,
) -> None:
    """One dispatcher process of `workers`: waits for `go`, dispatches until nothing is left."""
    library = load_library(DIALOGS)
    library.compile_words()  # as `boomerang serve` does before its loop
    go.wait()
    outcome = RUN(
        dispatch(db, library, base, TimedPace(None, 0), limit, concurrency, f"bench-{index}", url)
    )
    out.put((outcome.rows, outcome.messages, time.monotonic(), cpu_seconds()))


def workers(customers: int, limit: int, concurrency: int, count: int) -> None:
    """The unlimited run with `count` dispatcher processes on one SQLite file (WAL)."""
    where = "PostgreSQL" if DATABASE_URL else "one SQLite file"
    print(f"== unlimited, {count} dispatcher processes on {where} ==")
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as temp:
        db = prepare(Path(temp), customers)
        emulator = start_emulator("none", "none")
        try:
            chats = [CHAT_BASE + i for i in range(1, customers + 1)]
            asyncio.run(control(emulator.base, chats))
            go, out = context.Event(), context.Queue()
            processes = [
                context.Process(
                    target=_worker,
                    args=(db, emulator.base, limit, concurrency, i, go, out, DATABASE_URL),
                )
                for i in range(count)
            ]
            for process in processes:
                process.start()
            time.sleep(8)  # imports and the library loaded in every process
            cpu_emulator = cpu_seconds(emulator.process.pid)
            started = time.monotonic()
            go.set()
            results = [out.get() for _ in processes]
            cpu_emulator = cpu_seconds(emulator.process.pid) - cpu_emulator
            for process in processes:
                process.join()
            stats = asyncio.run(emulator_stats(emulator.base))
        finally:
            emulator.stop()
        states, twice, stored = checks(db)
    seconds = max(end for _, _, end, _ in results) - started
    messages = sum(m for _, m, _, _ in results)
    per = ", ".join(
        f"{rows:,} rows / {m:,} msgs, CPU {cpu / seconds:.0%}" for rows, m, _, cpu in results
    )
    print(
        f"{messages:,} messages in {seconds:.1f} s = {messages / seconds:,.0f} msg/s end to end "
        f"with {count} processes ({per}); emulator CPU {cpu_emulator / seconds:.0%} of a core"
    )
    print(
        f"emulator holds {stats['messages_sent']:,} messages, {stored:,} in telegram_messages, "
        f"{twice} stored twice; states {dict(states)}"
    )


def fresh_postgres(admin_url: str) -> None:
    """Create an empty database on the server and make every run below use it."""
    global DATABASE_URL
    name = f"telegram_bench_{os.getpid()}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    DATABASE_URL = make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument(
        "--run", choices=("both", "limited", "unlimited", "workers"), default="both"
    )
    parser.add_argument("--limit", type=int, default=500, help="rows per tick")
    parser.add_argument("--concurrency", type=int, default=50, help="conversations at once")
    parser.add_argument(
        "--workers", type=int, default=0, help="also: the unlimited run with N dispatcher processes"
    )
    parser.add_argument(
        "--postgres",
        default=None,
        help="a PostgreSQL server URL (postgresql+psycopg://user@host:port/db): each run uses a "
        "fresh database there instead of a SQLite file",
    )
    parser.add_argument(
        "--plain-asyncio",
        action="store_true",
        help="run the timed parts with asyncio.run and the default collector, not bot.runtime.run",
    )
    args = parser.parse_args(argv)
    if args.plain_asyncio:
        global RUN
        RUN = asyncio.run
    library = load_library(DIALOGS)
    library.compile_words()  # as `boomerang serve` does before its loop
    if args.postgres:
        fresh_postgres(args.postgres)
    if args.run in ("both", "limited"):
        limited(args.customers, args.limit, args.concurrency, library)
    if args.run in ("both", "unlimited"):
        unlimited(args.customers, args.limit, args.concurrency, library)
    if args.workers > 1 or args.run == "workers":
        workers(args.customers, args.limit, args.concurrency, max(args.workers, 2))


if __name__ == "__main__":
    main()
