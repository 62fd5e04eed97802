"""The pure dialog engine, as conversations on small scripts: routes, reprompts, stops, versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.dialog import engine
from bot.dialog.events import (
    Action,
    Answer,
    Ask,
    AskOption,
    End,
    Event,
    HangUp,
    NoInput,
    Output,
    Record,
    Say,
    StopConfirmation,
)
from bot.dialog.locale_pack import LocalePack
from bot.dialog.model import CreateTask, IssueOffer, OptOut, Script
from bot.dialog.state import State

ROOT = Path(__file__).resolve().parent.parent
RU = LocalePack.model_validate(
    yaml.safe_load((ROOT / "dialogs" / "_locale" / "ru.yaml").read_text("utf-8"))
)
VERSION = "abc123def456"

FEEDBACK = Script.model_validate(
    yaml.safe_load(
        """
id: feedback
title: Отзыв
locale: ru
start: intro
steps:
  intro:
    say: Здравствуйте, {{ first_name }}! Можно пару вопросов?
    ask: {type: yes_no}
    record: consent
    "on": {yes: nps, no: bye}
    no_input: {reprompt: 1, say: "Вы меня слышите?", then: bye}
    no_match: {reprompt: 2, say: Скажите «да» или «нет».}
  nps:
    say: Оцените нас от 0 до 10.
    ask: {type: scale, min: 0, max: 10}
    record: nps
    "on": {"9-10": promoter, "7-8": passive, "0": zero, "0-6": why}
  why:
    say: Почему?
    ask:
      type: choice
      free_text: true
      options:
        price: {label: Дорого, synonyms: [дорого, цена], dtmf: "1"}
        quality: {label: Качество, synonyms: [плохое качество], dtmf: "2"}
    record: reason
    "on": {price: offer, quality: sorry}
    else: thanks
  offer:
    say: Дарим скидку {{ offer_discount }}%.
    do:
      - issue_offer: {code: "BACK-{{ customer_id }}", discount: 15}
      - create_task: {note: Перезвонить}
    next: thanks
  sorry:
    say: Простите нас.
    next: thanks
  promoter: {say: "Спасибо!", end: feedback_given}
  passive: {say: "Спасибо, учтём.", end: feedback_given}
  zero: {say: "Ох.", end: feedback_given}
  thanks: {say: "Спасибо! Хорошего дня.", end: feedback_given}
  bye: {say: "До свидания.", end: declined}
