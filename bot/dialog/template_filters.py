"""Locale filters for templates: `date`, `money` and `plural`, formatted by Babel (CLDR)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency

DEFAULT_CURRENCY = "RUB"


def date_filter(locale: str) -> Callable[[date], str]:
    def format_day(value: date, pattern: str = "d MMMM") -> str:
        """`12 марта` (ru), `12 March` (en); `pattern` is a CLDR date pattern."""
        if not isinstance(value, date):
            raise TypeError(f"date filter needs a date, got {type(value).__name__}")
        day = value.date() if isinstance(value, datetime) else value
        return str(format_date(day, pattern, locale=locale))

    return format_day


def money_filter(locale: str) -> Callable[..., str]:
    standard = Locale.parse(locale).currency_formats["standard"].pattern
    whole = standard.replace(".00", "")

    def money(amount: int | float | Decimal, currency: str = DEFAULT_CURRENCY) -> str:
        """`1 990 ₽` for a whole amount, `1 990,50 ₽` otherwise; amount in major units."""
        if isinstance(amount, bool) or not isinstance(amount, int | float | Decimal):
            raise TypeError(f"money filter needs a number, got {type(amount).__name__}")
        number = Decimal(str(amount))
        pattern = whole if number == number.to_integral_value() else standard
        return str(
            format_currency(number, currency, format=pattern, locale=locale, currency_digits=False)
        )

    return money


def plural_filter(locale: str) -> Callable[..., str]:
    rules = Locale.parse(locale).plural_form

    def plural(count: int, *forms: str) -> str:
        """`3 заказа`: the count and the form its CLDR plural category takes.

        Russian takes (one, few, many): 1 заказ, 2 заказа, 5 заказов; English (one, other).
        """
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError(f"plural filter needs an integer, got {type(count).__name__}")
        return f"{count} {choose(rules(count), forms, locale)}"

    return plural


def choose(category: str, forms: tuple[str, ...], locale: str) -> str:
    if locale == "ru":
        if len(forms) != 3:
            raise TypeError("plural in Russian takes three forms: заказ, заказа, заказов")
        return {"one": forms[0], "few": forms[1], "many": forms[2]}.get(category, forms[1])
    if len(forms) != 2:
        raise TypeError("plural in English takes two forms: order, orders")
    return forms[0] if category == "one" else forms[1]


def locale_filters(locale: str) -> dict[str, Callable[..., str]]:
    return {
        "date": date_filter(locale),
        "money": money_filter(locale),
        "plural": plural_filter(locale),
    }
