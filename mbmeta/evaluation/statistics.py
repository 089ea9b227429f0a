"""Small-sample statistics for reported results: mean, standard error, Student-t interval and a verdict.

The unit of replication is the training seed: each seed contributes one number (the mean of its episodes), and the
interval is taken across seeds. With two to ten seeds the normal approximation is far too narrow (at n = 2 the
95 % t-quantile is 12.7, not 1.96), so the quantile comes from Student's t distribution, computed here from the
regularised incomplete beta function (scipy is not a dependency).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function, evaluated with the modified Lentz method."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        # even step, then odd step of the fraction's terms
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < eps:
            break
    return result


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """``I_x(a, b)``, the regularised incomplete beta function, for ``a, b > 0`` and ``0 <= x <= 1``."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"incomplete beta: x must lie in [0, 1], got {x}")
    if x in (0.0, 1.0):
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    # The fraction converges fast for x below the mean a / (a + b); use the symmetry I_x(a, b) = 1 - I_{1-x}(b, a).
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """``P(T <= t)`` for Student's t distribution with ``df > 0`` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"t distribution: degrees of freedom must be > 0, got {df}")
    tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))  # P(T > |t|)
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p``-quantile of Student's t distribution with ``df`` degrees of freedom (bisection on :func:`t_cdf`)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t quantile: p must lie in (0, 1), got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, 2.0 * high
    for _ in range(200):
        mid = 0.5 * (low + high)
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low <= 1e-12 * max(1.0, high):
            break
    return 0.5 * (low + high)


@dataclass(frozen=True)
class Estimate:
    """The mean of per-seed values with its standard error and two-sided t-interval.

    Attributes:
        mean: mean of the values (NaN without values).
        se: standard error of the mean, ``sd / sqrt(n)`` with the n - 1 sample sd (NaN for n < 2).
        low: lower end of the interval (NaN for n < 2).
        high: upper end of the interval (NaN for n < 2).
        n: number of values (training seeds).
        confidence: the interval's coverage, e.g. 0.95.
    """

    mean: float
    se: float
    low: float
    high: float
    n: int
    confidence: float = CONFIDENCE

    @property
    def has_interval(self) -> bool:
        """Whether an interval exists (at least two values)."""
        return self.n >= 2 and math.isfinite(self.low) and math.isfinite(self.high)


def estimate(values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """Mean, standard error and the two-sided Student-t ``confidence`` interval of ``values`` (one per seed).

    Raises:
        ValueError: a value is not finite (a NaN would silently poison the mean).
    """
    values = [float(v) for v in values]
    bad = [v for v in values if not math.isfinite(v)]
    if bad:
        raise ValueError(f"cannot summarise non-finite values: {bad}")
    n = len(values)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan, 0, confidence)
    mean = math.fsum(values) / n
    if n == 1:
        return Estimate(mean, math.nan, math.nan, math.nan, 1, confidence)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    se = sd / math.sqrt(n)
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * se
    return Estimate(mean, se, mean - half, mean + half, n, confidence)


def mean_of_means(estimates: Sequence[Estimate]) -> tuple[float, float]:
    """The unweighted mean of independent estimates' means, and its standard error.

    The standard errors add in quadrature: ``sqrt(sum se_i^2) / k`` for ``k`` estimates (NaN if any is NaN). This is
    how an average over conditions (e.g. CaDM's moderate test average, the mean of its conditions' means) is
    reported for one model.

    Raises:
        ValueError: no estimates.
    """
    if not estimates:
        raise ValueError("mean_of_means: no estimates to average")
    k = len(estimates)
    mean = math.fsum(e.mean for e in estimates) / k
    return mean, math.sqrt(math.fsum(e.se**2 for e in estimates)) / k


ABOVE, BELOW, NOT_ESTABLISHED = "above", "below", "not established"


def verdict(difference: Estimate) -> str:
    """``above`` / ``below`` when the interval of a difference excludes zero on that side, else ``not established``.

    Without an interval (fewer than two seeds) nothing is established, whatever the sign of the mean. Nor with a
    difference that is the same on every seed (standard error 0): its interval has no width because the seeds show
    no spread, not because the difference is certain (two seeds that each made 2 of 16 successes where the other
    method made none; the episodes' own chance is not in a seed-level interval).
    """
    if not difference.has_interval or difference.se == 0:
        return NOT_ESTABLISHED
    if difference.low > 0:
        return ABOVE
    if difference.high < 0:
        return BELOW
    return NOT_ESTABLISHED
