"""`boomerang dialogs check`: every class of mistake in a script, with file:line and step."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.app import app
from bot.dialog.library import load_library

PACK = """\
yes: [{yes}]
no: [{no}]
numbers: {{0: [{zero}]}}
stop: [{stop}]
stop_confirmation: "{bye}"
buttons: {{yes: "{yes}", no: "{no}"}}
no_input_default: "?"
no_match_default: "?"
"""

BASE = """\
id: t
title: T
locale: ru
start: intro
steps:
  intro:
    say: Здравствуйте, {{ first_name }}!
    ask: {type: yes_no}
    on: {yes: bye, no: bye}
  bye:
    say: До свидания.
    end: declined
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    packs = tmp_path / "_locale"
    packs.mkdir()
    ru = {"yes": "да", "no": "нет", "zero": "ноль", "stop": "стоп", "bye": "Хорошо."}
    en = {"yes": "yes", "no": "no", "zero": "zero", "stop": "stop", "bye": "Okay."}
    (packs / "ru.yaml").write_text(PACK.format(**ru), encoding="utf-8")
    (packs / "en.yaml").write_text(PACK.format(**en), encoding="utf-8")
    return tmp_path


def check(folder: Path, text: str, max_spoken_chars: int = 300) -> tuple[list[str], list[str]]:
    (folder / "t.ru.yaml").write_text(text, encoding="utf-8")
    library = load_library(folder, max_spoken_chars)
    prefix = f"{folder}/"
    return (
        [str(p).removeprefix(prefix) for p in library.errors],
        [str(p).removeprefix(prefix) for p in library.warnings],
    )


def steps(*extra: str) -> str:
    return BASE + "".join(extra)


def test_a_clean_script_has_no_problems(folder: Path) -> None:
    assert check(folder, BASE) == ([], [])


def test_schema_errors_are_listed_with_their_lines(folder: Path) -> None:
    text = BASE.replace("    end: declined", "    end: declined\n    nxt: intro").replace(
        "{type: yes_no}", "{type: maybe}"
    )
    errors, _ = check(folder, text)
    assert errors[0].startswith("t.ru.yaml:8: step 'intro': unknown ask type 'maybe'")
    assert errors[1] == "t.ru.yaml:13: step 'bye': unknown field 'nxt'"


def test_an_unknown_start_step_is_an_error(folder: Path) -> None:
    errors, warnings = check(folder, BASE.replace("start: intro", "start: hello"))
    assert "t.ru.yaml:4: start step 'hello' does not exist" in errors


def test_routes_to_unknown_steps_are_errors(folder: Path) -> None:
    text = BASE.replace("{yes: bye, no: bye}", "{yes: bye, no: nowhere}").replace(
        "    end: declined",
        "    next: gone\n  ask_more:\n    say: Ещё?\n    ask: {type: text}\n    else: lost\n"
        "    no_input: {then: void}",
    )
    errors, _ = check(folder, text)
    assert errors == [
        "t.ru.yaml:9: step 'intro': route 'no' goes to unknown step 'nowhere'",
        "t.ru.yaml:12: step 'bye': next goes to unknown step 'gone'",
        "t.ru.yaml:16: step 'ask_more': else goes to unknown step 'lost'",
        "t.ru.yaml:17: step 'ask_more': no_input.then goes to unknown step 'void'",
    ]


def test_an_unreachable_step_is_a_warning(folder: Path) -> None:
    errors, warnings = check(
        folder, steps("  lonely:\n    say: Никто не придёт.\n    end: declined\n")
    )
    assert errors == []
    assert warnings == ["t.ru.yaml:13: step 'lonely': unreachable from the start step"]


def test_a_step_with_no_way_out_is_an_error(folder: Path) -> None:
    errors, _ = check(folder, BASE.replace("    end: declined\n", ""))
    assert errors == [
        "t.ru.yaml:10: step 'bye': no way out: the step has no `ask`, `next` or `end`"
    ]


def test_scale_values_without_a_route_are_named(folder: Path) -> None:
    text = BASE.replace("{type: yes_no}", "{type: scale, min: 0, max: 10}").replace(
        "{yes: bye, no: bye}", '{"9-10": bye, "5": bye, "7-7": bye}'
    )
    errors, _ = check(folder, text)
    assert errors == [
        "t.ru.yaml:9: step 'intro': answers with no route: 0-4, 6, 8 (add `on` routes or `else`)"
    ]


