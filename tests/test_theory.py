"""Theorem parameter choices and bounds against hand-computed values, limits and validation."""

import math

import numpy as np
import pytest

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


def test_gd_step_and_bound():
    assert T.gd_step(1.0, 2.0, 3.0) == pytest.approx(1 / 14)
    assert T.gd_upper_bound(1.0, 2.0, 3.0, 5.0, 0.5) == pytest.approx(4 * 7 * 5 / 0.25)


def test_gd_lower_bound_hand_value_and_vacuous_case():
    val = T.gd_lower_bound(2.0, math.e, 1.0, 0.1)
    assert val == pytest.approx(2 * math.e * (1 - 0.0625) / (8 * 0.01 * 2))
    assert T.gd_lower_bound(1.0, 10.0, 0.05, 0.1) == 0.0  # delta <= 5 eps / 8


def test_lower_bound_below_upper_bound():
    for M in [2.0, 10.0, 1e3, 1e6]:
        assert T.gd_lower_bound(1.0, M, 1.0, 0.01) <= T.gd_upper_bound(1.0, 1.0, M, 1.0, 0.01)


@pytest.mark.parametrize("fn,args,name", [
    (T.clipped_gd_parameters, (0.0, 1.0), "L0"), (T.clipped_gd_parameters, (1.0, -1.0), "L1"),
    (T.clipped_gd_bound, (1.0, 1.0, 1.0, 0.0), "eps"), (T.clipped_gd_bound, (1.0, 1.0, float("nan"), 1.0), "delta"),
    (T.gd_step, (1.0, 1.0, -3.0), "M"), (T.gd_upper_bound, (1.0, 1.0, 1.0, 1.0, float("inf")), "eps"),
    (T.gd_lower_bound, (0.5, 10.0, 1.0, 0.1), "L1"), (T.gd_lower_bound, (1.0, 1.0, 1.0, 0.1), "M"),
    (T.clipped_sgd_parameters, (1.0, 1.0, 0.0, 100), "tau"), (T.sgd_step, (1.0, 1.0, 1.0, 0), "T"),
])
def test_validation_names_the_value(fn, args, name):
    with pytest.raises(ValueError, match=name):
        fn(*args)


def test_theorem7_parameters_and_readings():
    eta = T.clipped_sgd_parameters(1.0, 1.0, 0.1, 10_000)
    assert eta == pytest.approx(min(1 / 20, 1 / 12.8, 1 / 100))
    g = np.array([0.0, 1.0, 100.0])
    intended = T.clipped_sgd_step(g, eta, 1.0, 0.1, "intended")
    printed = T.clipped_sgd_step(g, eta, 1.0, 0.1, "printed")
    np.testing.assert_allclose(intended, np.minimum(eta, 1 / (16 * (g + 0.1))))
    np.testing.assert_allclose(printed, np.minimum(1 / (16 * eta * (g + 0.1)), eta))
    assert np.all(intended <= eta) and np.all(printed <= eta)
    with pytest.raises(ValueError, match="reading"):
        T.clipped_sgd_step(g, eta, 1.0, 0.1, "other")


def test_theorem7_bound_eps4_order_and_free_of_M():
    b1, b2 = T.clipped_sgd_bound(1.0, 1.0, 0.1, 1.0, 0.01), T.clipped_sgd_bound(1.0, 1.0, 0.1, 1.0, 0.005)
    assert b2 / b1 == pytest.approx(16.0, rel=1e-9)  # the 4 Delta'^2 / eps^4 term dominates


def test_theorem8_grows_with_M():
    assert T.sgd_step(1.0, 10.0, 1.0, 100) == pytest.approx(1 / 11)
    assert T.sgd_step(1.0, 1.0, 1.0, 100) == pytest.approx(0.1)
    assert T.sgd_bound(1.0, 1e6, 1.0, 1.0, 0.5) > T.sgd_bound(1.0, 10.0, 1.0, 1.0, 0.5)


def test_iterations_to_eps():
    assert T.iterations_to_eps([3.0, 2.0, 0.5, 0.1], 0.5) == 2
    assert T.iterations_to_eps([0.1, 2.0], 0.5) == 0
    assert T.iterations_to_eps([3.0, 2.0], 0.5) is None
    assert T.iterations_to_eps([], 0.5) is None
    with pytest.raises(ValueError, match="eps"):
        T.iterations_to_eps([1.0], -1.0)


def test_stochastic_iterations_to_eps():
    # run r first goes below eps at step r: the never-below fraction at t is (R - t - 1) / R
    R, S = 10, 20
    g = np.ones((R, S))
    for r in range(R):
        g[r, r:] = 0.0
    assert T.stochastic_iterations_to_eps(g, 0.5) == 4  # fraction 5/10 <= 1/2 at t = 4
    assert T.stochastic_iterations_to_eps(np.ones((3, 5)), 0.5) is None
    # a run that dips below and comes back still counts as having reached eps
    g2 = np.array([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]])
    assert T.stochastic_iterations_to_eps(g2, 0.5) == 1


def test_diverged_runs_never_count_as_converged():
    nan = float("nan")
    assert T.stochastic_iterations_to_eps([[5.0, nan, nan], [5.0, nan, nan]], 0.1) is None
    assert T.iterations_to_eps([5.0, nan, 0.01], 0.1) == 2
