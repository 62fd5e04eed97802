"""Benchmark of `import orders`: rows/s and peak memory against a parse-only baseline.

    .venv/bin/python scripts/bench/import_orders.py [--orders 500000] [--customers 50000]
        [--database-url postgresql://...]

Generates the CSV files in a temporary directory, imports the customers first (not timed), then
times the orders import into a fresh database (a temporary SQLite file unless --database-url is
given; that database must be empty). The baseline is reading and splitting the same CSV with the
csv module, so the ratio shows what validation and the database cost on top of reading. The
import time includes the rhythm refresh the import ends with (printed separately as well). Files
above `PARALLEL_MIN_BYTES` are validated by a forked child, whose peak memory is printed too.
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.app import open_app
from bot.clock import FixedClock
from bot.customers import importer
from bot.customers.importer import ImportOptions, import_customers, import_orders
from bot.settings import Settings

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def write_customers(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(["ID клиента", "ФИО", "Телефон"])
        for i in range(count):
            writer.writerow([f"C{i}", f"Клиент {i}", f"+7912{i:07d}"])


def write_orders(path: Path, count: int, customers: int, seed: int = 7) -> None:
    """Russian-style export: `;`, DD.MM.YYYY HH:MM dates, decimal commas, Russian statuses."""
    rng = random.Random(seed)
    statuses = ("доставлен", "выполнен", "отменён", "оплачен", "")
    start = NOW - timedelta(days=3 * 365)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(
            [
                "Номер заказа",
                "Код клиента",
                "Дата заказа",
                "Дата доставки",
                "Сумма",
                "Статус",
                "Товары",
            ]
        )
        for i in range(count):
            placed = start + timedelta(seconds=rng.randrange(3 * 365 * 86_400 - 10 * 86_400))
            delivered = placed + timedelta(days=rng.randrange(1, 8))
            amount = rng.randrange(100, 5_000_000)
            writer.writerow(
                [
                    f"O{i}",
                    f"C{rng.randrange(customers)}",
                    placed.strftime("%d.%m.%Y %H:%M"),
                    delivered.strftime("%Y-%m-%d %H:%M"),
                    f"{amount // 100:,}".replace(",", "\u00a0") + f",{amount % 100:02d}",
                    rng.choice(statuses),
                    f"Товар {rng.randrange(1000)} x{rng.randrange(1, 4)}",
                ]
            )


def parse_only(path: Path) -> tuple[float, int]:
    started = time.perf_counter()
    rows = 0
    with path.open(encoding="utf-8", newline="") as source:
        for _row in csv.reader(source, delimiter=";"):
            rows += 1
    return time.perf_counter() - started, rows - 1


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    peak = resource.getrusage(who).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class TimedRefresh:
    """Times refresh_rhythm (another component, called at the end of an orders import)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.inner = importer.refresh_rhythm

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        self.inner(*args, **kwargs)
        self.seconds += time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=500_000)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=ImportOptions().batch_size)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="boomerang-bench-") as tmp:
        folder = Path(tmp)
        customers_csv, orders_csv = folder / "customers.csv", folder / "orders.csv"
        write_customers(customers_csv, args.customers)
        write_orders(orders_csv, args.orders, args.customers)
        url = args.database_url or f"sqlite:///{folder / 'bench.db'}"
        app = open_app(Settings(database_url=url), clock=FixedClock(NOW))
        options = ImportOptions(batch_size=args.batch_size)
        import_customers(app, customers_csv, options)

        baseline, rows = parse_only(orders_csv)
        refresh = TimedRefresh()
        importer.refresh_rhythm = refresh  # type: ignore[assignment]
        started = time.perf_counter()
        report = import_orders(app, orders_csv, options)
        elapsed = time.perf_counter() - started
        rhythm = refresh.seconds
        again_started = time.perf_counter()
        again = import_orders(app, orders_csv, options)
        again_elapsed = time.perf_counter() - again_started
        app.engine.dispose()

    size_mib = orders_csv.stat().st_size / 2**20 if orders_csv.exists() else 0.0
    print(f"database:        {app.engine.dialect.name}")
    print(
        f"orders:          {rows:,} rows ({report.created:,} created, {report.failed} failed)"
        + (f", {size_mib:.0f} MiB" if size_mib else "")
    )
    print(f"import:          {elapsed:.2f} s = {rows / elapsed:,.0f} rows/s")
    own = elapsed - rhythm
    print(
        f"  of which rhythm refresh {rhythm:.2f} s; without it {own:.2f} s = "
        f"{rows / own:,.0f} rows/s"
    )
    print(
        f"re-import:       {again_elapsed:.2f} s = {rows / again_elapsed:,.0f} rows/s "
        f"({again.unchanged:,} unchanged, {again.updated} updated)"
    )
    print(f"parse-only:      {baseline:.2f} s = {rows / baseline:,.0f} rows/s (csv module)")
    print(f"ratio:           import takes {elapsed / baseline:.1f}x the parse-only time")
    print(
        f"peak memory:     {peak_rss_mib():.0f} MiB (ru_maxrss, this process); validating child"
        f" {peak_rss_mib(resource.RUSAGE_CHILDREN):.0f} MiB"
    )


if __name__ == "__main__":
    main()
