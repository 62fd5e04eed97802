"""Customer value: ABC by revenue, XYZ by steadiness of monthly orders, and the priority matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bot.audience.rhythm import RhythmArrays

A_SHARE_PERCENT = 80
"""Customers are A while the revenue of the customers ranked before them is below 80 % of all."""
B_SHARE_PERCENT = 95
X_MAX_CV = 0.5
"""XYZ: monthly_cv <= 0.5 is X (steady), <= 1.0 is Y (irregular), above is Z (sporadic)."""
Y_MAX_CV = 1.0

WIN_BACK_FIRST = "win_back_first"
MUST_WIN_BACK = "must_win_back"
WIN_BACK_IF_CHEAP = "win_back_if_cheap"
LET_GO = "let_go"

PRIORITY: dict[str, str] = {
    "AX": WIN_BACK_FIRST,
    "AY": WIN_BACK_FIRST,
    "AZ": MUST_WIN_BACK,
    "BX": MUST_WIN_BACK,
    "BY": MUST_WIN_BACK,
    "BZ": WIN_BACK_IF_CHEAP,
    "CX": WIN_BACK_IF_CHEAP,
    "CY": WIN_BACK_IF_CHEAP,
    "CZ": LET_GO,
}
"""The retention playbook: ABC class + XYZ class -> what to do about a customer who lapses."""


def priority_of(abc: str, xyz: str) -> str:
    return PRIORITY[abc + xyz]


@dataclass(frozen=True)
class ValueClasses:
    """Classifies customers given where the A and B classes end in the revenue ranking.

    ABC: customers sorted by revenue_minor descending, ties by customer id ascending; a customer is
    A while the revenue ranked before them is below 80 % of the total (so the one who crosses 80 %
    is still A), B below 95 %, C the rest; everyone is C when the total is not positive.
    Classifying in Python from two cut points costs a comparison per customer; doing it in SQL
    needed a window over every customer (or nested CASEs) inside every audience query.
    """

    last_a: tuple[int, int] | None
    """(-revenue_minor, customer_id) of the last A customer; None when nobody is A."""
    last_b: tuple[int, int] | None

    def abc(self, revenue_minor: int, customer_id: int) -> str:
        rank = (-revenue_minor, customer_id)
        if self.last_a is not None and rank <= self.last_a:
            return "A"
        if self.last_b is not None and rank <= self.last_b:
            return "B"
        return "C"

    @staticmethod
    def xyz(monthly_cv: float | None) -> str:
        if monthly_cv is not None and monthly_cv <= X_MAX_CV:
            return "X"
        if monthly_cv is not None and monthly_cv <= Y_MAX_CV:
            return "Y"
        return "Z"

    def classify(
        self, revenue_minor: int, customer_id: int, monthly_cv: float | None
    ) -> tuple[str, str, str]:
        """(abc, xyz, priority) of one customer."""
        abc = self.abc(revenue_minor, customer_id)
        xyz = self.xyz(monthly_cv)
        return abc, xyz, PRIORITY[abc + xyz]

    def classify_arrays(
        self,
        revenue_minor: npt.NDArray[np.int64],
        customer_id: npt.NDArray[np.int64],
        monthly_cv: npt.NDArray[np.float64],
    ) -> tuple[list[str], list[str], list[str]]:
        """`classify` for many customers at once (NaN cv = no regularity measured = Z)."""
        rank = -revenue_minor
        abc = np.full(revenue_minor.shape, "C", dtype="<U1")
        for label, last in (("B", self.last_b), ("A", self.last_a)):
            if last is not None:
                inside = (rank < last[0]) | ((rank == last[0]) & (customer_id <= last[1]))
                abc[inside] = label
        xyz = np.full(monthly_cv.shape, "Z", dtype="<U1")
        xyz[monthly_cv <= Y_MAX_CV] = "Y"
        xyz[monthly_cv <= X_MAX_CV] = "X"
        abc_list, xyz_list = abc.tolist(), xyz.tolist()
        priority = [PRIORITY[a + x] for a, x in zip(abc_list, xyz_list, strict=True)]
        return abc_list, xyz_list, priority


def value_classes(arrays: RhythmArrays) -> ValueClasses:
    """Find where the running revenue share crosses 80 % and 95 %."""
    order = np.lexsort((arrays.customer_id, -arrays.revenue_minor))
    revenue = arrays.revenue_minor[order]
    ranked_ids = arrays.customer_id[order]
    total = int(revenue.sum())
    if total <= 0:
        return ValueClasses(None, None)
    before = np.cumsum(revenue) - revenue

    def last_below(percent: int) -> tuple[int, int]:
        # `before` never decreases, so the condition holds for a leading run of customers.
        index = int(np.count_nonzero(before * 100 < total * percent)) - 1
        return -int(revenue[index]), int(ranked_ids[index])

    return ValueClasses(last_below(A_SHARE_PERCENT), last_below(B_SHARE_PERCENT))
