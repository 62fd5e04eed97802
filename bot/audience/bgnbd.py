"""The BG/NBD buy-till-you-die model (Fader, Hardie & Lee 2005), in numpy and scipy only.

"Counting your customers the easy way: an alternative to the Pareto/NBD model", Marketing Science
24(2). While alive a customer buys at a Poisson rate λ ~ Gamma(r, α); after every repeat purchase
they drop out for good with probability p ~ Beta(a, b). From each customer's (frequency, recency,
age) the model gives P(alive) and the expected number of purchases in a coming window.

Why not the `lifetimes` package: it is unmaintained, and it pulls in pandas and autograd, which a
shop bot has no other use for. The formulas are short; they are implemented here directly.

Units: the public API takes and returns days (frequency = repeat purchase days, recency = days from
first to last purchase, age = days from first purchase to the as-of moment; α is in days). The fit
works in weeks internally, where α is of order one, which keeps the optimiser well scaled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ArrayLike = npt.ArrayLike

_FIT_UNIT_DAYS = 7.0
"""The optimiser sees time in weeks: α then starts near one instead of near ten."""


@dataclass(frozen=True)
class BgNbdParams:
    """Fitted BG/NBD parameters; time unit days (α is a rate-scale in days)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")
    """Total log-likelihood of the data the parameters were fitted to (time measured in days)."""
    customers: int = 0

    def in_unit(self, days_per_unit: float) -> BgNbdParams:
        """The same model with time measured in units of `days_per_unit` days (7 = weeks).

        Only α carries time; the log-likelihood is a density in time, so it is not converted.
        """
        return BgNbdParams(
            r=self.r,
            alpha=self.alpha / days_per_unit,
            a=self.a,
            b=self.b,
            log_likelihood=float("nan"),
            customers=self.customers,
        )


def _as_arrays(
    frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Validate the three per-customer summaries and return them as float arrays."""
    x = np.atleast_1d(np.asarray(frequency, dtype=np.float64))
    t_x = np.atleast_1d(np.asarray(recency, dtype=np.float64))
    t = np.atleast_1d(np.asarray(age, dtype=np.float64))
    if not (x.shape == t_x.shape == t.shape):
        raise ValueError(
            f"frequency, recency and age must have the same length, got {x.shape}, {t_x.shape}, "
            f"{t.shape}"
        )
    if x.ndim != 1:
        raise ValueError("frequency, recency and age must be one-dimensional")
    for name, values in (("frequency", x), ("recency", t_x), ("age", t)):
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name} contains NaN or infinite values")
        if np.any(values < 0):
            raise ValueError(f"{name} must not be negative")
    if np.any(x != np.round(x)):
        raise ValueError("frequency must be a whole number of repeat purchases")
    if np.any(t_x > t):
        bad = int(np.argmax(t_x > t))
        raise ValueError(
            f"recency exceeds age at index {bad}: the last purchase ({t_x[bad]} days after the "
            f"first) cannot be later than the as-of moment ({t[bad]} days after the first)"
        )
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("recency must be 0 for customers without repeat purchases")
    if np.any((x > 0) & (t_x == 0)):
        raise ValueError("recency must be positive for customers with repeat purchases")
    return x, t_x, t


def _log_likelihood_terms(
    r: float, alpha: float, a: float, b: float, x: FloatArray, t_x: FloatArray, t: FloatArray
) -> FloatArray:
    """Per-customer log-likelihood, the paper's eq. (6) with the A1..A4 terms."""
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.betaln(a, b + x) - special.betaln(a, b)
    a3 = -(r + x) * np.log(alpha + t)
    repeat = x > 0
    # A4 exists only for repeat buyers; log(b + x - 1) is undefined for x = 0 when b < 1.
    a4 = np.full_like(x, -np.inf)
    xr = x[repeat]
    a4[repeat] = np.log(a) - np.log(b + xr - 1.0) - (r + xr) * np.log(alpha + t_x[repeat])
    # log(exp(A3) + exp(A4)) without overflow: both terms are tiny for heavy buyers.
    total: FloatArray = a1 + a2 + np.logaddexp(a3, a4)
    return total


def log_likelihood(
    params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> float:
    """Total log-likelihood of the data under `params`, in the time unit of the inputs."""
    x, t_x, t = _as_arrays(frequency, recency, age)
    return float(
        np.sum(_log_likelihood_terms(params.r, params.alpha, params.a, params.b, x, t_x, t))
    )


def _negative_log_likelihood(
    log_params: FloatArray,
    x: FloatArray,
    t_x: FloatArray,
    t: FloatArray,
    counts: FloatArray,
) -> float:
    r, alpha, a, b = np.exp(log_params)
    terms = _log_likelihood_terms(r, alpha, a, b, x, t_x, t)
    value = -float(np.dot(counts, terms))
    # Far from the optimum gammaln can overflow; a large finite value keeps L-BFGS-B going.
    return value if np.isfinite(value) else 1e300


def fit_bgnbd(frequency: ArrayLike, recency: ArrayLike, age: ArrayLike) -> BgNbdParams:
    """Maximum-likelihood BG/NBD parameters for customers summarised as (x, t_x, T) in days."""
    x, t_x, t = _as_arrays(frequency, recency, age)
    if x.size == 0:
        raise ValueError("cannot fit BG/NBD to zero customers")
    if not np.any(x > 0):
        raise ValueError("cannot fit BG/NBD: no customer has a repeat purchase")
    # Customers with identical summaries contribute identical terms: fit on the distinct rows,
    # weighted by how often they occur. Whole-day data at scale collapses by an order of magnitude.
    stacked = np.stack([x, t_x / _FIT_UNIT_DAYS, t / _FIT_UNIT_DAYS], axis=1)
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    ux, utx, ut = unique[:, 0], unique[:, 1], unique[:, 2]
    weights = counts.astype(np.float64)

    best: optimize.OptimizeResult | None = None
    # Two starts: the usual (1, 1, 1, 1) and one near typical retail fits; keep the better one.
    for start in ((1.0, 1.0, 1.0, 1.0), (0.5, float(np.mean(ut)) / 4.0 + 0.1, 0.5, 2.0)):
        result = optimize.minimize(
            _negative_log_likelihood,
            x0=np.log(np.asarray(start)),
            args=(ux, utx, ut, weights),
            method="L-BFGS-B",
            bounds=[(-12.0, 12.0)] * 4,
            options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-8},
        )
        if best is None or result.fun < best.fun:
            best = result
    assert best is not None
    if not np.isfinite(best.fun) or best.fun >= 1e299:
        raise ValueError(f"BG/NBD fit did not converge: {best.message}")
    r, alpha_weeks, a, b = (float(v) for v in np.exp(best.x))
    fitted = BgNbdParams(r=r, alpha=alpha_weeks * _FIT_UNIT_DAYS, a=a, b=b)
    return BgNbdParams(
        r=r,
        alpha=fitted.alpha,
        a=a,
        b=b,
        log_likelihood=log_likelihood(fitted, x, t_x, t),
        customers=int(x.size),
    )


def standard_errors(
    params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> FloatArray:
    """Asymptotic standard errors of (r, α, a, b) from the observed information matrix.

    The Hessian of the negative log-likelihood is taken by central differences in log-parameter
    space (where it is well conditioned) and mapped back with the delta method.
    """
    x, t_x, t = _as_arrays(frequency, recency, age)
    ones = np.ones_like(x)
    theta = np.log([params.r, params.alpha, params.a, params.b])
    step = 1e-4
    hessian = np.empty((4, 4))
    for i in range(4):
        for j in range(i, 4):
            total = 0.0
            for si, sj, sign in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)):
                shifted = theta.copy()
                shifted[i] += si * step
                shifted[j] += sj * step
                total += sign * _negative_log_likelihood(shifted, x, t_x, t, ones)
            hessian[i, j] = hessian[j, i] = total / (4 * step * step)
    covariance = np.linalg.inv(hessian)
    return np.sqrt(np.diag(covariance)) * np.exp(theta)


