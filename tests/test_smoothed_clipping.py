"""The (L0, L1) step and the 2024 convex bounds: step identities, bound formulas, and the
gap-counting descents against plain Python loops."""

import math

import numpy as np
import pytest

from clipcore import smoothed_clipping as S
from clipcore import theory
from clipcore.deterministic_descent import clipped_rule, iterations_to_eps, smoothed_clipping_rule
from clipcore.scalar_problems import ExponentialWall, HardInstanceA, Power


def _random_constants(rng, n=200):
    return 10 ** rng.uniform(-3, 3, n), 10 ** rng.uniform(-3, 3, n), 10 ** rng.uniform(-10, 10, n)


def test_omega_solves_nu_exp_nu_equal_one():
    assert S.OMEGA * math.exp(S.OMEGA) == pytest.approx(1.0, rel=1e-15)
    assert S.gorbunov_eta() == pytest.approx(0.28357, abs=1e-5)


def test_smoothed_clipping_is_normalized_gd():
    rng = np.random.default_rng(0)
    L0, L1, g = _random_constants(rng)
    eta = 10 ** rng.uniform(-2, 1, g.size)
    for i in range(g.size):
        p = S.as_normalized(eta[i], L0[i], L1[i])
        h_n = theory.normalized_gd_step_size(g[i], p["eta_n"], p["beta"])
        assert h_n == pytest.approx(S.smoothed_clipping_step_size(g[i], eta[i], L0[i], L1[i]), rel=1e-13)


def test_vankov_steps_are_ordered_and_within_a_factor_two():
    rng = np.random.default_rng(1)
    L0, L1, g = _random_constants(rng, 2000)
    h_cl = S.clipping_step_size(g, L0, L1)
    h_si = S.simplified_step_size(g, L0, L1)
    h_opt = S.optimal_step_size(g, L0, L1)
    tol = 1e-12
    assert np.all(h_cl <= h_si * (1 + tol))
    assert np.all(h_si <= h_opt * (1 + tol))
    assert np.all(h_si <= 2 * h_cl * (1 + tol))  # derived: max{2L0, 3L1g} >= L0 + 1.5 L1 g
    assert np.max(h_si / h_cl) == pytest.approx(2.0, rel=1e-3)  # attained near 2L0 = 3L1g


def test_optimal_step_minimises_the_upper_model():
    """eta* minimises -h g^2 + (L0 + L1 g)/L1^2 phi(L1 h g), phi(t) = e^t - t - 1."""
    for L0, L1, g in [(1.0, 1.0, 0.3), (16.0, 1.0, 50.0), (0.01, 3.0, 1e3), (5.0, 0.2, 1e-4)]:
        model = lambda h: (
            -h * g * g + (L0 + L1 * g) / L1**2 * np.expm1(L1 * h * g) - (L0 + L1 * g) / L1 * h * g
        )
        h_star = float(S.optimal_step_size(g, L0, L1))
        grid = h_star * np.linspace(0.5, 1.5, 2001)
        assert model(h_star) <= model(grid).min() + 1e-12 * abs(model(h_star))
    assert float(S.optimal_step_size(0.0, 4.0, 2.0)) == 0.25  # the limit 1/L0


def test_clipping_step_is_zhangs_clipped_step():
    rng = np.random.default_rng(2)
    L0, L1, g = _random_constants(rng)
    for i in range(g.size):
        p = S.vankov_clipped_parameters(L0[i], L1[i])
        want = theory.clipped_gd_step_size(g[i], p["eta_c"], p["gamma"])
        assert float(S.clipping_step_size(g[i], L0[i], L1[i])) == pytest.approx(float(want), rel=1e-13)


def test_vankov_gd_bound_formula():
    b = S.vankov_gd_bound(2.0, 3.0, R=1.5, F0=10.0, eps=0.1)
    assert float(b) == pytest.approx(2 * 2.0 * 1.5**2 / 0.1 + 3 * 3.0 * 1.5 * math.log(100.0))
    assert float(S.vankov_gd_bound(2.0, 3.0, 1.5, 10.0, 0.1, a=0.5)) == pytest.approx(2 * float(b))
    both = S.vankov_gd_bound(1.0, 1.0, R=[1.0, 2.0], F0=[0.05, 5.0], eps=0.1)
    assert both[0] == 0.0 and both[1] > 0  # a start already within eps needs no step
    with pytest.raises(ValueError, match="a"):
        S.vankov_gd_bound(1.0, 1.0, 1.0, 1.0, 0.1, a=0.0)
    with pytest.raises(ValueError, match="R, F0"):
        S.vankov_gd_bound(1.0, 1.0, -1.0, 1.0, 0.1)