"""
    )
)


class Talk:
    """A conversation driven turn by turn; the state goes through JSON at every step."""

    def __init__(self, script: Script = FEEDBACK) -> None:
        self.script = script
        self.state, self.outputs = engine.start(script, VERSION, RU)
        self.check_round_trip()

    def check_round_trip(self) -> None:
        assert State.from_json(self.state.to_json()) == self.state

    def send(self, event: Event | str) -> list[Output]:
        if isinstance(event, str):
            event = Answer(text=event)
        state = State.from_json(self.state.to_json())
        self.state, self.outputs = engine.advance(self.script, RU, state, event, version=VERSION)
        self.check_round_trip()
        return self.outputs


def says(outputs: list[Output]) -> list[tuple[str, str]]:
    return [(o.step, o.field) for o in outputs if isinstance(o, Say)]


def ends(outputs: list[Output]) -> list[str]:
    return [o.outcome for o in outputs if isinstance(o, End)]


def test_start_greets_and_asks_yes_no_with_buttons_and_keys() -> None:
    talk = Talk()
    ask = talk.outputs[-1]
    assert talk.outputs[0] == Say("intro")
    assert isinstance(ask, Ask)
    assert ask.kind == "yes_no"
    assert ask.options == (AskOption("yes", "Да", "1"), AskOption("no", "Нет", "2"))
    assert {"да", "нет", "не надо", "стоп"} <= set(ask.expected_phrases)
    assert talk.state.step == "intro"
    assert not talk.state.finished


def test_yes_leads_to_the_scale_and_a_range_routes_the_score() -> None:
    talk = Talk()
    out = talk.send("да, конечно")
    assert Record("consent", True) in out
    assert says(out) == [("nps", "say")]
    ask = out[-1]
    assert isinstance(ask, Ask)
    assert ask.kind == "scale"
    assert [o.id for o in ask.options] == [str(n) for n in range(11)]
    out = talk.send("на восемь")
    assert out == [Record("nps", 8), Say("passive"), End("feedback_given")]
    assert talk.state.finished
    assert talk.state.outcome == "feedback_given"
    assert talk.state.answers == {"consent": True, "nps": 8}


@pytest.mark.parametrize(
    ("answer", "step"),
    [("10", "promoter"), ("девять", "promoter"), ("0", "zero"), ("5", "why"), ("шесть", "why")],
)
def test_an_exact_number_key_wins_over_a_range(answer: str, step: str) -> None:
    talk = Talk()
    talk.send("да")
    out = talk.send(answer)
    assert says(out)[0] == (step, "say")


def test_no_leads_to_goodbye() -> None:
    talk = Talk()
    out = talk.send(Answer(choice="no"))
    assert out == [Record("consent", False), Say("bye"), End("declined")]


def test_choice_by_button_runs_the_step_actions_in_order_then_follows_next() -> None:
    talk = Talk()
    talk.send("да")
    talk.send("3")
    out = talk.send(Answer(choice="price"))
    assert out == [
        Record("reason", "price"),
        Say("offer"),
        Action("offer", IssueOffer(code="BACK-{{ customer_id }}", discount=15)),
        Action("offer", CreateTask(note="Перезвонить")),
        Say("thanks"),
        End("feedback_given"),
    ]


def test_choice_by_dtmf_and_by_words() -> None:
    talk = Talk()
    talk.send("да")
    talk.send("2")
    assert says(talk.send(Answer(digits="2"))) == [("sorry", "say"), ("thanks", "say")]
    talk = Talk()
    talk.send("да")
    talk.send("2")
    out = talk.send("цены высокие")
    assert Record("reason", "price") in out
    assert says(out)[0] == ("offer", "say")


def test_free_text_is_kept_and_routed_by_else() -> None:
    talk = Talk()
    talk.send("да")
    talk.send("1")
    out = talk.send("переехали в другой город")
    assert out == [
        Record("reason_text", "переехали в другой город"),
        Say("thanks"),
        End("feedback_given"),
    ]


def test_no_match_reprompts_up_to_the_limit_then_ends_as_no_answer() -> None:
    talk = Talk()
    ask = talk.outputs[-1]
    for _ in range(2):
        assert talk.send("может быть") == [Say("intro", "no_match"), ask]
    assert talk.state.reprompts == {"intro": {"no_match": 2}}
    assert talk.send("может быть") == [End("no_answer")]
    assert talk.state.outcome == "no_answer"


def test_no_input_reprompts_then_goes_to_then() -> None:
    talk = Talk()
    assert says(talk.send(NoInput())) == [("intro", "no_input")]
    assert talk.send(NoInput()) == [Say("bye"), End("declined")]


def test_reprompt_counters_are_separate_per_kind() -> None:
    talk = Talk()
    talk.send(NoInput())
    talk.send("что?")
    talk.send("что?")
    assert talk.state.reprompts == {"intro": {"no_input": 1, "no_match": 2}}
    assert talk.send("да")[-1].__class__ is Ask


def test_a_step_without_rules_reprompts_once_with_the_pack_default() -> None:
    talk = Talk()
    talk.send("да")
    out = talk.send("не скажу")
    assert says(out) == [("nps", "no_match")]
    assert engine.say_template(FEEDBACK, RU, Say("nps", "no_match")) == RU.no_match_default
    assert engine.say_template(FEEDBACK, RU, Say("intro", "no_match")) == "Скажите «да» или «нет»."
    assert talk.send("не скажу") == [End("no_answer")]


def test_low_confidence_counts_as_no_match() -> None:
    talk = Talk()
    assert says(talk.send(Answer(text="да", confidence=0.2))) == [("intro", "no_match")]


def test_a_stop_phrase_at_a_middle_step_opts_out() -> None:
    talk = Talk()
    talk.send("да")
    out = talk.send("не звоните мне больше")
    assert out == [
        Record("opt_out", True),
        Action("nps", OptOut()),
        StopConfirmation(),
        End("opted_out"),
    ]
    assert talk.state.answers == {"consent": True, "opt_out": True}
    assert talk.state.outcome == "opted_out"


def test_hang_up_ends_and_keeps_what_was_recorded() -> None:
    talk = Talk()
    talk.send("да")
    assert talk.send(HangUp()) == [End("hung_up")]
    assert talk.state.answers == {"consent": True}
    assert talk.state.outcome == "hung_up"


def test_a_finished_conversation_ignores_events() -> None:
    talk = Talk()
    talk.send(HangUp())
    finished = talk.state
    assert talk.send("да") == []
    assert talk.send(NoInput()) == []
    assert talk.state == finished


def test_a_conversation_stays_on_its_version() -> None:
    state, _ = engine.start(FEEDBACK, VERSION, RU)
    with pytest.raises(ValueError, match="abc123def456"):
        engine.advance(FEEDBACK, RU, state, Answer(text="да"), version="000000000000")


def test_next_chains_run_through_steps_without_asks() -> None:
    script = Script.model_validate(
        {
            "id": "chain",
            "title": "Chain",
            "locale": "ru",
            "start": "a",
            "steps": {
                "a": {"say": "A", "next": "b"},
                "b": {"do": [{"handoff": {"note": "n"}}], "next": "c"},
                "c": {"say": "C"},
            },
        }
    )
    state, out = engine.start(script, VERSION, RU)
    assert [type(o).__name__ for o in out] == ["Say", "Action", "Say", "End"]
    assert out[-1] == End(engine.DEFAULT_END)
    assert state.finished


def test_a_loop_without_asks_is_refused() -> None:
    data: dict[str, Any] = {
        "id": "loop",
        "title": "Loop",
        "locale": "ru",
        "start": "a",
        "steps": {"a": {"say": "A", "next": "b"}, "b": {"next": "a"}},
    }
    with pytest.raises(ValueError, match="loops"):
        engine.start(Script.model_validate(data), VERSION, RU)


def test_state_json_round_trip_keeps_everything() -> None:
    state = State(
        script="feedback",
        version=VERSION,
        step="why",
        reprompts={"intro": {"no_match": 1}},
        answers={"nps": 4, "consent": True, "reason_text": "Ёлки, дорого"},
        finished=True,
        outcome="feedback_given",
    )
    assert State.from_json(state.to_json()) == state
    assert "Ёлки" in state.to_json()
