"""Benchmark: lapsed cohort and customer scoring on a large shop, against pandas in the same run.

Usage (after `scripts/bench/shop_data.py` built the shop):

    .venv/bin/python scripts/bench/audience.py --database-url sqlite:///bench-data/shop-1m.db

It times, on the same database:
  1. the full rebuild of the rhythm snapshot (what an import of every order triggers),
  2. the lapsed cohort (what a campaign run or `audience preview --kind lapsed` does),
  3. `customers score` (BG/NBD fit, P(alive), expected orders, ABC/XYZ, priority, CSV),
  4. per-customer frequency, recency and T from our snapshot,
and the baseline: the same frequency, recency and T computed with a pandas groupby over the raw
orders read from the database. It checks that both give identical figures and prints the ratios.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import text

from bot.app import open_app
from bot.audience.lapse import LapseRule, lapsed
from bot.audience.rhythm import frequency_recency_age, refresh_rhythm
from bot.audience.score import score_customers
from bot.db.models import VOID_ORDER_STATUSES
from bot.settings import Settings


def timed(label: str, results: dict[str, float], fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    results[label] = time.perf_counter() - start
    print(f"  {label:<44} {results[label]:8.2f} s", flush=True)
    return value


def pandas_frequency_recency_age(engine, as_of: datetime) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    void = ", ".join(f"'{status}'" for status in VOID_ORDER_STATUSES)
    cutoff = int(as_of.timestamp())
    with engine.connect() as connection:
        orders = pd.read_sql_query(
            text(
                "SELECT customer_id, placed_at FROM orders "
                f"WHERE status NOT IN ({void}) AND placed_at < :cutoff"
            ),
            connection,
            params={"cutoff": cutoff},
        )
    return pandas_groupby(orders, cutoff)


def pandas_groupby(orders: pd.DataFrame, cutoff: int) -> pd.DataFrame:
    orders = orders.assign(day=orders["placed_at"] // 86_400)
    # The BG/NBD grid: recency in whole purchase days, age from the start of the first day.
    grouped = orders.groupby("customer_id").agg(
        days=("day", "nunique"), first=("placed_at", "min"), last=("placed_at", "max")
    )
    return pd.DataFrame(
        {
            "frequency": grouped["days"] - 1,
            "recency": (grouped["last"] // 86_400 - grouped["first"] // 86_400).astype(float),
            "T": (cutoff - grouped["first"] // 86_400 * 86_400) / 86_400,
        }
    ).sort_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="sqlite:///bench-data/shop-1m.db")
    parser.add_argument("--as-of", default=None, help="ISO date; default: the newest order + 1 day")
    parser.add_argument("--skip-refresh", action="store_true", help="reuse the existing snapshot")
    args = parser.parse_args()

    app = open_app(Settings(database_url=args.database_url))
    engine = app.engine
    with engine.connect() as connection:
        customers = connection.execute(text("SELECT count(*) FROM customers")).scalar_one()
        orders = connection.execute(text("SELECT count(*) FROM orders")).scalar_one()
        newest = connection.execute(text("SELECT max(placed_at) FROM orders")).scalar_one()
    if args.as_of:
        as_of = datetime.fromisoformat(args.as_of).replace(tzinfo=UTC)
    else:
        as_of = datetime.fromtimestamp(int(newest) + 86_400, UTC)
    print(
        f"{engine.dialect.name}: {customers:,} customers, {orders:,} orders, as of {as_of:%Y-%m-%d}"
    )

    results: dict[str, float] = {}
    if not args.skip_refresh:
        timed("rhythm snapshot, full rebuild", results, refresh_rhythm, engine)
    cohort = timed("lapsed cohort", results, lapsed, engine, as_of, LapseRule())
    print(f"    lapsed customers: {len(cohort):,}")
    with tempfile.TemporaryDirectory() as folder:
        scoring = timed(
            "customers score (incl. BG/NBD fit)", results, score_customers, engine, as_of, 90
        )
        out = Path(folder) / "scores.csv"
        timed("customers score: CSV written", results, scoring.write_csv, out)
    print(f"    model: {scoring.params}")
    ours = timed(
        "frequency/recency/T from the snapshot", results, frequency_recency_age, engine, as_of
    )

    baseline = timed(
        "baseline: pandas read_sql + groupby", results, pandas_frequency_recency_age, engine, as_of
    )
    cutoff = int(as_of.timestamp())
    with engine.connect() as connection:
        raw = pd.read_sql_query(
            text("SELECT customer_id, placed_at, status FROM orders"), connection
        )
    raw = raw[~raw["status"].isin(VOID_ORDER_STATUSES) & (raw["placed_at"] < cutoff)]
    timed("baseline: pandas groupby alone (in memory)", results, pandas_groupby, raw, cutoff)

    order = np.argsort(ours.customer_id)
    equal = (
        np.array_equal(ours.customer_id[order], baseline.index.to_numpy())
        and np.array_equal(ours.frequency[order], baseline["frequency"].to_numpy())
        and np.allclose(ours.recency_days[order], baseline["recency"].to_numpy(), rtol=0, atol=1e-9)
        and np.allclose(ours.age_days[order], baseline["T"].to_numpy(), rtol=0, atol=1e-9)
    )
    print(f"  identical frequency, recency, T for {len(baseline):,} customers: {equal}")

    base = results["baseline: pandas read_sql + groupby"]
    print("ratios (pandas read_sql + groupby time / ours):")
    print(f"  lapsed cohort:                        {base / results['lapsed cohort']:6.1f}x")
    snapshot = results["frequency/recency/T from the snapshot"]
    print(f"  frequency/recency/T:                  {base / snapshot:6.1f}x")
    if "rhythm snapshot, full rebuild" in results:
        cold = results["rhythm snapshot, full rebuild"] + results["lapsed cohort"]
        print(f"  cold (full rebuild + lapsed cohort):  {base / cold:6.1f}x")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS): {peak:.0f} MiB")
    if not equal:
        raise SystemExit("figures differ from the pandas baseline")


if __name__ == "__main__":
    main()