def probability_alive(
    params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> FloatArray:
    """P(still alive at age T | x, t_x, T); exactly 1 for customers with no repeat purchase."""
    x, t_x, t = _as_arrays(frequency, recency, age)
    return 1.0 / (1.0 + _dropout_odds(params, x, t_x, t))


def _dropout_odds(params: BgNbdParams, x: FloatArray, t_x: FloatArray, t: FloatArray) -> FloatArray:
    """δ(x>0)·a/(b+x−1)·((α+T)/(α+t_x))^(r+x), computed in logs (the power overflows easily)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    odds = np.zeros_like(x)
    repeat = x > 0
    xr = x[repeat]
    log_odds = (
        np.log(a)
        - np.log(b + xr - 1.0)
        + (r + xr) * (np.log(alpha + t[repeat]) - np.log(alpha + t_x[repeat]))
    )
    odds[repeat] = np.exp(np.minimum(log_odds, 700.0))
    return odds


def expected_purchases(
    params: BgNbdParams,
    horizon_days: float,
    frequency: ArrayLike,
    recency: ArrayLike,
    age: ArrayLike,
) -> FloatArray:
    """Expected purchases in the next `horizon_days` given (x, t_x, T): the paper's eq. (10).

    E[Y(t) | x, t_x, T] = (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) ·
        ₂F₁(r+x, b+x; a+b+x−1; t/(α+T+t))] / (1 + δ(x>0)·a/(b+x−1)·((α+T)/(α+t_x))^(r+x))

    The power and ₂F₁ are evaluated together through Euler's transformation,
    (1−z)^(r+x)·₂F₁(r+x, b+x; c; z) = (1−z)^(a−1)·₂F₁(a+b−1−r, a−1; c; z) with c = a+b+x−1,
    whose parameters do not grow with x: the direct form overflows ₂F₁ for heavy buyers.
    """
    if not np.isfinite(horizon_days) or horizon_days < 0:
        raise ValueError(f"horizon_days must be a non-negative number, got {horizon_days}")
    x, t_x, t = _as_arrays(frequency, recency, age)
    r, alpha, b = params.r, params.alpha, params.b
    a = params.a
    # At a = 1 the closed form is 0/0; a nudge of 1e-7 changes the result far below 1e-6.
    if abs(a - 1.0) < 1e-7:
        a = 1.0 + 1e-7
    if horizon_days == 0:
        return np.zeros_like(x)
    c = a + b + x - 1.0
    one_minus_z = (alpha + t) / (alpha + t + horizon_days)
    z = 1.0 - one_minus_z
    hyp = special.hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
    # −expm1((a−1)·log(1−z)) is 1 − (1−z)^(a−1) without cancellation when a is near 1.
    bracket = -np.expm1((a - 1.0) * np.log(one_minus_z)) - np.power(one_minus_z, a - 1.0) * (
        hyp - 1.0
    )
    expected = c / (a - 1.0) * bracket / (1.0 + _dropout_odds(params, x, t_x, t))
    return np.where(np.isfinite(expected), np.maximum(expected, 0.0), np.nan)


def expected_purchases_unconditional(params: BgNbdParams, horizon_days: ArrayLike) -> FloatArray:
    """E[X(t)] for a customer just acquired: the paper's eq. (7); used to calibrate simulations."""
    t = np.asarray(horizon_days, dtype=np.float64)
    r, alpha, b = params.r, params.alpha, params.b
    a = params.a if abs(params.a - 1.0) >= 1e-7 else 1.0 + 1e-7
    one_minus_z = alpha / (alpha + t)
    # Euler's transformation again: (1−z)^r·₂F₁(r, b; a+b−1; z) = (1−z)^(a−1)·₂F₁(a+b−1−r, a−1; ·).
    hyp = special.hyp2f1(a + b - 1.0 - r, a - 1.0, a + b - 1.0, 1.0 - one_minus_z)
    bracket = -np.expm1((a - 1.0) * np.log(one_minus_z)) - np.power(one_minus_z, a - 1.0) * (
        hyp - 1.0
    )
    result: FloatArray = (a + b - 1.0) / (a - 1.0) * bracket
    return result


