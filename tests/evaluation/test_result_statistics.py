"""Student-t quantiles and the per-seed estimates against closed forms and hand-computed values."""

import math

import pytest

from mbmeta.evaluation.statistics import (
    estimate,
    mean_of_means,
    regularized_incomplete_beta,
    t_cdf,
    t_quantile,
    verdict,
)


@pytest.mark.parametrize("t", [-30.0, -2.5, -0.3, 0.0, 0.7, 4.0, 100.0])
def test_t_cdf_with_one_degree_of_freedom_is_the_cauchy_cdf(t):
    assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)


@pytest.mark.parametrize("t", [-8.0, -1.0, 0.0, 0.5, 3.0, 40.0])
def test_t_cdf_with_two_degrees_of_freedom_matches_its_closed_form(t):
    assert t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)


@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.995])
def test_t_quantile_inverts_the_closed_forms(p):
    assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-9)
    assert t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-9)


@pytest.mark.parametrize(
    ("df", "table"),  # two-sided 95 % critical values as printed in t tables (3 decimals)
    [(3, 3.182), (4, 2.776), (5, 2.571), (10, 2.228), (20, 2.086), (30, 2.042), (120, 1.980)],
)
def test_t_quantile_matches_the_printed_table(df, table):
    assert t_quantile(0.975, df) == pytest.approx(table, abs=5e-4)


def test_t_quantile_tends_to_the_normal_quantile_and_is_symmetric():
    assert t_quantile(0.975, 1e7) == pytest.approx(1.959964, abs=1e-5)
    assert t_quantile(0.025, 7) == pytest.approx(-t_quantile(0.975, 7), abs=1e-12)


def test_incomplete_beta_with_unit_second_argument_is_a_power():
    # I_x(a, 1) = x^a
    for a, x in [(0.5, 0.3), (2.0, 0.7), (5.0, 0.99)]:
        assert regularized_incomplete_beta(a, 1.0, x) == pytest.approx(x**a, rel=1e-10)


def test_estimate_by_hand():
    # values 1, 2, 3, 6: mean 3, sample variance (4 + 1 + 0 + 9) / 3, se = sd / 2, df 3
    est = estimate([1.0, 2.0, 3.0, 6.0])
    se = math.sqrt(14 / 3) / 2
    assert est.mean == pytest.approx(3.0)
    assert est.se == pytest.approx(se)
    assert est.n == 4
    half = t_quantile(0.975, 3) * se
    assert (est.low, est.high) == (pytest.approx(3.0 - half), pytest.approx(3.0 + half))
    assert half == pytest.approx(3.182 * se, rel=1e-3)


def test_two_seeds_give_the_wide_interval_of_twelve_point_seven_standard_errors():
    est = estimate([62.8, 39.7])  # the HalfCheetah 56k paired differences: +51.25 ± 11.55
    assert est.mean == pytest.approx(51.25)
    assert est.se == pytest.approx(11.55)
    assert est.high - est.mean == pytest.approx(12.7062 * 11.55, rel=1e-4)
    assert verdict(est) == "not established"


def test_one_value_has_no_interval_and_establishes_nothing():
    est = estimate([5.0])
    assert est.mean == 5.0 and est.n == 1
    assert math.isnan(est.se) and not est.has_interval
    assert verdict(est) == "not established"


def test_no_values():
    est = estimate([])
    assert est.n == 0 and math.isnan(est.mean)


def test_verdict_follows_the_interval_not_the_sign_of_the_mean():
    assert verdict(estimate([10.0, 11.0, 12.0])) == "above"
    assert verdict(estimate([-10.0, -11.0, -12.0])) == "below"
    assert verdict(estimate([10.0, -1.0, 12.0])) == "not established"  # mean > 0, interval crosses zero


def test_a_difference_without_spread_across_seeds_establishes_nothing():
    same = estimate([0.125, 0.125, 0.125])  # e.g. 2 of 16 successes on every seed against none
    assert same.se == 0 and same.low == same.high == 0.125
    assert verdict(same) == "not established"
    assert verdict(estimate([0.125, 0.1875, 0.125])) == "above"  # with spread, the interval decides


def test_non_finite_values_are_refused():
    with pytest.raises(ValueError, match="non-finite"):
        estimate([1.0, float("nan")])


@pytest.mark.parametrize(("p", "df"), [(0.0, 3), (1.0, 3), (0.5, 0)])
def test_bad_arguments_are_refused(p, df):
    with pytest.raises(ValueError):
        t_quantile(p, df)


def test_mean_of_means_adds_standard_errors_in_quadrature():
    a, b = estimate([1.0, 3.0]), estimate([10.0, 10.0, 16.0])  # se 1 and sqrt(12 / 3) = 2
    mean, se = mean_of_means([a, b])
    assert mean == pytest.approx((2.0 + 12.0) / 2) and se == pytest.approx(math.sqrt(1.0 + 4.0) / 2)
    assert math.isnan(mean_of_means([a, estimate([5.0])])[1])  # one episode: no standard error
    with pytest.raises(ValueError, match="no estimates"):
        mean_of_means([])
