"""Small helpers that insert customers and orders directly, for the audience tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from bot.app import App
from bot.db.models import Customer, Order

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(day: str, hour: int = 12, minute: int = 0) -> datetime:
    """`at("2026-11-20", 23, 30)` -> that instant in UTC."""
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=UTC)


def add_customer(
    app: App,
    external_id: str,
    *,
    name: str | None = None,
    time_zone: str | None = None,
    phone: str | None = None,
    birthday: date | None = None,
    **fields: object,
) -> int:
    with app.sessions.begin() as session:
        customer = Customer(
            external_id=external_id,
            name=name or external_id.title(),
            time_zone=time_zone,
            phone=phone,
            birthday=birthday,
            tags=[],
            created_at=T0,
            updated_at=T0,
            **fields,
        )
        session.add(customer)
        session.flush()
        return customer.id


_order_seq = [0]


def add_order(
    app: App,
    customer_id: int,
    placed_at: datetime,
    *,
    amount_minor: int = 100_00,
    status: str = "delivered",
    delivered_at: datetime | None = None,
    feedback_requested_at: datetime | None = None,
) -> str:
    _order_seq[0] += 1
    external_id = f"o{_order_seq[0]}"
    with app.sessions.begin() as session:
        session.add(
            Order(
                external_id=external_id,
                customer_id=customer_id,
                placed_at=placed_at,
                delivered_at=delivered_at,
                amount_minor=amount_minor,
                currency="RUB",
                status=status,
                items=[],
                feedback_requested_at=feedback_requested_at,
            )
        )
    return external_id


def add_orders_every(
    app: App, customer_id: int, first: datetime, gap_days: int, count: int, **kwargs: object
) -> None:
    for index in range(count):
        add_order(app, customer_id, first + timedelta(days=gap_days * index), **kwargs)  # type: ignore[arg-type]
