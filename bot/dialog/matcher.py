"""Understanding an answer: stop phrases, yes/no, numbers, options by button, DTMF or words.

Russian words are compared through their lemmas (pymorphy3), so "цены высокие", "дороговато" and
"слишком дорогой" reach an option whose synonyms are [дорого, цена]; English words are compared as
lowercase words (with a plural "s" dropped). Everything here is pure and cached: one `MorphAnalyzer`
per process, created on first use, and an lru_cache on the lemmas of each word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal, Protocol

from bot.dialog import model
from bot.dialog.events import Answer
from bot.dialog.numbers import number_words, parse_number
from bot.dialog.when import parse_when

LOW_CONFIDENCE = 0.5
"""Recognised speech below this confidence is treated as not understood."""

_PUNCTUATION = re.compile(r"[^\w\s]|_", re.UNICODE)
_SPACES = re.compile(r"\s+")
_NEGATIONS = frozenset({"не", "not", "no"})
_STOPWORDS = frozenset(
    {"в", "во", "на", "и", "а", "с", "со", "по", "за", "к", "у", "о", "об", "из", "от", "до"}
    | {"the", "a", "an", "to", "of", "in", "at", "is", "it", "too", "and", "for"}
)
_MIN_STEM = 5
_BARE_NEGATIONS = frozenset({("не",), ("not",)})


class PackWords(Protocol):
    """What the matcher reads from a locale pack (dialogs/_locale/<locale>.yaml)."""

    @property
    def yes(self) -> Sequence[str]: ...
    @property
    def no(self) -> Sequence[str]: ...
    @property
    def numbers(self) -> Mapping[int, Sequence[str]]: ...
    @property
    def stop(self) -> Sequence[str]: ...


MatchKind = Literal["option", "yes", "no", "number", "text", "stop", "none"]


@dataclass(frozen=True, slots=True)
class Match:
    """What an answer meant: an option id, yes, no, a number, a text value, a stop, or nothing."""

    kind: MatchKind
    value: str | int | None = None


NO_MATCH = Match("none")
STOP = Match("stop")
YES = Match("yes", "yes")
NO = Match("no", "no")


# --- words ---------------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """Lowercase, ё -> е, punctuation to spaces, one space ("Да, конечно!" -> "да конечно")."""
    text = text.lower().replace("ё", "е")
    text = _PUNCTUATION.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def tokens(text: str) -> tuple[str, ...]:
    normalised = normalise(text)
    return tuple(normalised.split(" ")) if normalised else ()


@lru_cache(maxsize=1)
def _morph() -> Any:
    import pymorphy3

    return pymorphy3.MorphAnalyzer()


@lru_cache(maxsize=65536)
def lemmas(word: str, locale: str) -> frozenset[str]:
    """Every dictionary form a normalised word can have, plus the word itself."""
    if locale == "ru" and not word.isascii():
        forms = {normalise(parse.normal_form) for parse in _morph().parse(word)}
        forms.add(word)
        return frozenset(forms)
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return frozenset({word, word[:-1]})
    return frozenset({word})


@lru_cache(maxsize=262144)
def _same_word(phrase_lemmas: frozenset[str], answer_lemmas: frozenset[str], locale: str) -> bool:
    if phrase_lemmas & answer_lemmas:
        return True
    if locale != "ru":
        return False
    # A shared stem: "дороговатый" ~ "дорого", "качественный" ~ "качество",
    # but not "доставка" ~ "достаточно" (5 letters, or all but the last 2 of the shorter word).
    for left in phrase_lemmas:
        for right in answer_lemmas:
            shorter = min(len(left), len(right))
            need = max(_MIN_STEM, shorter - 2)
            if shorter >= need and left[:need] == right[:need]:
                return True
    return False


# --- the locale pack, compiled -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """A locale pack's words, normalised once: phrases as word tuples, number words as an index."""

    locale: str
    yes: tuple[tuple[str, ...], ...]
    no: tuple[tuple[str, ...], ...]
    stop: tuple[tuple[str, ...], ...]
    stop_lemmas: tuple[tuple[frozenset[str], ...], ...]
    stop_first: frozenset[str]
    """Every lemma of the first word of a stop phrase: answers without one are not stops."""
    numbers: Mapping[int, tuple[str, ...]]
    number_index: Mapping[str, int]


