"""Uplift against the holdout: Newcombe's published examples, simulated coverage, edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from bot.analytics.uplift import Interval, uplift, wilson_interval


def test_rates_difference_and_relative_uplift() -> None:
    # contacted 600 of 5000 = 0.12, holdout 40 of 500 = 0.08
    # absolute 0.04 (4 points), relative 0.04 / 0.08 = 0.5 (+50 %)
    result = uplift(600, 5000, 40, 500)
    assert result.contacted_rate == pytest.approx(0.12)
    assert result.holdout_rate == pytest.approx(0.08)
    assert result.absolute == pytest.approx(0.04)
    assert result.relative == pytest.approx(0.5)
    assert result.interval.low < 0.04 < result.interval.high
    assert result.confidence == 0.95


def test_wilson_interval_matches_newcombe_1998() -> None:
    # Newcombe, Stat Med 1998 (the companion paper on one proportion), 81/263: 0.2553 to 0.3662
    interval = wilson_interval(81, 263)
    assert (interval.low, interval.high) == (
        pytest.approx(0.2553, abs=1e-4),
        pytest.approx(0.3662, abs=1e-4),
    )
    # 0 of 10: low exactly 0, high z^2 / (n + z^2) = 3.8415 / 13.8415 = 0.2775
    assert wilson_interval(0, 10) == Interval(0.0, pytest.approx(0.2775, abs=1e-4))
    assert wilson_interval(10, 10) == Interval(pytest.approx(0.7225, abs=1e-4), 1.0)


@pytest.mark.parametrize(
    ("counts", "low", "high"),
    [
        # Newcombe 1998, Table II, method 10 (hybrid score, no continuity correction)
        ((56, 70, 48, 80), 0.0524, 0.3339),
        ((9, 10, 3, 10), 0.1705, 0.8090),
        ((6, 7, 2, 7), 0.0582, 0.8062),
        ((5, 56, 0, 29), -0.0381, 0.1926),
        ((0, 10, 0, 20), -0.1611, 0.2775),
        ((0, 10, 0, 10), -0.2775, 0.2775),
        ((10, 10, 0, 20), 0.6791, 1.0),
        ((10, 10, 0, 10), 0.6075, 1.0),
    ],
)
def test_interval_matches_newcombe_table(
    counts: tuple[int, int, int, int], low: float, high: float
) -> None:
    interval = uplift(*counts).interval
    assert interval.low == pytest.approx(low, abs=1e-4)
    assert interval.high == pytest.approx(high, abs=1e-4)


def test_interval_covers_the_true_difference_about_95_percent_of_the_time() -> None:
    # 2,000 simulated campaigns, 5,000 contacted at p = 0.12 and 500 held out at p = 0.08:
    # the 95 % interval should contain the true 0.04 in about 1,900 of them (SE ~ 10, so 93-97 %
    # is about +-4 standard errors).
    rng = np.random.default_rng(20261122)
    experiments, true_difference = 2_000, 0.12 - 0.08
    contacted_won = rng.binomial(5_000, 0.12, experiments)
    holdout_won = rng.binomial(500, 0.08, experiments)
    covered = sum(
        true_difference in uplift(int(c), 5_000, int(h), 500).interval
        for c, h in zip(contacted_won, holdout_won, strict=True)
    )
    assert 0.93 <= covered / experiments <= 0.97


def test_a_single_simulated_campaign_contains_the_true_effect() -> None:
    rng = np.random.default_rng(7)
    contacted = rng.random(5_000) < 0.12
    holdout = rng.random(500) < 0.08
    result = uplift(int(contacted.sum()), 5_000, int(holdout.sum()), 500)
    assert 0.04 in result.interval
    assert result.interval.low < result.absolute < result.interval.high


def test_empty_holdout_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="holdout group is empty"):
        uplift(10, 100, 0, 0)
    with pytest.raises(ValueError, match="contacted group is empty"):
        uplift(0, 0, 1, 10)


def test_all_zeros_gives_zero_uplift_with_a_proper_interval() -> None:
    result = uplift(0, 5_000, 0, 500)
    assert result.absolute == 0.0
    assert result.relative is None  # nobody came back in the holdout: no base to divide by
    # low = -upper Wilson of 0/500 = -3.8415 / 503.8415 = -0.00762; high = upper of 0/5000
    assert result.interval.low == pytest.approx(-0.00762, abs=1e-5)
    assert result.interval.high == pytest.approx(3.8415 / 5003.8415, abs=1e-5)


def test_nobody_in_the_holdout_came_back() -> None:
    result = uplift(50, 1_000, 0, 100)
    assert result.absolute == pytest.approx(0.05)
    assert result.relative is None
    assert result.interval.low < 0.05 < result.interval.high


@pytest.mark.parametrize("counts", [(-1, 10, 1, 10), (11, 10, 1, 10), (1, 10, 11, 10)])
def test_impossible_counts_are_rejected(counts: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError, match="won back must be between"):
        uplift(*counts)


def test_other_confidence_levels_nest() -> None:
    narrow = uplift(600, 5000, 40, 500, confidence=0.80).interval
    wide = uplift(600, 5000, 40, 500, confidence=0.99).interval
    assert wide.low < narrow.low < narrow.high < wide.high
    with pytest.raises(ValueError, match="confidence"):
        uplift(600, 5000, 40, 500, confidence=1.0)
