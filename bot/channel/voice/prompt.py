"""What a call says and listens for at one step: engine outputs -> spoken texts and the Ask."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.dialog import model
from bot.dialog.events import Action, Ask, End, Output, Say, StopConfirmation
from bot.dialog.loader import LoadedScript
from bot.dialog.locale_pack import LocalePack
from bot.dialog.renderer import spoken
from bot.dialog.say import say_text


@dataclass(frozen=True, slots=True)
class Prompt:
    says: tuple[str, ...]
    ask: Ask | None
    """What the next answer is (None: nothing more to ask)."""
    ended: bool
    transfer: bool
    """The step asked to put the caller through to a person."""


def prompt(
    outputs: Sequence[Output], loaded: LoadedScript, pack: LocalePack, context: Mapping[str, object]
) -> Prompt:
    says: list[str] = []
    ask: Ask | None = None
    ended = transfer = False
    for output in outputs:
        if isinstance(output, Say):
            says.append(spoken(say_text(loaded, pack, context, output)))
        elif isinstance(output, StopConfirmation):
            says.append(pack.stop_confirmation)
        elif isinstance(output, Ask):
            ask = output
        elif isinstance(output, End):
            ended = True
        elif isinstance(output, Action) and isinstance(output.action, model.Transfer):
            transfer = True
    return Prompt(tuple(says), None if ended else ask, ended, transfer)
