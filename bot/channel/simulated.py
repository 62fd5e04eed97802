"""A channel whose customers are simulated: they answer scripts by persona, through the real engine.

Each contact gets a persona (drawn from a weighted mixture) and a random generator seeded by the
channel's seed and the customer id, so a run is the same whatever the order of contacts. The whole
conversation runs synchronously: `engine.start`, then one `engine.advance` per simulated reply,
until the script ends. Used by the demo and by tests to run whole campaigns.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.channel.base import Contact, Delivery, Status, begin, resume
from bot.dialog import model
from bot.dialog.events import Answer, Event, HangUp, NoInput, Output
from bot.dialog.locale_pack import LocalePack
from bot.dialog.state import State

MAX_TURNS = 100
"""A conversation still going after this many replies is reported as failed (a script loop)."""

TEXTS: Mapping[str, tuple[str, ...]] = {
    "ru": ("всё было хорошо", "долго ждал доставку", "хотелось бы больше выбора", "Москва"),
    "en": ("all good", "the delivery took too long", "I'd like more choice", "Boston"),
}
WHEN: Mapping[str, tuple[str, ...]] = {
    "ru": ("завтра в три", "в пятницу вечером", "послезавтра в 10 утра"),
    "en": ("tomorrow at 5 pm", "tomorrow at 3", "on friday evening"),
}
PHONES: Mapping[str, tuple[str, ...]] = {
    "ru": ("+7 916 123-45-67", "8 (912) 345-67-89"),
    "en": ("+1 415 555 0134", "+44 20 7946 0958"),
}


@dataclass(frozen=True)
class Persona:
    """How a kind of customer answers: probabilities per answer, per ask kind.

    Per contact: `no_answer` is the chance the call is not picked up or the message never answered
    (the engine never starts). Per step, in this order: `hang_up`, `stop` (a stop phrase from the
    locale pack: opted out), `silence` (NoInput); otherwise the customer answers the ask, pressing
    a button or, with chance `typed`, typing or saying the words.
    """

    name: str
    yes_no: Mapping[str, float] = field(default_factory=lambda: {"yes": 0.5, "no": 0.5})
    scale: Mapping[int, float] | tuple[float, float] = (0.5, 0.3)
    """Weights per value (values outside the step's range are ignored), or (mean, spread) as
    fractions of the range (0 = min, 1 = max), so one persona fits NPS 0-10 and CSAT 1-5."""
    choice: Mapping[str, float] = field(default_factory=dict)
    """Weights per option id; an option not named here weighs `choice_other`."""
    choice_other: float = 1.0
    texts: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: TEXTS)
    """Free-text answers per locale ("en" for a locale not listed)."""
    when: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: WHEN)
    """Date and time answers per locale, read against the channel's `now`."""
    phones: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: PHONES)
    no_answer: float = 0.0
    silence: float = 0.0
    stop: float = 0.0
    hang_up: float = 0.0
    typed: float = 0.0


happy = Persona(
    "happy",
    yes_no={"yes": 0.85, "no": 0.15},
    scale=(0.9, 0.1),
    choice={"forgot": 4, "other": 1, "moved": 0.5},
    choice_other=0.3,
    no_answer=0.1,
    silence=0.03,
    hang_up=0.01,
    typed=0.3,
)
price_sensitive = Persona(
    "price_sensitive",
    yes_no={"yes": 0.55, "no": 0.45},
    scale=(0.6, 0.2),
    choice={"price": 6, "competitor": 2},
    choice_other=0.3,
    no_answer=0.2,
    silence=0.05,
    hang_up=0.03,
    stop=0.01,
    typed=0.3,
)
unhappy = Persona(
    "unhappy",
    yes_no={"yes": 0.3, "no": 0.7},
    scale=(0.15, 0.15),
    choice={"service": 3, "quality": 3, "competitor": 2, "not_needed": 1},
    choice_other=0.2,
    no_answer=0.25,
    silence=0.05,
    hang_up=0.08,
    stop=0.06,
    typed=0.3,
)
silent = Persona("silent", no_answer=0.6, silence=0.8, hang_up=0.05)
stopper = Persona("stopper", stop=1.0)

Mixture = Sequence[tuple[Persona, float]]
MIXED_SHOP: Mixture = (
    (happy, 0.35),
    (price_sensitive, 0.3),
    (unhappy, 0.2),
    (silent, 0.12),
    (stopper, 0.03),
)
"""The customers of a typical shop, for the demo."""


