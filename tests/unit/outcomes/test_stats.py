"""The statistics against values computed by hand (arithmetic in the comments)."""

import math

import numpy as np
import pytest

from recsys_lib.errors import ConfigError
from recsys_lib.outcomes.stats import difference, holm, proportion, ratio, z_value

Z = 1.959963984540054  # two-sided 95% normal quantile


def test_z_value_is_the_two_sided_normal_quantile():
    assert z_value(0.95) == pytest.approx(Z)
    assert z_value(0.99) == pytest.approx(2.5758293035489)
    with pytest.raises(ConfigError, match="confidence"):
        z_value(1.0)


def test_wilson_interval_of_10_in_100():
    # centre = (0.1 + z^2/200) / (1 + z^2/100) = 0.1192073 / 1.0384146 = 0.1147975
    # half = z / 1.0384146 * sqrt(0.1 * 0.9 / 100 + z^2 / 40000) = 1.8874577 * 0.0315601 = 0.0595684
    est = proportion(10, 100)
    assert est.value == 0.1 and est.units == 100
    assert est.low == pytest.approx(0.0552291, abs=1e-6)
    assert est.high == pytest.approx(0.1743659, abs=1e-6)
    assert est.variance == pytest.approx(0.0009)


def test_wilson_interval_stays_inside_0_1_at_the_edges():
    none, every = proportion(0, 20), proportion(20, 20)
    assert none.low == pytest.approx(0.0, abs=1e-12) and 0 < none.high < 0.2  # 0.1611 by the formula
    assert none.high == pytest.approx(Z**2 / 20 / (1 + Z**2 / 20), abs=1e-9)
    assert every.high == pytest.approx(1.0) and 0.8 < every.low < 1
    assert math.isnan(proportion(0, 0).value)
    with pytest.raises(ConfigError, match="successes"):
        proportion(5, 3)


def test_difference_of_two_proportions_is_the_pooled_z_test_with_a_wald_interval():
    # 50/100 vs 65/100: diff 0.15. Test: pooled p = 115/200 = 0.575,
    # var = 0.575 * 0.425 * (1/100 + 1/100) = 0.0048875, se 0.0699106, z = 2.145595, p = 0.031906.
    # Interval: unpooled var = 0.5*0.5/100 + 0.65*0.35/100 = 0.004775, se = 0.0691014.
    diff = difference(proportion(50, 100), proportion(65, 100))
    assert diff.value == pytest.approx(0.15)
    assert diff.z == pytest.approx(2.145595, abs=1e-6)
    assert diff.p_value == pytest.approx(0.031906, abs=1e-6)
    assert diff.low == pytest.approx(0.15 - Z * 0.0691014, abs=1e-6)
    assert diff.high == pytest.approx(0.15 + Z * 0.0691014, abs=1e-6)
    reverse = difference(proportion(65, 100), proportion(50, 100))
    assert reverse.value == pytest.approx(-0.15) and reverse.p_value == pytest.approx(diff.p_value)


def test_difference_without_variance_or_without_data():
    assert difference(proportion(0, 50), proportion(0, 60)).p_value == 1.0
    # 0/1 vs 1/2 purchasers bought twice: no spread in either arm, yet the pooled test has some
    # (pooled 1/3, var = 1/3 * 2/3 * (1 + 1/2) = 1/3, z = -1 / 0.57735 = -1.732051, p = 0.083265)
    few = difference(proportion(1, 1), proportion(0, 2))
    assert few.p_value == pytest.approx(0.083265, abs=1e-6)
    assert difference(proportion(0, 50), proportion(60, 60)).p_value < 1e-12
    one_each = difference(ratio(np.array([1.0]), np.array([2.0])), ratio(np.array([3.0]), np.array([4.0])))
    assert math.isnan(one_each.p_value)  # one user per arm: nothing to test against
    assert math.isnan(difference(proportion(0, 0), proportion(3, 10)).p_value)


def test_ratio_of_sums_uses_the_delta_method_over_users():
    # x = [1, 0, 2, 1], y = [2, 1, 2, 3]: R = 4 / 8 = 0.5; means 1 and 2
    # s_x^2 = 2/3, s_y^2 = 2/3, s_xy = 1/3 (ddof 1)
    # var = (2/3 - 2 * 0.5 * 1/3 + 0.25 * 2/3) / (4 * 2^2) = 0.5 / 16 = 0.03125
    est = ratio(np.array([1, 0, 2, 1]), np.array([2, 1, 2, 3]))
    assert est.value == 0.5 and est.numerator == 4 and est.denominator == 8 and est.units == 4
    assert est.variance == pytest.approx(0.03125)
    assert (est.low, est.high) == pytest.approx((0.5 - Z * 0.1767767, 0.5 + Z * 0.1767767), abs=1e-6)


def test_a_ratio_with_one_denominator_per_user_is_a_proportion():
    x = np.array([1] * 30 + [0] * 70)
    est = ratio(x, np.ones(100))
    # delta variance with ddof 1: s_x^2 / n = (0.3 * 0.7 * 100 / 99) / 100
    assert est.value == pytest.approx(0.3)
    assert est.variance == pytest.approx(0.3 * 0.7 / 99)


def test_ratio_without_denominator_is_not_a_number():
    assert math.isnan(ratio(np.zeros(3), np.zeros(3)).value)
    assert math.isnan(ratio(np.array([1.0]), np.array([2.0])).variance)  # one user: no spread
    with pytest.raises(ConfigError, match="shapes"):
        ratio(np.zeros(3), np.zeros(2))


def test_holm_adjusts_step_down_and_keeps_the_input_order():
    # sorted: 0.01 * 3 = 0.03; 0.03 * 2 = 0.06; 0.04 * 1 = 0.04 -> raised to 0.06 (monotone)
    adjusted = holm([0.01, 0.04, 0.03, math.nan])
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(adjusted[3])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]) == []
