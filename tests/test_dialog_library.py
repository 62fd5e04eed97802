"""The starter dialog library in dialogs/: every script in Russian and English, for chat and call.

Static checks on the files themselves (the typed model, both languages alike, routes, voice
readiness, the retention playbook each script encodes) and `boomerang dialogs check` on the folder.
Walking the scripts through the engine is in test_dialog_library_transcripts.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bot.dialog.context import CONTEXT_NAMES
from bot.dialog.model import (
    END_OUTCOMES,
    ChoiceAsk,
    CreateTask,
    DateTimeAsk,
    IssueOffer,
    PhoneAsk,
    ScaleAsk,
    Script,
    Step,
    TextAsk,
    YesNoAsk,
    scale_route,
)

ROOT = Path(__file__).resolve().parent.parent
DIALOGS = ROOT / "dialogs"
LOCALES = ("ru", "en")
LIBRARY = ("post_order_feedback", "winback", "welcome", "anniversary", "birthday")
FILES = sorted(p for p in DIALOGS.glob("*.yaml"))
CAMPAIGN_NAMES = frozenset(CONTEXT_NAMES)
"""The campaign context: the only names a starter script may use."""
TEMPLATE_NAME = re.compile(r"{{\s*([a-z_][a-z0-9_]*)")
INTRODUCTION = {"ru": "автоматический помощник", "en": "automated assistant"}


def load(path: Path) -> Script:
    return Script.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def script(script_id: str, locale: str) -> Script:
    return load(DIALOGS / f"{script_id}.{locale}.yaml")


def targets(step: Step) -> list[str]:
    found = [*step.on.values()]
    found += [t for t in (step.else_, step.next) if t is not None]
    found += [r.then for r in (step.no_input, step.no_match) if r is not None and r.then]
    return found


def texts(step: Step) -> list[str]:
    """Every template in a step: what it says, its reprompts, its actions' templated fields."""
    found = [step.say]
    found += [r.say for r in (step.no_input, step.no_match) if r is not None and r.say]
    for action in step.do:
        if isinstance(action, IssueOffer):
            found.append(action.code)
        elif isinstance(action, CreateTask):
            found.append(action.note)
    return found


def shape(step: Step) -> dict[str, Any]:
    """Everything about a step except its words: must be the same in every language."""
    ask = step.ask
    options = None
    if isinstance(ask, ChoiceAsk):
        options = {k: o.dtmf for k, o in ask.options.items()}
    return {
        "ask": None if ask is None else ask.model_dump(exclude={"options"}),
        "options": options,
        "record": step.record,
        "on": step.on,
        "else": step.else_,
        "next": step.next,
        "end": step.end,
        "no_input": None if step.no_input is None else step.no_input.model_dump(exclude={"say"}),
        "no_match": None if step.no_match is None else step.no_match.model_dump(exclude={"say"}),
        "do": [a.model_dump(exclude={"note"}) for a in step.do],
    }


def test_the_library_is_complete() -> None:
    expected = {f"{s}.{loc}.yaml" for s in LIBRARY for loc in LOCALES}
    assert expected <= {p.name for p in FILES}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_file_parses_into_the_model(path: Path) -> None:
    parsed = load(path)
    assert path.name == f"{parsed.id}.{parsed.locale}.yaml"


