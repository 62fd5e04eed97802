"""Benchmark: dialog engine turns per second on a 10-step script, against a bare state machine.

Usage:

    .venv/bin/python scripts/bench/dialog_engine.py [--conversations 20000]

One process, one core. It replays the same 7-answer conversation through:
  1. the engine with button presses and DTMF (exact answers, no words to understand),
  2. the engine with Russian words ("да, конечно", "на восемь", "цены высокие", ...), lemmatised,
  3. (2) with the state stored as JSON and read back between turns, as a channel does,
  4. the baseline: a dict-lookup state machine doing the same routing on exact keys only.
A turn is one customer event in and the outputs out. Target: >= 20,000 engine turns/s per core.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from bot.dialog import engine
from bot.dialog.events import Answer, End, Event
from bot.dialog.library import load_locale_pack
from bot.dialog.model import Script
from bot.dialog.state import State

ROOT = Path(__file__).resolve().parent.parent.parent
VERSION = "bench0000000"
SCRIPT = Script.model_validate(
    yaml.safe_load(
        """
id: bench
title: Bench
locale: ru
start: intro
steps:
  intro:
    say: "Здравствуйте, {{ first_name }}! Можно пару вопросов?"
    ask: {type: yes_no}
    "on": {"yes": nps, "no": bye}
  nps:
    say: "Оцените от 0 до 10."
    ask: {type: scale, min: 0, max: 10}
    record: nps
    "on": {"0-6": why, "7-8": why, "9-10": thanks}
  why:
    say: "Почему?"
    ask:
      type: choice
      free_text: true
      options:
        price: {label: Цены, synonyms: [дорого, цена, нашёл дешевле], dtmf: "1"}
        service: {label: Доставка, synonyms: [доставка, долго везли, курьер], dtmf: "2"}
        quality: {label: Качество, synonyms: [плохое качество, брак], dtmf: "3"}
        competitor: {label: Другой магазин, synonyms: [в другом магазине, маркетплейс], dtmf: "4"}
        forgot: {label: Забыл, synonyms: [забыл, забыла, руки не дошли], dtmf: "5"}
        moved: {label: Переехал, synonyms: [переехал, переезд], dtmf: "6"}
        other: {label: Другое, synonyms: [другая причина, не знаю], dtmf: "9"}
    record: reason
    else: detail
    "on": {price: detail}
  detail:
    say: "Расскажите подробнее."
    ask: {type: text}
    record: reason_text
    next: offer_q
  offer_q:
    say: "Хотите скидку?"
    ask: {type: yes_no}
    record: offer_accepted
    "on": {"yes": offer, "no": csat}
  offer:
    say: "Дарим скидку."
    do:
      - issue_offer: {code: "BACK-{{ customer_id }}", discount: 15}
      - create_task: {note: "Проверить заказ"}
    next: channel
  channel:
    say: "Куда прислать код?"
    ask:
      type: choice
      options:
        sms: {label: SMS, synonyms: [смс, сообщение], dtmf: "1"}
        telegram: {label: Телеграм, synonyms: [телеграм, телеграмм], dtmf: "2"}
    record: channel
    "on": {sms: csat, telegram: csat}
  csat:
    say: "Как вам разговор, от 1 до 5?"
    ask: {type: scale, min: 1, max: 5}
    record: csat
    next: thanks
  thanks: {say: "Спасибо!", end: feedback_given}
  bye: {say: "До свидания.", end: declined}
"""
    )
)
BUTTONS: list[Event] = [
    Answer(choice="yes"),
    Answer(choice="7"),
    Answer(choice="price"),
    Answer(text="очень дорого стало"),
    Answer(choice="yes"),
    Answer(digits="2"),
    Answer(choice="5"),
]
WORDS: list[Event] = [
    Answer(text="Да, конечно"),
    Answer(text="ну на восемь"),
    Answer(text="цены высокие"),
    Answer(text="очень дорого стало"),
    Answer(text="давайте"),
    Answer(text="в телеграм"),
    Answer(text="пятерка"),
]
BASELINE_KEYS = ["yes", "7", "price", "очень дорого стало", "yes", "2", "5"]


def engine_run(events: list[Event], json_state: bool) -> Callable[[], int]:
    pack = load_locale_pack(ROOT / "dialogs" / "_locale" / "ru.yaml")

    def conversation() -> int:
        state, _ = engine.start(SCRIPT, VERSION, pack)
        turns = 0
        for event in events:
            if json_state:
                state = State.from_json(state.to_json())
            state, outputs = engine.advance(SCRIPT, pack, state, event, version=VERSION)
            turns += 1
        assert isinstance(outputs[-1], End) and state.outcome == "feedback_given", outputs
        return turns

    return conversation


def baseline_run() -> Callable[[], int]:
    """A bare state machine: step -> (kind, record, {answer key -> next}, default next)."""
    machine: dict[str, tuple[str, str | None, dict[str, str], str | None]] = {
        "intro": ("yes_no", None, {"yes": "nps", "no": "bye"}, None),
        "nps": ("scale", "nps", {str(n): "why" if n <= 8 else "thanks" for n in range(11)}, None),
        "why": ("choice", "reason", {"price": "detail"}, "detail"),
        "detail": ("text", "reason_text", {}, "offer_q"),
        "offer_q": ("yes_no", "offer_accepted", {"yes": "channel", "no": "csat"}, None),
        "channel": ("choice", "channel", {"1": "csat", "2": "csat"}, None),
        "csat": ("scale", "csat", {}, "thanks"),
    }

    def conversation() -> int:
        step = "intro"
        answers: dict[str, str] = {}
        turns = 0
        for key in BASELINE_KEYS:
            _kind, record, routes, default = machine[step]
            if record is not None:
                answers[record] = key
            step = routes.get(key) or default or "bye"
            turns += 1
        assert step == "thanks", step
        return turns

    return conversation


def measure(label: str, conversation: Callable[[], int], count: int) -> float:
    conversation()  # warm caches (lemmas, compiled asks)
    start = time.perf_counter()
    turns = sum(conversation() for _ in range(count))
    elapsed = time.perf_counter() - start
    rate = turns / elapsed
    print(f"  {label:<46} {turns:>8} turns {elapsed:7.2f} s {rate:>12,.0f} turns/s", flush=True)
    return rate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--conversations", type=int, default=20000)
    count = parser.parse_args(argv).conversations
    print(f"dialog engine, 10-step script, {count} conversations of 7 turns, one process")
    buttons = measure("engine, buttons and DTMF", engine_run(BUTTONS, False), count)
    words = measure("engine, Russian words", engine_run(WORDS, False), count)
    stored = measure("engine, Russian words, state via JSON", engine_run(WORDS, True), count)
    base = measure("baseline: dict-lookup state machine", baseline_run(), count)
    print(
        f"baseline / engine: {base / buttons:.0f}x (buttons), {base / words:.0f}x (words), "
        f"{base / stored:.0f}x (words + JSON)"
    )
    target = 20000
    verdict = "meets" if min(buttons, words) >= target else "misses"
    print(
        f"target >= {target:,} engine turns/s per core: {verdict} (JSON state: the channel's cost)"
    )


if __name__ == "__main__":
    main()