_vocabularies: dict[tuple[int, str], tuple[PackWords, Vocabulary]] = {}


def vocabulary(pack: PackWords, locale: str) -> Vocabulary:
    """The compiled words of `pack` (cached per pack object)."""
    key = (id(pack), locale)
    cached = _vocabularies.get(key)
    if cached is not None and cached[0] is pack:
        return cached[1]

    def phrases(items: Iterable[str]) -> tuple[tuple[str, ...], ...]:
        found = (tokens(item) for item in items)
        return tuple(sorted({item for item in found if item}, key=len, reverse=True))

    numbers = {int(k): tuple(normalise(w) for w in v) for k, v in pack.numbers.items()}
    stop = phrases(pack.stop)
    stop_lemmas = tuple(tuple(lemmas(w, locale) for w in phrase) for phrase in stop)
    compiled = Vocabulary(
        locale=locale,
        yes=phrases(pack.yes),
        no=phrases(pack.no),
        stop=stop,
        stop_lemmas=stop_lemmas,
        stop_first=frozenset().union(*(phrase[0] for phrase in stop_lemmas)),
        numbers=numbers,
        number_index=number_words(numbers, normalise),
    )
    if len(_vocabularies) > 64:
        _vocabularies.clear()
    _vocabularies[key] = (pack, compiled)
    return compiled


# --- single meanings -----------------------------------------------------------------------------


def _contains(answer: Sequence[frozenset[str]], phrase: Sequence[frozenset[str]]) -> bool:
    """True when `phrase` occurs as consecutive words of `answer` (lemma sets that overlap)."""
    size = len(phrase)
    for start in range(len(answer) - size + 1):
        if all(answer[start + i] & phrase[i] for i in range(size)):
            return True
    return False


def is_stop(text: str, vocab: Vocabulary) -> bool:
    """A stop phrase anywhere in the answer: "пожалуйста, не звоните мне больше" -> True."""
    return _is_stop([lemmas(w, vocab.locale) for w in tokens(text)], vocab)


def _is_stop(answer: Sequence[frozenset[str]], vocab: Vocabulary) -> bool:
    if not any(word & vocab.stop_first for word in answer):
        return False
    return any(_contains(answer, phrase) for phrase in vocab.stop_lemmas)


def yes_no(text: str, vocab: Vocabulary) -> Match:
    """Yes or no: the whole answer is a yes/no phrase, or it starts with one ("нет, спасибо")."""
    return _yes_no(tokens(text), vocab)


def _yes_no(words: tuple[str, ...], vocab: Vocabulary) -> Match:
    if not words:
        return NO_MATCH
    for phrase in vocab.yes:
        if words == phrase:
            return YES
    for phrase in vocab.no:
        if words == phrase:
            return NO
    best: Match = NO_MATCH
    best_size = 0
    for phrases, meaning in ((vocab.yes, YES), (vocab.no, NO)):
        for phrase in phrases:
            if phrase in _BARE_NEGATIONS:
                continue  # "не" alone is "no", but "не знаю" is not
            if len(phrase) > best_size and words[: len(phrase)] == phrase:
                best, best_size = meaning, len(phrase)
    return best


def number(text: str, vocab: Vocabulary, low: int | None = None, high: int | None = None) -> Match:
    """The first number in the answer, in digits or words; none when outside low..high."""
    words = tokens(text)
    return _number(words, [lemmas(w, vocab.locale) for w in words], vocab, low, high)


def _number(
    words: Sequence[str],
    answer: Sequence[frozenset[str]],
    vocab: Vocabulary,
    low: int | None,
    high: int | None,
) -> Match:
    value = parse_number(words, answer, vocab.number_index)
    if value is None:
        return NO_MATCH
    if (low is not None and value < low) or (high is not None and value > high):
        return NO_MATCH
    return Match("number", value)


