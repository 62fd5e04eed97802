"""The render context: the names a campaign provides to templates, as plain values only."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import TypeAlias

Scalar: TypeAlias = str | int | float | bool | None | date | datetime | Decimal
Plain: TypeAlias = Scalar | tuple[Scalar, ...]
Context: TypeAlias = Mapping[str, Plain]

SCALAR_TYPES = (str, int, float, bool, type(None), date, datetime, Decimal)

CONTEXT_NAMES: tuple[str, ...] = (
    "first_name",
    "last_order_date",
    "last_order_items",
    "last_order_amount",
    "days_since_last_order",
    "order_number",
    "offer_code",
    "offer_discount",
    "offer_expires",
    "company_name",
    "manager_name",
    "customer_id",
)
"""What every campaign puts into the context; a script may use these without declaring them."""


def is_plain(value: object) -> bool:
    """True for a plain scalar or a tuple of plain scalars."""
    if isinstance(value, tuple):
        return all(isinstance(item, SCALAR_TYPES) for item in value)
    return isinstance(value, SCALAR_TYPES)


def plain_context(context: Mapping[str, object]) -> dict[str, Plain]:
    """A copy of `context` with every value checked; TypeError names the first key that is not."""
    checked: dict[str, Plain] = {}
    for key, value in context.items():
        if not isinstance(key, str) or not key.isidentifier() or key.startswith("_"):
            raise TypeError(f"context key {key!r} must be a name not starting with _")
        if not is_plain(value):
            raise TypeError(
                f"context value {key!r} is a {type(value).__name__}; only str, int, float, bool,"
                " None, date, datetime, Decimal and tuples of those are allowed"
            )
        checked[key] = value  # type: ignore[assignment]  # checked by is_plain
    return checked


def sample_context(locale: str, extra: tuple[str, ...] = ()) -> dict[str, Plain]:
    """A context with every campaign name filled with a typical value, for checks and benchmarks.

    Names in `extra` (a script's own `variables`) get their own name as a text value.
    """
    russian = locale == "ru"
    sample: dict[str, Plain] = {
        "first_name": "Анна" if russian else "Anna",
        "last_order_date": date(2026, 3, 12),
        "last_order_items": ("Кофе", "Фильтры") if russian else ("Coffee", "Filters"),
        "last_order_amount": Decimal("1990"),
        "days_since_last_order": 45,
        "order_number": "A-10234",
        "offer_code": "BACK-1024",
        "offer_discount": 15,
        "offer_expires": date(2026, 4, 1),
        "company_name": "Кофейня «Зерно»" if russian else "Bean Coffee",
        "manager_name": "Мария" if russian else "Maria",
        "customer_id": 1024,
    }
    for name in extra:
        sample.setdefault(name, name)
    return sample
