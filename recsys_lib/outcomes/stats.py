"""Estimates with 95% intervals, differences between two arms, p-values and their correction.

The unit of an experiment is the user (arms are assigned per user), so every metric is an estimate
over users:

* a **proportion** (share of users with a property, e.g. bought a recommended item): the Wilson
  score interval for the arm; two arms are compared with the two-proportion z-test (pooled
  variance under the null hypothesis) and the difference's interval uses the unpooled (Wald)
  variance;
* a **ratio of sums** over users (e.g. clicks / impressions, recommended revenue / revenue): the
  delta method on per-user numerators and denominators (Deng, Knoblich and Lu, "Applying the delta
  method in metric analytics", KDD 2018), which accounts for one user's events not being
  independent of each other.

Ratios are compared with a two-sided z-test on the difference with unpooled standard errors
(Welch's form for large samples); the p-values of the metrics compared in one report are adjusted
with Holm's step-down method, which controls the family-wise error rate.

Pure functions of numbers and arrays; ``nan`` marks what cannot be estimated (no users).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from recsys_lib.errors import ConfigError

_NORMAL = NormalDist()


def z_value(confidence: float) -> float:
    """Two-sided normal quantile of ``confidence`` (1.95996... for 0.95)."""
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    return _NORMAL.inv_cdf(0.5 + confidence / 2)


@dataclass(frozen=True)
class Estimate:
    """One arm's value of a metric: ``numerator / denominator`` with its interval and variance.

    ``units`` is the number of users it was measured on; ``variance`` is that of ``value`` (what a
    comparison needs). Every float is ``nan`` when nothing could be measured.
    """

    value: float
    low: float
    high: float
    variance: float
    numerator: float
    denominator: float
    units: int
    proportion: bool = False
    """Whether ``value`` is a share of ``units`` (compared with the pooled two-proportion test)."""

    def to_dict(self) -> dict[str, float | int | None]:
        """The estimate as report JSON: value, ``ci_low``/``ci_high``, numerator, denominator and
        ``users``; ``nan`` becomes null; the variance and the kind are left out."""
        return {
            "value": _json(self.value),
            "ci_low": _json(self.low),
            "ci_high": _json(self.high),
            "numerator": _json(self.numerator),
            "denominator": _json(self.denominator),
            "users": self.units,
        }


@dataclass(frozen=True)
class Difference:
    """``treatment - control`` of one metric, its interval, the z statistic and p-values
    (``p_adjusted``: after the correction for the number of metrics compared)."""

    value: float
    low: float
    high: float
    z: float
    p_value: float
    p_adjusted: float = math.nan

    def to_dict(self) -> dict[str, float | None]:
        """The comparison as report JSON: value, interval, z, raw and adjusted p-values; ``nan`` becomes null."""
        return {
            "value": _json(self.value),
            "ci_low": _json(self.low),
            "ci_high": _json(self.high),
            "z": _json(self.z),
            "p_value": _json(self.p_value),
            "p_adjusted": _json(self.p_adjusted),
        }


def proportion(successes: int, n: int, confidence: float = 0.95) -> Estimate:
    """``successes / n`` with the Wilson score interval (sound near 0 and 1 and for small ``n``)."""
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ConfigError(f"proportion needs 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan, float(successes), 0.0, 0, proportion=True)
    z = z_value(confidence)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = max(centre - half, 0.0), min(centre + half, 1.0)  # inside [0, 1] whatever the rounding
    return Estimate(p, low, high, p * (1 - p) / n, float(successes), float(n), n, proportion=True)


def ratio(numerators: np.ndarray, denominators: np.ndarray, confidence: float = 0.95) -> Estimate:
    """``sum(numerators) / sum(denominators)`` over users, with a delta-method normal interval.

    ``numerators`` and ``denominators`` are per user, shape ``(n_users,)``. The variance is
    ``(s_x^2 - 2 R s_xy + R^2 s_y^2) / (n mean(y)^2)`` with sample (co)variances; ``nan`` for fewer
    than two users or a zero denominator.
    """
    x = np.asarray(numerators, dtype=np.float64)
    y = np.asarray(denominators, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ConfigError(f"ratio needs two 1-d arrays of one length, got shapes {x.shape} and {y.shape}")
    n, total_x, total_y = len(x), float(x.sum()), float(y.sum())
    if n == 0 or total_y == 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan, total_x, total_y, n)
    value = total_x / total_y
    if n < 2:
        return Estimate(value, math.nan, math.nan, math.nan, total_x, total_y, n)
    cov = np.cov(x, y, ddof=1)  # [[s_x^2, s_xy], [s_xy, s_y^2]]
    variance = float(cov[0, 0] - 2 * value * cov[0, 1] + value * value * cov[1, 1]) / (n * (total_y / n) ** 2)
    variance = max(variance, 0.0)
    half = z_value(confidence) * math.sqrt(variance)
    return Estimate(value, value - half, value + half, variance, total_x, total_y, n)


def difference(control: Estimate, treatment: Estimate, confidence: float = 0.95) -> Difference:
    """``treatment - control`` with a normal interval (unpooled variances) and a two-sided z-test:
    pooled variance for two proportions, unpooled for ratios.

    ``nan`` throughout when either arm has no estimate; a p-value of ``nan`` (not tested) when
    there is no variance to test against (two ratios measured without spread, e.g. one user each),
    and 1 when two proportions are both 0 or both 1.
    """
    diff = treatment.value - control.value
    variance = treatment.variance + control.variance
    if math.isnan(diff) or math.isnan(variance):
        return Difference(diff, math.nan, math.nan, math.nan, math.nan)
    se = math.sqrt(variance)
    half = z_value(confidence) * se
    test_variance = _pooled_variance(control, treatment) if control.proportion and treatment.proportion else variance
    if test_variance == 0:
        return Difference(diff, diff - half, diff + half, math.nan, 1.0 if diff == 0 else math.nan)
    z = diff / math.sqrt(test_variance)
    return Difference(diff, diff - half, diff + half, z, 2 * (1 - _NORMAL.cdf(abs(z))))


def _pooled_variance(a: Estimate, b: Estimate) -> float:
    """Variance of the difference of two proportions if both arms shared one rate (the null)."""
    pooled = (a.numerator + b.numerator) / (a.denominator + b.denominator)
    return pooled * (1 - pooled) * (1 / a.denominator + 1 / b.denominator)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order: the i-th smallest of m is multiplied
    by ``m - i`` (i from 0), made non-decreasing and capped at 1. ``nan`` entries (metrics that
    could not be compared) stay ``nan`` and do not count in m."""
    present = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(present)):
        running = max(running, min(1.0, (len(present) - rank) * p))
        adjusted[i] = running
    return adjusted


def _json(value: float) -> float | None:
    """JSON has no nan: None stands for 'could not be measured'."""
    return None if math.isnan(value) else float(value)
