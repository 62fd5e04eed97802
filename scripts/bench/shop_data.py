"""Generate a large demo shop (default 1M customers, ~10M orders) for the benchmarks.

Usage:

    .venv/bin/python scripts/bench/shop_data.py --database-url sqlite:///bench-data/shop-1m.db
    .venv/bin/python scripts/bench/shop_data.py --database-url postgresql://postgres@host/db
    .venv/bin/python scripts/bench/shop_data.py --customers 100000 --csv bench-data/csv

Customers and orders come from the same buy-till-you-die process as `boomerang demo seed`
(bot.demo.shop), drawn in chunks of customers so memory stays bounded, with the purchase rate
rescaled to hit --orders-per-customer on average. The schema is created through the normal
migrations (bot.app.open_app); rows are then loaded with SQLite executemany in one transaction per
chunk (synchronous=OFF: a crash mid-load just means running the script again) or PostgreSQL
COPY FROM STDIN. --csv writes customers.csv and orders.csv in the importer's English headers
instead, for the import benchmark.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

# Runnable as a plain script from a checkout: make `bot` importable without installing.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import Engine, insert, text

from bot.app import open_app
from bot.audience.bgnbd import BgNbdParams
from bot.clock import FixedClock, SystemClock
from bot.db.models import Consent, Customer, Manager, Order
from bot.db.types import SECONDS_PER_DAY
from bot.demo.shop import (
    DEMO_SOURCE,
    FLAG_REASONS,
    HISTORY_DAYS,
    MANAGER_NAMES,
    NO_DELIVERY,
    STATUS_NAMES,
    CustomerColumns,
    ItemsJson,
    OrderColumns,
    calibrated_process,
    draw_customer_columns,
    draw_order_columns,
)
from bot.settings import Settings

BENCH_SHAPE = BgNbdParams(r=1.2, alpha=1.0, a=1.5, b=25.0)
"""Loyal customers, for a shop of ~10 orders each: dropout p ~ Beta(1.5, 25) (mean 6%) leaves
about 50 repeat purchases before dropout on average, so the mean is reached at a rhythm of weeks;
the demo's shape (mean dropout 21%) could only reach it with customers buying every other day.
α is set by calibration."""

CHUNK_CUSTOMERS = 50_000
"""About half a million orders per chunk: a few hundred MB of Python tuples at most."""

CUSTOMER_COLUMNS = (
    "id", "external_id", "name", "first_name", "phone", "email", "telegram_chat_id", "locale",
    "time_zone", "birthday", "tags", "manager_id", "flagged", "opted_out_at", "created_at",
    "updated_at",
)  # fmt: skip
ORDER_COLUMNS = (
    "id", "external_id", "customer_id", "placed_at", "delivered_at", "amount_minor", "currency",
    "status", "items",
)  # fmt: skip
CONSENT_COLUMNS = ("customer_id", "channel", "purpose", "granted", "at", "source")
SERVICE_CONSENTS = tuple((c, p) for c in ("telegram", "voice") for p in ("survey", "service"))


@dataclass
class Chunk:
    first_customer_id: int
    first_order_id: int
    customers: CustomerColumns
    orders: OrderColumns
    flagged: list[str | None]
    opted_out_at: list[int | None]
    manager_id: list[int | None]
    service_consent: np.ndarray[Any, np.dtype[np.bool_]]
    marketing_consent: np.ndarray[Any, np.dtype[np.bool_]]


@dataclass
class LoadStats:
    customers: int = 0
    orders: int = 0
    consents: int = 0
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return self.customers + self.orders + self.consents


def generate(
    customers: int,
    orders_per_customer: float,
    seed: int,
    now_epoch: int,
    chunk_customers: int = CHUNK_CUSTOMERS,
) -> Iterator[Chunk]:
    """The shop in chunks of customers, each with its orders; deterministic for a seed and now."""
    rng = np.random.default_rng(seed)
    process = process_for(orders_per_customer)
    next_customer, next_order = 1, 1
    for start in range(0, customers, chunk_customers):
        count = min(chunk_customers, customers - start)
        columns = draw_customer_columns(count, rng, now_epoch)
        orders = draw_order_columns(columns.first_order_at, now_epoch, rng, process)
        flag_draw = rng.random(count)
        flag_reason = rng.integers(len(FLAG_REASONS), size=count)
        opt_out = rng.random(count) < 0.02
        opt_out_at = now_epoch - (rng.uniform(1, 120, size=count) * SECONDS_PER_DAY).astype(int)
        opt_out_at = np.maximum(opt_out_at, columns.first_order_at)
        has_manager = rng.random(count) < 0.35
        manager = rng.integers(1, len(MANAGER_NAMES) + 1, size=count)
        yield Chunk(
            first_customer_id=next_customer,
            first_order_id=next_order,
            customers=columns,
            orders=orders,
            flagged=[
                FLAG_REASONS[r] if f < 0.01 else None
                for f, r in zip(flag_draw, flag_reason, strict=True)
            ],
            opted_out_at=[int(t) if o else None for o, t in zip(opt_out, opt_out_at, strict=True)],
            manager_id=[int(m) if h else None for h, m in zip(has_manager, manager, strict=True)],
            service_consent=rng.random(count) < 0.85,
            marketing_consent=rng.random(count) < 0.5,
        )
        next_customer += count
        next_order += len(orders)


def process_for(orders_per_customer: float) -> BgNbdParams:
    """BENCH_SHAPE with the purchase rate scaled to give this many orders per customer.

    Calibrated on a sample of the age distribution draw_customer_columns uses (Beta(1, 1.3) of the
    history), drawn from its own generator so the shop's draws do not depend on it.
    """
    ages = HISTORY_DAYS * np.random.default_rng(0).beta(1.0, 1.3, size=20_000)
    return calibrated_process(orders_per_customer, ages, BENCH_SHAPE)


def customer_rows(chunk: Chunk, now_epoch: int) -> list[tuple[Any, ...]]:
    c = chunk.customers
    first_id = chunk.first_customer_id
    birthdays = [b.isoformat() if b else None for b in c.birthday]
    return [
        (
            first_id + i,
            f"C{first_id + i:07d}",
            c.name[i],
            c.first_name[i],
            c.phone[i],
            c.email[i],
            c.telegram_chat_id[i],
            c.locale[i],
            c.time_zone[i],
            birthdays[i],
            '["demo"]',
            chunk.manager_id[i],
            chunk.flagged[i],
            chunk.opted_out_at[i],
            int(c.first_order_at[i]),
            now_epoch,
        )
        for i in range(len(c))
    ]


def order_rows(chunk: Chunk, items: ItemsJson) -> list[tuple[Any, ...]]:
    o = chunk.orders
    locale = chunk.customers.locale
    owners = o.customer_index.tolist()
    placed = o.placed_at.tolist()
    delivered = o.delivered_at.tolist()
    amounts = o.amount_minor.tolist()
    statuses = o.status.tolist()
    first_item, item_count, quantity = (
        o.first_item.tolist(),
        o.item_count.tolist(),
        o.quantity.tolist(),
    )
    first_order, first_customer = chunk.first_order_id, chunk.first_customer_id
    return [
        (
            first_order + k,
            f"O{first_order + k:08d}",
            first_customer + owners[k],
            placed[k],
            delivered[k] if delivered[k] != NO_DELIVERY else None,
            amounts[k],
            "RUB",
            STATUS_NAMES[statuses[k]],
            items.text(first_item[k], item_count[k], quantity[k], locale[owners[k]]),
        )
        for k in range(len(placed))
    ]


def consent_rows(chunk: Chunk, sqlite: bool) -> list[tuple[Any, ...]]:
    granted: Any = 1 if sqlite else True
    withdrawn: Any = 0 if sqlite else False
    rows: list[tuple[Any, ...]] = []
    first_id = chunk.first_customer_id
    first_order_at = chunk.customers.first_order_at.tolist()
    for i, at in enumerate(first_order_at):
        wanted: list[tuple[str, str]] = []
        if chunk.service_consent[i]:
            wanted.extend(SERVICE_CONSENTS)
        if chunk.marketing_consent[i]:
            wanted.append(("telegram", "marketing"))
        for channel, purpose in wanted:
            rows.append((first_id + i, channel, purpose, granted, at, DEMO_SOURCE))
        out = chunk.opted_out_at[i]
        if out is not None:
            # An opt-out withdraws everything granted, in the ledger as well.
            for channel, purpose in wanted:
                rows.append((first_id + i, channel, purpose, withdrawn, out, DEMO_SOURCE))
    return rows


def _managers(engine: Engine) -> None:
    with engine.begin() as connection:
        if connection.execute(text("SELECT count(*) FROM managers")).scalar_one() == 0:
            connection.execute(
                insert(Manager),
                [
                    {"id": i + 1, "name": name, "phone": phone, "telegram_chat_id": None}
                    for i, (name, phone) in enumerate(MANAGER_NAMES)
                ],
            )


def _refuse_non_empty(engine: Engine) -> None:
    with engine.connect() as connection:
        if connection.execute(text("SELECT count(*) FROM customers")).scalar_one():
            raise SystemExit(f"{engine.url}: customers already present; use an empty database")


def load_sqlite(engine: Engine, chunks: Iterator[Chunk], now_epoch: int) -> LoadStats:
    """executemany of Core-compiled INSERTs, one transaction per chunk, syncing switched off."""
    stats = LoadStats()
    sql = {
        name: str(insert(model).compile(dialect=engine.dialect, column_keys=list(columns)))
        for name, model, columns in (
            ("customers", Customer, CUSTOMER_COLUMNS),
            ("orders", Order, ORDER_COLUMNS),
            ("consents", Consent, CONSENT_COLUMNS),
        )
    }
    items = ItemsJson()
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        started = time.perf_counter()
        for chunk in chunks:
            customers = customer_rows(chunk, now_epoch)
            orders = order_rows(chunk, items)
            consents = consent_rows(chunk, sqlite=True)
            cursor.executemany(sql["customers"], customers)
            cursor.executemany(sql["orders"], orders)
            cursor.executemany(sql["consents"], consents)
            raw.commit()
            stats.customers += len(customers)
            stats.orders += len(orders)
            stats.consents += len(consents)
            _progress(stats, started)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("ANALYZE")
        raw.commit()
        stats.seconds = time.perf_counter() - started
    finally:
        raw.close()
    return stats


def load_postgres(engine: Engine, chunks: Iterator[Chunk], now_epoch: int) -> LoadStats:
    """COPY FROM STDIN per table and chunk: the fastest way rows get into PostgreSQL."""
    stats = LoadStats()
    items = ItemsJson()
    raw = engine.raw_connection()
    try:
        connection: Any = raw.driver_connection
        started = time.perf_counter()
        for chunk in chunks:
            customers = customer_rows(chunk, now_epoch)
            orders = order_rows(chunk, items)
            consents = consent_rows(chunk, sqlite=False)
            with connection.cursor() as cursor:
                for table, columns, rows in (
                    ("customers", CUSTOMER_COLUMNS, customers),
                    ("orders", ORDER_COLUMNS, orders),
                    ("consents", CONSENT_COLUMNS, consents),
                ):
                    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
            connection.commit()
            stats.customers += len(customers)
            stats.orders += len(orders)
            stats.consents += len(consents)
            _progress(stats, started)
        with connection.cursor() as cursor:
            # Ids were written explicitly; later inserts must continue after them.
            for table in ("customers", "orders", "consents", "managers"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {table}))"
                )
            cursor.execute("ANALYZE")
        connection.commit()
        stats.seconds = time.perf_counter() - started
    finally:
        raw.close()
    return stats


def write_csv(folder: Path, chunks: Iterator[Chunk]) -> LoadStats:
    """customers.csv and orders.csv with the importer's English headers."""
    folder.mkdir(parents=True, exist_ok=True)
    stats = LoadStats()
    started = time.perf_counter()
    with (
        (folder / "customers.csv").open("w", newline="", encoding="utf-8") as customers_file,
        (folder / "orders.csv").open("w", newline="", encoding="utf-8") as orders_file,
    ):
        customers_out = csv.writer(customers_file)
        orders_out = csv.writer(orders_file)
        customers_out.writerow(("external_id", "name", "phone", "time_zone", "locale"))
        orders_out.writerow(
            ("order_id", "customer_id", "placed_at", "delivered_at", "amount", "currency", "status")
        )
        for chunk in chunks:
            c, o = chunk.customers, chunk.orders
            first_id = chunk.first_customer_id
            customers_out.writerows(
                (f"C{first_id + i:07d}", c.name[i], c.phone[i], c.time_zone[i], c.locale[i])
                for i in range(len(c))
            )
            owners = o.customer_index.tolist()
            delivered = o.delivered_at.tolist()
            placed_at, amounts, statuses = (
                o.placed_at.tolist(),
                o.amount_minor.tolist(),
                o.status.tolist(),
            )
            orders_out.writerows(
                (
                    f"O{chunk.first_order_id + k:08d}",
                    f"C{first_id + owner:07d}",
                    _iso(placed),
                    _iso(delivered[k]) if delivered[k] != NO_DELIVERY else "",
                    f"{amount // 100}.{amount % 100:02d}",
                    "RUB",
                    STATUS_NAMES[status],
                )
                for k, (owner, placed, amount, status) in enumerate(
                    zip(owners, placed_at, amounts, statuses, strict=True)
                )
            )
            stats.customers += len(c)
            stats.orders += len(o)
            _progress(stats, started)
    stats.seconds = time.perf_counter() - started
    return stats


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _progress(stats: LoadStats, started: float) -> None:
    elapsed = time.perf_counter() - started
    print(
        f"  {stats.customers:>10,} customers {stats.orders:>11,} orders "
        f"{stats.consents:>10,} consents  {elapsed:7.1f} s  {stats.rows / elapsed:>9,.0f} rows/s",
        file=sys.stderr,
        flush=True,
    )