@dataclass(frozen=True, slots=True)
class _Phrase:
    option: str
    words: frozenset[int]
    """The phrase's content words, as indexes into `_Options.words`."""
    size: int
    negated: bool
    """The phrase itself says "не ..." (so a negated answer may match it)."""


@dataclass(frozen=True, slots=True)
class _Options:
    locale: str
    by_id: Mapping[str, str]
    by_label: Mapping[str, str]
    by_dtmf: Mapping[str, str]
    phrases: tuple[_Phrase, ...]
    words: tuple[frozenset[str], ...]
    """Lemma sets of every content word of every phrase."""
    hits: dict[str, frozenset[int]]
    """Cache: answer word -> indexes of the phrase words it matches."""

    def hits_of(self, word: str) -> frozenset[int]:
        found = self.hits.get(word)
        if found is None:
            answer = lemmas(word, self.locale)
            found = frozenset(
                i for i, known in enumerate(self.words) if _same_word(known, answer, self.locale)
            )
            if len(self.hits) > 65536:
                self.hits.clear()
            self.hits[word] = found
        return found


_option_indexes: dict[tuple[int, str], tuple[model.ChoiceAsk, _Options]] = {}


def _options(ask: model.ChoiceAsk, locale: str) -> _Options:
    key = (id(ask), locale)
    cached = _option_indexes.get(key)
    if cached is not None and cached[0] is ask:
        return cached[1]
    phrases: list[_Phrase] = []
    known: dict[frozenset[str], int] = {}
    for option_id, option in ask.options.items():
        texts = dict.fromkeys((option.label, *option.synonyms, option_id.replace("_", " ")))
        for text in texts:
            words = tokens(text)
            content = [lemmas(w, locale) for w in words if w not in _STOPWORDS]
            if content:
                ids = frozenset(known.setdefault(word, len(known)) for word in content)
                negated = any(w in _NEGATIONS for w in words)
                phrases.append(_Phrase(option_id, ids, len(content), negated))
    index = _Options(
        locale=locale,
        by_id={option_id: option_id for option_id in ask.options},
        by_label={normalise(o.label): option_id for option_id, o in ask.options.items()},
        by_dtmf={o.dtmf: option_id for option_id, o in ask.options.items() if o.dtmf},
        phrases=tuple(phrases),
        words=tuple(known),
        hits={},
    )
    if len(_option_indexes) > 4096:
        _option_indexes.clear()
    _option_indexes[key] = (ask, index)
    return index


def option(text: str, ask: model.ChoiceAsk, locale: str) -> Match:
    """The option an answer names: its id, its label, or words matching a label or synonym.

    Every content word of a synonym must appear in the answer (by lemma or shared stem), and a word
    right after "не"/"not" does not count unless the synonym is itself negative. The option with the
    longest matching synonym wins; a tie between different options is not a match.
    """
    return _option(tokens(text), ask, locale)


def _option(words: tuple[str, ...], ask: model.ChoiceAsk, locale: str) -> Match:
    index = _options(ask, locale)
    normalised = " ".join(words)
    if normalised in index.by_label:
        return Match("option", index.by_label[normalised])
    if normalised in index.by_id:
        return Match("option", normalised)
    plain: set[int] = set()
    anyhow: set[int] = set()
    for i, word in enumerate(words):
        found = index.hits_of(word)
        anyhow |= found
        if not (i > 0 and words[i - 1] in _NEGATIONS):
            plain |= found
    if not anyhow:
        return NO_MATCH
    best: dict[str, int] = {}
    for phrase in index.phrases:
        heard = anyhow if phrase.negated else plain
        if phrase.size > best.get(phrase.option, 0) and phrase.words <= heard:
            best[phrase.option] = phrase.size
    if not best:
        return NO_MATCH
    top = max(best.values())
    winners = [option_id for option_id, size in best.items() if size == top]
    return Match("option", winners[0]) if len(winners) == 1 else NO_MATCH


_DATETIME_FORMATS = ("%d.%m.%Y %H:%M", "%d.%m.%Y", "%d.%m.%y %H:%M", "%d.%m.%y", "%Y-%m-%d %H:%M")


