"""What goes into the dialog engine (customer events) and what comes out (outputs for a channel).

Channels turn Telegram updates and call audio/DTMF into events, and outputs into messages or
speech. Outputs name the step and the field to render instead of carrying rendered text: the engine
is pure and never renders Jinja2 (the channel owns the renderer and the customer's context).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple

from bot.dialog import model

JsonValue = int | str | bool | None
"""A recorded answer: an int (nps), a str (option id, text, ISO datetime, E.164 phone), a bool."""

AskKind = Literal["yes_no", "choice", "scale", "text", "datetime", "phone"]
SayField = Literal["say", "no_input", "no_match"]


# --- events --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """The customer answered: typed or recognised `text`, a pressed button (`choice`: an option id,
    "yes"/"no", or a number for scales), or DTMF `digits`. `confidence` is the recogniser's."""

    text: str | None = None
    choice: str | None = None
    digits: str | None = None
    confidence: float = 1.0
    at: datetime | None = None
    """When the answer arrived, in the customer's time zone: relative times ("завтра в три") are
    read against it. Channels set it; the engine itself never reads a clock."""


@dataclass(frozen=True, slots=True)
class NoInput:
    """The customer said nothing in time (a call's silence timeout, a chat's reminder time)."""


@dataclass(frozen=True, slots=True)
class HangUp:
    """The call ended, or the chat was blocked/left."""


Event = Answer | NoInput | HangUp


# --- outputs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Say:
    """Say the step's `say` text, or its `no_input`/`no_match` reprompt text.

    A reprompt without its own text uses the locale pack's `no_input_default`/`no_match_default`
    (see `engine.say_template`).
    """

    step: str
    field: SayField = "say"


class AskOption(NamedTuple):
    """One answer the customer can pick: a button in chat, a key on a call."""

    id: str
    label: str
    dtmf: str | None


@dataclass(frozen=True, slots=True)
class Ask:
    """Wait for an answer of `kind`. `options` are buttons/keys (yes/no, choice options, scale
    numbers); `expected_phrases` is what a voice grammar should accept (normalised words)."""

    step: str
    kind: AskKind
    options: tuple[AskOption, ...] = ()
    expected_phrases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Record:
    """Save an outcome: `nps` = 8, `reason` = "price", `opt_out` = True, ..."""

    field: str
    value: JsonValue


@dataclass(frozen=True, slots=True)
class Action:
    """Run a script action (issue an offer, create a task, opt out, ...) entered at `step`."""

    step: str
    action: model.Action


@dataclass(frozen=True, slots=True)
class End:
    """The conversation is over with this outcome (`offer_accepted`, `opted_out`, `hung_up`...)."""

    outcome: str


@dataclass(frozen=True, slots=True)
class StopConfirmation:
    """Say the locale pack's `stop_confirmation` after a stop phrase."""


Output = Say | Ask | Record | Action | End | StopConfirmation
