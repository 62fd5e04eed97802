"""Cell parsers of the import: dates, money, statuses, items, phones, consent tokens, headers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.customers.columns import CUSTOMER_FIELDS, CUSTOMER_REQUIRED, match_columns
from bot.customers.consents import parse_consent
from bot.customers.phones import normalise_phone
from bot.customers.values import (
    InstantParser,
    parse_amount_minor,
    parse_date,
    parse_items,
    parse_status,
    parse_tags,
)
from bot.errors import InputError

MOSCOW = ZoneInfo("Europe/Moscow")


def _utc(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp())  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-12", _utc(2026, 3, 11, 21, 0)),
        ("2026-03-12 10:00", _utc(2026, 3, 12, 7, 0)),
        ("2026-03-12T10:00", _utc(2026, 3, 12, 7, 0)),
        ("2026-03-12 10:00:30", _utc(2026, 3, 12, 7, 0, 30)),
        ("2026-03-12T10:00:00+03:00", _utc(2026, 3, 12, 7, 0)),
        ("2026-03-12T10:00:00Z", _utc(2026, 3, 12, 10, 0)),
        ("2026-03-12T10:00:00+0500", _utc(2026, 3, 12, 5, 0)),
        ("12.03.2026", _utc(2026, 3, 11, 21, 0)),
        ("12.03.2026 10:00", _utc(2026, 3, 12, 7, 0)),
        ("12.03.2026 10:00:59", _utc(2026, 3, 12, 7, 0, 59)),
        (" 12.03.2026 10:00 ", _utc(2026, 3, 12, 7, 0)),
    ],
)
def test_dates_in_iso_and_russian_forms_are_read_in_the_shop_zone(text: str, expected: int) -> None:
    assert InstantParser(MOSCOW)(text) == expected


@pytest.mark.parametrize(
    "text",
    ["2026-02-30", "31.04.2026", "2026-03-12 25:00", "12.03.2026 10:61", "вчера", "12/03/2026"],
)
def test_impossible_dates_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        InstantParser(MOSCOW)(text)


def test_birthdays_are_calendar_dates() -> None:
    assert parse_date("01.02.1990") == date(1990, 2, 1)
    assert parse_date("1990-02-01") == date(1990, 2, 1)


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("1 990,50", 199050),
        ("1990.5", 199050),
        ("1\u00a0990,50", 199050),
        ("1\u202f990", 199000),
        ("1,990.50", 199050),
        ("1.990,50", 199050),
        ("1990", 199000),
        ("0,99", 99),
        ("1 990,50 ₽", 199050),
        ("10.005", 1001),
    ],
)
def test_amounts_with_decimal_commas_and_thousand_spaces_become_minor_units(
    text: str, minor: int
) -> None:
    assert parse_amount_minor(text) == minor


@pytest.mark.parametrize("text", ["", "abc", "-5", "1,2,3.4.5"])
def test_bad_amounts_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_amount_minor(text)


@pytest.mark.parametrize(
    ("text", "delivered", "status"),
    [
        ("Новый", False, "placed"),
        ("оплачен", False, "paid"),
        ("Отправлен", False, "shipped"),
        ("Выполнен", True, "delivered"),
        ("completed", True, "delivered"),
        ("Отменён", False, "cancelled"),
        ("canceled", False, "cancelled"),
        ("Возврат", True, "returned"),
        ("", True, "delivered"),
        ("", False, "placed"),
    ],
)
def test_statuses_in_russian_and_english_map_to_ours(
    text: str, delivered: bool, status: str
) -> None:
    assert parse_status(text, delivered) == status


def test_items_from_text_or_json() -> None:
    assert parse_items("Чайник x2; Кружка") == [
        {"name": "Чайник", "qty": 2},
        {"name": "Кружка", "qty": 1},
    ]
    assert parse_items('[{"name": "Чайник", "qty": 2, "sku": "T1"}]') == [
        {"name": "Чайник", "qty": 2, "sku": "T1"}
    ]
    assert parse_items("") == []


def test_tags_split_on_commas_semicolons_and_bars() -> None:
    assert parse_tags("vip, опт;vip | новый") == ["vip", "опт", "новый"]


@pytest.mark.parametrize(
    "text", ["8 (912) 345-67-89", "+7 912 345 67 89", "89123456789", "9123456789"]
)
def test_russian_phone_formats_become_e164(text: str) -> None:
    assert normalise_phone(text, "RU") == "+79123456789"


@pytest.mark.parametrize("text", ["123", "телефон", "+7 912 345"])
def test_invalid_phones_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        normalise_phone(text, "RU")


def test_consent_tokens_expand_wildcards_and_withdrawals() -> None:
    assert parse_consent("telegram:* | -sms:marketing") == [
        ("telegram", "survey", True),
        ("telegram", "service", True),
        ("telegram", "marketing", True),
        ("sms", "marketing", False),
    ]
    assert len(parse_consent("*")) == 12
    with pytest.raises(ValueError, match="channel"):
        parse_consent("pigeon:marketing")


def test_headers_match_case_and_space_insensitively_in_russian_and_english() -> None:
    header = ["  код клиента ", "ФИО", "E-MAIL", "Мобильный телефон", "Колонка X"]
    columns = match_columns("c.csv", header, CUSTOMER_FIELDS, CUSTOMER_REQUIRED, {})
    assert columns.fields == {"external_id": 0, "name": 1, "email": 2, "phone": 3}
    assert columns.unknown == ("Колонка X",)


def test_map_option_overrides_header_matching() -> None:
    columns = match_columns(
        "c.csv",
        ["Код", "Номер покупателя"],
        CUSTOMER_FIELDS,
        CUSTOMER_REQUIRED,
        {"external_id": "Номер покупателя"},
    )
    assert columns.fields["external_id"] == 1


def test_a_file_without_the_id_column_fails_naming_file_and_field() -> None:
    with pytest.raises(InputError, match=r"c\.csv: no column for required field 'external_id'"):
        match_columns("c.csv", ["ФИО"], CUSTOMER_FIELDS, CUSTOMER_REQUIRED, {})
