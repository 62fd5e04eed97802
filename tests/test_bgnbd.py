"""BG/NBD: parameter recovery, the likelihood, P(alive) and expected purchases against hand sums."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bot.audience.bgnbd import (
    BgNbdParams,
    expected_purchases,
    expected_purchases_unconditional,
    fit_bgnbd,
    log_likelihood,
    probability_alive,
    simulate_bgnbd,
    standard_errors,
)

# The paper's CDNOW estimates, time in weeks (Fader, Hardie & Lee 2005, section 4).
CDNOW_WEEKS = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
# The same customers measured in days: only α carries time.
CDNOW_DAYS = BgNbdParams(r=0.243, alpha=4.414 * 7, a=0.793, b=2.426)


def _hyp2f1_series(a: float, b: float, c: float, z: float) -> float:
    """Gauss's series, summed until the terms vanish (|z| < 1 here)."""
    total, term, k = 1.0, 1.0, 0
    while abs(term) > 1e-17 * abs(total):
        term *= (a + k) * (b + k) / ((c + k) * (k + 1)) * z
        total += term
        k += 1
    return total


def _hand_likelihood(p: BgNbdParams, x: int, t_x: float, t: float) -> float:
    """Eq. (6) of the paper written as products, independent of the module's log form."""
    beta_ratio = math.exp(math.lgamma(p.a + p.b) + math.lgamma(p.b + x))
    beta_ratio /= math.exp(math.lgamma(p.b) + math.lgamma(p.a + p.b + x))
    gamma_part = math.exp(math.lgamma(p.r + x) - math.lgamma(p.r)) * p.alpha**p.r
    bracket = (p.alpha + t) ** -(p.r + x)
    if x > 0:
        bracket += p.a / (p.b + x - 1) * (p.alpha + t_x) ** -(p.r + x)
    return beta_ratio * gamma_part * bracket


def test_fit_recovers_the_parameters_of_simulated_customers() -> None:
    true = BgNbdParams(r=0.25, alpha=4.0 * 7, a=0.8, b=2.5)  # α = 4 weeks, in days
    rng = np.random.default_rng(20051)
    ages = rng.uniform(30 * 7, 78 * 7, size=5_000)  # first purchases over a year and a half
    frequency, recency, age = simulate_bgnbd(true, 5_000, ages, rng)

    fitted = fit_bgnbd(frequency, recency, age)
    errors = standard_errors(fitted, frequency, recency, age)

    assert fitted.customers == 5_000
    for name, error in zip(("r", "alpha", "a", "b"), errors, strict=True):
        estimate, truth = getattr(fitted, name), getattr(true, name)
        # Three standard errors: a 0.3% miss rate per parameter if the fit and simulator are right.
        assert abs(estimate - truth) < 3 * error, (name, estimate, truth, error)
        assert abs(estimate - truth) < 0.25 * truth, (name, estimate, truth)


def test_fit_reaches_the_maximum_of_the_likelihood() -> None:
    rng = np.random.default_rng(7)
    frequency, recency, age = simulate_bgnbd(CDNOW_DAYS, 2_000, 273.0, rng)
    fitted = fit_bgnbd(frequency, recency, age)
    best = log_likelihood(fitted, frequency, recency, age)
    assert fitted.log_likelihood == pytest.approx(best)
    for name in ("r", "alpha", "a", "b"):
        nudged = BgNbdParams(**{**_as_dict(fitted), name: getattr(fitted, name) * 1.02})
        assert log_likelihood(nudged, frequency, recency, age) < best


def _as_dict(p: BgNbdParams) -> dict[str, float]:
    return {"r": p.r, "alpha": p.alpha, "a": p.a, "b": p.b}


def test_log_likelihood_matches_a_hand_computed_value() -> None:
    customers = [(0, 0.0, 38.86), (2, 30.43, 38.86), (7, 35.0, 40.0), (1, 1.5, 2.0)]
    expected = sum(math.log(_hand_likelihood(CDNOW_WEEKS, x, tx, t)) for x, tx, t in customers)
    frequency, recency, age = (np.array(column) for column in zip(*customers, strict=True))
    assert log_likelihood(CDNOW_WEEKS, frequency, recency, age) == pytest.approx(
        expected, rel=1e-12
    )


def test_log_likelihood_of_a_heavy_buyer_stays_finite() -> None:
    # 300 repeat purchases: A3 and A4 are around exp(-1500), which plain exp would flush to zero.
    value = log_likelihood(CDNOW_WEEKS, [300], [70.0], [78.0])
    assert math.isfinite(value)


def test_probability_alive_is_one_without_repeat_purchases() -> None:
    alive = probability_alive(CDNOW_DAYS, [0, 0, 0], [0, 0, 0], [1.0, 100.0, 1000.0])
    assert alive.tolist() == [1.0, 1.0, 1.0]


def test_probability_alive_falls_as_time_since_last_purchase_grows() -> None:
    ages = np.array([200.0, 250.0, 300.0, 400.0, 600.0])
    alive = probability_alive(CDNOW_DAYS, np.full(5, 3), np.full(5, 190.0), ages)
    assert np.all(np.diff(alive) < 0)
    assert 0 < alive[-1] < alive[0] <= 1


