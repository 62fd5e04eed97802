"""The answer matcher: Russian morphology, yes/no, numbers, stop phrases, buttons and DTMF."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.dialog import matcher
from bot.dialog.events import Answer
from bot.dialog.locale_pack import LocalePack
from bot.dialog.matcher import Match
from bot.dialog.model import ChoiceAsk, ScaleAsk, TextAsk, YesNoAsk

ROOT = Path(__file__).resolve().parent.parent


def pack(locale: str) -> LocalePack:
    data = yaml.safe_load((ROOT / "dialogs" / "_locale" / f"{locale}.yaml").read_text("utf-8"))
    return LocalePack.model_validate(data)


RU = pack("ru")
EN = pack("en")
REASONS = ChoiceAsk.model_validate(
    {
        "type": "choice",
        "options": {
            "price": {"label": "Дорого", "synonyms": ["дорого", "цена"], "dtmf": "1"},
            "delivery": {"label": "Доставка", "synonyms": ["доставка", "долго везли"], "dtmf": "2"},
            "quality": {"label": "Качество", "synonyms": ["плохое качество"], "dtmf": "3"},
        },
    }
)


def test_normalise_lowercases_drops_punctuation_and_yo() -> None:
    assert matcher.normalise("  Ещё, КОНЕЧНО!!  Да… ") == "еще конечно да"


@pytest.mark.parametrize(
    "text", ["дорого", "дороговато", "цены высокие", "слишком дорогой", "Цена!"]
)
def test_price_words_in_any_form_reach_the_price_option(text: str) -> None:
    assert matcher.option(text, REASONS, "ru") == Match("option", "price")


@pytest.mark.parametrize("text", ["доставка долгая", "долго везли", "Доставка"])
def test_delivery_words_do_not_reach_price(text: str) -> None:
    assert matcher.option(text, REASONS, "ru") == Match("option", "delivery")


@pytest.mark.parametrize("text", ["не дорого", "всё хорошо", "достаточно", "дорожка"])
def test_unrelated_or_negated_words_match_no_option(text: str) -> None:
    assert matcher.option(text, REASONS, "ru") == matcher.NO_MATCH


def test_a_multiword_synonym_needs_all_its_words() -> None:
    assert matcher.option("качество плохое", REASONS, "ru") == Match("option", "quality")
    assert matcher.option("качество", REASONS, "ru") == Match("option", "quality")  # the label
    assert matcher.option("плохое", REASONS, "ru") == matcher.NO_MATCH


def test_an_answer_naming_two_options_equally_is_not_a_match() -> None:
    assert matcher.option("дорого и доставка", REASONS, "ru") == matcher.NO_MATCH


@pytest.mark.parametrize(
    ("text", "meaning"),
    [
        ("да", "yes"),
        ("Да, конечно", "yes"),
        ("ага", "yes"),
        ("давайте", "yes"),
        ("нет", "no"),
        ("нет, спасибо", "no"),
        ("не надо", "no"),
        ("не сейчас, позже", "no"),
        ("не", "no"),
    ],
)
def test_yes_and_no_by_whole_phrase_or_first_words(text: str, meaning: str) -> None:
    assert matcher.yes_no(text, matcher.vocabulary(RU, "ru")).kind == meaning


@pytest.mark.parametrize("text", ["не знаю", "может быть", "", "сколько стоит"])
def test_other_answers_are_neither_yes_nor_no(text: str) -> None:
    assert matcher.yes_no(text, matcher.vocabulary(RU, "ru")) == matcher.NO_MATCH


@pytest.mark.parametrize(
    ("text", "value"),
    [("8", 8), ("восемь", 8), ("на восемь", 8), ("10 из 10", 10), ("десятка", 10), ("ноль", 0)],
)
def test_russian_numbers_in_digits_or_words(text: str, value: int) -> None:
    assert matcher.number(text, matcher.vocabulary(RU, "ru"), 0, 10) == Match("number", value)


def test_number_words_in_other_grammatical_cases() -> None:
    assert matcher.number("ставлю восьмёрку", matcher.vocabulary(RU, "ru")) == Match("number", 8)


def test_numbers_outside_the_scale_do_not_match() -> None:
    scale = ScaleAsk(type="scale", min=1, max=5)
    assert matcher.understand(Answer(text="8"), scale, RU, "ru") == matcher.NO_MATCH
    assert matcher.understand(Answer(text="ноль"), scale, RU, "ru") == matcher.NO_MATCH
    assert matcher.understand(Answer(text="пять"), scale, RU, "ru") == Match("number", 5)


@pytest.mark.parametrize(
    "text",
    ["стоп", "Стоп!", "пожалуйста, не звоните мне больше", "отпишите меня", "Не звони мне", "STOP"],
)
def test_stop_phrases_anywhere_in_the_answer(text: str) -> None:
    assert matcher.understand(Answer(text=text), YesNoAsk(type="yes_no"), RU, "ru") == matcher.STOP


def test_stop_is_checked_before_the_ask() -> None:
    assert matcher.understand(Answer(text="нет, хватит"), TextAsk(type="text"), RU, "ru").kind == (
        "stop"
    )


def test_buttons_and_dtmf_pick_options_exactly() -> None:
    assert matcher.understand(Answer(choice="quality"), REASONS, RU, "ru") == Match(
        "option", "quality"
    )
    assert matcher.understand(Answer(digits="2"), REASONS, RU, "ru") == Match("option", "delivery")
    assert matcher.understand(Answer(digits="7"), REASONS, RU, "ru") == matcher.NO_MATCH
    assert matcher.understand(Answer(choice="nope"), REASONS, RU, "ru") == matcher.NO_MATCH
    yes_no = YesNoAsk(type="yes_no")
    assert matcher.understand(Answer(digits="1"), yes_no, RU, "ru") == matcher.YES
    assert matcher.understand(Answer(digits="2"), yes_no, RU, "ru") == matcher.NO
    assert matcher.understand(Answer(choice="no"), yes_no, RU, "ru") == matcher.NO


def test_free_text_choice_keeps_unmatched_text() -> None:
    free = REASONS.model_copy(update={"free_text": True})
    assert matcher.understand(Answer(text="переехал"), free, RU, "ru") == Match("text", "переехал")
    assert matcher.understand(Answer(text="дорого"), free, RU, "ru") == Match("option", "price")


def test_low_confidence_speech_is_not_understood() -> None:
    answer = Answer(text="да", confidence=0.3)
    assert matcher.understand(answer, YesNoAsk(type="yes_no"), RU, "ru") == matcher.NO_MATCH


def test_english_uses_plain_words() -> None:
    vocab = matcher.vocabulary(EN, "en")
    assert matcher.yes_no("Yes, please", vocab) == matcher.YES
    assert matcher.yes_no("no thanks", vocab) == matcher.NO
    assert matcher.number("eight out of ten", vocab, 0, 10) == Match("number", 8)
    assert matcher.understand(Answer(text="Don't call me again"), None, EN, "en") == matcher.STOP
    reasons = ChoiceAsk.model_validate(
        {
            "type": "choice",
            "options": {
                "price": {"label": "Price", "synonyms": ["expensive", "too pricey"]},
                "delivery": {"label": "Delivery", "synonyms": ["late delivery"]},
            },
        }
    )
    assert matcher.option("it was expensive", reasons, "en") == Match("option", "price")
    assert matcher.option("prices", reasons, "en") == Match("option", "price")
    assert matcher.option("the delivery was late", reasons, "en") == Match("option", "delivery")
    assert matcher.option("not expensive", reasons, "en") == matcher.NO_MATCH


def test_datetime_and_phone_answers() -> None:
    from bot.dialog.model import DateTimeAsk, PhoneAsk

    when = DateTimeAsk(type="datetime")
    assert matcher.understand(Answer(text="31.12.2026 15:30"), when, RU, "ru") == Match(
        "text", "2026-12-31T15:30:00"
    )
    assert matcher.understand(Answer(text="когда-нибудь"), when, RU, "ru") == matcher.NO_MATCH
    number = PhoneAsk(type="phone")
    assert matcher.understand(Answer(text="8 (912) 345-67-89"), number, RU, "ru") == Match(
        "text", "+79123456789"
    )
    assert matcher.understand(Answer(text="12"), number, RU, "ru") == matcher.NO_MATCH
