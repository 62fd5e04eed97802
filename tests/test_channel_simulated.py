"""The simulated channel: whole conversations of persona-driven customers through the engine."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.channel.base import Channel, Contact, Delivery, Status
from bot.channel.simulated import (
    MIXED_SHOP,
    Persona,
    SimulatedChannel,
    happy,
    silent,
    stopper,
    unhappy,
)
from bot.dialog.context import sample_context
from bot.dialog.events import Action, Ask, End, Record, StopConfirmation
from bot.dialog.library import Library, load_library
from bot.dialog.model import END_OUTCOMES, OptOut
from bot.dialog.state import State

DIALOGS = Path(__file__).resolve().parent.parent / "dialogs"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo("Europe/Moscow"))
KNOWN = frozenset(END_OUTCOMES) | {"hung_up", "completed"}
CUSTOMERS = 300


@pytest.fixture(scope="module")
def library() -> Library:
    loaded = load_library(DIALOGS)
    assert not loaded.errors
    return loaded


def _contact(library: Library, key: tuple[str, str], customer_id: int) -> Contact:
    loaded = library.scripts[key]
    locale = loaded.script.locale
    context = sample_context(locale, loaded.script.variables)
    return Contact(
        customer_id, locale, f"sim:{customer_id}", loaded, library.packs[locale], context
    )


def _run(channel: Channel, contacts: list[Contact]) -> list[Delivery]:
    async def all_of() -> list[Delivery]:
        return [await channel.start_conversation(contact) for contact in contacts]

    return asyncio.run(all_of())


def test_every_script_ends_with_a_known_outcome(library: Library) -> None:
    assert len(library.scripts) == 10
    channel = SimulatedChannel(MIXED_SHOP, seed=11, now=NOW)
    for key in sorted(library.scripts):
        contacts = [_contact(library, key, cid) for cid in range(CUSTOMERS)]
        deliveries = _run(channel, contacts)
        statuses = Counter(d.status for d in deliveries)
        assert set(statuses) == {Status.DELIVERED, Status.NO_ANSWER}, key
        outcomes = Counter(d.outcome for d in deliveries if d.status is Status.DELIVERED)
        assert set(outcomes) <= KNOWN, (key, outcomes)
        assert len(outcomes) >= 3, (key, outcomes)
        for delivery in deliveries:
            if delivery.status is Status.NO_ANSWER:
                assert delivery.state is None and delivery.outputs == ()
                continue
            state = delivery.state
            assert state is not None and state.finished
            assert delivery.outputs[-1] == End(str(state.outcome))
            recorded = {r.field: r.value for r in delivery.records}
            assert recorded == dict(state.answers)
            assert State.from_json(state.to_json()) == state


def test_a_stopper_always_opts_out(library: Library) -> None:
    channel = SimulatedChannel(stopper, seed=3, now=NOW)
    for key in sorted(library.scripts):
        for delivery in _run(channel, [_contact(library, key, cid) for cid in range(50)]):
            assert delivery.status is Status.DELIVERED
            assert delivery.outcome == "opted_out"
            assert Record("opt_out", True) in delivery.outputs
            assert any(
                isinstance(o, Action) and isinstance(o.action, OptOut) for o in delivery.outputs
            )
            assert StopConfirmation() in delivery.outputs


def test_a_customer_who_never_answers_never_starts_the_engine(library: Library) -> None:
    never = Persona("never", no_answer=1.0)
    channel = SimulatedChannel(never, seed=5, now=NOW)
    for delivery in _run(channel, [_contact(library, ("winback", "ru"), c) for c in range(100)]):
        assert delivery.status is Status.NO_ANSWER
        assert delivery.state is None and delivery.outputs == ()
        assert delivery.outcome is None and not delivery.finished


def test_silent_customers_mostly_do_not_answer(library: Library) -> None:
    channel = SimulatedChannel(silent, seed=5, now=NOW)
    deliveries = _run(channel, [_contact(library, ("winback", "en"), c) for c in range(CUSTOMERS)])
    statuses = Counter(d.status for d in deliveries)
    assert 0.5 < statuses[Status.NO_ANSWER] / CUSTOMERS < 0.7
    outcomes = Counter(d.outcome for d in deliveries if d.status is Status.DELIVERED)
    assert outcomes.most_common(1)[0][0] == "no_answer"
    assert outcomes["offer_accepted"] == 0


def test_the_outcome_mix_follows_the_persona(library: Library) -> None:
    key = ("anniversary", "ru")
    contacts = [_contact(library, key, c) for c in range(CUSTOMERS)]

    def accepted(persona: Persona) -> float:
        deliveries = _run(SimulatedChannel(persona, seed=1, now=NOW), contacts)
        talked = [d for d in deliveries if d.status is Status.DELIVERED]
        return sum(d.outcome == "offer_accepted" for d in talked) / len(talked)

    assert accepted(happy) > 0.6
    assert accepted(unhappy) < 0.4


def test_nps_follows_the_persona(library: Library) -> None:
    key = ("post_order_feedback", "en")
    contacts = [_contact(library, key, c) for c in range(CUSTOMERS)]

    def mean_nps(persona: Persona) -> float:
        scores: list[int] = []
        for delivery in _run(SimulatedChannel(persona, seed=2, now=NOW), contacts):
            nps = delivery.state.answers.get("nps") if delivery.state is not None else None
            if isinstance(nps, int):
                scores.append(nps)
        assert len(scores) > 20
        return sum(scores) / len(scores)

    assert mean_nps(happy) > 8
    assert mean_nps(unhappy) < 3
    fixed = Persona("sevens", scale={7: 1.0, 42: 5.0})
    assert mean_nps(fixed) == 7


def test_callback_times_are_read_against_now(library: Library) -> None:
    wants_call = Persona("wants_call", yes_no={"yes": 1.0}, scale={3: 1.0})
    for locale in ("ru", "en"):
        contacts = [_contact(library, ("post_order_feedback", locale), c) for c in range(60)]
        channel = SimulatedChannel(wants_call, seed=4, now=NOW)
        times = [
            d.state.answers["callback_at"]
            for d in _run(channel, contacts)
            if d.state is not None and "callback_at" in d.state.answers
        ]
        assert times, locale
        for value in times:
            assert isinstance(value, str)
            local = datetime.fromisoformat(value)  # the customer's local wall time
            assert NOW.replace(tzinfo=None) < local < NOW.replace(tzinfo=None) + timedelta(7)


def test_a_seed_gives_the_same_run_in_any_order(library: Library) -> None:
    keys = sorted(library.scripts)
    contacts = [_contact(library, key, c) for key in keys for c in range(40)]
    first = _run(SimulatedChannel(MIXED_SHOP, seed=9, now=NOW), contacts)
    again = _run(SimulatedChannel(MIXED_SHOP, seed=9, now=NOW), contacts[::-1])[::-1]
    assert first == again
    other = _run(SimulatedChannel(MIXED_SHOP, seed=10, now=NOW), contacts)
    assert first != other


def test_a_customer_keeps_their_persona_across_scripts() -> None:
    channel = SimulatedChannel(MIXED_SHOP, seed=9, now=NOW)
    personas = Counter(channel.persona_for(c).name for c in range(2000))
    assert set(personas) == {p.name for p, _ in MIXED_SHOP}
    assert personas["happy"] > personas["stopper"]
    assert channel.persona_for(17) is SimulatedChannel(MIXED_SHOP, seed=9, now=NOW).persona_for(17)


def test_every_ask_the_customer_answered_was_shown_first(library: Library) -> None:
    channel = SimulatedChannel(MIXED_SHOP, seed=12, now=NOW)
    for delivery in _run(channel, [_contact(library, ("winback", "ru"), c) for c in range(100)]):
        if delivery.status is Status.DELIVERED and delivery.outcome != "completed":
            assert any(isinstance(o, Ask) for o in delivery.outputs)


def test_bad_mixtures_are_refused() -> None:
    with pytest.raises(ValueError):
        SimulatedChannel((), now=NOW)
    with pytest.raises(ValueError):
        SimulatedChannel(((happy, 0.0),), now=NOW)
    with pytest.raises(ValueError):
        SimulatedChannel(((happy, -1.0), (unhappy, 2.0)), now=NOW)