@pytest.mark.parametrize("script_id", LIBRARY)
def test_russian_and_english_have_the_same_structure(script_id: str) -> None:
    ru, en = script(script_id, "ru"), script(script_id, "en")
    assert ru.start == en.start
    assert list(ru.steps) == list(en.steps)
    assert set(ru.variables) == set(en.variables)
    for step_id in ru.steps:
        assert shape(ru.steps[step_id]) == shape(en.steps[step_id]), step_id


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_route_goes_to_a_step(path: Path) -> None:
    parsed = load(path)
    assert parsed.start in parsed.steps
    for step_id, step in parsed.steps.items():
        for target in targets(step):
            assert target in parsed.steps, f"{step_id} -> {target}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_step_is_reachable(path: Path) -> None:
    parsed = load(path)
    seen: set[str] = set()
    todo = [parsed.start]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(targets(parsed.steps[current]))
    assert seen == set(parsed.steps)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_answer_is_routed(path: Path) -> None:
    for step_id, step in load(path).steps.items():
        ask = step.ask
        if ask is None:
            assert (step.next is None) != (step.end is None), f"{step_id}: `next` or `end`"
            continue
        assert step.end is None and step.next is None, f"{step_id} asks, so it cannot end"
        if isinstance(ask, YesNoAsk):
            assert set(step.on) == {"yes", "no"}, step_id
        elif isinstance(ask, ChoiceAsk):
            assert set(step.on) == set(ask.options), step_id
            assert ask.free_text == (step.else_ is not None), step_id
        elif isinstance(ask, ScaleAsk):
            covered: list[int] = []
            for key in step.on:
                bounds = scale_route(key)
                assert bounds is not None, f"{step_id}: {key}"
                covered += range(bounds[0], bounds[1] + 1)
            assert sorted(covered) == list(range(ask.min, ask.max + 1)), step_id
        else:
            assert isinstance(ask, TextAsk | DateTimeAsk | PhoneAsk)
            assert not step.on and step.else_ is not None, f"{step_id}: a text answer uses `else`"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_silence_and_misunderstanding_are_handled(path: Path) -> None:
    for step_id, step in load(path).steps.items():
        ask = step.ask
        if ask is None:
            assert step.no_input is None and step.no_match is None, step_id
            continue
        can_miss = not isinstance(ask, TextAsk) and not (
            isinstance(ask, ChoiceAsk) and ask.free_text
        )
        rules = [step.no_input, step.no_match] if can_miss else [step.no_input]
        for rule in rules:
            assert rule is not None, f"{step_id}: no_input and no_match need a reprompt"
            assert 1 <= rule.reprompt <= 2 and rule.say and rule.then, step_id
        if not can_miss:
            assert step.no_match is None, f"{step_id}: every answer is understood here"


def stop_phrases(locale: str) -> list[str]:
    pack = yaml.safe_load((DIALOGS / "_locale" / f"{locale}.yaml").read_text(encoding="utf-8"))
    return [normal(p) for p in pack["stop"]]


def normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower().replace("ё", "е")).split())


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_choices_work_in_chat_and_on_a_call(path: Path) -> None:
    parsed = load(path)
    stops = stop_phrases(parsed.locale)
    for step_id, step in parsed.steps.items():
        if not isinstance(step.ask, ChoiceAsk):
            continue
        digits = [o.dtmf for o in step.ask.options.values()]
        assert None not in digits and len(set(digits)) == len(digits), step_id
        phrases: dict[str, str] = {}
        for option_id, option in step.ask.options.items():
            assert option.label and len(option.synonyms) >= 3, f"{step_id}.{option_id}"
            for phrase in (option.label, *option.synonyms):
                said = normal(phrase)
                assert phrases.setdefault(said, option_id) == option_id, f"{said!r} twice"
                assert not any(f" {s} " in f" {said} " for s in stops), f"{said!r} is a stop"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_opening_says_who_is_writing_and_that_it_is_automated(path: Path) -> None:
    parsed = load(path)
    opening = parsed.steps[parsed.start].say
    assert "{{ company_name }}" in opening
    assert INTRODUCTION[parsed.locale] in opening


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_templates_use_only_the_campaign_context(path: Path) -> None:
    parsed = load(path)
    used = {
        name
        for step in parsed.steps.values()
        for t in texts(step)
        for name in TEMPLATE_NAME.findall(t)
    }
    assert used <= CAMPAIGN_NAMES
    assert set(parsed.variables) == used


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_outcomes_are_the_known_ones(path: Path) -> None:
    ends = {step.end for step in load(path).steps.values() if step.end is not None}
    assert ends <= set(END_OUTCOMES)


# --- the playbook each script encodes ------------------------------------------------------------


def ends_of(parsed: Script) -> set[str]:
    return {s.end for s in parsed.steps.values() if s.end is not None}


def records_of(parsed: Script) -> set[str]:
    return {s.record for s in parsed.steps.values() if s.record is not None}


