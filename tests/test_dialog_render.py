"""Rendering: locale filters with exact strings, a plain-values context, a sandbox that holds."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from bot.dialog.loader import LoadedScript, load_script
from bot.dialog.renderer import TemplateRejected, compile_template, render, spoken
from bot.dialog.sandbox import environment

NBSP = "\u00a0"  # Babel's ru group separator and the space before the currency sign

SCRIPT = """\
id: r
title: R
locale: {locale}
start: a
steps:
  a:
    say: "{say}"
    no_input: {{say: "Алло, {{{{ first_name }}}}?"}}
    do:
      - issue_offer: {{code: "BACK-{{{{ customer_id }}}}", discount: 10}}
    end: declined
"""


def script(tmp_path: Path, say: str, locale: str = "ru") -> LoadedScript:
    path = tmp_path / f"r.{locale}.yaml"
    path.write_text(SCRIPT.format(locale=locale, say=say), encoding="utf-8")
    return load_script(path)


def text(template: str, locale: str = "ru", **context: object) -> str:
    return compile_template(template, locale).render(context)


def test_date_is_day_and_month_name_in_the_locale() -> None:
    assert text("{{ d | date }}", d=date(2026, 3, 12)) == "12 марта"
    assert text("{{ d | date }}", "en", d=datetime(2026, 3, 12, 9, 30, tzinfo=UTC)) == "12 March"


def test_money_has_no_decimals_for_whole_amounts_and_babel_spaces() -> None:
    assert text("{{ a | money }}", a=Decimal("1990")) == f"1{NBSP}990{NBSP}₽"
    assert text("{{ a | money }}", a=1990.5) == f"1{NBSP}990,50{NBSP}₽"
    assert text("{{ a | money }}", a=125000) == f"125{NBSP}000{NBSP}₽"
    assert text("{{ a | money('USD') }}", "en", a=1990) == "$1,990"
    assert text("{{ a | money('USD') }}", "en", a=Decimal("19.99")) == "$19.99"


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, "0 заказов"),
        (1, "1 заказ"),
        (2, "2 заказа"),
        (5, "5 заказов"),
        (11, "11 заказов"),
        (12, "12 заказов"),
        (21, "21 заказ"),
        (22, "22 заказа"),
        (25, "25 заказов"),
        (101, "101 заказ"),
        (111, "111 заказов"),
    ],
)
def test_russian_plural_follows_cldr(count: int, expected: str) -> None:
    assert text('{{ n | plural("заказ", "заказа", "заказов") }}', n=count) == expected


@pytest.mark.parametrize(
    ("count", "expected"), [(0, "0 orders"), (1, "1 order"), (21, "21 orders")]
)
def test_english_plural_has_one_and_other(count: int, expected: str) -> None:
    assert text('{{ n | plural("order", "orders") }}', "en", n=count) == expected


def test_render_fills_a_step_field_from_a_plain_context(tmp_path: Path) -> None:
    loaded = script(
        tmp_path,
        "{{ first_name }}, {{ items }}, {{ nothing }}: {{ n | plural('день', 'дня', 'дней') }}",
    )
    context = {"first_name": "Анна", "items": ("кофе", "фильтры"), "nothing": None, "n": 3}
    assert render(loaded, "a", "say", context) == "Анна, кофе, фильтры, : 3 дня"
    assert render(loaded, "a", "no_input.say", {"first_name": "Анна"}) == "Алло, Анна?"
    assert render(loaded, "a", "do.0.code", {"customer_id": 42}) == "BACK-42"


def test_a_context_value_that_is_not_plain_is_a_type_error_naming_the_key(tmp_path: Path) -> None:
    loaded = script(tmp_path, "{{ first_name }}")
    with pytest.raises(TypeError, match="'customer' is a dict"):
        render(loaded, "a", "say", {"first_name": "Анна", "customer": {"id": 1}})
    with pytest.raises(TypeError, match="'items' is a tuple"):
        render(loaded, "a", "say", {"first_name": "Анна", "items": (object(),)})


def test_a_missing_variable_fails_instead_of_rendering_empty(tmp_path: Path) -> None:
    with pytest.raises(UndefinedError):
        render(script(tmp_path, "{{ first_name }}"), "a", "say", {})


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ x|attr('__class__') }}",
        "{% include 'x' %}",
        "{{ 'a' * 10**9 }}",
    ],
)
def test_sandbox_escapes_are_refused_when_rendering(tmp_path: Path, template: str) -> None:
    loaded = script(tmp_path, template.replace('"', "'"))
    with pytest.raises(TemplateRejected):
        render(loaded, "a", "say", {"x": "x"})


@pytest.mark.parametrize(
    "template", ["{{ ''.__class__ }}", "{{ x.__class__ }}", "{{ cycler }}", "{{ range(3) }}"]
)
def test_the_environment_itself_holds_without_the_ast_check(template: str) -> None:
    # Defence in depth: compiled directly, past the construct check, the sandbox still refuses.
    with pytest.raises((SecurityError, UndefinedError)):
        environment("ru").from_string(template).render(x="x")


@pytest.mark.parametrize(
    "template", ["{{ 'ab' * 100000 }}", "{{ (x * 5000) * 5000 }}", "{{ 2 ** 1000 }}"]
)
def test_templates_cannot_build_huge_values(template: str) -> None:
    # The sandbox has no time or memory limit, so the operators that multiply sizes are capped.
    with pytest.raises(SecurityError):
        environment("ru").from_string(template).render(x="x")


def test_modest_repetition_still_renders() -> None:
    assert environment("ru").from_string("{{ '-' * 10 }}").render() == "----------"


def test_finalize_refuses_to_print_values_that_are_not_plain() -> None:
    with pytest.raises(TypeError, match="only print plain values, not dict"):
        text("{{ {'a': 1} }}")


def test_spoken_text_drops_tags_and_unescapes_entities() -> None:
    said = spoken('<b>Скидка</b> 15&nbsp;%  на <a href="https://x">заказ</a> &laquo;A&raquo;')
    assert said == "Скидка 15 % на заказ «A»"  # a no-break space is a space to a voice