def test_vankov_ngm_horizon_and_r_bar():
    assert float(S.vankov_ngm_horizon(2.0, 3.0, 1.5, 0.1)) == pytest.approx(
        max(2.0 * 2.25 / 0.1, 4 / 9 * 4.5**2)
    )
    assert float(S.vankov_ngm_horizon(1e-6, 3.0, 10.0, 0.1)) == pytest.approx(4 / 9 * 900.0)
    # R_bar = (R^2 / R_hat + R_hat) / 2 >= R: a wrong guess of R only lengthens the horizon
    for r_hat in (0.1, 1.0, 3.0):
        assert S.vankov_ngm_horizon(1.0, 1.0, 1.0, 0.1, R_hat=r_hat) >= S.vankov_ngm_horizon(
            1.0, 1.0, 1.0, 0.1
        )


def test_gorbunov_rate_shape():
    assert float(S.gorbunov_rate_shape(2.0, 3.0, 1.5, 0.1)) == pytest.approx(2.0 * 2.25 / 0.1 + 9.0 * 2.25)


def _loop_gap_count(prob, x, step, eps, max_steps):
    for t in range(max_steps + 1):
        if prob.f(x) - prob.f_star <= eps:
            return t
        if t == max_steps:
            return np.inf
        g = prob.grad(x)
        x = x - step(abs(g)) * g
    return np.inf


@pytest.mark.parametrize(
    "prob", [Power(4), HardInstanceA(1.0), ExponentialWall(2.0, 0.5)], ids=lambda p: p.name
)
def test_iterations_to_gap_match_python_loop(prob):
    x0 = np.array([0.3, 2.0, 6.0])
    eta = np.array([[0.05], [0.28], [1.0]])
    got = S.iterations_to_gap(prob, x0, smoothed_clipping_rule, 1e-3, 20_000, eta=eta, L0=prob.L0, L1=prob.L1)
    assert got.shape == (3, 3)
    for i, e in enumerate(eta[:, 0]):
        for j, xj in enumerate(x0):
            step = lambda g: S.smoothed_clipping_step_size(g, e, prob.L0, prob.L1)
            assert got[i, j] == _loop_gap_count(prob, xj, step, 1e-3, 20_000)
    assert np.isinf(S.iterations_to_gap(prob, 6.0, clipped_rule, 1e-12, 3, eta_c=1e-3, gamma=1e-3))


def test_smoothed_clipping_rule_drives_the_gradient_counter():
    prob = HardInstanceA(1.0)
    t = iterations_to_eps(prob, 8.0, smoothed_clipping_rule, 0.01, 10_000, eta=0.28, L0=1.0, L1=1.0)
    x, n = 8.0, 0
    while abs(prob.grad(x)) > 0.01:
        x -= 0.28 / (1.0 + abs(prob.grad(x))) * prob.grad(x)
        n += 1
    assert t == n


def test_normalized_method_matches_python_loop():
    prob = ExponentialWall(1.0, 1.0)
    x0, steps, K = np.array([0.5, 3.0, 7.0]), np.array([0.01, 0.1, 0.3]), np.array([50, 400, 7])
    best, hit = S.normalized_method(prob, x0, steps, K, eps=1e-3)
    for i in range(3):
        x, gaps = x0[i], [prob.f(x0[i])]
        for _ in range(K[i]):
            x = x - steps[i] * np.sign(prob.grad(x))
            gaps.append(prob.f(x))
        assert best[i] == pytest.approx(min(gaps), rel=1e-14, abs=1e-300)
        first = [k for k, v in enumerate(gaps) if v <= 1e-3]
        assert hit[i] == (first[0] if first else np.inf)
    with pytest.raises(ValueError, match="n_steps"):
        S.normalized_method(prob, 1.0, 0.1, 2.5, 0.1)


@pytest.mark.parametrize(
    "prob", [Power(4), HardInstanceA(1.0), ExponentialWall(1.0, 1.0)], ids=lambda p: p.name
)
def test_vankov_bounds_hold_on_a_few_convex_instances(prob):
    """The transcribed bounds are not contradicted on small instances (the book checks many)."""
    eps = 0.01
    x0 = np.array([prob.x0_for_gradient(m) for m in (3.0, 30.0, 300.0)])
    R, F0 = np.abs(x0), prob.f(x0) - prob.f_star
    for rule, a in ((S.simplified_step_size, 1.0), (S.optimal_step_size, 1.0), (S.clipping_step_size, 0.5)):
        t = S.iterations_to_gap(prob, x0, rule, eps, 10**6, L0=prob.L0, L1=prob.L1)
        assert np.all(t <= S.vankov_gd_bound(prob.L0, prob.L1, R, F0, eps, a))
    K1 = np.ceil(S.vankov_ngm_horizon(prob.L0, prob.L1, R, eps))
    best, _ = S.normalized_method(prob, x0, R / np.sqrt(K1), K1 - 1, eps)
    assert np.all(best <= eps)
