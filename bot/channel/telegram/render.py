"""Engine outputs -> Telegram messages, and pressed buttons -> engine answers. Pure.

One message per step: the texts of consecutive `Say` outputs (and the stop confirmation) are joined
with a blank line; an `Ask` hangs its keyboard on that message. Choices and yes/no become inline
buttons, an NPS-style scale two rows (0-5 and 6-10), a phone question a reply keyboard with the
contact button. Records, actions and the end produce no message.

A button's callback data is `a:<outreach id>:<step tag>:<option index>` (at most 64 bytes, as
Telegram requires): the step tag lets a press on an old question's button be told apart from an
answer to the current one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from bot.dialog.events import Ask, Output, Say, StopConfirmation
from bot.dialog.loader import LoadedScript
from bot.dialog.locale_pack import LocalePack
from bot.dialog.say import say_text

SCALE_ROW = 6
"""A scale with more options than this is split into two rows (0-5, 6-10)."""
SHARE_PHONE = {"ru": "📱 Поделиться номером", "en": "📱 Share my number"}
PREFIX = "a"


@dataclass(frozen=True, slots=True)
class Outgoing:
    text: str
    reply_markup: dict[str, Any] | None = None
    """Bot API reply_markup JSON: inline buttons, or a reply keyboard with the contact button."""


@dataclass(frozen=True, slots=True)
class Press:
    """A decoded button press."""

    outreach_id: int
    step_tag: str
    option: int


@lru_cache(maxsize=4096)
def step_tag(step: str) -> str:
    return hashlib.sha1(step.encode(), usedforsecurity=False).hexdigest()[:8]


def callback_data(outreach_id: int, step: str, option: int) -> str:
    return f"{PREFIX}:{outreach_id}:{step_tag(step)}:{option}"


def read_callback(data: str) -> Press | None:
    """The press a callback data names; None for data that is not ours."""
    parts = data.split(":")
    if len(parts) != 4 or parts[0] != PREFIX:
        return None
    _, outreach, tag, option = parts
    if not (outreach.isdigit() and option.isdigit() and len(tag) == 8):
        return None
    return Press(int(outreach), tag, int(option))


def keyboard(ask: Ask, outreach_id: int, locale: str) -> dict[str, Any] | None:
    if ask.kind == "phone":
        label = SHARE_PHONE.get(locale, SHARE_PHONE["en"])
        return {
            "keyboard": [[{"text": label, "request_contact": True}]],
            "resize_keyboard": True,
            "one_time_keyboard": True,
        }
    if not ask.options:
        return None
    buttons = [
        {"text": option.label, "callback_data": callback_data(outreach_id, ask.step, index)}
        for index, option in enumerate(ask.options)
    ]
    if ask.kind == "scale":
        if len(buttons) > SCALE_ROW:
            half = (len(buttons) + 1) // 2
            rows = [buttons[:half], buttons[half:]]
        else:
            rows = [buttons]
    elif ask.kind == "yes_no":
        rows = [buttons]
    else:
        rows = [[button] for button in buttons]
    return {"inline_keyboard": rows}


def messages(
    outputs: Sequence[Output],
    loaded: LoadedScript,
    pack: LocalePack,
    context: Mapping[str, object],
    outreach_id: int,
) -> list[Outgoing]:
    """The messages for one engine step's outputs (usually one); `context` includes the offers
    the conversation issued (bot.dialog.offers)."""
    texts: list[str] = []
    result: list[Outgoing] = []
    locale = loaded.script.locale
    for output in outputs:
        if isinstance(output, Say):
            text = say_text(loaded, pack, context, output).strip()
            if text:
                texts.append(text)
        elif isinstance(output, StopConfirmation):
            texts.append(pack.stop_confirmation)
        elif isinstance(output, Ask):
            markup = keyboard(output, outreach_id, locale)
            if markup is not None and not texts:
                texts.append("…")
            if texts:
                result.append(Outgoing("\n\n".join(texts), markup))
                texts = []
    if texts:
        result.append(Outgoing("\n\n".join(texts)))
    return result


def pressed(ask: Ask, press: Press) -> str | None:
    """The option id a press on `ask` chose; None when the button belongs to another question."""
    if press.step_tag != step_tag(ask.step) or not 0 <= press.option < len(ask.options):
        return None
    return ask.options[press.option].id