def draw_customers(
    params: BgNbdParams, customers: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """Each customer's purchase rate λ (per day) and dropout probability p."""
    rates = rng.gamma(shape=params.r, scale=1.0 / params.alpha, size=customers)
    dropout = rng.beta(params.a, params.b, size=customers)
    return rates, dropout


def simulate_purchase_times(
    rates: FloatArray, dropout: FloatArray, age_days: FloatArray, rng: np.random.Generator
) -> tuple[IntArray, FloatArray]:
    """Repeat-purchase times of the BG/NBD process, vectorised over customers.

    Returns (count per customer, flat array of purchase times in days after the first purchase,
    grouped by customer in input order and ascending within a customer).

    How: a customer would make N ~ Poisson(λT) purchases in (0, T] if never dropping out, and
    drops out right after purchase J ~ Geometric(p); so x = min(N, J). Given N, Poisson arrival
    times are N sorted uniforms on (0, T], and the first x sorted uniforms are cumulative sums of
    x Exp(1) spacings divided by those plus a Gamma(N+1−x) remainder. This draws exactly the
    purchases that happen, with no loop over purchases.
    """
    n = rng.poisson(rates * age_days)
    # Geometric(p) counts trials up to and including the first success: the purchase after which
    # the customer leaves. p = 0 cannot occur with a Beta draw, but clip so numpy never sees it.
    leave_after = rng.geometric(np.clip(dropout, 1e-12, 1.0))
    counts = np.minimum(n, leave_after).astype(np.int64)
    total = int(counts.sum())
    spacings = rng.exponential(size=total)
    remainder = rng.gamma(shape=(n - counts + 1).astype(np.float64))
    owner = np.repeat(np.arange(counts.size), counts)
    cumulative = np.cumsum(spacings)
    ends = np.cumsum(counts)
    starts = ends - counts
    # Per-customer cumulative sums out of one global cumsum: subtract the running total reached
    # before each customer's first spacing.
    padded = np.concatenate(([0.0], cumulative))
    within = cumulative - np.repeat(padded[starts], counts)
    own_sum = padded[ends] - padded[starts]
    times = within / (own_sum + remainder)[owner] * age_days[owner]
    return counts, times


def simulate_bgnbd(
    params: BgNbdParams,
    customers: int,
    age_days: ArrayLike,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Simulate (frequency, recency, age) in days for `customers` customers.

    `age_days` is one observation length for everyone or one per customer.
    """
    if customers < 0:
        raise ValueError("customers must not be negative")
    ages = np.broadcast_to(np.asarray(age_days, dtype=np.float64), (customers,)).copy()
    if np.any(ages < 0) or not np.all(np.isfinite(ages)):
        raise ValueError("age_days must be finite and not negative")
    rates, dropout = draw_customers(params, customers, rng)
    counts, times = simulate_purchase_times(rates, dropout, ages, rng)
    recency = np.zeros(customers)
    has = counts > 0
    recency[has] = times[np.cumsum(counts)[has] - 1]
    return counts.astype(np.float64), recency, ages
