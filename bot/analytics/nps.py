"""Net Promoter Score (0–10 answers) and customer satisfaction (1–5 answers).

Both are reported in percent, as the industry does: NPS in percentage points from -100 to 100,
the CSAT share from 0 to 100. No answers is a normal state of a fresh campaign, so it gives
`None` scores rather than an error; an answer outside the scale is a `ValueError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

PROMOTER_MIN = 9
"""9 and 10 are promoters."""
DETRACTOR_MAX = 6
"""0 to 6 are detractors; 7 and 8 are passives."""
SATISFIED_MIN = 4
"""CSAT: 4 and 5 are satisfied."""


@dataclass(frozen=True)
class Nps:
    promoters: int
    passives: int
    detractors: int
    total: int
    score: float | None
    """Percent promoters minus percent detractors, -100..100; None without answers."""


@dataclass(frozen=True)
class Csat:
    satisfied: int
    """Answers of 4 or 5."""
    total: int
    share: float | None
    """Percent of answers that are 4 or 5, 0..100; None without answers."""
    mean: float | None
    """Mean answer, 1..5; None without answers."""


def _checked(scores: Iterable[int], low: int, high: int) -> list[int]:
    out: list[int] = []
    for score in scores:
        if isinstance(score, bool) or not isinstance(score, int) or not low <= score <= high:
            raise ValueError(f"a score must be a whole number from {low} to {high}, got {score!r}")
        out.append(score)
    return out


def nps(scores: Iterable[int]) -> Nps:
    """NPS of 0–10 answers: % promoters (9–10) minus % detractors (0–6)."""
    answers = _checked(scores, 0, 10)
    promoters = sum(1 for s in answers if s >= PROMOTER_MIN)
    detractors = sum(1 for s in answers if s <= DETRACTOR_MAX)
    total = len(answers)
    score = 100.0 * (promoters - detractors) / total if total else None
    return Nps(promoters, total - promoters - detractors, detractors, total, score)


def csat(scores: Iterable[int]) -> Csat:
    """CSAT of 1–5 answers: the percent of 4s and 5s, and the mean answer."""
    answers = _checked(scores, 1, 5)
    satisfied = sum(1 for s in answers if s >= SATISFIED_MIN)
    total = len(answers)
    if not total:
        return Csat(0, 0, None, None)
    return Csat(satisfied, total, 100.0 * satisfied / total, sum(answers) / total)
