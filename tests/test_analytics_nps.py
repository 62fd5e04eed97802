"""NPS and CSAT on hand-checked answers."""

from __future__ import annotations

import pytest

from bot.analytics.nps import Csat, Nps, csat, nps


def test_nps_counts_and_score() -> None:
    # promoters 9, 10, 10 -> 3; passives 7, 8 -> 2; detractors 0, 3, 6 -> 3; total 8
    # score = 100 * (3 - 3) / 8 = 0
    assert nps([9, 10, 10, 7, 8, 0, 3, 6]) == Nps(3, 2, 3, 8, 0.0)


def test_nps_positive_and_negative() -> None:
    # 3 promoters, 1 passive, 1 detractor of 5: 60 % - 20 % = 40 points
    assert nps([10, 9, 9, 8, 2]).score == pytest.approx(40.0)
    # 1 promoter, 3 detractors of 4: 25 % - 75 % = -50 points
    assert nps([10, 6, 5, 0]).score == pytest.approx(-50.0)
    assert nps([10] * 7).score == pytest.approx(100.0)
    assert nps([0] * 7).score == pytest.approx(-100.0)


def test_nps_boundaries_seven_and_eight_are_passive() -> None:
    result = nps([6, 7, 8, 9])
    assert (result.detractors, result.passives, result.promoters) == (1, 2, 1)


def test_nps_accepts_any_iterable() -> None:
    assert nps(iter([9, 9])).score == pytest.approx(100.0)


def test_nps_without_answers_has_no_score() -> None:
    assert nps([]) == Nps(0, 0, 0, 0, None)


@pytest.mark.parametrize("bad", [-1, 11, 9.5, True])
def test_nps_rejects_answers_off_the_scale(bad: object) -> None:
    with pytest.raises(ValueError, match="0 to 10"):
        nps([9, bad])  # type: ignore[list-item]


def test_csat_share_and_mean() -> None:
    # satisfied 4, 5, 5 -> 3 of 5 = 60 %; mean (1 + 3 + 4 + 5 + 5) / 5 = 18 / 5 = 3.6
    assert csat([1, 3, 4, 5, 5]) == Csat(3, 5, pytest.approx(60.0), pytest.approx(3.6))


def test_csat_without_answers() -> None:
    assert csat([]) == Csat(0, 0, None, None)


@pytest.mark.parametrize("bad", [0, 6])
def test_csat_rejects_answers_off_the_scale(bad: int) -> None:
    with pytest.raises(ValueError, match="1 to 5"):
        csat([bad])
