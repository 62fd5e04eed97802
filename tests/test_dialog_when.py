"""Callback times said the way people say them, read against the moment the answer arrived."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.dialog import engine
from bot.dialog.events import Answer
from bot.dialog.library import load_library
from bot.dialog.when import parse_when

ROOT = Path(__file__).resolve().parent.parent

# Sunday 22 November 2026, 10:30 in Moscow.
NOW = datetime(2026, 11, 22, 10, 30, tzinfo=ZoneInfo("Europe/Moscow"))


@pytest.mark.parametrize(
    ("said", "meant"),
    [
        ("завтра в три", "2026-11-23T15:00:00"),
        ("завтра в 3 часа дня", "2026-11-23T15:00:00"),
        ("послезавтра в 10 утра", "2026-11-24T10:00:00"),
        ("в пятницу вечером", "2026-11-27T19:00:00"),
        ("в понедельник в 18:30", "2026-11-23T18:30:00"),
        ("сегодня в 17", "2026-11-22T17:00:00"),
        ("в 9", "2026-11-23T09:00:00"),  # 9:00 has passed today: tomorrow
        ("в семь вечера", "2026-11-22T19:00:00"),
        ("завтра", "2026-11-23T11:00:00"),
        ("tomorrow at 5 pm", "2026-11-23T17:00:00"),
        ("on Friday morning", "2026-11-27T10:00:00"),
        ("today at 16:45", "2026-11-22T16:45:00"),
        ("в воскресенье днём", "2026-11-29T14:00:00"),  # the next Sunday, not today
    ],
)
def test_relative_times_become_local_wall_times(said: str, meant: str) -> None:
    when = parse_when(said, NOW)
    assert when is not None
    assert when.isoformat() == meant


@pytest.mark.parametrize("said", ["не знаю", "когда удобно", "позвоните как-нибудь", "no idea"])
def test_answers_without_a_day_or_time_are_not_guessed(said: str) -> None:
    assert parse_when(said, NOW) is None


@pytest.mark.parametrize(
    ("locale", "score", "why", "when", "booked"),
    [
        ("ru", "3", "долго везли", "завтра в три", "2026-11-23T15:00:00"),
        ("en", "3", "slow delivery", "tomorrow at 5 pm", "2026-11-23T17:00:00"),
    ],
)
def test_a_detractor_books_a_callback_for_tomorrow_in_their_own_words(
    locale: str, score: str, why: str, when: str, booked: str
) -> None:
    library = load_library(ROOT / "dialogs")
    loaded = library.scripts[("post_order_feedback", locale)]
    pack = library.packs[locale]
    state, _ = engine.start(loaded.script, loaded.version, pack)
    for text in ("yes", score, why, "yes", when):
        answer = Answer(text=text, at=NOW) if text != "yes" else Answer(choice="yes", at=NOW)
        state, outputs = engine.advance(loaded.script, pack, state, answer, version=loaded.version)
    assert state.answers["callback_at"] == booked
    assert state.outcome == "callback_booked"