@pytest.mark.parametrize("locale", LOCALES)
def test_post_order_feedback_follows_nps(locale: str) -> None:
    parsed = script("post_order_feedback", locale)
    nps = parsed.steps["nps"]
    assert nps.record == "nps" and nps.ask == ScaleAsk(type="scale", min=0, max=10)
    assert nps.on == {"9-10": "promoter", "7-8": "passive", "0-6": "detractor"}
    assert parsed.steps["promoter"].record == "review_agreed"
    assert parsed.steps["passive"].record == parsed.steps["detractor"].record == "reason_text"
    assert parsed.steps["detractor"].else_ == "callback_offer"
    offer = parsed.steps["callback_offer"]
    assert offer.on == {"yes": "callback_time", "no": "detractor_thanks"}
    time = parsed.steps["callback_time"]
    assert isinstance(time.ask, DateTimeAsk) and time.record == "callback_at"
    booked = parsed.steps[time.else_ or ""]
    assert [a.kind for a in booked.do] == ["create_task"] and booked.end == "callback_booked"
    assert parsed.steps["detractor_thanks"].end == "feedback_given"
    assert ends_of(parsed) == {"feedback_given", "callback_booked", "declined", "no_answer"}


WINBACK_REASONS = {
    "price",
    "service",
    "quality",
    "competitor",
    "forgot",
    "not_needed",
    "moved",
    "other",
}


@pytest.mark.parametrize("locale", LOCALES)
def test_winback_answers_every_reason(locale: str) -> None:
    parsed = script("winback", locale)
    why = parsed.steps["why"]
    assert isinstance(why.ask, ChoiceAsk) and why.ask.free_text and why.record == "reason"
    assert set(why.ask.options) == WINBACK_REASONS
    offers = {"price_offer", "quality_sorry", "competitor_offer", "forgot_news", "other_offer"}
    for step_id in offers:
        step = parsed.steps[step_id]
        assert [a.kind for a in step.do] == ["issue_offer"], step_id
        assert step.record == "offer_accepted" and step.on["yes"] == "offer_accepted", step_id
    # Service: a senior colleague calls, and the task says it must not be the same manager.
    assert parsed.steps["service_sorry"].on["yes"] == "service_callback"
    (task,) = parsed.steps["service_callback"].do
    assert isinstance(task, CreateTask)
    assert ("НЕ менеджер" if locale == "ru" else "NOT the manager") in task.note
    assert parsed.steps["service_callback"].end == "callback_booked"
    assert parsed.steps["not_needed"].record == "consent"
    assert isinstance(parsed.steps["moved_city"].ask, TextAsk)
    assert parsed.steps["competitor_ask"].record == parsed.steps["other_tell"].record
    assert parsed.steps["other_tell"].record == "reason_text"
    assert ends_of(parsed) == {
        "offer_accepted",
        "callback_booked",
        "declined",
        "feedback_given",
        "no_answer",
    }
    assert {"reason", "reason_text", "offer_accepted", "consent"} <= records_of(parsed)


@pytest.mark.parametrize("locale", LOCALES)
def test_welcome_hands_a_problem_to_a_manager(locale: str) -> None:
    parsed = script("welcome", locale)
    assert parsed.steps["intro"].on == {"yes": "tips", "no": "problem"}
    handoff = parsed.steps["handoff"]
    assert [a.kind for a in handoff.do] == ["create_task", "handoff"]
    assert handoff.end == "handed_off"


@pytest.mark.parametrize("script_id", ["anniversary", "birthday"])
@pytest.mark.parametrize("locale", LOCALES)
def test_greetings_come_with_a_gift(script_id: str, locale: str) -> None:
    parsed = script(script_id, locale)
    gift = parsed.steps[parsed.steps[parsed.start].next or ""]
    assert [a.kind for a in gift.do] == ["issue_offer"]
    assert "{{ offer_code }}" in gift.say
    assert ends_of(parsed) == {"offer_accepted", "declined", "no_answer"}


# --- boomerang dialogs check ---------------------------------------------------------------------


def test_the_library_passes_the_validator_without_warnings() -> None:
    from bot.dialog.library import load_library

    library = load_library(DIALOGS)
    assert [str(p) for p in library.problems] == []
    assert {(s, loc) for s in LIBRARY for loc in LOCALES} <= set(library.scripts)


def test_boomerang_dialogs_check_passes() -> None:
    from bot.cli.app import app

    result = CliRunner().invoke(app, ["dialogs", "check", str(DIALOGS)])
    assert result.exit_code == 0, result.output
    assert "0 errors, 0 warnings" in result.output
