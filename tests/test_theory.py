r"""Theorem parameter choices and bounds against hand-computed values, limits and validation; the
clipped and normalized step sizes of Zhang et al., Section 3, and their matching.

With :math:`\gamma\eta_c = \eta_n` and :math:`\gamma = \beta`,
:math:`h_n/h_c = \max\{\|g\|, \gamma\}/(\|g\| + \gamma) \in [1/2, 1]`: the paper prints
:math:`h_n \le 2h_c`; the tighter sandwich :math:`h_c/2 \le h_n \le h_c` holds.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clipcore import theory as T


def test_clipped_gd_parameters_hand_values():
    eta, gamma = T.clipped_gd_parameters(2.0, 0.05)
    assert eta == pytest.approx(0.05)
    assert gamma == pytest.approx(min(20.0, 1 / (10 * 0.05 * 0.05)))  # = 20
    # clipped step length gamma * eta = min(1, 1 / (10 L1))
    for L0, L1 in [(1, 1), (3, 0.01), (0.1, 100.0), (16, 1)]:
        eta, gamma = T.clipped_gd_parameters(L0, L1)
        assert gamma * eta == pytest.approx(min(1.0, 1.0 / (10 * L1)))


def test_clipped_gd_bound_hand_value():
    # 20*2*3/0.1^2 + 20*max(1, 0.25)*3/2 = 12000 + 30
    assert T.clipped_gd_bound(2.0, 0.5, 3.0, 0.1) == pytest.approx(12030.0)
    # L1 > 1 enters squared
    assert T.clipped_gd_bound(1.0, 3.0, 1.0, 1.0) == pytest.approx(20 + 180)


def test_clipped_bound_free_of_M_gd_bound_linear_in_M():
    b1 = T.gd_upper_bound(1.0, 1.0, 10.0, 1.0, 0.1)
    b2 = T.gd_upper_bound(1.0, 1.0, 1010.0, 1.0, 0.1)
    assert b2 / b1 == pytest.approx(1011.0 / 11.0)


def test_gd_step_size_and_bound():
    assert T.gd_step_size(1.0, 2.0, 3.0) == pytest.approx(1 / 14)
    assert T.gd_upper_bound(1.0, 2.0, 3.0, 5.0, 0.5) == pytest.approx(4 * 7 * 5 / 0.25)


def test_gd_lower_bound_hand_value_and_vacuous_case():
    val = T.gd_lower_bound(2.0, math.e, 1.0, 0.1)
    assert val == pytest.approx(2 * math.e * (1 - 0.0625) / (8 * 0.01 * 2))
    assert T.gd_lower_bound(1.0, 10.0, 0.05, 0.1) == 0.0  # delta <= 5 eps / 8


def test_lower_bound_below_upper_bound():
    for M in [2.0, 10.0, 1e3, 1e6]:
        assert T.gd_lower_bound(1.0, M, 1.0, 0.01) <= T.gd_upper_bound(1.0, 1.0, M, 1.0, 0.01)


@pytest.mark.parametrize(
    "fn,args,name",
    [
        (T.clipped_gd_parameters, (0.0, 1.0), "L0"),
        (T.clipped_gd_parameters, (1.0, -1.0), "L1"),
        (T.clipped_gd_bound, (1.0, 1.0, 1.0, 0.0), "eps"),
        (T.clipped_gd_bound, (1.0, 1.0, float("nan"), 1.0), "delta"),
        (T.gd_step_size, (1.0, 1.0, -3.0), "M"),
        (T.gd_upper_bound, (1.0, 1.0, 1.0, 1.0, float("inf")), "eps"),
        (T.gd_lower_bound, (0.5, 10.0, 1.0, 0.1), "L1"),
        (T.gd_lower_bound, (1.0, 1.0, 1.0, 0.1), "M"),
        (T.clipped_sgd_parameters, (1.0, 1.0, 0.0, 100), "tau"),
        (T.sgd_step_size, (1.0, 1.0, 1.0, 0), "T"),
    ],
)
def test_validation_names_the_value(fn, args, name):
    with pytest.raises(ValueError, match=name):
        fn(*args)


def test_theorem7_parameters_and_readings():
    eta = T.clipped_sgd_parameters(1.0, 1.0, 0.1, 10_000)
    assert eta == pytest.approx(min(1 / 20, 1 / 12.8, 1 / 100))
    g = np.array([0.0, 1.0, 100.0])
    intended = T.clipped_sgd_step_size(g, eta, 1.0, 0.1, "intended")
    printed = T.clipped_sgd_step_size(g, eta, 1.0, 0.1, "printed")
    np.testing.assert_allclose(intended, np.minimum(eta, 1 / (16 * (g + 0.1))))
    np.testing.assert_allclose(printed, np.minimum(1 / (16 * eta * (g + 0.1)), eta))
    assert np.all(intended <= eta) and np.all(printed <= eta)
    with pytest.raises(ValueError, match="reading"):
        T.clipped_sgd_step_size(g, eta, 1.0, 0.1, "other")


def test_theorem7_bound_eps4_order_and_free_of_M():
    b1, b2 = T.clipped_sgd_bound(1.0, 1.0, 0.1, 1.0, 0.01), T.clipped_sgd_bound(1.0, 1.0, 0.1, 1.0, 0.005)
    assert b2 / b1 == pytest.approx(16.0, rel=1e-9)  # the 4 Delta'^2 / eps^4 term dominates


def test_theorem8_grows_with_M():
    assert T.sgd_step_size(1.0, 10.0, 1.0, 100) == pytest.approx(1 / 11)
    assert T.sgd_step_size(1.0, 1.0, 1.0, 100) == pytest.approx(0.1)
    assert T.sgd_bound(1.0, 1e6, 1.0, 1.0, 0.5) > T.sgd_bound(1.0, 10.0, 1.0, 1.0, 0.5)


def test_hitting_time():
    assert T.hitting_time([3.0, 2.0, 0.5, 0.1], 0.5) == 2
    assert T.hitting_time([0.1, 2.0], 0.5) == 0
    assert T.hitting_time([3.0, 2.0], 0.5) is None
    assert T.hitting_time([], 0.5) is None
    with pytest.raises(ValueError, match="eps"):
        T.hitting_time([1.0], -1.0)


def test_stochastic_hitting_time():
    # run r first goes below eps at step r: the never-below fraction at t is (R - t - 1) / R
    R, S = 10, 20
    g = np.ones((R, S))
    for r in range(R):
        g[r, r:] = 0.0
    assert T.stochastic_hitting_time(g, 0.5) == 4  # fraction 5/10 <= 1/2 at t = 4
    assert T.stochastic_hitting_time(np.ones((3, 5)), 0.5) is None
    # a run that dips below and comes back still counts as having reached eps
    g2 = np.array([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]])
    assert T.stochastic_hitting_time(g2, 0.5) == 1


def test_diverged_runs_never_count_as_converged():
    nan = float("nan")
    assert T.stochastic_hitting_time([[5.0, nan, nan], [5.0, nan, nan]], 0.1) is None
    assert T.hitting_time([5.0, nan, 0.01], 0.1) == 2


# ---------------------------------------------------------------- clipped versus normalized step sizes


def test_step_sizes_hand_values():
    np.testing.assert_allclose(T.clipped_gd_step_size([0.0, 1.0, 4.0], 0.1, 2.0), [0.1, 0.1, 0.05])
    np.testing.assert_allclose(T.normalized_gd_step_size([0.0, 1.0, 4.0], 0.2, 2.0), [0.1, 0.2 / 3, 0.2 / 6])


def _ratio(g, eta_c, gamma):
    # matched normalized GD: eta_n = gamma * eta_c, beta = gamma
    with np.errstate(over="ignore"):  # gamma eta_c / ||g|| overflows for subnormal ||g||; min() drops it
        return T.normalized_gd_step_size(g, gamma * eta_c, gamma) / T.clipped_gd_step_size(g, eta_c, gamma)


positive = st.floats(min_value=1e-8, max_value=1e8, allow_nan=False, allow_infinity=False)
norms = st.one_of(
    st.floats(min_value=0.0, max_value=1e300, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 5e-324, 1e-300, 1e-12, 1.0, 1e12, 1e300]),
)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(g=norms, eta_c=positive, gamma=positive)
def test_sandwich_holds(g, eta_c, gamma):
    r = _ratio(g, eta_c, gamma)
    # relative slack covers the rounding of gamma * eta_c and of the divisions
    assert 0.5 * (1 - 1e-12) <= r <= 1 + 1e-12
    # closed form max(g, gamma) / (g + gamma)
    assert r == pytest.approx(max(g, gamma) / (g + gamma), rel=1e-12)


def test_seeded_random_inputs_and_tight_ends():
    rng = np.random.default_rng(0)
    g = 10 ** rng.uniform(-12, 12, 100_000)
    eta_c = 10 ** rng.uniform(-6, 2, 100_000)
    gamma = 10 ** rng.uniform(-6, 6, 100_000)
    r = _ratio(g, eta_c, gamma)
    assert r.min() >= 0.5 * (1 - 1e-12) and r.max() <= 1 + 1e-12
    # the lower end 1/2 is attained exactly at ||g|| = gamma ...
    assert _ratio(np.array([3.0]), 0.1, 3.0)[0] == pytest.approx(0.5, rel=1e-15)
    # ... and both ends are approached: tiny and huge gradients give ratios near 1
    assert _ratio(np.array([1e-12]), 0.1, 3.0)[0] == pytest.approx(1.0, abs=1e-12)
    assert _ratio(np.array([1e12]), 0.1, 3.0)[0] == pytest.approx(1.0, abs=1e-11)
    assert _ratio(np.array([0.0]), 0.1, 3.0)[0] == pytest.approx(1.0, rel=1e-15)  # both steps are eta_c


def test_paper_factor_two_is_loose():
    g = np.logspace(-6, 6, 2001)
    r = _ratio(g, 0.05, 2.0)
    assert r.max() <= 1 + 1e-15  # h_n <= h_c, a factor 2 better than the printed h_n <= 2 h_c
    assert r.min() == pytest.approx(0.5, abs=1e-3)


def test_unmatched_parameters_break_the_sandwich():
    # the sandwich needs both couplings: with beta != gamma the ratio leaves [1/2, 1]
    g = np.logspace(-3, 3, 101)
    eta_c, gamma = 0.1, 1.0
    r = T.normalized_gd_step_size(g, gamma * eta_c, 10 * gamma) / T.clipped_gd_step_size(g, eta_c, gamma)
    assert r.min() < 0.5


# ---------------------------------------------------------------- Theorem 4: the book's pair


def test_fb_level_is_f_B_where_its_gradient_is_eps():
    from clipcore.scalar_problems import HardInstanceB

    for eps in (0.01, 0.1, 1.0):
        fb = HardInstanceB(eps)
        x = 2 * eps * math.atanh(0.5)
        assert fb.grad(x) == pytest.approx(eps)
        assert fb.f(x) / eps**2 == pytest.approx(T.FB_LEVEL, rel=1e-12)


def test_wall_pair_lower_bound_hand_value():
    # L0 = 2, L1 = 3, M = 10: h* = 2 log(16) / 30
    h_star = 2 * math.log(16.0) / 30.0
    assert T.wall_pair_lower_bound(2.0, 3.0, 10.0, 1.0, 0.1) == pytest.approx(
        (1.0 - T.FB_LEVEL * 0.01) / (4 * h_star * 0.01)
    )
    assert T.wall_pair_lower_bound(1.0, 1.0, 10.0, 1e-4, 0.1) == 0.0


def test_wall_pair_meets_theorem4_iff_the_logarithms_allow():
    for M in (10.0, 1e3, 1e6):
        for L1 in (1.0, 3.0, 10.0, 30.0):
            # L0 = L1: log(1 + M) <= log M + 1, so the pair certifies the transcribed bound
            assert T.wall_pair_lower_bound(L1, L1, M, 1.0, 0.1) >= T.gd_lower_bound(L1, M, 1.0, 0.1)
    # L0 = 1 and L1 = 10: log(1 + 10 M) > log M + 1, and the pair falls short of it
    assert T.wall_pair_lower_bound(1.0, 10.0, 10.0, 1.0, 0.1) < 0.8 * T.gd_lower_bound(10.0, 10.0, 1.0, 0.1)


def test_wall_pair_bound_below_what_gd_needs_on_the_pair():
    from clipcore.deterministic_descent import gd_rule, iterations_to_eps
    from clipcore.scalar_problems import ExponentialWall, HardInstanceB

    eps, delta, L0, L1, M = 0.1, 1.0, 1.0, 3.0, 30.0
    fw, fb = ExponentialWall(L0, L1), HardInstanceB(eps)
    h = np.logspace(-3, 0, 200)
    ta = iterations_to_eps(fw, fw.x0_for_gradient(M), gd_rule, eps, 50000, h=h)
    tb = iterations_to_eps(fb, fb.x0_for_delta(delta), gd_rule, eps, 50000, h=h)
    best = np.min(np.maximum(ta, tb))
    assert best >= T.wall_pair_lower_bound(L0, L1, M, delta, eps)
    assert best <= 1.2 * T.wall_pair_lower_bound(L0, L1, M, delta, eps)  # and nearly tight


def test_largest_below():
    assert T.largest_below(lambda m: m**2, 100.0, 1.0, 1e3) == pytest.approx(10.0, rel=1e-8)
    assert T.largest_below(lambda m: m, 5.0, 1.0, 4.0) == 4.0
    assert math.isnan(T.largest_below(lambda m: m, 0.5, 1.0, 4.0))
    with pytest.raises(ValueError, match="Invalid interval"):
        T.largest_below(lambda m: m, 1.0, 4.0, 1.0)


def test_upper_bound_status_branches():
    inf = math.inf
    status, n = T.upper_bound_status([5, 8], [10, 20], 15)
    assert status == "holds" and n == {"n_pass": 2, "n_fail": 0, "n_undecided": 0, "n_testable": 1}
    assert T.upper_bound_status([5, 30], [10, 20], 50)[0] == "fails"  # a count above its bound
    assert T.upper_bound_status([5, inf], [10, 20], 50)[0] == "fails"  # capped above a bound under the cap
    assert T.upper_bound_status([5, inf], [10, 80], 50)[0] == "inconclusive"  # capped below its bound
    assert T.upper_bound_status([5, 8], [100, 200], 50)[0] == "not-testable"  # no bound under the cap
    with pytest.raises(ValueError, match="Invalid counts or bounds"):
        T.upper_bound_status([math.nan], [1.0], 5)
