"""The `Channel` interface the dispatcher calls, and the types that cross it.

A channel takes one `Contact` (who, where, which script, with what context) and returns a `Delivery`
(what happened). The dialog itself is the pure engine (`bot.dialog.engine`); a channel only turns
its outputs into messages or speech and the customer's replies into events.

Synchronous channels (a phone call, the simulated channel) run the whole talk inside
`start_conversation` and return `delivered` with the final `State` and every output.

Asynchronous channels (Telegram: the customer answers hours later, or never) cannot wait. Their
`start_conversation` runs `engine.start`, sends the first messages and returns `in_conversation`
with the state so far; the dispatcher stores `state.to_json()` in the conversation's row. When a
reply arrives (a webhook update), the channel loads that row and the script version the state is
pinned to, turns the update into an `Event` and calls `resume` -- the same engine step a synchronous
channel takes -- sends the new outputs, stores the new state and, once `delivery.finished`, reports
the outcome. A reminder timer that fires without a reply is `resume(..., NoInput())`; a blocked bot
is `resume(..., HangUp())`. So one conversation is a chain of Deliveries: the first from
`start_conversation`, the rest from `resume`, the last one `delivered`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from bot.dialog import engine
from bot.dialog.events import Event, Output, Record
from bot.dialog.loader import LoadedScript
from bot.dialog.locale_pack import LocalePack
from bot.dialog.state import State


class Status(StrEnum):
    DELIVERED = "delivered"
    """The conversation took place and is over (`Delivery.state` says how it ended)."""
    IN_CONVERSATION = "in_conversation"
    """An asynchronous channel sent the first messages; replies come later through `resume`."""
    UNREACHABLE = "unreachable"
    """Cannot reach the customer on this channel (bot blocked, no chat, invalid number): try the
    next channel. `reason` says why."""
    FAILED = "failed"
    """The channel itself failed (network, provider error); `retryable` says whether to retry."""
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    """The call was not picked up or the first message never got a reply; the engine never ran."""
    VOICEMAIL = "voicemail"
    DEFERRED = "deferred"
    """Not attempted after all: the window closed while the call waited for its turn (the
    account's calls per second). Tried again at once: the guard defers it to the next opening."""


@dataclass(frozen=True, slots=True)
class Contact:
    """One customer to talk to with one script."""

    customer_id: int
    locale: str
    address: str
    """Where: a Telegram chat id, an E.164 phone number, anything for the simulated channel."""
    script: LoadedScript
    pack: LocalePack
    """The locale pack of `script.script.locale`: what every step understands."""
    context: Mapping[str, object] = field(default_factory=dict)
    """The render context (`bot.dialog.context`): first_name, offer_code, ..."""
    outreach_id: int | None = None
    """The outreach row this conversation belongs to (asynchronous channels key replies by it)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a channel did with a contact: a status and, when the engine ran, the conversation."""

    status: Status
    reason: str | None = None
    retryable: bool = False
    state: State | None = None
    """The conversation's last state; None when the engine never started."""
    outputs: tuple[Output, ...] = ()
    """Every output of the engine, in order, for the part of the talk this delivery covers."""

    @property
    def finished(self) -> bool:
        return self.state is not None and self.state.finished

    @property
    def outcome(self) -> str | None:
        return self.state.outcome if self.state is not None else None

    @property
    def records(self) -> tuple[Record, ...]:
        return tuple(o for o in self.outputs if isinstance(o, Record))

    @classmethod
    def talked(cls, state: State, outputs: tuple[Output, ...]) -> Delivery:
        """`delivered` when the conversation is over, else `in_conversation`."""
        status = Status.DELIVERED if state.finished else Status.IN_CONVERSATION
        return cls(status, state=state, outputs=outputs)

    @classmethod
    def unreachable(cls, reason: str) -> Delivery:
        return cls(Status.UNREACHABLE, reason=reason)

    @classmethod
    def failed(cls, reason: str, *, retryable: bool) -> Delivery:
        return cls(Status.FAILED, reason=reason, retryable=retryable)


class Channel(Protocol):
    """What the dispatcher calls. Telegram, voice and the simulated channel implement it."""

    @property
    def name(self) -> str: ...

    async def start_conversation(self, contact: Contact) -> Delivery:
        """Reach the customer and run (synchronous) or open (asynchronous) the conversation."""
        ...


def begin(contact: Contact) -> Delivery:
    """Start the conversation with the engine: the first outputs, `in_conversation` (or over)."""
    loaded = contact.script
    state, outputs = engine.start(loaded.script, loaded.version, contact.pack)
    return Delivery.talked(state, tuple(outputs))


def resume(contact: Contact, state: State, event: Event) -> Delivery:
    """Feed one customer event to a stored conversation: the new outputs and state.

    `contact.script` must be the version `state` is pinned to (ValueError otherwise).
    """
    loaded = contact.script
    new_state, outputs = engine.advance(
        loaded.script, contact.pack, state, event, version=loaded.version
    )
    return Delivery.talked(new_state, tuple(outputs))
