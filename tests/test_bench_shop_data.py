"""Smoke test of the benchmark shop generator (scripts/bench/shop_data.py) at a tiny size."""

from __future__ import annotations

import csv
import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import phonenumbers
import pytest
from sqlalchemy import func, select

from bot.app import open_app
from bot.customers.columns import CUSTOMER_FIELDS, ORDER_FIELDS
from bot.db.models import Consent, Customer, Order
from bot.settings import Settings

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench" / "shop_data.py"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def shop_data() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_shop_data", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_generator_loads_a_small_shop(shop_data: ModuleType, db_url: str) -> None:
    """SQLite through executemany, PostgreSQL through COPY."""
    stats = shop_data.build(db_url, 200, 5.0, seed=3, now=NOW, chunk_customers=64)

    app = open_app(Settings(database_url=db_url))
    try:
        with app.engine.connect() as connection:
            customers = connection.execute(select(func.count()).select_from(Customer)).scalar_one()
            orders = connection.execute(select(func.count()).select_from(Order)).scalar_one()
            consents = connection.execute(select(func.count()).select_from(Consent)).scalar_one()
            latest = connection.execute(select(func.max(Order.placed_at))).scalar_one()
            orphans = connection.execute(
                select(func.count())
                .select_from(Order)
                .where(Order.customer_id.not_in(select(Customer.id)))
            ).scalar_one()
        with app.sessions() as session:
            sample = session.scalars(select(Customer).limit(50)).all()
            # The ORM reads what the loader wrote behind its back: types round-trip.
            order = session.scalars(select(Order).limit(1)).one()
            # Explicit ids were written; the id sequences must have moved past them.
            session.add(Customer(external_id="after-load", created_at=NOW, updated_at=NOW))
            session.commit()
    finally:
        app.engine.dispose()

    assert (customers, orders, consents) == (stats.customers, stats.orders, stats.consents)
    assert customers == 200
    assert 3 * 200 < orders < 8 * 200  # about five per customer
    assert orphans == 0
    assert latest <= NOW
    assert order.items and order.currency == "RUB"
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(c.phone or "")) for c in sample)


def test_generator_is_deterministic_for_a_seed(shop_data: ModuleType) -> None:
    now = int(NOW.timestamp())
    first = [len(chunk.orders) for chunk in shop_data.generate(300, 4.0, 9, now, 100)]
    again = [len(chunk.orders) for chunk in shop_data.generate(300, 4.0, 9, now, 100)]
    assert first == again and len(first) == 3


def test_generator_writes_csv_with_the_importers_headers(
    shop_data: ModuleType, tmp_path: Path
) -> None:
    stats = shop_data.build(None, 120, 3.0, seed=1, now=NOW, csv_folder=tmp_path)
    with (tmp_path / "customers.csv").open(encoding="utf-8") as file:
        customers = list(csv.DictReader(file))
    with (tmp_path / "orders.csv").open(encoding="utf-8") as file:
        orders = list(csv.DictReader(file))

    assert len(customers) == 120 and len(orders) == stats.orders
    assert list(customers[0]) == ["external_id", "name", "phone", "time_zone", "locale"]
    assert list(orders[0]) == [
        "order_id",
        "customer_id",
        "placed_at",
        "delivered_at",
        "amount",
        "currency",
        "status",
    ]
    # Every header is one the importer recognises without --map.
    known = {
        name for names in (*CUSTOMER_FIELDS.values(), *ORDER_FIELDS.values()) for name in names
    }
    assert set(customers[0]) | set(orders[0]) <= known
    ids = {row["external_id"] for row in customers}
    assert all(row["customer_id"] in ids for row in orders)
    assert all(datetime.fromisoformat(row["placed_at"]) <= NOW for row in orders)
