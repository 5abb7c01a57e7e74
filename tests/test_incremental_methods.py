"""Clipped incremental methods (Qian et al., AISTATS 2021, claim C2): the runs against loops,
the displacement bound, the counterexample where clipped descent stalls, the floor where the
averaged dynamics stop and the kappa bound along the runs."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from clipcore.angles import (
    batch_angles,
    batch_cosines,
    gradient_moments,
    predicted_cosine,
    prediction_check,
)
from clipcore.finite_sums import QianCounterexample, heavy_tailed_least_squares, interpolating_least_squares
from clipcore.incremental_bias import clipped_direction
from clipcore.incremental_methods import (
    ORDERS,
    clipped_floor,
    clipped_full_batch_descent,
    clipped_incremental,
    kappa_bound_check,
    sufficient_condition_check,
)
from clipcore.stats import increase_check

TOL = 1e-10


def _instance(seed):
    """Random component gradients with a random angle spread and a threshold inside their norms."""
    rng = np.random.default_rng(seed)
    n, d = rng.integers(1, 30), rng.integers(1, 12)
    mu = rng.standard_normal(d)
    G = mu + rng.uniform(0.1, 5.0) * rng.standard_normal((n, d)) * rng.lognormal(0, 1, (n, 1))
    gamma = float(rng.uniform(0.05, 1.2) * np.linalg.norm(G, axis=1).max())
    return G, gamma


# ---------------------------------------------------------------- the counterexample


def test_counterexample_direction_vanishes_at_non_stationary_points():
    q = QianCounterexample()
    r = clipped_direction(q.example_grads(np.zeros(1)), 1.0)
    assert r.full_grad[0] == 9.0 and r.direction[0] == 0.0 and r.rho == 0.0
    # d = 0 on the whole interval [−9, 0], where F' ranges over [−9, 9]
    for x in np.linspace(-9, 0, 19):
        assert clipped_direction(q.example_grads(np.array([x])), 1.0).direction[0] == pytest.approx(
            0, abs=1e-15
        )
    # and d(x) = x on [0, 2]
    for x in np.linspace(0, 2, 9):
        assert clipped_direction(q.example_grads(np.array([x])), 1.0).direction[0] == pytest.approx(
            x, abs=1e-15
        )


def test_counterexample_clipped_descent_stalls():
    q = QianCounterexample()
    clipped = clipped_full_batch_descent(q, [3.0], gamma=1.0, lr=0.1, steps=400)
    plain = clipped_full_batch_descent(q, [3.0], gamma=math.inf, lr=0.1, steps=400)
    assert abs(clipped[-1, 0]) < 1e-12 and q.F_grad(clipped[-1])[0] == pytest.approx(9.0, abs=1e-10)
    assert plain[-1, 0] == pytest.approx(-4.5, abs=1e-10) and abs(q.F_grad(plain[-1])[0]) < 1e-9
    # the incremental (cyclic) version stalls too, at |F'| ≥ 9 − 2α
    run = clipped_incremental(q, [3.0], gamma=1.0, lr=0.1, order="cyclic", epochs=200)
    assert run.grad_norm[0, -1] * q.N >= 9.0 - 2 * 0.1


# ---------------------------------------------------------------- incremental methods


def _reference_cyclic(prob, x0, gamma, lr, B, epochs):
    """Plain loop: x ← x − α min(1, γ/‖g‖) g over consecutive batches."""
    x = np.array(x0, dtype=np.float64)
    for _ in range(epochs):
        for j in range(prob.N // B):
            g = np.mean([prob.example_grads(x)[i] for i in range(j * B, (j + 1) * B)], axis=0)
            n = np.linalg.norm(g)
            x = x - lr * (min(1.0, gamma / n) if n > 0 else 1.0) * g
    return x


@pytest.mark.parametrize("B,gamma", [(1, 0.5), (4, 2.0), (4, math.inf), (32, 0.3)])
def test_cyclic_matches_python_loop(B, gamma):
    prob = heavy_tailed_least_squares(32, 4, seed=11)
    x0 = np.full(4, 0.5)
    run = clipped_incremental(prob, x0, gamma=gamma, lr=0.01, batch_size=B, order="cyclic", epochs=3)
    np.testing.assert_allclose(
        run.x[0], _reference_cyclic(prob, x0, gamma, 0.01, B, 3), rtol=1e-12, atol=1e-13
    )


def test_full_batch_unclipped_is_gradient_descent():
    prob = heavy_tailed_least_squares(16, 3, seed=2)
    x = np.zeros(3)
    for _ in range(5):
        x = x - 0.05 * prob.grad(x)
    for order in ORDERS[:2]:
        run = clipped_incremental(
            prob, np.zeros(3), gamma=math.inf, lr=0.05, batch_size=16, order=order, epochs=5
        )
        np.testing.assert_allclose(run.x[0], x, rtol=1e-12)


def test_vectorised_runs_equal_single_runs():
    prob = heavy_tailed_least_squares(24, 3, seed=4)
    gammas, lrs = np.array([0.3, 1.0, math.inf]), np.array([0.02, 0.01, 0.005])
    many = clipped_incremental(prob, np.ones(3), gamma=gammas, lr=lrs, batch_size=2, epochs=4, lr_decay=0.5)
    for r in range(3):
        one = clipped_incremental(
            prob, np.ones(3), gamma=gammas[r], lr=lrs[r], batch_size=2, epochs=4, lr_decay=0.5
        )
        np.testing.assert_allclose(many.x[r], one.x[0], rtol=1e-13)
        np.testing.assert_allclose(many.grad_norm[r], one.grad_norm[0], rtol=1e-13)


def test_logging_is_consistent_and_does_not_change_the_trajectory():
    prob = heavy_tailed_least_squares(64, 5, seed=6)
    x0 = np.zeros(5)
    kw = dict(gamma=[0.5, 5.0], lr=0.002, batch_size=4, order=["reshuffled", "iid"], epochs=6, seed=3)
    a = clipped_incremental(prob, x0, log_every=1, **kw)
    b = clipped_incremental(prob, x0, log_every=6, **kw)
    np.testing.assert_array_equal(a.x, b.x)
    assert a.epochs.tolist() == list(range(7)) and b.epochs.tolist() == [0, 6]
    assert a.evaluations.tolist() == [64 * k for k in range(7)]
    np.testing.assert_allclose(a.grad_norm[:, 0], np.linalg.norm(prob.grad(x0)))
    np.testing.assert_allclose(a.grad_norm[:, -1], np.linalg.norm(prob.grad(a.x), axis=1), rtol=1e-12)
    np.testing.assert_allclose(a.loss[:, -1], prob.loss(a.x), rtol=1e-12)
    # same seed, same numbers; another seed, other numbers
    c = clipped_incremental(prob, x0, **kw)
    np.testing.assert_array_equal(a.x, c.x)
    assert not np.allclose(a.x, clipped_incremental(prob, x0, **{**kw, "seed": 4}).x)


def test_cyclic_log_matches_clipped_direction():
    prob = heavy_tailed_least_squares(32, 4, seed=8)
    x0 = np.ones(4)
    run = clipped_incremental(prob, x0, gamma=1.5, lr=0.01, batch_size=4, order="cyclic", epochs=1)
    r = clipped_direction(prob.batch_grads(x0, np.arange(32).reshape(8, 4)), 1.5)
    assert run.rho[0, 0] == pytest.approx(r.rho, rel=1e-12)
    assert run.relative_bias[0, 0] == pytest.approx(r.relative_bias, rel=1e-12)
    assert run.clipped_fraction[0, 0] == pytest.approx(r.clipped_fraction)
    assert run.kappa[0, 0] == pytest.approx(r.kappa, rel=1e-12)
    assert run.sufficient[0, 0] == pytest.approx(run.rho[0, 0], rel=1e-10)


@pytest.mark.parametrize("order", ORDERS)
def test_displacement_bound(order):
    prob = heavy_tailed_least_squares(64, 5, seed=9)
    run = clipped_incremental(
        prob,
        np.zeros(5),
        gamma=[0.1, 1.0, 10.0, math.inf],
        lr=0.01,
        batch_size=2,
        order=order,
        epochs=3,
        lr_decay=1.0,
    )
    assert np.all(run.displacement_ratio <= 1 + 1e-12)
    assert run.displacement_ratio[0] > 0.5  # the bound is nearly attained when every step is clipped
    assert run.displacement_ratio[-1] == 0  # no bound to check without clipping


def test_displacement_bound_is_tight_for_aligned_clipped_steps():
    q = QianCounterexample()
    run = clipped_incremental(q, [1000.0], gamma=1.0, lr=0.1, epochs=3)
    assert run.displacement_ratio[0] == pytest.approx(1.0, rel=1e-12)


def test_orders_differ_and_iid_uses_n_steps():
    prob = heavy_tailed_least_squares(32, 3, seed=10)
    runs = clipped_incremental(
        prob, np.zeros(3), gamma=1.0, lr=0.01, batch_size=4, order=list(ORDERS), epochs=2
    )
    assert runs.order.tolist() == list(ORDERS)
    assert not np.allclose(runs.x[0], runs.x[1]) and not np.allclose(runs.x[1], runs.x[2])


def test_incremental_validation():
    prob = heavy_tailed_least_squares(12, 2)
    ok = dict(gamma=1.0, lr=0.1)
    with pytest.raises(ValueError, match="order"):
        clipped_incremental(prob, np.zeros(2), order="random", **ok)
    with pytest.raises(ValueError, match="batch_size"):
        clipped_incremental(prob, np.zeros(2), batch_size=5, **ok)
    with pytest.raises(ValueError, match="lr"):
        clipped_incremental(prob, np.zeros(2), gamma=1.0, lr=0.0)
    with pytest.raises(ValueError, match="gamma"):
        clipped_incremental(prob, np.zeros(2), gamma=-1.0, lr=0.1)
    with pytest.raises(ValueError, match="x0"):
        clipped_incremental(prob, np.zeros(3), **ok)
    with pytest.raises(ValueError, match="broadcast"):
        clipped_incremental(prob, np.zeros(2), gamma=[1.0, 2.0], lr=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="problem"):
        clipped_incremental(np.zeros(3), np.zeros(2), **ok)
    with pytest.raises(ValueError, match="epochs"):
        clipped_incremental(prob, np.zeros(2), epochs=-1, **ok)


# ---------------------------------------------------------------- floors and the kappa bound


def test_clipped_floor_is_the_zero_of_d():
    q = QianCounterexample()
    fl = clipped_floor(q, [3.0], gamma=1.0, lr=0.1, steps=400)
    # d(x) = x on [0, 2]: the dynamics stop at 0, where the mean gradient (9 + 2x)/2 is 4.5
    assert abs(fl.x[0]) < 1e-12 and fl.residual < 1e-12
    assert fl.grad_norm == pytest.approx(4.5, abs=1e-10)
    assert (
        clipped_floor(q, [3.0], gamma=math.inf, lr=0.1, steps=400).grad_norm < 1e-9
    )  # no clipping, no floor


def test_clipped_floor_matches_a_loop():
    prob = heavy_tailed_least_squares(16, 3, seed=13)
    x0, gamma, lr, B, steps = np.ones(3), 0.7, 0.01, 4, 50
    fl = clipped_floor(prob, x0, gamma=gamma, lr=lr, steps=steps, batch_size=B)
    x = x0.copy()

    def clipped(x):  # d(x), component by component
        comps = [prob.example_grads(x)[j * B : (j + 1) * B].mean(0) for j in range(16 // B)]
        return sum(min(1.0, gamma / np.linalg.norm(g)) * g for g in comps)

    for _ in range(steps):
        x = x - lr * clipped(x)
    np.testing.assert_allclose(fl.x, x, rtol=1e-12)
    assert fl.grad_norm == pytest.approx(np.linalg.norm(prob.grad(x)), rel=1e-12)
    assert fl.residual == pytest.approx(np.linalg.norm(clipped(x)) / (16 // B), rel=1e-10)


def _loop_kappa_check(runs):
    n_pts, n_cond, ok, margin = 0, 0, True, np.inf
    for r in runs:
        for i in range(r.kappa.shape[0]):
            for t in range(r.kappa.shape[1]):
                n_pts += 1
                if r.kappa[i, t] > 0:
                    n_cond += 1
                    ok &= bool(r.rho[i, t] >= r.kappa_bound[i, t] * (1 - 1e-12) and r.kappa_bound[i, t] > 0)
                    margin = min(margin, r.rho[i, t] - r.kappa_bound[i, t])
    return n_pts, n_cond, ok, margin


def test_kappa_bound_check_matches_a_loop_over_logged_points():
    prob = heavy_tailed_least_squares(32, 3, seed=14)
    runs = [
        clipped_incremental(
            prob, np.zeros(3), gamma=[0.5, 5.0, math.inf], lr=0.002 * B, batch_size=B, epochs=8, seed=B
        )
        for B in (1, 4, 16)
    ]
    got = kappa_bound_check(runs)
    n_pts, n_cond, ok, margin = _loop_kappa_check(runs)
    assert (got.n_points, got.n_condition, got.holds) == (n_pts, n_cond, ok)
    assert 0 < got.n_condition < got.n_points and got.holds  # the bound is a theorem where κ > 0
    assert got.min_margin == margin
    # a log that violates the bound, and one where the condition never applies
    bad = SimpleNamespace(
        kappa=np.array([[0.5, -0.1, np.nan]]),
        rho=np.array([[0.1, 0.2, 0.3]]),
        kappa_bound=np.array([[0.2, 0.5, 0.1]]),
    )
    got = kappa_bound_check([bad])
    assert (got.n_points, got.n_condition, got.holds) == (3, 1, False) == _loop_kappa_check([bad])[:3]
    assert got.min_margin == pytest.approx(-0.1)
    none = kappa_bound_check(
        [SimpleNamespace(kappa=-np.ones((1, 2)), rho=np.ones((1, 2)), kappa_bound=np.ones((1, 2)))]
    )
    assert (none.n_condition, none.holds, none.min_margin) == (0, True, math.inf)


# ---------------------------------------------------------------- claim C2 decided on runs


def test_sufficient_condition_holds_and_the_method_converges_on_the_interpolating_sum():
    prob = interpolating_least_squares(128, 8, df=2.5, seed=0)
    B = 32
    run = clipped_incremental(
        prob, np.zeros(8), gamma=0.1, lr=0.5 * B / prob.N, order=list(ORDERS), batch_size=B, epochs=60, seed=0
    )
    assert np.all(run.clipped_fraction[:, 0] == 1.0)  # clipping is active at the start
    got = sufficient_condition_check(run, grad_tol=1e-6)
    assert got.status == "holds" and got.cond_fraction == 1.0 and got.kappa_min > 0
    assert got.final_ratio <= 1e-6 and got.n_points == run.kappa.size
    # too short a horizon: still falling, not converged
    short = clipped_incremental(prob, np.zeros(8), gamma=0.1, lr=0.5 * B / prob.N, batch_size=B, epochs=6)
    assert sufficient_condition_check(short, grad_tol=1e-6).status == "inconclusive"


def test_sufficient_condition_is_not_testable_where_it_does_not_hold():
    prob = heavy_tailed_least_squares(64, 5, seed=0)
    run = clipped_incremental(prob, np.zeros(5), gamma=1.0, lr=0.01, batch_size=1, epochs=20)
    got = sufficient_condition_check(run, grad_tol=1e-6)
    assert got.cond_fraction < 0.5 and got.status == "not-testable"
    assert got.final_ratio > 1e-2  # and the clipped run has indeed not converged


def _log(kappa, grad_norm):
    return SimpleNamespace(kappa=np.asarray(kappa, float), grad_norm=np.asarray(grad_norm, float))


def test_sufficient_condition_check_rules():
    k = np.full((1, 5), 0.5)
    assert sufficient_condition_check(_log(k, [[1, 0.1, 1e-3, 1e-5, 1e-8]]), grad_tol=1e-6).status == "holds"
    stalled = _log(k, [[1, 0.5, 0.3, 0.3, 0.3]])
    assert sufficient_condition_check(stalled, grad_tol=1e-6).status == "fails"
    falling = _log(k, [[1, 0.5, 0.1, 0.01, 1e-3]])
    assert sufficient_condition_check(falling, grad_tol=1e-6).status == "inconclusive"
    premise = _log([[0.5, 0.5, -0.1, 0.5, 0.5]], [[1, 0.1, 1e-3, 1e-5, 1e-8]])
    assert sufficient_condition_check(premise, grad_tol=1e-6).status == "not-testable"
    assert sufficient_condition_check(premise, grad_tol=1e-6, min_fraction=0.8).status == "holds"
    # undefined cosines at a point converged to rounding level do not count against the premise
    rounded = _log([[0.5, 0.5, 0.5, 0.5, np.nan]], [[1, 0.1, 1e-3, 1e-8, 0.0]])
    got = sufficient_condition_check(rounded, grad_tol=1e-6)
    assert (got.status, got.n_points, got.cond_fraction) == ("holds", 4, 1.0)
    # rows select runs
    two = _log(np.vstack([k, -k]), [[1, 0.1, 1e-3, 1e-5, 1e-8]] * 2)
    assert sufficient_condition_check(two, [0], grad_tol=1e-6).status == "holds"
    assert sufficient_condition_check(two, grad_tol=1e-6).status == "not-testable"
    with pytest.raises(ValueError, match="min_fraction"):
        sufficient_condition_check(two, grad_tol=1e-6, min_fraction=0.0)
    with pytest.raises(ValueError, match="grad_tol"):
        sufficient_condition_check(two, grad_tol=0.0)


# ---------------------------------------------------------------- claim C3: angles and their prediction


def test_batch_angles_means_standard_errors_and_prediction():
    prob = heavy_tailed_least_squares(64, 4, seed=2)
    G = prob.example_grads(np.zeros(4))
    ba = batch_angles(G, [1, 4, 16, 64], min_batches=32, min_splits=5, seed=1)
    # B = 1: every shuffle holds every example, so the mean is exact and its spread is 0
    exact = (G @ G.mean(0)) / (np.linalg.norm(G, axis=1) * np.linalg.norm(G.mean(0)))
    assert ba.mean_cos[0] == pytest.approx(exact.mean()) and ba.se_cos[0] == pytest.approx(0, abs=1e-15)
    assert ba.mean_angle[0] == pytest.approx(np.degrees(np.arccos(exact)).mean())
    # B = N: one batch, the full gradient itself
    assert ba.mean_cos[-1] == pytest.approx(1.0) and ba.mean_angle[-1] == pytest.approx(0.0, abs=1e-5)
    np.testing.assert_array_equal(ba.n_splits, [5, 5, 8, 32])
    assert [c.size for c in ba.cosines] == [5 * 64, 5 * 16, 8 * 4, 32]
    m2, s2 = gradient_moments(G)
    np.testing.assert_allclose(ba.pred_cos, predicted_cosine(m2, s2, 64, np.array([1, 4, 16, 64])))
    np.testing.assert_allclose(np.cos(np.radians(ba.pred_angle)), ba.pred_cos)
    # the standard error is that of the shuffle means
    cos4 = batch_cosines(G, 4, n_splits=5, seed=int(np.random.SeedSequence([1, 1]).generate_state(1)[0]))
    split_means = cos4.reshape(5, 16).mean(1)
    assert ba.se_cos[1] == pytest.approx(split_means.std(ddof=1) / math.sqrt(5))
    again = batch_angles(G, [1, 4, 16, 64], min_batches=32, min_splits=5, seed=1)
    np.testing.assert_array_equal(ba.mean_cos, again.mean_cos)
    with pytest.raises(ValueError, match="min_splits"):
        batch_angles(G, [1], min_batches=1, min_splits=1)


def test_prediction_check_rules():
    # relative errors 0.02, 0.2 and 0.05 with spreads 0.01, 0.01 and 0.2 (z = 1.96 at 95%)
    z = 1.959963984540054
    got = prediction_check([1.02, 2.4, 0.525], [0.01 / z, 0.02 / z, 0.1 / z], [1.0, 2.0, 0.5], tol=0.1)
    np.testing.assert_allclose(got.rel_error, [0.02, 0.2, 0.05])
    np.testing.assert_allclose(got.spread, [0.01, 0.01, 0.2])
    assert got.statuses == ("holds", "fails", "inconclusive") and got.status == "fails" and got.worst == 1
    # the error sits within its spread of the tolerance: inconclusive
    edge = prediction_check([1.095], [0.01 / z], [1.0], tol=0.1)
    assert edge.statuses == ("inconclusive",)
    assert prediction_check([1.0, 2.0], [0.0, 0.0], [1.0, 2.0], tol=0.1).status == "holds"
    with pytest.raises(ValueError, match="shapes"):
        prediction_check([1.0], [0.1, 0.1], [1.0], tol=0.1)
    with pytest.raises(ValueError, match="tol"):
        prediction_check([1.0], [0.1], [1.0], tol=0.0)


def test_increase_check_rules():
    assert increase_check([0.1, 0.2, 0.4], [0.01, 0.01, 0.01]) == "holds"
    assert increase_check([0.1, 0.2, 0.1], [0.01, 0.01, 0.01]) == "fails"
    assert increase_check([0.1, 0.11, 0.4], [0.01, 0.01, 0.01]) == "inconclusive"
    assert increase_check([0.1, 0.1], [0.0, 0.0]) == "fails"  # flat is not rising
    with pytest.raises(ValueError, match="means"):
        increase_check([0.1], [0.01])
