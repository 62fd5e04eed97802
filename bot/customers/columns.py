"""Which column of an export holds which field: Russian and English header synonyms, plus --map."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.errors import InputError

CUSTOMER_FIELDS: dict[str, tuple[str, ...]] = {
    "external_id": (
        "external_id",
        "id",
        "customer_id",
        "client_id",
        "ID клиента",
        "Код клиента",
        "Код",
    ),
    "name": ("name", "full_name", "ФИО", "Клиент", "Имя клиента"),
    "first_name": ("first_name", "Имя"),
    "phone": ("phone", "Телефон", "Мобильный телефон"),
    "email": ("email", "Почта", "E-mail", "Электронная почта"),
    "telegram_chat_id": ("telegram_chat_id", "telegram", "Telegram"),
    "locale": ("locale", "language", "Язык"),
    "time_zone": ("timezone", "time_zone", "tz", "Часовой пояс"),
    "birthday": ("birthday", "birth_date", "Дата рождения"),
    "tags": ("tags", "Теги"),
    "manager": ("manager", "Менеджер", "Ответственный"),
    "flagged": ("flagged", "Пометка"),
    "consent": ("consent", "consents", "Согласие"),
    "consent_at": ("consent_at", "Дата согласия"),
    "opted_out": ("opted_out", "Отписан"),
}
CUSTOMER_REQUIRED = ("external_id",)

ORDER_FIELDS: dict[str, tuple[str, ...]] = {
    "external_id": ("external_id", "order_id", "id", "number", "Номер заказа", "Номер", "№"),
    "customer": ("customer_id", "client_id", "customer", "ID клиента", "Код клиента"),
    "placed_at": ("placed_at", "created_at", "date", "order_date", "Дата заказа", "Дата"),
    "delivered_at": ("delivered_at", "delivery_date", "Дата доставки"),
    "amount": ("amount", "total", "sum", "Сумма"),
    "currency": ("currency", "Валюта"),
    "status": ("status", "Статус"),
    "items": ("items", "Товары"),
}
ORDER_REQUIRED = ("external_id", "customer", "placed_at")


def header_key(header: str) -> str:
    """Headers compare without case, spaces, underscores, hyphens: "E-mail" == "email"."""
    return re.sub(r"[\s_\-]+", "", header.replace("\ufeff", "")).casefold()


@dataclass(frozen=True)
class ColumnMap:
    """field -> index into a row; plus the headers nothing uses (reported once as a note)."""

    fields: dict[str, int]
    unknown: tuple[str, ...]


def parse_map_options(options: Sequence[str]) -> dict[str, str]:
    """`--map field=Header` options as {field: header}."""
    mapping: dict[str, str] = {}
    for option in options:
        field, sep, header = option.partition("=")
        if not sep or not field.strip() or not header.strip():
            raise InputError("--map", f"expected field=Header, got {option!r}")
        mapping[field.strip()] = header.strip()
    return mapping


def match_columns(
    path: str,
    header: Sequence[str],
    synonyms: Mapping[str, tuple[str, ...]],
    required: Sequence[str],
    overrides: Mapping[str, str],
) -> ColumnMap:
    """Map the file's header to fields; InputError naming the file when a required one is missing.

    Explicit --map entries win; otherwise the first header matching a field's synonym is used, so a
    second "Телефон" column is ignored rather than silently overwriting the first.
    """
    keys = [header_key(h) for h in header]
    fields: dict[str, int] = {}
    for field, wanted in overrides.items():
        if field not in synonyms:
            known = ", ".join(synonyms)
            raise InputError(path, f"--map names unknown field {field!r} (fields: {known})")
        try:
            fields[field] = keys.index(header_key(wanted))
        except ValueError:
            raise InputError(
                path, f"--map {field}={wanted}: the file has no column {wanted!r}"
            ) from None
    taken = set(fields.values())
    lookup: dict[str, str] = {}
    for field, names in synonyms.items():
        for name in names:
            lookup.setdefault(header_key(name), field)
    for index, key in enumerate(keys):
        found = lookup.get(key)
        if found is not None and found not in fields and index not in taken:
            fields[found] = index
            taken.add(index)
    for field in required:
        if field not in fields:
            accepted = ", ".join(repr(name) for name in synonyms[field])
            raise InputError(
                path,
                f"no column for required field {field!r}: expected one of {accepted} "
                f"(or --map {field}=<header>)",
            )
    unknown = tuple(h for index, h in enumerate(header) if index not in taken and h.strip())
    return ColumnMap(fields=fields, unknown=unknown)