def test_a_yes_no_without_no_and_a_choice_with_an_unrouted_option_are_errors(folder: Path) -> None:
    text = steps(
        "  why:\n    say: Почему?\n    ask:\n      type: choice\n      options:\n"
        "        price: {label: Дорого}\n        other: {label: Другое}\n"
        "    on: {price: bye}\n"
    ).replace("{yes: bye, no: bye}", "{yes: why}")
    errors, _ = check(folder, text)
    assert errors == [
        "t.ru.yaml:9: step 'intro': answers with no route: no (add `on` routes or `else`)",
        "t.ru.yaml:20: step 'why': answers with no route: other (add `on` routes or `else`)",
    ]


def test_else_covers_every_unrouted_answer(folder: Path) -> None:
    text = BASE.replace("{yes: bye, no: bye}", "{yes: bye}\n    else: bye")
    assert check(folder, text) == ([], [])


def test_free_text_on_a_choice_needs_else(folder: Path) -> None:
    text = BASE.replace(
        "{type: yes_no}", "{type: choice, options: {a: {label: A}}, free_text: true}"
    ).replace("{yes: bye, no: bye}", "{a: bye}")
    errors, _ = check(folder, text)
    assert errors == [
        "t.ru.yaml:9: step 'intro': answers with no route: free text (add `on` routes or `else`)"
    ]


def test_route_keys_that_do_not_fit_the_ask_are_errors(folder: Path) -> None:
    text = steps(
        "  why:\n    say: Почему?\n"
        "    ask: {type: choice, options: {price: {label: Дорого}}}\n"
        "    on: {price: bye, cheap: bye, yes: bye}\n"
        "  score:\n    say: Оценка?\n    ask: {type: scale, min: 1, max: 5}\n"
        '    on: {"1-5": bye, "0": bye, "6-9": bye, "loud": bye}\n'
    ).replace("{yes: bye, no: bye}", "{yes: why, no: score}")
    errors, _ = check(folder, text)
    assert errors == [
        "t.ru.yaml:16: step 'why': route 'cheap' does not fit the ask: the options are price",
        "t.ru.yaml:16: step 'why': route 'yes' does not fit the ask: the options are price",
        "t.ru.yaml:20: step 'score': route '0' does not fit the ask: outside the scale 1-5",
        "t.ru.yaml:20: step 'score': route '6-9' does not fit the ask: outside the scale 1-5",
        "t.ru.yaml:20: step 'score': route 'loud' does not fit the ask:"
        " a scale route is a number or a range like 7-8",
    ]


def test_a_record_name_that_is_not_a_lowercase_name_is_an_error(folder: Path) -> None:
    errors, _ = check(
        folder,
        BASE.replace("    ask: {type: yes_no}", "    ask: {type: yes_no}\n    record: Reason!"),
    )
    assert len(errors) == 1
    assert errors[0].startswith("t.ru.yaml:9: step 'intro': record 'Reason!' is neither a known")


def test_an_end_outcome_that_is_not_a_lowercase_name_is_an_error(folder: Path) -> None:
    errors, _ = check(folder, BASE.replace("end: declined", "end: Won Back"))
    assert errors == [
        "t.ru.yaml:12: step 'bye': end outcome 'Won Back' is neither known (offer_accepted,"
        " feedback_given, declined, callback_booked, opted_out, handed_off, no_answer)"
        " nor a lowercase custom name"
    ]
    assert check(folder, BASE.replace("end: declined", "end: won_back")) == ([], [])


def test_variables_the_context_does_not_provide(folder: Path) -> None:
    text = BASE.replace("start: intro", "variables: [pet_name]\nstart: intro").replace(
        "До свидания.", "Пока, {{ pet_name }} и {{ dog_name }}!"
    )
    errors, warnings = check(folder, text)
    assert errors == [
        "t.ru.yaml:12: step 'bye': say: variable 'dog_name' is not provided by the campaign"
        " context nor declared in `variables`"
    ]
    assert warnings == ["t.ru.yaml:4: variable 'pet_name' is not provided by the campaign context"]


