"""The words of a `Say` output: the step's template rendered, or a reprompt's text.

Every channel that shows or speaks a script (the terminal simulator, Telegram, voice) turns `Say`
into text here, so a reprompt without its own text falls back to the locale pack the same way
everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.dialog import engine
from bot.dialog.events import Say
from bot.dialog.loader import LoadedScript
from bot.dialog.locale_pack import LocalePack
from bot.dialog.renderer import render


def say_text(
    loaded: LoadedScript, pack: LocalePack, context: Mapping[str, object], say: Say
) -> str:
    if say.field == "say":
        return render(loaded, say.step, "say", context)
    step = loaded.script.steps[say.step]
    rule = step.no_input if say.field == "no_input" else step.no_match
    if rule is not None and rule.say:
        return render(loaded, say.step, f"{say.field}.say", context)
    return engine.say_template(loaded.script, pack, say)
