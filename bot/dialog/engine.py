"""The pure dialog engine: (script, state, event) -> (state, outputs). No I/O, clock or randomness.

`start` enters the script's first step; `advance` feeds one customer event. Entering a step emits
Say (when it has text), its actions in order, then Ask (when it asks) -- or follows `next`, or ends.
A stop phrase at any step opts the customer out. A conversation is pinned to the script version it
started on: `advance` refuses a state from another version.
"""

from __future__ import annotations

from typing import Protocol

from bot.dialog import model
from bot.dialog.events import (
    Action,
    Answer,
    Ask,
    AskOption,
    End,
    Event,
    HangUp,
    JsonValue,
    NoInput,
    Output,
    Record,
    Say,
    SayField,
    StopConfirmation,
)
from bot.dialog.matcher import Match, PackWords, normalise, understand, vocabulary
from bot.dialog.state import State

DEFAULT_END = "completed"
"""The outcome of a step that neither asks, nor goes on, nor names an `end`."""
_DEFAULT_REPROMPT = model.Reprompt()


class Buttons(Protocol):
    @property
    def yes(self) -> str: ...
    @property
    def no(self) -> str: ...


class Pack(PackWords, Protocol):
    """What the engine reads from a locale pack (`bot.dialog.locale_pack.LocalePack` fits)."""

    @property
    def buttons(self) -> Buttons: ...
    @property
    def stop_confirmation(self) -> str: ...
    @property
    def no_input_default(self) -> str: ...
    @property
    def no_match_default(self) -> str: ...


def start(script: model.Script, version: str, pack: Pack) -> tuple[State, list[Output]]:
    """A new conversation on `script` at `version`, and what the bot says first."""
    state = State(script=script.id, version=version, step=script.start)
    outputs: list[Output] = []
    return _enter(script, pack, state, script.start, outputs), outputs


def advance(
    script: model.Script, pack: Pack, state: State, event: Event, *, version: str
) -> tuple[State, list[Output]]:
    """Feed one event to a conversation. A finished conversation ignores events (no outputs).

    `version` is the version of `script`; a state started on another version (or another script)
    is refused with ValueError: load the script version the state names instead.
    """
    if state.script != script.id or state.version != version:
        raise ValueError(
            f"conversation is on {state.script}@{state.version}, not {script.id}@{version}"
        )
    if state.finished:
        return state, []
    outputs: list[Output] = []
    if isinstance(event, HangUp):
        return _end(state, "hung_up", outputs), outputs
    step = _step(script, state.step)
    if isinstance(event, NoInput):
        return _reprompt(script, pack, state, step, "no_input", outputs), outputs
    meaning = understand(event, step.ask, pack, script.locale)
    if meaning.kind == "stop":
        return _opt_out(state, outputs), outputs
    if meaning.kind == "none":
        return _reprompt(script, pack, state, step, "no_match", outputs), outputs
    return _answered(script, pack, state, step, meaning, event, outputs), outputs


def say_template(script: model.Script, pack: Pack, say: Say) -> str:
    """The Jinja2 text a Say output stands for (reprompts fall back to the pack's defaults)."""
    step = _step(script, say.step)
    if say.field == "say":
        return step.say
    reprompt = step.no_input if say.field == "no_input" else step.no_match
    if reprompt is not None and reprompt.say:
        return reprompt.say
    return pack.no_input_default if say.field == "no_input" else pack.no_match_default


def ask_output(script: model.Script, pack: Pack, step_id: str) -> Ask | None:
    """The Ask a step emits: its buttons/keys and the phrases a voice grammar should accept."""
    key = (id(script), id(pack), step_id)
    cached = _asks.get(key)
    if cached is not None and cached[0] is script and cached[1] is pack:
        return cached[2]
    built = _build_ask(script, pack, step_id)
    if len(_asks) > 4096:
        _asks.clear()
    _asks[key] = (script, pack, built)
    return built


_asks: dict[tuple[int, int, str], tuple[model.Script, Pack, Ask | None]] = {}


