"""Vectorised descent on scalar problems against a plain Python loop."""

import numpy as np
import pytest

from clipcore.deterministic_descent import (
    clipped_rule,
    gd_rule,
    iterations_to_eps,
    normalized_rule,
    trajectory,
    worst_case_iterations,
)
from clipcore.scalar_problems import HardInstanceA, Power
from clipcore.theory import clipped_gd_step_size, normalized_gd_step_size


def _loop_count(prob, x, step, eps, max_steps):
    for t in range(max_steps + 1):
        g = prob.grad(x)
        if abs(g) <= eps:
            return t
        if not np.isfinite(g) or abs(g) > 1e150:
            return np.inf
        if t == max_steps:
            return np.inf
        x = x - step(abs(g)) * g
    return np.inf


@pytest.mark.parametrize("prob", [Power(4), HardInstanceA(1.0)], ids=lambda p: p.name)
def test_counts_match_python_loop(prob):
    x0 = np.array([0.5, 2.0, 5.0])
    h = np.array([[0.001], [0.01], [0.1], [1.0]])
    got = iterations_to_eps(prob, x0, gd_rule, 0.1, 5000, h=h)
    assert got.shape == (4, 3)
    for i, hi in enumerate(h[:, 0]):
        for j, xj in enumerate(x0):
            assert got[i, j] == _loop_count(prob, xj, lambda g: hi, 0.1, 5000)
    got_c = iterations_to_eps(prob, x0, clipped_rule, 0.1, 5000, eta_c=0.05, gamma=2.0)
    for j, xj in enumerate(x0):
        assert got_c[j] == _loop_count(prob, xj, lambda g: clipped_gd_step_size(g, 0.05, 2.0), 0.1, 5000)


def test_divergence_and_cap_are_inf():
    prob = HardInstanceA(1.0)
    M = 1e3
    x0 = prob.x0_for_gradient(M)
    assert np.isinf(iterations_to_eps(prob, x0, gd_rule, 0.1, 10_000, h=1.1 * prob.divergence_step(M)))
    assert np.isinf(iterations_to_eps(prob, x0, gd_rule, 1e-9, 3, h=1e-3))
    assert iterations_to_eps(prob, 0.0, gd_rule, 0.1, 0, h=1.0) == 0


def test_worst_case_over_starts():
    prob = Power(4)
    x0 = 3.0
    worst = worst_case_iterations(prob, x0, gd_rule, 0.1, 10_000, n_starts=5, h=0.01)
    each = [iterations_to_eps(prob, x0 * k / 5, gd_rule, 0.1, 10_000, h=0.01) for k in range(1, 6)]
    assert worst == max(each)
    with pytest.raises(ValueError, match="n_starts"):
        worst_case_iterations(prob, x0, gd_rule, 0.1, 10, n_starts=0, h=0.1)


def test_trajectory_matches_loop_and_normalized_rule():
    prob = Power(4)
    traj = trajectory(prob, np.array([1.0, 2.0]), normalized_rule, 20, eta_n=0.1, beta=1.0)
    assert traj.shape == (21, 2)
    x = 2.0
    for t in range(20):
        g = prob.grad(x)
        x = x - normalized_gd_step_size(abs(g), 0.1, 1.0) * g
    assert traj[-1, 1] == pytest.approx(x, rel=1e-14)


def test_bad_arguments():
    with pytest.raises(ValueError, match="eps"):
        iterations_to_eps(Power(4), 1.0, gd_rule, 0.0, 10, h=0.1)
    with pytest.raises(ValueError, match="max_steps"):
        iterations_to_eps(Power(4), 1.0, gd_rule, 0.1, -1, h=0.1)


def test_fit_log_growth():
    from clipcore.deterministic_descent import fit_log_growth

    M = np.logspace(1, 5, 9)
    fit = fit_log_growth(M, 7.0 + 10.0 * np.log(M))
    assert fit["a"] == pytest.approx(7.0) and fit["b"] == pytest.approx(10.0)
    assert fit["max_rel_residual"] < 1e-12
    assert fit_log_growth(M, M**0.5)["max_rel_residual"] > 0.3  # a power law is not logarithmic
    assert np.isnan(fit_log_growth(M, np.r_[M[:-1], np.inf])["b"])
    with pytest.raises(ValueError, match="Invalid shapes"):
        fit_log_growth(M, M[:-1])


def test_clipped_gd_on_the_wall_grows_like_log_M():
    from clipcore.deterministic_descent import fit_log_growth
    from clipcore.scalar_problems import ExponentialWall
    from clipcore.theory import clipped_gd_parameters

    w = ExponentialWall(1.0, 2.0)
    eta_c, gamma = clipped_gd_parameters(w.L0, w.L1)
    M = np.logspace(1, 5, 9)
    t = iterations_to_eps(
        w, np.array([w.x0_for_gradient(m) for m in M]), clipped_rule, 0.1, 10**6, eta_c=eta_c, gamma=gamma
    )
    fit = fit_log_growth(M, t)
    assert fit["b"] == pytest.approx(1.0 / (w.L1 * gamma * eta_c), rel=0.02)  # 10 steps per unit of log M
    assert fit["max_rel_residual"] < 0.02
