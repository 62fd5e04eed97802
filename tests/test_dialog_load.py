"""Loading a script: YAML with lines, the typed model, and errors that name file, line and step."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bot.dialog.library import load_locale_pack
from bot.dialog.loader import ScriptError, load_script
from bot.dialog.model import YesNoAsk

GOOD = """\
id: hello
title: Hello
locale: ru
start: ask
steps:
  ask:
    say: Привет, {{ first_name }}!
    ask: {type: yes_no}
    on:
      yes: bye
      no: bye
  bye:
    say: Пока.
    end: declined
"""


def write(tmp_path: Path, text: str, name: str = "hello.ru.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ScriptError) as caught:
        load_script(path, file=path.name)
    return [str(problem) for problem in caught.value.problems]


def test_a_good_script_loads_with_its_version_and_bare_on_yes_no_keys(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    loaded = load_script(path)
    assert loaded.version == hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert isinstance(loaded.script.steps["ask"].ask, YesNoAsk)
    assert loaded.script.steps["ask"].on == {"yes": "bye", "no": "bye"}
    assert loaded.lines.key(("steps", "ask", "on", "yes")) == 10
    assert loaded.lines.key(("steps", "bye", "end")) == 14


def test_the_version_changes_with_any_byte_of_the_file(tmp_path: Path) -> None:
    first = load_script(write(tmp_path, GOOD)).version
    second = load_script(write(tmp_path, GOOD + "# a comment\n")).version
    assert first != second and len(first) == len(second) == 12


def test_an_unknown_field_names_file_line_and_step(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("    end: declined", "    end: declined\n    sayy: x"))
    assert problems(path) == ["hello.ru.yaml:15: step 'bye': unknown field 'sayy'"]


def test_a_wrong_type_inside_an_ask_points_at_its_line(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    ask: {type: yes_no}",
        "    ask:\n      type: scale\n      min: zero",
    ).replace("      yes: bye\n      no: bye", "      '0-10': bye")
    assert problems(write(tmp_path, text)) == [
        "hello.ru.yaml:10: step 'ask': ask.min: input should be a valid integer,"
        " unable to parse string as an integer (got 'zero')"
    ]


def test_an_unknown_ask_type_lists_the_known_ones(tmp_path: Path) -> None:
    text = GOOD.replace("{type: yes_no}", "{type: multiple}")
    (message,) = problems(write(tmp_path, text))
    assert message.startswith("hello.ru.yaml:8: step 'ask': unknown ask type 'multiple'")
    assert "'yes_no', 'choice', 'scale', 'text', 'datetime', 'phone'" in message


def test_a_record_name_that_is_not_lowercase_is_explained(tmp_path: Path) -> None:
    text = GOOD.replace("    end: declined", "    end: declined\n    record: NPS")
    (message,) = problems(write(tmp_path, text))
    assert message.startswith("hello.ru.yaml:15: step 'bye': record 'NPS' is neither a known")
    assert message.endswith("nor a lowercase custom name")


def test_a_missing_top_level_field_is_reported_on_line_one(tmp_path: Path) -> None:
    text = GOOD.replace("title: Hello\n", "")
    assert problems(write(tmp_path, text)) == ["hello.ru.yaml:1: missing field 'title'"]


def test_a_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    text = GOOD.replace("    say: Пока.", "    say: [Пока.")
    (message,) = problems(write(tmp_path, text))
    assert message.startswith("hello.ru.yaml:14: YAML syntax:")


def test_a_duplicate_step_is_an_error_although_yaml_keeps_the_last(tmp_path: Path) -> None:
    text = GOOD + "  bye:\n    say: again\n    end: declined\n"
    assert problems(write(tmp_path, text)) == [
        "hello.ru.yaml:15: step 'bye': duplicate key 'bye' (first at line 12)"
    ]


def test_a_duplicate_field_in_a_step_is_an_error(tmp_path: Path) -> None:
    text = GOOD.replace("    say: Пока.", "    say: Пока.\n    say: Ещё раз пока.")
    assert problems(write(tmp_path, text)) == [
        "hello.ru.yaml:14: step 'bye': duplicate key 'say' (first at line 13)"
    ]


def test_a_locale_pack_reads_bare_yes_and_no_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "yes: [да, ага]\nno: [нет]\nnumbers: {0: [ноль], 1: [один, одна]}\nstop: [стоп]\n"
        "stop_confirmation: Больше не побеспокоим.\nbuttons: {yes: Да, no: Нет}\n"
        "no_input_default: Вы меня слышите?\nno_match_default: Не поняла.\n",
        "ru.yaml",
    )
    pack = load_locale_pack(path)
    assert pack.yes == ("да", "ага") and pack.no == ("нет",)
    assert pack.numbers[1] == ("один", "одна")
    assert pack.buttons.yes == "Да"


def test_a_locale_pack_with_a_missing_field_names_it(tmp_path: Path) -> None:
    path = write(tmp_path, "yes: [да]\nno: [нет]\nstop: [стоп]\n", "ru.yaml")
    with pytest.raises(ScriptError) as caught:
        load_locale_pack(path, file="ru.yaml")
    messages = [str(problem) for problem in caught.value.problems]
    assert "ru.yaml:1: missing field 'stop_confirmation'" in messages


def test_yaml_is_read_with_yaml_12_scalars_so_words_and_times_stay_text() -> None:
    import yaml

    from bot.dialog.loader import ScriptYamlLoader

    text = "on: 1\nyes: 2\nno: 3\nfrom: 10:00\nflag: true\nshare: 0.1\nbig: 1e3\n"
    assert yaml.load(text, Loader=ScriptYamlLoader) == {
        "on": 1,
        "yes": 2,
        "no": 3,
        "from": "10:00",
        "flag": True,
        "share": 0.1,
        "big": 1000.0,
    }
