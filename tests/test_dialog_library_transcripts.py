"""The starter scripts, walked as conversations through the real engine, in Russian and English.

Each walk in tests/transcripts/<script>.yaml is a table of turns: the step the bot is at, what the
customer answers in each language; then where it ends, the outcome, what was recorded and which
actions ran (tests/transcripts/README.md). The same walks are played through the simulator behind
`boomerang dialogs try`, and together they must take every route of every script.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bot.dialog import engine
from bot.dialog.events import Action, Answer, Ask, Event, NoInput, Output, Say
from bot.dialog.library import Library, load_library
from bot.dialog.model import Script

ROOT = Path(__file__).resolve().parent.parent
TRANSCRIPTS = ROOT / "tests" / "transcripts"
LOCALES = ("ru", "en")
SILENCE = "(silence)"
PRESS = re.compile(r"^\(press ([0-9*#])\)$")
TEXT = "(text)"


@dataclass(frozen=True)
class Walk:
    script: str
    name: str
    turns: list[tuple[str, str, str]]
    """(step, ru answer, en answer)"""
    ends_at: str
    outcome: str
    records: dict[str, Any]
    actions: list[str]

    def answers(self, locale: str) -> list[tuple[str, str]]:
        column = 1 + LOCALES.index(locale)
        return [(turn[0], str(turn[column])) for turn in self.turns]


def read_walks() -> list[Walk]:
    walks: list[Walk] = []
    for path in sorted(TRANSCRIPTS.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for walk in data["walks"]:
            walks.append(
                Walk(
                    script=data["script"],
                    name=walk["name"],
                    turns=[tuple(turn) for turn in walk["turns"]],
                    ends_at=walk["ends_at"],
                    outcome=walk["outcome"],
                    records=walk["records"],
                    actions=walk["actions"],
                )
            )
    return walks


WALKS = read_walks()
CASES = [pytest.param(w, loc, id=f"{w.script}-{loc}-{w.name}") for w in WALKS for loc in LOCALES]


@pytest.fixture(scope="module")
def library() -> Library:
    loaded = load_library(ROOT / "dialogs")
    assert loaded.errors == []
    return loaded


def event(answer: str) -> Event:
    if answer == SILENCE:
        return NoInput()
    pressed = PRESS.match(answer)
    if pressed:
        return Answer(digits=pressed.group(1))
    return Answer(text=answer)


def entered(outputs: list[Output]) -> list[str]:
    """The steps the bot went through, in order, as its outputs show them."""
    steps: list[str] = []
    for output in outputs:
        if (isinstance(output, Say) and output.field == "say") or isinstance(output, Ask | Action):
            step = output.step
            if not steps or steps[-1] != step:
                steps.append(step)
    return steps


def play(library: Library, walk: Walk, locale: str) -> tuple[Any, list[str], list[Output]]:
    """Walk a transcript through the engine: the end state, the steps entered, every output."""
    loaded = library.script(walk.script, locale)
    pack = library.packs[locale]
    state, outputs = engine.start(loaded.script, loaded.version, pack)
    path = entered(outputs)
    everything = list(outputs)
    for number, (step, answer) in enumerate(walk.answers(locale), start=1):
        assert not state.finished, f"turn {number}: the talk already ended at {state.step}"
        assert state.step == step, f"turn {number} ({answer!r}): the bot is at {state.step}"
        state, outputs = engine.advance(
            loaded.script, pack, state, event(answer), version=loaded.version
        )
        for step_id in entered(outputs):
            if path[-1] != step_id:
                path.append(step_id)
        everything += outputs
    return state, path, everything


@pytest.mark.parametrize(("walk", "locale"), CASES)
def test_the_conversation_goes_as_written(library: Library, walk: Walk, locale: str) -> None:
    state, _, outputs = play(library, walk, locale)
    assert state.finished and (state.step, state.outcome) == (walk.ends_at, walk.outcome)
    own_words = {answer for _, answer in walk.answers(locale)}
    expected = {k: v for k, v in walk.records.items() if v != TEXT}
    recorded = dict(state.answers)
    for name, value in walk.records.items():
        if value == TEXT:
            assert recorded.pop(name, None) in own_words, name
    assert recorded == expected
    assert [o.action.kind for o in outputs if isinstance(o, Action)] == walk.actions


def edges(script: Script) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for step_id, step in script.steps.items():
        targets = [*step.on.values(), step.else_, step.next]
        targets += [r.then for r in (step.no_input, step.no_match) if r is not None]
        found |= {(step_id, t) for t in targets if t is not None}
    return found


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("script_id", sorted({w.script for w in WALKS}))
def test_the_walks_take_every_route(library: Library, script_id: str, locale: str) -> None:
    taken: set[tuple[str, str]] = set()
    for walk in WALKS:
        if walk.script == script_id:
            _, path, _ = play(library, walk, locale)
            taken |= set(zip(path, path[1:], strict=False))
    missing = edges(library.script(script_id, locale).script) - taken
    assert not missing, f"routes no walk takes: {sorted(missing)}"


def test_every_script_has_transcripts(library: Library) -> None:
    assert {script_id for script_id, _ in library.scripts} == {w.script for w in WALKS}


# --- the same walks through `boomerang dialogs try` ----------------------------------------------


def try_answers(walk: Walk, locale: str) -> tuple[str, list[str]]:
    """The channel and the --answers list: "-" is silence, digits alone are keys on a call."""
    channel = "voice" if any(PRESS.match(a) for _, a in walk.answers(locale)) else "telegram"
    answers: list[str] = []
    for _, answer in walk.answers(locale):
        pressed = PRESS.match(answer)
        if answer == SILENCE:
            answers.append("-")
        elif pressed:
            answers.append(pressed.group(1))
        else:
            answers.append(answer.replace(",", ""))  # --answers is comma-separated
    return channel, answers


@pytest.mark.parametrize(("walk", "locale"), CASES)
def test_boomerang_dialogs_try_plays_the_walk(
    walk: Walk, locale: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.cli.app import app

    monkeypatch.chdir(ROOT)
    channel, answers = try_answers(walk, locale)
    arguments = ["dialogs", "try", walk.script, "--locale", locale, "--channel", channel]
    result = CliRunner().invoke(app, [*arguments, "--answers", ",".join(answers)])
    assert result.exit_code == 0, result.output
    assert f"== outcome: {walk.outcome}" in result.output
    recorded = next(
        line
        for line in [*result.output.splitlines(), "== recorded:"]
        if line.startswith("== recorded:")
    )
    for name, value in walk.records.items():
        shown = "" if value == TEXT else json.dumps(value, ensure_ascii=False)
        assert f"{name}={shown}" in recorded, name