def date_time(text: str, now: datetime | None = None) -> Match:
    """A date and time as an ISO string: absolute (ISO 8601, 31.12.2026 15:00), or relative to `now`
    ("завтра в три", "в пятницу вечером") when the answer says when it arrived."""
    cleaned = text.strip()
    try:
        return Match("text", datetime.fromisoformat(cleaned).isoformat())
    except ValueError:
        pass
    for layout in _DATETIME_FORMATS:
        try:
            parsed = datetime.strptime(cleaned, layout)  # noqa: DTZ007 - a local wall time
        except ValueError:
            continue
        return Match("text", parsed.isoformat())
    if now is not None:
        when = parse_when(cleaned, now)
        if when is not None:
            return Match("text", when.isoformat())
    return NO_MATCH


def phone(text: str, locale: str) -> Match:
    """A phone number in E.164 ("8 (912) 345-67-89" -> "+79123456789" for Russian scripts)."""
    import phonenumbers

    region = "RU" if locale == "ru" else None
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return NO_MATCH
    if not phonenumbers.is_possible_number(parsed):
        return NO_MATCH
    return Match("text", phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


# --- an answer to an ask -------------------------------------------------------------------------


def understand(answer: Answer, ask: model.Ask | None, pack: PackWords, locale: str) -> Match:
    """What `answer` means for `ask`: stop first (on text), then by the ask's type.

    A button press (`choice`) and a DTMF key (`digits`) are exact; text goes through the words,
    which are normalised and lemmatised once per answer. An answer recognised with confidence
    below LOW_CONFIDENCE is not understood.
    """
    vocab = vocabulary(pack, locale)
    words: tuple[str, ...] = ()
    answer_lemmas: list[frozenset[str]] = []
    if answer.text is not None:
        words = tokens(answer.text)
        answer_lemmas = [lemmas(w, locale) for w in words]
        if _is_stop(answer_lemmas, vocab):
            return STOP
    if answer.confidence < LOW_CONFIDENCE or ask is None:
        return NO_MATCH
    if isinstance(ask, model.YesNoAsk):
        if answer.choice is not None:
            return {"yes": YES, "no": NO}.get(answer.choice, NO_MATCH)
        if answer.digits is not None:
            return {"1": YES, "2": NO}.get(answer.digits, NO_MATCH)
        return _yes_no(words, vocab)
    if isinstance(ask, model.ChoiceAsk):
        return _choice_answer(answer, words, ask, locale)
    if isinstance(ask, model.ScaleAsk):
        raw = answer.choice if answer.choice is not None else answer.digits
        if raw is not None:
            if not (raw.isdigit() and raw.isascii()):
                return NO_MATCH
            value = int(raw)
            return Match("number", value) if ask.min <= value <= ask.max else NO_MATCH
        return _number(words, answer_lemmas, vocab, ask.min, ask.max)
    text = _text_of(answer)
    if not text:
        return NO_MATCH
    if isinstance(ask, model.DateTimeAsk):
        return date_time(text, answer.at)
    if isinstance(ask, model.PhoneAsk):
        return phone(text, locale)
    return Match("text", text)


def _text_of(answer: Answer) -> str:
    for value in (answer.text, answer.choice, answer.digits):
        if value is not None and value.strip():
            return value.strip()
    return ""


def _choice_answer(
    answer: Answer, words: tuple[str, ...], ask: model.ChoiceAsk, locale: str
) -> Match:
    if answer.choice is not None:
        return Match("option", answer.choice) if answer.choice in ask.options else NO_MATCH
    index = _options(ask, locale)
    if answer.digits is not None:
        found = index.by_dtmf.get(answer.digits)
        return Match("option", found) if found else NO_MATCH
    found_match = _option(words, ask, locale)
    if found_match.kind == "none":
        text = (answer.text or "").strip()
        by_key = index.by_dtmf.get(text)
        if by_key is not None:
            return Match("option", by_key)
        if ask.free_text and text:
            return Match("text", text)
    return found_match
