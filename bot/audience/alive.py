"""When the BG/NBD model is trusted, and P(alive) for customers as of a date: the one threshold."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bot.audience.bgnbd import BgNbdParams, expected_purchases, fit_bgnbd, probability_alive
from bot.audience.rhythm import RhythmArrays

MIN_REPEAT_BUYERS = 500
"""Below this many repeat buyers the fitted parameters are noise: the lapse rule stands alone."""
MIN_HISTORY_DAYS = 180
"""Days from the shop's first order to as_of needed before the model has seen customers drop out."""
FIT_SAMPLE = 20_000
"""The fit uses at most this many customers, evenly spaced by id. Four parameters are pinned down
long before that (standard errors of a few per cent at 5,000), and at a million customers the full
fit costs a minute against ~1 s for the sample. P(alive) is still computed for every customer."""


@dataclass(frozen=True)
class AliveModel:
    arrays: RhythmArrays
    params: BgNbdParams | None
    """None when the history is too small (see `reason`)."""
    reason: str
    """Why the model is or is not used, in words."""

    def p_alive(self) -> npt.NDArray[np.float64] | None:
        if self.params is None:
            return None
        a = self.arrays
        return probability_alive(self.params, a.frequency, a.recency_days, a.age_days)

    def expected_orders(self, horizon_days: float) -> npt.NDArray[np.float64] | None:
        if self.params is None:
            return None
        a = self.arrays
        return expected_purchases(
            self.params, horizon_days, a.frequency, a.recency_days, a.age_days
        )

    def p_alive_by_customer(self, customer_ids: Iterable[int]) -> dict[int, float]:
        values = self.p_alive()
        if values is None:
            return {}
        wanted = np.fromiter(customer_ids, dtype=np.int64)
        index = np.searchsorted(self.arrays.customer_id, wanted)
        index = np.clip(index, 0, max(len(self.arrays.customer_id) - 1, 0))
        found = self.arrays.customer_id[index] == wanted if len(index) else np.array([], bool)
        # tolist() converts to Python numbers in C; a comprehension over numpy scalars is 5x slower.
        return dict(zip(wanted[found].tolist(), values[index[found]].tolist(), strict=True))


def fit_alive_model(arrays: RhythmArrays) -> AliveModel:
    """Fit BG/NBD on everyone's orders before as_of, when there is enough history to trust it."""
    repeat_buyers = int(np.count_nonzero(arrays.frequency > 0))
    history_days = float(arrays.age_days.max()) if arrays.age_days.size else 0.0
    if repeat_buyers < MIN_REPEAT_BUYERS:
        reason = (
            f"BG/NBD not used: {repeat_buyers} repeat buyers, at least {MIN_REPEAT_BUYERS} needed"
        )
        return AliveModel(arrays, None, reason)
    if history_days < MIN_HISTORY_DAYS:
        reason = (
            f"BG/NBD not used: {history_days:.0f} days of order history, "
            f"at least {MIN_HISTORY_DAYS} needed"
        )
        return AliveModel(arrays, None, reason)
    try:
        sample = _fit_sample(arrays.customer_id.size)
        params = fit_bgnbd(
            arrays.frequency[sample], arrays.recency_days[sample], arrays.age_days[sample]
        )
    except ValueError as error:
        return AliveModel(arrays, None, f"BG/NBD not used: {error}")
    return AliveModel(
        arrays,
        params,
        f"BG/NBD fitted on {params.customers} of {arrays.customer_id.size} customers "
        f"({repeat_buyers} repeat buyers)",
    )


def _fit_sample(customers: int) -> npt.NDArray[np.int64]:
    """Indices of the customers the fit uses: all of them, or FIT_SAMPLE evenly spaced."""
    if customers <= FIT_SAMPLE:
        return np.arange(customers, dtype=np.int64)
    return np.linspace(0, customers - 1, FIT_SAMPLE).astype(np.int64)
