"""Benchmark of the full rhythm rebuild: `refresh_rhythm(engine)` on an existing database.

    .venv/bin/python scripts/bench/rhythm_refresh.py [--database-url sqlite:///bench-data/shop-1m.db]
        [--by-ids 50000]

Rebuilds `customer_rhythm` for every customer (it is a snapshot, so this changes nothing a
reader would see) and prints the time, the customers and orders it covered, and the time per
order. With --by-ids N it also refreshes N customers by id (the path an import takes when it
touched few customers) and prints the cost per order of those customers.
"""

from __future__ import annotations

import argparse
import time

from sqlalchemy import text

from bot.audience.rhythm import refresh_rhythm
from bot.db.session import create_db_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="sqlite:///bench-data/shop-1m.db")
    parser.add_argument("--by-ids", type=int, default=0, help="also refresh N customers by id")
    args = parser.parse_args()
    engine = create_db_engine(args.database_url)
    with engine.connect() as connection:
        orders = connection.execute(text("SELECT COUNT(*) FROM orders")).scalar_one()
    started = time.perf_counter()
    refresh_rhythm(engine)
    elapsed = time.perf_counter() - started
    with engine.connect() as connection:
        customers = connection.execute(text("SELECT COUNT(*) FROM customer_rhythm")).scalar_one()
    print(f"database:      {engine.dialect.name} ({args.database_url})")
    print(f"full rebuild:  {elapsed:.2f} s for {customers:,} customers, {orders:,} orders")
    print(f"               {elapsed / max(orders, 1) * 1e6:.2f} µs per order")
    if args.by_ids:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT customer_id, orders FROM customer_rhythm"
                    " ORDER BY (customer_id * 7919) % 1000003 LIMIT :n"
                ),
                {"n": args.by_ids},
            ).all()
        ids = [row[0] for row in rows]
        covered = sum(row[1] for row in rows)
        started = time.perf_counter()
        refresh_rhythm(engine, ids)
        elapsed = time.perf_counter() - started
        print(
            f"by ids:        {elapsed:.2f} s for {len(ids):,} customers, {covered:,} orders"
            f" = {elapsed / max(covered, 1) * 1e6:.2f} µs per order"
        )
    engine.dispose()


if __name__ == "__main__":
    main()