def test_probability_alive_matches_a_hand_computed_value() -> None:
    p, x, t_x, t = CDNOW_WEEKS, 2, 30.43, 38.86
    hand = 1 / (1 + p.a / (p.b + x - 1) * ((p.alpha + t) / (p.alpha + t_x)) ** (p.r + x))
    assert probability_alive(p, [x], [t_x], [t])[0] == pytest.approx(hand, rel=1e-12)
    # Measuring the same customer in days changes nothing.
    days = probability_alive(CDNOW_DAYS, [x], [t_x * 7], [t * 7])[0]
    assert days == pytest.approx(hand, rel=1e-12)


def test_expected_purchases_match_the_papers_worked_example() -> None:
    # Section 4 of the paper: x = 2, t_x = 30.43, T = 38.86 weeks -> 1.226 purchases in 39 weeks.
    value = expected_purchases(CDNOW_DAYS, 39 * 7, [2], [30.43 * 7], [38.86 * 7])[0]
    assert value == pytest.approx(1.226, abs=5e-4)


@pytest.mark.parametrize(("x", "t_x", "t"), [(2, 30.43, 38.86), (0, 0.0, 20.0), (25, 50.0, 52.0)])
def test_expected_purchases_match_eq_10_summed_by_hand(x: int, t_x: float, t: float) -> None:
    p, horizon = CDNOW_WEEKS, 39.0
    z = horizon / (p.alpha + t + horizon)
    numerator = 1 - ((p.alpha + t) / (p.alpha + t + horizon)) ** (p.r + x) * _hyp2f1_series(
        p.r + x, p.b + x, p.a + p.b + x - 1, z
    )
    odds = p.a / (p.b + x - 1) * ((p.alpha + t) / (p.alpha + t_x)) ** (p.r + x) if x else 0.0
    hand = (p.a + p.b + x - 1) / (p.a - 1) * numerator / (1 + odds)
    assert expected_purchases(p, horizon, [x], [t_x], [t])[0] == pytest.approx(hand, abs=1e-6)


def test_expected_purchases_grow_with_the_horizon() -> None:
    horizons = [0.0, 7.0, 30.0, 90.0, 365.0, 3650.0]
    values = [expected_purchases(CDNOW_DAYS, h, [4], [150.0], [200.0])[0] for h in horizons]
    assert values[0] == 0.0
    assert all(later > earlier for earlier, later in zip(values, values[1:], strict=False))


def test_expected_purchases_near_a_equal_one_stay_finite() -> None:
    near_one = BgNbdParams(r=0.5, alpha=30.0, a=1.0, b=3.0)
    value = expected_purchases(near_one, 90.0, [3], [60.0], [100.0])[0]
    slightly_off = expected_purchases(
        BgNbdParams(r=0.5, alpha=30.0, a=1.0001, b=3.0), 90.0, [3], [60.0], [100.0]
    )[0]
    assert value == pytest.approx(slightly_off, rel=1e-3)


def test_simulated_customers_buy_as_often_as_the_model_predicts() -> None:
    rng = np.random.default_rng(3)
    frequency, _, _ = simulate_bgnbd(CDNOW_DAYS, 100_000, 365.0, rng)
    predicted = float(expected_purchases_unconditional(CDNOW_DAYS, 365.0))
    # Standard error of the mean of 100,000 draws is about 0.01 here; allow five of them.
    assert frequency.mean() == pytest.approx(predicted, abs=0.05)


def test_simulated_summaries_are_consistent() -> None:
    rng = np.random.default_rng(11)
    ages = rng.uniform(1, 900, size=3_000)
    frequency, recency, age = simulate_bgnbd(CDNOW_DAYS, 3_000, ages, rng)
    assert np.array_equal(age, ages)
    assert np.all(recency <= age)
    assert np.all((frequency == 0) == (recency == 0))


@pytest.mark.parametrize(
    ("frequency", "recency", "age", "message"),
    [
        ([1, 2], [3.0, 4.0], [5.0], "same length"),
        ([1], [6.0], [5.0], "recency exceeds age"),
        ([-1], [0.0], [5.0], "frequency must not be negative"),
        ([1], [2.0], [-5.0], "age must not be negative"),
        ([1.5], [2.0], [5.0], "whole number"),
        ([0], [2.0], [5.0], "recency must be 0"),
        ([2], [float("nan")], [5.0], "NaN"),
    ],
)
def test_inconsistent_input_is_rejected(
    frequency: list[float], recency: list[float], age: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        fit_bgnbd(frequency, recency, age)
    with pytest.raises(ValueError, match=message):
        probability_alive(CDNOW_DAYS, frequency, recency, age)


def test_fit_refuses_data_without_any_repeat_purchase() -> None:
    with pytest.raises(ValueError, match="no customer has a repeat purchase"):
        fit_bgnbd([0, 0], [0, 0], [10, 20])


def test_negative_horizon_is_rejected() -> None:
    with pytest.raises(ValueError, match="horizon_days"):
        expected_purchases(CDNOW_DAYS, -1.0, [1], [2.0], [3.0])
