"""Uplift of a campaign: customers won back in the contacted group against the holdout.

The holdout is the random share of the audience the campaign deliberately does not contact; the
difference of the two win-back rates is what the talk itself brought back. Rates and uplifts are
fractions (0.04 is 4 percentage points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Uplift:
    contacted: int
    contacted_won: int
    holdout: int
    holdout_won: int
    contacted_rate: float
    holdout_rate: float
    absolute: float
    """contacted_rate - holdout_rate."""
    interval: Interval
    """Newcombe's hybrid score interval for `absolute` at `confidence`."""
    relative: float | None
    """absolute / holdout_rate; None when nobody in the holdout came back."""
    confidence: float


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def _check_counts(name: str, won: int, size: int) -> None:
    if size <= 0:
        raise ValueError(f"the {name} group is empty: uplift needs customers in both groups")
    if not 0 <= won <= size:
        raise ValueError(f"{name}: won back must be between 0 and {size}, got {won}")


def wilson_interval(won: int, size: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for the proportion won / size (size > 0).

    Unlike the Wald interval it stays inside [0, 1] and is not empty at 0 or at size successes:
    0 of 10 gives [0, 0.2775] at 95 %.
    """
    _check_counts("the", won, size)
    z = _z(confidence)
    p = won / size
    z2n = z * z / size
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / size + z2n / (4.0 * size))
    # At 0 or size successes the bound equals p exactly; clamp away rounding noise.
    low = 0.0 if won == 0 else max(0.0, centre - half)
    high = 1.0 if won == size else min(1.0, centre + half)
    return Interval(low, high)


def uplift(
    contacted_won: int,
    contacted: int,
    holdout_won: int,
    holdout: int,
    confidence: float = 0.95,
) -> Uplift:
    """Win-back rates of both groups, their difference with an interval, and the relative uplift.

    The interval for the difference p1 - p2 is Newcombe's hybrid score interval (method 10 in
    R. G. Newcombe, "Interval estimation for the difference between independent proportions:
    comparison of eleven methods", Statistics in Medicine 17 (1998) 873–890), built from the
    Wilson intervals [l1, u1] and [l2, u2] of the two rates:

        low  = (p1 - p2) - sqrt((p1 - l1)^2 + (u2 - p2)^2)
        high = (p1 - p2) + sqrt((u1 - p1)^2 + (p2 - l2)^2)

    It keeps close to the nominal coverage with small groups and with zero counts (0 of n is a
    valid outcome and gives a proper interval), where the Wald interval collapses to a point.
    An empty group raises ValueError: without a holdout there is nothing to compare against.
    """
    _check_counts("contacted", contacted_won, contacted)
    _check_counts("holdout", holdout_won, holdout)
    p1 = contacted_won / contacted
    p2 = holdout_won / holdout
    w1 = wilson_interval(contacted_won, contacted, confidence)
    w2 = wilson_interval(holdout_won, holdout, confidence)
    difference = p1 - p2
    low = difference - math.hypot(p1 - w1.low, w2.high - p2)
    high = difference + math.hypot(w1.high - p1, p2 - w2.low)
    return Uplift(
        contacted=contacted,
        contacted_won=contacted_won,
        holdout=holdout,
        holdout_won=holdout_won,
        contacted_rate=p1,
        holdout_rate=p2,
        absolute=difference,
        interval=Interval(max(-1.0, low), min(1.0, high)),
        relative=difference / p2 if holdout_won else None,
        confidence=confidence,
    )