def test_a_template_syntax_error_adds_the_template_line_to_the_step_line(folder: Path) -> None:
    text = BASE.replace(
        "    say: До свидания.", "    say: |\n      До свидания,\n      {{ first_name"
    )
    errors, _ = check(folder, text)
    assert len(errors) == 1
    assert errors[0].startswith("t.ru.yaml:13: step 'bye': say: template syntax:")


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ ''.__class__ }}", "access to '__class__' is not allowed"),
        ("{{ first_name['__globals__'] }}", "access to '__globals__' is not allowed"),
        ("{{ first_name|attr('upper') }}", "filter 'attr' is not allowed"),
        ("{{ first_name|pprint }}", "filter 'pprint' is not allowed"),
        ("{% if first_name is callable %}x{% endif %}", "test 'callable' is not allowed"),
        ("{% include 'x' %}", "{% include %} is not allowed"),
        ("{% import 'x' as y %}", "{% import %} is not allowed"),
        ("{% from 'x' import y %}", "{% from ... import %} is not allowed"),
        ("{% extends 'x' %}", "{% extends %} is not allowed"),
        ("{% macro m() %}x{% endmacro %}", "{% macro %} is not allowed"),
        ("{% call first_name() %}x{% endcall %}", "{% call %} is not allowed"),
        ("{{ 'a' * 10 ** 9 }}", "the ** operator is not allowed"),
    ],
)
def test_constructs_the_sandbox_forbids_are_errors(
    folder: Path, template: str, reason: str
) -> None:
    errors, _ = check(folder, BASE.replace("До свидания.", f'"{template}"'))
    assert any(e.startswith(f"t.ru.yaml:11: step 'bye': say: {reason}") for e in errors), errors


def test_a_template_that_builds_a_huge_value_is_an_error(folder: Path) -> None:
    errors, _ = check(folder, BASE.replace("До свидания.", "'{{ first_name * 100000 }}'"))
    assert len(errors) == 1
    assert "repeating a value builds more than 10000 items" in errors[0], errors


def test_a_template_that_fails_with_the_sample_context_is_an_error(folder: Path) -> None:
    errors, _ = check(folder, BASE.replace("До свидания.", "'{{ first_name + 1 }}'"))
    assert len(errors) == 1
    assert errors[0].startswith("t.ru.yaml:11: step 'bye': say: fails to render: TypeError:")


def test_colliding_voice_synonyms_and_dtmf_digits_are_errors(folder: Path) -> None:
    text = BASE.replace(
        "{type: yes_no}",
        "\n      type: choice\n      options:\n"
        "        price: {label: Дорого, synonyms: [Цены высокие!], dtmf: '1'}\n"
        "        quality: {label: Качество, synonyms: [цены  высокие], dtmf: '1'}",
    ).replace("{yes: bye, no: bye}", "{price: bye, quality: bye}")
    errors, _ = check(folder, text)
    assert errors == [
        "t.ru.yaml:12: step 'intro': DTMF digit 1 is used by both 'price' and 'quality'",
        "t.ru.yaml:12: step 'intro': voice phrase 'цены высокие' picks both 'price' and 'quality'",
    ]


def test_a_prompt_too_long_to_speak_is_a_warning_with_a_configurable_limit(folder: Path) -> None:
    text = BASE.replace("До свидания.", "<b>До свидания</b>, {{ first_name }}, до встречи.")
    assert check(folder, text, max_spoken_chars=30) == ([], [])
    errors, warnings = check(folder, text, max_spoken_chars=25)
    assert errors == []
    assert warnings == [
        "t.ru.yaml:11: step 'bye': say: 30 characters spoken (over 25): too long to listen to"
    ]


def test_html_outside_the_telegram_subset_is_an_error(folder: Path) -> None:
    text = BASE.replace(
        "До свидания.", "'<h1>До</h1> <a href=\"https://x\">свидания</a> <b class=x>!</b> <i>'"
    )
    errors, _ = check(folder, text)
    assert errors == [
        "t.ru.yaml:11: step 'bye': say: <b> takes no attributes",
        "t.ru.yaml:11: step 'bye': say: <i> is not closed",
        "t.ru.yaml:11: step 'bye': say: HTML tag <h1> is not allowed;"
        " use <a> <b> <code> <i> <s> <u>",
    ]


def test_a_locale_without_a_pack_is_an_error(folder: Path) -> None:
    (folder / "_locale" / "ru.yaml").unlink()
    errors, _ = check(folder, BASE)
    assert errors == ["t.ru.yaml:3: locale 'ru' has no locale pack"]


def test_the_command_exits_1_on_errors_and_0_on_warnings_alone(folder: Path) -> None:
    runner = CliRunner()
    script = folder / "t.ru.yaml"
    script.write_text(steps("  lonely:\n    say: x\n    end: declined\n"), encoding="utf-8")
    result = runner.invoke(app, ["dialogs", "check", str(folder)])
    assert result.exit_code == 0, result.output
    assert "warnings (1):" in result.output and "errors" not in result.output.split("checked")[0]
    script.write_text(BASE.replace("start: intro", "start: nope"), encoding="utf-8")
    result = runner.invoke(app, ["dialogs", "check", str(script)])
    assert result.exit_code == 1
    assert f"  {script}:4: start step 'nope' does not exist" in result.output
    assert result.output.rstrip().endswith(
        "checked 1 scripts, 2 locale packs: 1 errors, 2 warnings"
    )
