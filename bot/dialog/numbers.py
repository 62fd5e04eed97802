"""Numbers in answers: digits ("8", "10 из 10") or the locale pack's number words ("восемь")."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence


def number_words(
    numbers: Mapping[int, Sequence[str]], normalise: Callable[[str], str]
) -> dict[str, int]:
    """The pack's `numbers: {8: [восемь, восьмерка]}` as a normalised word -> value index."""
    index: dict[str, int] = {}
    for value, words in numbers.items():
        for word in words:
            index[normalise(word)] = int(value)
    return index


def parse_number(
    tokens: Sequence[str], lemmas: Sequence[Iterable[str]], words: Mapping[str, int]
) -> int | None:
    """The first number in an answer: a run of digits, or a number word (its surface or a lemma).

    `tokens` are the normalised words of the answer and `lemmas[i]` the lemmas of `tokens[i]`
    (empty for languages without morphology). "на восемь" -> 8, "10 из 10" -> 10, "восьмерку" -> 8.
    """
    for token, token_lemmas in zip(tokens, lemmas, strict=True):
        if token.isdigit() and token.isascii():
            return int(token)
        if token in words:
            return words[token]
        for lemma in token_lemmas:
            if lemma in words:
                return words[lemma]
    return None