def build(
    database_url: str | None,
    customers: int,
    orders_per_customer: float,
    seed: int,
    now: datetime,
    csv_folder: Path | None = None,
    chunk_customers: int = CHUNK_CUSTOMERS,
) -> LoadStats:
    """Generate the shop into a database (schema migrated first) or into CSV files."""
    now_epoch = int(now.timestamp())
    chunks = generate(customers, orders_per_customer, seed, now_epoch, chunk_customers)
    if csv_folder is not None:
        return write_csv(csv_folder, chunks)
    if database_url is None:
        raise ValueError("a database URL or a CSV folder is needed")
    app = open_app(Settings(database_url=database_url), clock=FixedClock(now))
    try:
        _refuse_non_empty(app.engine)
        _managers(app.engine)
        if app.engine.dialect.name == "postgresql":
            return load_postgres(app.engine, chunks, now_epoch)
        return load_sqlite(app.engine, chunks, now_epoch)
    finally:
        app.engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="sqlite:///bench-data/shop-1m.db")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders-per-customer", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--as-of",
        default=None,
        help="ISO date-time the history ends at (default: now); fixed values give identical data",
    )
    parser.add_argument("--csv", type=Path, default=None, metavar="DIR")
    args = parser.parse_args(argv)

    now = SystemClock().now() if args.as_of is None else datetime.fromisoformat(args.as_of)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    url = args.database_url
    if args.csv is None and url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    process = process_for(args.orders_per_customer)
    print(
        f"process: r={process.r} alpha={process.alpha:.2f} days a={process.a} b={process.b}; "
        f"{args.customers:,} customers, ~{args.orders_per_customer} orders each, as of {now:%F %T}",
        file=sys.stderr,
    )
    stats = build(
        None if args.csv else url,
        args.customers,
        args.orders_per_customer,
        args.seed,
        now,
        args.csv,
    )
    target = str(args.csv) if args.csv else url
    print(
        f"{target}: {stats.customers:,} customers, {stats.orders:,} orders, "
        f"{stats.consents:,} consents in {stats.seconds:.1f} s = {stats.rows / stats.seconds:,.0f} "
        f"rows/s ({stats.orders / stats.seconds:,.0f} orders/s)"
    )


if __name__ == "__main__":
    main()
