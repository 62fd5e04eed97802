"""Callback times said the way people say them: "завтра в три", "в пятницу вечером", "at 5 pm".

Relative to `now`, the moment the answer arrived in the customer's own time zone, which the channel
puts into the Answer event: the engine stays pure, the clock stays at the edge. The result is a
local wall time (naive), like an absolute "25.11.2026 15:00".
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

_WORD = re.compile(r"[a-zа-я0-9:]+")
_CLOCK = re.compile(r"^(\d{1,2})(?::(\d{2}))?$")

_DAYS = {
    "сегодня": 0,
    "завтра": 1,
    "послезавтра": 2,
    "today": 0,
    "tomorrow": 1,
}
_WEEKDAYS = {
    # Stems, so that every case matches: "в среду", "в пятницу", "понедельник".
    "понедельн": 0,
    "вторник": 1,
    "сред": 2,
    "четверг": 3,
    "пятниц": 4,
    "суббот": 5,
    "воскресень": 6,
    "monday": 0,
    "tuesday": 1,
    "wednesday": 2,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
}
_HOUR_WORDS = {
    "час": 1,
    "один": 1,
    "два": 2,
    "двух": 2,
    "три": 3,
    "трех": 3,
    "четыре": 4,
    "четырех": 4,
    "пять": 5,
    "пяти": 5,
    "шесть": 6,
    "шести": 6,
    "семь": 7,
    "семи": 7,
    "восемь": 8,
    "восьми": 8,
    "девять": 9,
    "девяти": 9,
    "десять": 10,
    "десяти": 10,
    "одиннадцать": 11,
    "одиннадцати": 11,
    "двенадцать": 12,
    "двенадцати": 12,
    "полдень": 12,
    "noon": 12,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
}
_AFTERNOON = {"дня", "вечера", "вечером", "pm", "evening", "afternoon", "днем"}
_MORNING = {"утра", "утром", "am", "morning"}
_PART_OF_DAY = {
    "утром": 10,
    "днем": 14,
    "вечером": 19,
    "morning": 10,
    "afternoon": 14,
    "evening": 19,
}
DEFAULT_TIME = time(11, 0)
"""When only a day is named ("завтра"): late morning, inside every calling window."""


def parse_when(text: str, now: datetime) -> datetime | None:
    """The local date and time `text` names, or None when it names neither a day nor a time."""
    words = _WORD.findall(text.lower().replace("ё", "е"))
    day = _day(words, now)
    clock = _clock(words)
    if day is None and clock is None:
        return None
    if day is None:
        assert clock is not None
        today = datetime.combine(now.date(), clock)
        return today if today > now.replace(tzinfo=None) else today + timedelta(days=1)
    return datetime.combine(day, clock or DEFAULT_TIME)


def _day(words: list[str], now: datetime) -> datetime | None:
    for word in words:
        if word in _DAYS:
            return now + timedelta(days=_DAYS[word])
        for stem, weekday in _WEEKDAYS.items():
            if word.startswith(stem):
                ahead = (weekday - now.weekday()) % 7 or 7
                return now + timedelta(days=ahead)
    return None


def _clock(words: list[str]) -> time | None:
    hour: int | None = None
    minute = 0
    for index, word in enumerate(words):
        previous = words[index - 1] if index else ""
        match = _CLOCK.match(word)
        if match and (previous in ("в", "at", "к") or ":" in word or _next_is_marker(words, index)):
            hour, minute = int(match.group(1)), int(match.group(2) or 0)
            break
        if word in _HOUR_WORDS and (previous in ("в", "at", "к") or _next_is_marker(words, index)):
            hour = _HOUR_WORDS[word]
            break
    marked_afternoon = any(word in _AFTERNOON for word in words)
    marked_morning = any(word in _MORNING for word in words)
    if hour is None:
        for word in words:
            if word in _PART_OF_DAY:
                return time(_PART_OF_DAY[word])
        return None
    if hour > 23 or minute > 59:
        return None
    if hour < 12 and (marked_afternoon or (not marked_morning and 1 <= hour <= 7)):
        # "в три" on a business call means 15:00; "в 3 утра" stays 3:00.
        hour += 12
    return time(hour, minute)


def _next_is_marker(words: list[str], index: int) -> bool:
    following = words[index + 1] if index + 1 < len(words) else ""
    return following in _AFTERNOON | _MORNING | {"часа", "часов", "час", "o", "oclock"}