def _build_ask(script: model.Script, pack: Pack, step_id: str) -> Ask | None:
    ask = _step(script, step_id).ask
    if ask is None:
        return None
    vocab = vocabulary(pack, script.locale)
    stop = tuple(" ".join(phrase) for phrase in vocab.stop)
    options: tuple[AskOption, ...]
    if isinstance(ask, model.YesNoAsk):
        options = (
            AskOption("yes", pack.buttons.yes, "1"),
            AskOption("no", pack.buttons.no, "2"),
        )
        words = tuple(" ".join(p) for p in (*vocab.yes, *vocab.no))
        return Ask(step_id, "yes_no", options, _unique(words + stop))
    if isinstance(ask, model.ChoiceAsk):
        options = tuple(
            AskOption(option_id, option.label, option.dtmf)
            for option_id, option in ask.options.items()
        )
        words = tuple(
            normalise(text)
            for option in ask.options.values()
            for text in (option.label, *option.synonyms)
        )
        return Ask(step_id, "choice", options, _unique(words + stop))
    if isinstance(ask, model.ScaleAsk):
        options = tuple(AskOption(str(n), str(n), str(n)) for n in range(ask.min, ask.max + 1))
        words = tuple(
            word for n in range(ask.min, ask.max + 1) for word in vocab.numbers.get(n, ())
        )
        return Ask(step_id, "scale", options, _unique(words + stop))
    return Ask(step_id, ask.type)


def _unique(phrases: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p for p in phrases if p))


def _step(script: model.Script, step_id: str) -> model.Step:
    try:
        return script.steps[step_id]
    except KeyError:
        raise ValueError(f"script {script.id} has no step {step_id!r}") from None


def _enter(
    script: model.Script, pack: Pack, state: State, step_id: str, outputs: list[Output]
) -> State:
    """Enter `step_id` and the steps it leads to without asking, until an ask or an end."""
    for _ in range(len(script.steps) + 1):
        step = _step(script, step_id)
        state = state.at(step_id)
        if step.say:
            outputs.append(Say(step_id))
        outputs.extend(Action(step_id, action) for action in step.do)
        if step.ask is not None:
            ask = ask_output(script, pack, step_id)
            assert ask is not None
            outputs.append(ask)
            return state
        if step.next is None:
            return _end(state, step.end or DEFAULT_END, outputs)
        step_id = step.next
    raise ValueError(f"script {script.id} loops through steps without asking at {step_id!r}")


def _end(state: State, outcome: str, outputs: list[Output]) -> State:
    outputs.append(End(outcome))
    return state.finish(outcome)


def _opt_out(state: State, outputs: list[Output]) -> State:
    outputs.extend(
        [
            Record("opt_out", True),
            Action(state.step, model.OptOut()),
            StopConfirmation(),
        ]
    )
    return _end(state.with_answer("opt_out", True), "opted_out", outputs)


def _reprompt(
    script: model.Script,
    pack: Pack,
    state: State,
    step: model.Step,
    kind: SayField,
    outputs: list[Output],
) -> State:
    rule = (step.no_input if kind == "no_input" else step.no_match) or _DEFAULT_REPROMPT
    if state.reprompted(state.step, kind) < rule.reprompt:
        outputs.append(Say(state.step, kind))
        ask = ask_output(script, pack, state.step)
        if ask is not None:
            outputs.append(ask)
        return state.with_reprompt(state.step, kind)
    if rule.then is not None:
        return _enter(script, pack, state, rule.then, outputs)
    return _end(state, "no_answer", outputs)


def _answered(
    script: model.Script,
    pack: Pack,
    state: State,
    step: model.Step,
    meaning: Match,
    event: Answer,
    outputs: list[Output],
) -> State:
    value: JsonValue = meaning.value
    route: str | None = None
    if meaning.kind in ("yes", "no", "option"):
        route = str(meaning.value)
    if step.record is not None:
        # Free text given to a choice goes to `<record>_text` (reason -> reason_text).
        free_text = meaning.kind == "text" and isinstance(step.ask, model.ChoiceAsk)
        name = f"{step.record}_text" if free_text else step.record
        if meaning.kind in ("yes", "no"):
            value = meaning.kind == "yes"
        outputs.append(Record(name, value))
        state = state.with_answer(name, value)
    target = _route(step, meaning, route)
    if target is not None:
        return _enter(script, pack, state, target, outputs)
    return _end(state, step.end or DEFAULT_END, outputs)


def _route(step: model.Step, meaning: Match, route: str | None) -> str | None:
    if route is not None and route in step.on:
        return step.on[route]
    if meaning.kind == "number" and isinstance(meaning.value, int):
        exact = step.on.get(str(meaning.value))
        if exact is not None:
            return exact
        for key, target in step.on.items():
            bounds = model.scale_route(key)
            if bounds is not None and bounds[0] <= meaning.value <= bounds[1]:
                return target
    return step.else_ or step.next
