"""Check dialog scripts against a speech model: the phrases a voice grammar needs must be words
the model knows, or Vosk silently drops them. `boomerang dialogs check` runs this when
BOOMERANG_VOSK_MODEL is set."""

from __future__ import annotations

from typing import Protocol

from bot.dialog.engine import ask_output
from bot.dialog.library import Library
from bot.dialog.problem import Problem


class Vocabulary(Protocol):
    def missing_words(self, phrases: list[str]) -> list[str]: ...


def grammar_warnings(library: Library, model: Vocabulary) -> list[Problem]:
    """One warning per voice-capable Ask (yes/no, choice, scale) whose expected phrases use words
    missing from the model's vocabulary: the script, the step and the words."""
    problems: list[Problem] = []
    for (_script_id, locale), loaded in sorted(library.scripts.items()):
        pack = library.packs.get(locale)
        if pack is None:
            continue
        script = loaded.script
        for step_id in script.steps:
            ask = ask_output(script, pack, step_id)
            if ask is None or not ask.expected_phrases:
                continue
            missing = model.missing_words(list(ask.expected_phrases))
            if not missing:
                continue
            problems.append(
                Problem(
                    loaded.file,
                    loaded.lines.key(("steps", step_id, "ask")),
                    f"script '{script.id}': the speech model does not know "
                    f"{', '.join(repr(w) for w in missing)}; a call cannot recognise "
                    "phrases with these words (change the words or the model)",
                    step=step_id,
                    severity="warning",
                )
            )
    return problems
