"""The schema is created by migrations and stores instants without losing their zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from bot.app import App, open_app
from bot.db.migrate import current_revision, head_revision
from bot.db.models import Customer, Order
from bot.settings import Settings


def test_first_open_migrates_an_empty_database_to_head(app: App) -> None:
    assert current_revision(app.engine) == head_revision(app.engine)


def test_reopening_a_migrated_database_changes_nothing(app: App, settings: Settings) -> None:
    with app.sessions.begin() as session:
        session.add(_customer("c1"))
    again = open_app(settings)
    with again.sessions() as session:
        assert session.scalars(select(Customer.external_id)).all() == ["c1"]
    again.engine.dispose()


def test_instants_round_trip_as_utc(app: App) -> None:
    placed = datetime(2026, 3, 12, 23, 30, tzinfo=timezone(timedelta(hours=10)))
    with app.sessions.begin() as session:
        customer = _customer("c1")
        session.add(customer)
        session.flush()
        session.add(
            Order(
                external_id="o1",
                customer_id=customer.id,
                placed_at=placed,
                currency="RUB",
                status="delivered",
                amount_minor=199000,
                items=[],
            )
        )
    with app.sessions() as session:
        order = session.scalars(select(Order)).one()
        assert order.placed_at == placed
        assert order.placed_at.tzinfo == UTC


def test_naive_datetimes_are_refused(app: App) -> None:
    with pytest.raises(Exception, match="naive datetime"), app.sessions.begin() as session:
        customer = _customer("c1")
        customer.created_at = datetime(2026, 1, 1)  # noqa: DTZ001 - the point of the test
        session.add(customer)


def _customer(external_id: str) -> Customer:
    now = datetime(2026, 11, 22, tzinfo=UTC)
    return Customer(external_id=external_id, tags=[], created_at=now, updated_at=now)