class SimulatedChannel:
    """Runs every conversation at once through the real engine, with simulated replies."""

    def __init__(
        self,
        personas: Persona | Mixture,
        seed: int = 0,
        *,
        now: datetime,
        name: str = "simulated",
    ) -> None:
        """`now`: the local time replies arrive at (relative times are read against it)."""
        mixture = ((personas, 1.0),) if isinstance(personas, Persona) else tuple(personas)
        if not mixture or any(weight < 0 for _, weight in mixture):
            raise ValueError("personas need at least one persona and no negative weight")
        if sum(weight for _, weight in mixture) <= 0:
            raise ValueError("persona weights must not all be zero")
        self._personas = [persona for persona, _ in mixture]
        self._weights = [weight for _, weight in mixture]
        self.seed = seed
        self.now = now
        self.name = name

    def persona_for(self, customer_id: int) -> Persona:
        """The persona of a customer: the same for this seed whatever the script or order."""
        rng = random.Random(f"persona/{self.seed}/{customer_id}")
        return rng.choices(self._personas, self._weights)[0]

    async def start_conversation(self, contact: Contact) -> Delivery:
        return self.converse(contact)

    def converse(self, contact: Contact) -> Delivery:
        """The whole conversation, synchronously (what `start_conversation` returns)."""
        persona = self.persona_for(contact.customer_id)
        rng = random.Random(f"talk/{self.seed}/{contact.customer_id}/{contact.script.script.id}")
        if rng.random() < persona.no_answer:
            return Delivery(Status.NO_ANSWER, reason=f"persona {persona.name} did not answer")
        first = begin(contact)
        assert first.state is not None
        state: State = first.state
        outputs: list[Output] = list(first.outputs)
        for _ in range(MAX_TURNS):
            if state.finished:
                return Delivery(Status.DELIVERED, state=state, outputs=tuple(outputs))
            event = self._reply(persona, rng, contact, state)
            step = resume(contact, state, event)
            assert step.state is not None
            state = step.state
            outputs.extend(step.outputs)
        if state.finished:
            return Delivery(Status.DELIVERED, state=state, outputs=tuple(outputs))
        return Delivery(
            Status.FAILED,
            reason=f"still talking after {MAX_TURNS} replies at step {state.step}",
            state=state,
            outputs=tuple(outputs),
        )

    def _reply(self, persona: Persona, rng: random.Random, contact: Contact, state: State) -> Event:
        roll = rng.random()
        if roll < persona.hang_up:
            return HangUp()
        roll -= persona.hang_up
        if roll < persona.stop:
            return Answer(text=rng.choice(contact.pack.stop), at=self.now)
        roll -= persona.stop
        if roll < persona.silence:
            return NoInput()
        script = contact.script.script
        ask = script.steps[state.step].ask
        locale = script.locale
        typed = rng.random() < persona.typed
        if isinstance(ask, model.YesNoAsk):
            said = _weighted(rng, persona.yes_no, ("yes", "no"), 0.0) or "yes"
            if typed:
                return Answer(text=_yes_no_word(rng, contact.pack, said), at=self.now)
            return Answer(choice=said, at=self.now)
        if isinstance(ask, model.ChoiceAsk):
            option = _weighted(rng, persona.choice, tuple(ask.options), persona.choice_other)
            option = option or rng.choice(tuple(ask.options))
            if typed:
                return Answer(text=ask.options[option].label, at=self.now)
            return Answer(choice=option, at=self.now)
        if isinstance(ask, model.ScaleAsk):
            value = str(_scale(rng, persona.scale, ask.min, ask.max))
            return Answer(text=value, at=self.now) if typed else Answer(choice=value, at=self.now)
        if isinstance(ask, model.DateTimeAsk):
            return Answer(text=rng.choice(_phrases(persona.when, locale)), at=self.now)
        if isinstance(ask, model.PhoneAsk):
            return Answer(text=rng.choice(_phrases(persona.phones, locale)), at=self.now)
        return Answer(text=rng.choice(_phrases(persona.texts, locale)), at=self.now)


def _weighted(
    rng: random.Random, weights: Mapping[str, float], ids: Sequence[str], other: float
) -> str | None:
    """An id drawn by weight (ids not in `weights` weigh `other`); None when all weigh nothing."""
    chances = [max(weights.get(i, other), 0.0) for i in ids]
    if sum(chances) <= 0:
        return None
    return rng.choices(list(ids), chances)[0]


def _scale(
    rng: random.Random, scale: Mapping[int, float] | tuple[float, float], low: int, high: int
) -> int:
    if isinstance(scale, tuple):
        mean, spread = scale
        value = low + rng.gauss(mean, spread) * (high - low)
        return min(high, max(low, round(value)))
    values = [v for v in range(low, high + 1)]
    picked = _weighted(rng, {str(v): w for v, w in scale.items()}, [str(v) for v in values], 0.0)
    return int(picked) if picked is not None else rng.randint(low, high)


def _yes_no_word(rng: random.Random, pack: LocalePack, said: str) -> str:
    return rng.choice(pack.yes if said == "yes" else pack.no)


def _phrases(phrases: Mapping[str, tuple[str, ...]], locale: str) -> tuple[str, ...]:
    found = phrases.get(locale) or phrases.get("en") or next(iter(phrases.values()), ())
    return found or ("…",)
