"""The terminal simulator: what a chat would show and a call would say, driven by given answers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.app import open_app
from bot.cli.app import app as cli
from bot.db.models import Customer, Order
from bot.dialog.events import Answer, Ask, AskOption, HangUp, NoInput
from bot.dialog.library import load_locale_pack
from bot.dialog.loader import LoadedScript, load_script
from bot.dialog.simulator import Channel, run, to_event
from bot.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
PACK = load_locale_pack(ROOT / "dialogs" / "_locale" / "ru.yaml")
SCRIPT = """\
id: mini
title: Мини
locale: ru
variables: [first_name]
start: intro
steps:
  intro:
    say: Здравствуйте, <b>{{ first_name }}</b>! Поговорим?
    ask: {type: yes_no}
    on: {yes: nps, no: bye}
  nps:
    say: Оцените от 0 до 10.
    ask: {type: scale, min: 0, max: 10}
    record: nps
    on: {"0-6": why, "7-10": thanks}
  why:
    say: Почему?
    ask:
      type: choice
      options:
        price: {label: Дорого, synonyms: [дорого, цена], dtmf: "1"}
        other: {label: Другое, dtmf: "9"}
    record: reason
    on: {price: offer, other: thanks}
  offer:
    say: Держите скидку.
    do:
      - issue_offer: {code: "BACK-{{ first_name }}", discount: 10}
    next: thanks
  thanks:
    say: Спасибо!
    end: feedback_given
  bye:
    say: До свидания.
    end: declined
"""


def loaded(tmp_path: Path) -> LoadedScript:
    path = tmp_path / "mini.ru.yaml"
    path.write_text(SCRIPT, encoding="utf-8")
    return load_script(path)


def play(tmp_path: Path, channel: Channel, answers: list[str]) -> list[str]:
    lines: list[str] = []
    run(loaded(tmp_path), PACK, {"first_name": "Анна"}, channel, answers, lines.append)
    return lines


def test_chat_shows_texts_buttons_on_two_rows_records_and_the_end(tmp_path: Path) -> None:
    lines = play(tmp_path, "telegram", ["Да", "5", "дороговато"])
    assert "bot: Здравствуйте, <b>Анна</b>! Поговорим?" in lines
    assert "[Да] [Нет]" in lines
    assert "[0] [1] [2] [3] [4] [5]" in lines
    assert "[6] [7] [8] [9] [10]" in lines
    assert "[Дорого] [Другое]" in lines
    assert "record: nps = 5" in lines
    assert 'record: reason = "price"' in lines
    assert "action: issue_offer code=BACK-Анна discount=10 expires_in_days=14" in lines
    assert lines[-2:] == ['== recorded: nps=5, reason="price"', "== outcome: feedback_given"]


def test_voice_speaks_plain_text_and_lists_phrases_and_keys(tmp_path: Path) -> None:
    lines = play(tmp_path, "voice", ["1", "восемь"])
    assert "bot: Здравствуйте, Анна! Поговорим?" in lines
    assert "keys: 1=Да, 2=Нет" in lines
    expects = next(line for line in lines if line.startswith("expects: да") or "/ да /" in line)
    assert "нет" in expects
    assert "keys: 0..10 (the number)" in lines
    assert lines[-1] == "== outcome: feedback_given"


def test_reprompt_stop_and_running_out_of_answers(tmp_path: Path) -> None:
    lines = play(tmp_path, "telegram", ["что?"])
    assert f"bot: {PACK.no_match_default}" in lines
    assert lines[-1] == "(no more answers: waiting at step intro)"
    lines = play(tmp_path, "telegram", ["да", "стоп"])
    assert f"bot: {PACK.stop_confirmation}" in lines
    assert "action: opt_out" in lines
    assert lines[-1] == "== outcome: opted_out"


def test_interactive_answers_come_from_the_prompt(tmp_path: Path) -> None:
    replies = iter(["нет"])
    lines: list[str] = []
    run(
        loaded(tmp_path),
        PACK,
        {"first_name": "Анна"},
        "telegram",
        None,
        lines.append,
        prompt=lambda: next(replies),
    )
    assert lines[-1] == "== outcome: declined"


def test_replies_become_events_as_a_channel_would_make_them() -> None:
    ask = Ask("why", "choice", (AskOption("price", "Дорого", "1"),))
    assert to_event("дорого", "telegram", ask) == Answer(choice="price")
    assert to_event("price", "telegram", ask) == Answer(choice="price")
    assert to_event("очень дорого", "telegram", ask) == Answer(text="очень дорого")
    assert to_event("1", "voice", ask) == Answer(digits="1")
    assert to_event("1", "telegram", None) == Answer(text="1")
    assert to_event("-", "voice", ask) == NoInput()
    assert to_event("/hangup", "telegram", ask) == HangUp()


def test_try_with_a_customer_from_the_database_greets_them_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'shop.db'}")
    monkeypatch.chdir(ROOT)
    get_settings.cache_clear()
    shop = open_app()
    now = shop.clock.now()
    with shop.sessions.begin() as session:
        customer = Customer(
            external_id="C-77",
            name="Ольга Петрова",
            first_name="Ольга",
            tags=[],
            created_at=now,
            updated_at=now,
        )
        session.add(customer)
        session.flush()
        session.add(
            Order(
                external_id="A-1001",
                customer_id=customer.id,
                placed_at=now - timedelta(days=40),
                amount_minor=199000,
                currency="RUB",
                status="delivered",
                items=[],
            )
        )
    shop.engine.dispose()
    try:
        result = CliRunner().invoke(
            cli, ["dialogs", "try", "winback", "--customer", "C-77", "--answers", "нет"]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "Ольга" in result.output

    unknown = CliRunner().invoke(cli, ["dialogs", "try", "winback", "--customer", "nobody"])
    assert unknown.exit_code != 0
    assert "no customer 'nobody'" in unknown.output
