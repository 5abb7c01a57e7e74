"""Bias identities of clipped component gradients, clipped incremental methods, angle
predictions and the bias floor of clipped SGD (Qian et al. 2021; Koloskova et al. 2023)."""

import math

import numpy as np
import pytest
import torch

from clipcore.incremental import (ORDERS, DiscreteNoise, batch_cosines, clip, clipped_direction,
                                  clipped_drift, clipped_fixed_point, clipped_full_batch_descent,
                                  clipped_incremental, clipped_sgd_quadratic, floor_noise, gradient_moments,
                                  predicted_cosine, two_point_noise)
from clipcore.problems import QianCounterexample, heavy_tailed_least_squares

TOL = 1e-10


def _instance(seed):
    """Random component gradients with a random angle spread and a threshold inside their norms."""
    rng = np.random.default_rng(seed)
    n, d = rng.integers(1, 30), rng.integers(1, 12)
    mu = rng.standard_normal(d)
    G = mu + rng.uniform(0.1, 5.0) * rng.standard_normal((n, d)) * rng.lognormal(0, 1, (n, 1))
    gamma = float(rng.uniform(0.05, 1.2) * np.linalg.norm(G, axis=1).max())
    return G, gamma


# ---------------------------------------------------------------- bias identities


@pytest.mark.parametrize("seed", range(200))
def test_bias_identities(seed):
    G, gamma = _instance(seed)
    r = clipped_direction(G, gamma)
    gF = G.sum(0)
    norms = np.linalg.norm(G, axis=1)
    scale = max(1.0, np.abs(G).sum())
    # d computed independently, term by term
    d = sum(min(1.0, gamma / nrm) * g for g, nrm in zip(G, norms))
    np.testing.assert_allclose(r.direction, d, atol=TOL * scale)
    np.testing.assert_allclose(r.full_grad, gF, atol=TOL * scale)
    np.testing.assert_array_equal(r.clipped, norms > gamma)
    # d − ∇F = −Σ_{i∈C} (1 − γ/‖∇f_i‖) ∇f_i
    C = norms > gamma
    rhs = -((1 - gamma / norms[C])[:, None] * G[C]).sum(0)
    np.testing.assert_allclose(r.bias, rhs, atol=TOL * scale)
    # ⟨d, ∇F⟩ = ‖∇F‖ Σ min(‖∇f_i‖, γ) cos θ_i, with cos θ_i computed directly
    nF = np.linalg.norm(gF)
    cos = G @ gF / (norms * nF)
    np.testing.assert_allclose(r.cos, cos, atol=1e-12)
    assert abs(r.direction @ gF - nF * np.sum(np.minimum(norms, gamma) * cos)) <= TOL * scale**2
    # ρ, d⊥ ⟂ ∇F, the sufficient-condition sum equals ρ, relative bias
    assert r.rho == pytest.approx(r.direction @ gF / nF**2, rel=1e-12, abs=1e-14)
    assert abs(r.perp @ gF) <= TOL * scale**2
    np.testing.assert_allclose(r.perp + r.rho * gF, r.direction, atol=TOL * scale)
    assert r.sufficient == pytest.approx(r.rho, rel=1e-9, abs=1e-12)
    assert r.relative_bias == pytest.approx(np.linalg.norm(d - gF) / nF, rel=1e-9, abs=1e-12)
    assert r.is_descent == (r.rho > 0)


@pytest.mark.parametrize("seed", range(50))
def test_no_bias_above_the_largest_norm(seed):
    G, _ = _instance(seed)
    top = np.linalg.norm(G, axis=1).max()
    for gamma in (top, 2 * top, math.inf):
        r = clipped_direction(G, gamma)
        assert not r.clipped.any()
        np.testing.assert_allclose(r.direction, G.sum(0), rtol=1e-13, atol=1e-13)
        assert r.relative_bias <= 1e-13 and r.rho == pytest.approx(1.0, rel=1e-12)
    # just below the largest norm one component is clipped and the bias is non-zero
    assert clipped_direction(G, 0.99 * top).relative_bias > 0


@pytest.mark.parametrize("seed", range(50))
def test_kappa_bound_when_all_angles_are_acute(seed):
    rng = np.random.default_rng(1000 + seed)
    d = rng.integers(2, 10)
    mu = rng.standard_normal(d)
    mu *= 3 / np.linalg.norm(mu)
    G = mu + rng.standard_normal((rng.integers(2, 20), d)) * rng.lognormal(0, 1, (1, 1))
    G = G[G @ mu > 0.2 * np.linalg.norm(G, axis=1) * 3]  # keep components at acute angles with mu
    if len(G) == 0:
        return
    gamma = float(rng.uniform(0.05, 1.5) * np.linalg.norm(G, axis=1).max())
    r = clipped_direction(G, gamma)
    assert r.kappa == pytest.approx(r.cos.min())
    assert r.kappa > 0
    lower = r.kappa * np.linalg.norm(r.full_grad) * np.minimum(r.norms, gamma).sum()
    assert r.direction @ r.full_grad >= lower - 1e-10 * lower
    assert r.rho >= r.kappa_bound * (1 - 1e-12) > 0 and r.is_descent


def test_descent_iff_rho_positive_on_quadratics():
    # f_i(x) = ½‖x − c_i‖², so ∇f_i(0) = −c_i; F(−t d) < F(0) for small t iff ⟨d, ∇F⟩ > 0.
    rng = np.random.default_rng(7)
    signs = set()
    for trial in range(300):
        n, dim = rng.integers(2, 8), rng.integers(1, 4)
        G = rng.standard_normal((n, dim)) * rng.lognormal(0, 1.5, (n, 1))
        gamma = float(rng.uniform(0.05, 1.0) * np.linalg.norm(G, axis=1).max())
        r = clipped_direction(G, gamma)
        if abs(r.rho) < 1e-6:
            continue
        F = lambda x: 0.5 * np.sum((x + G) ** 2)  # centres c_i = −G_i
        t = 1e-6 / max(1.0, np.linalg.norm(r.direction))
        decreased = F(-t * r.direction) < F(np.zeros(dim))
        assert decreased == r.is_descent == (r.rho > 0)
        signs.add(r.is_descent)
    assert signs == {True, False}  # clipping can reverse the direction: both cases occur


def test_clipping_can_reverse_the_direction():
    G = np.array([[10.0, 0.0], [-1.0, 0.1], [-1.0, -0.1], [-1.0, 0.0]])
    r = clipped_direction(G, 1.0)
    assert r.full_grad[0] == 7.0 and r.rho < 0 and not r.is_descent


def test_clip_properties():
    rng = np.random.default_rng(3)
    g = rng.standard_normal((100, 5)) * rng.lognormal(0, 2, (100, 1))
    for gamma in (0.1, 1.0, 10.0):
        c = clip(g, gamma)
        n = np.linalg.norm(c, axis=1)
        assert np.all(n <= gamma * (1 + 1e-14))
        np.testing.assert_allclose(clip(c, gamma), c, rtol=1e-14)  # idempotent
        small = np.linalg.norm(g, axis=1) <= gamma
        np.testing.assert_array_equal(c[small], g[small])
        # exact formula, no epsilon: a clipped vector has norm exactly γ (to rounding)
        np.testing.assert_allclose(n[~small], gamma, rtol=1e-14)
    np.testing.assert_array_equal(clip(np.zeros(3), 1.0), np.zeros(3))


def test_torch_input_and_zero_gradients():
    G = torch.tensor([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    r = clipped_direction(G, 2.0)
    np.testing.assert_allclose(r.direction, [1.2 + 1.0, 1.6])
    assert np.isnan(r.cos[1]) and r.clipped.tolist() == [True, False, False]
    assert r.sufficient == pytest.approx(r.rho)
    z = clipped_direction(np.zeros((2, 3)), 1.0)
    assert np.isnan(z.rho) and np.isnan(z.relative_bias) and np.all(z.direction == 0)


@pytest.mark.parametrize("gamma", [0.0, -1.0, float("nan")])
def test_bad_gamma(gamma):
    with pytest.raises(ValueError, match="gamma"):
        clipped_direction(np.ones((2, 2)), gamma)


@pytest.mark.parametrize("shape", [(3,), (2, 2, 2), (0, 3), (3, 0)])
def test_bad_shape(shape):
    with pytest.raises(ValueError, match="shape"):
        clipped_direction(np.ones(shape), 1.0)


def test_non_finite_gradients():
    with pytest.raises(ValueError, match="non-finite"):
        clipped_direction(np.array([[1.0, np.inf]]), 1.0)


# ---------------------------------------------------------------- the counterexample


def test_counterexample_direction_vanishes_at_non_stationary_points():
    q = QianCounterexample()
    r = clipped_direction(q.example_grads(np.zeros(1)), 1.0)
    assert r.full_grad[0] == 9.0 and r.direction[0] == 0.0 and r.rho == 0.0
    # d = 0 on the whole interval [−9, 0], where F' ranges over [−9, 9]
    for x in np.linspace(-9, 0, 19):
        assert clipped_direction(q.example_grads(np.array([x])), 1.0).direction[0] == pytest.approx(0, abs=1e-15)
    # and d(x) = x on [0, 2]
    for x in np.linspace(0, 2, 9):
        assert clipped_direction(q.example_grads(np.array([x])), 1.0).direction[0] == pytest.approx(x, abs=1e-15)


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
    np.testing.assert_allclose(run.x[0], _reference_cyclic(prob, x0, gamma, 0.01, B, 3), rtol=1e-12, atol=1e-13)


def test_full_batch_unclipped_is_gradient_descent():
    prob = heavy_tailed_least_squares(16, 3, seed=2)
    x = np.zeros(3)
    for _ in range(5):
        x = x - 0.05 * prob.grad(x)
    for order in ORDERS[:2]:
        run = clipped_incremental(prob, np.zeros(3), gamma=math.inf, lr=0.05, batch_size=16, order=order, epochs=5)
        np.testing.assert_allclose(run.x[0], x, rtol=1e-12)


def test_vectorised_runs_equal_single_runs():
    prob = heavy_tailed_least_squares(24, 3, seed=4)
    gammas, lrs = np.array([0.3, 1.0, math.inf]), np.array([0.02, 0.01, 0.005])
    many = clipped_incremental(prob, np.ones(3), gamma=gammas, lr=lrs, batch_size=2, epochs=4, lr_decay=0.5)
    for r in range(3):
        one = clipped_incremental(prob, np.ones(3), gamma=gammas[r], lr=lrs[r], batch_size=2, epochs=4, lr_decay=0.5)
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
    run = clipped_incremental(prob, np.zeros(5), gamma=[0.1, 1.0, 10.0, math.inf], lr=0.01, batch_size=2,
                              order=order, epochs=3, lr_decay=1.0)
    assert np.all(run.displacement_ratio <= 1 + 1e-12)
    assert run.displacement_ratio[0] > 0.5  # the bound is nearly attained when every step is clipped
    assert run.displacement_ratio[-1] == 0  # no bound to check without clipping


def test_displacement_bound_is_tight_for_aligned_clipped_steps():
    q = QianCounterexample()
    run = clipped_incremental(q, [1000.0], gamma=1.0, lr=0.1, epochs=3)
    assert run.displacement_ratio[0] == pytest.approx(1.0, rel=1e-12)


def test_orders_differ_and_iid_uses_n_steps():
    prob = heavy_tailed_least_squares(32, 3, seed=10)
    runs = clipped_incremental(prob, np.zeros(3), gamma=1.0, lr=0.01, batch_size=4, order=list(ORDERS), epochs=2)
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


# ---------------------------------------------------------------- angles against batch size


def _gaussian_grads(N, d, mean_norm, sigma, seed):
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal(d)
    return mu / np.linalg.norm(mu) * mean_norm + sigma / math.sqrt(d) * rng.standard_normal((N, d))


def test_prediction_limits_and_monotonicity():
    B = np.arange(1, 101)
    p = predicted_cosine(1.0, 4.0, 100, B)
    assert p[-1] == 1.0 and np.all(np.diff(p) > 0)
    assert predicted_cosine(1.0, 0.0, 100, 1) == 1.0
    # B = 1 is the population formula ‖ḡ‖ / sqrt(‖ḡ‖² + σ²)
    assert predicted_cosine(1.0, 4.0, 100, 1) == pytest.approx(1 / math.sqrt(5))
    with pytest.raises(ValueError, match="batch_size"):
        predicted_cosine(1.0, 1.0, 10, 11)
    with pytest.raises(ValueError, match="N"):
        predicted_cosine(1.0, 1.0, 1, 1)


@pytest.mark.parametrize("B", [1, 4, 16, 64, 128])
def test_second_moment_of_batch_means_without_replacement(B):
    # E‖ḡ_B‖² = ‖ḡ‖² + σ²(N − B)/(B(N − 1)): the denominator of the prediction is exact
    G = _gaussian_grads(256, 30, 1.0, 3.0, seed=B)
    m2, s2 = gradient_moments(G)
    rng = np.random.default_rng(0)
    sq = []
    for _ in range(400):
        perm = rng.permutation(256)[: (256 // B) * B]
        sq.append((G[perm].reshape(-1, B, 30).mean(1) ** 2).sum(1))
    sq = np.concatenate(sq)
    want = m2 + s2 * (256 - B) / (B * 255)
    assert abs(sq.mean() - want) <= 4 * sq.std() / math.sqrt(len(sq) / (256 // B)) + 1e-12


@pytest.mark.parametrize("sigma", [1.0, 5.0])
def test_mean_cosine_matches_prediction_in_high_dimension(sigma):
    N, d = 512, 400  # in high dimension the batch-mean norms concentrate and the ratio of means is accurate
    G = _gaussian_grads(N, d, 1.0, sigma, seed=1)
    m2, s2 = gradient_moments(G)
    for B in (1, 4, 16, 64, 256):
        cos = batch_cosines(G, B, n_splits=max(1, 4 * B), seed=B)
        assert abs(cos.mean() - predicted_cosine(m2, s2, N, B)) < 0.03


def test_batch_cosines_numpy_and_torch_agree():
    G = _gaussian_grads(100, 7, 1.0, 2.0, seed=3)
    for B in (1, 3, 10, 100):
        a = batch_cosines(G, B, n_splits=3, seed=5)
        b = batch_cosines(torch.tensor(G, dtype=torch.float32), B, n_splits=3, seed=5)
        assert a.shape == b.shape == (3 * (100 // B),)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batch_cosines(G, 100), 1.0, rtol=1e-12)
    m_np = gradient_moments(G)
    np.testing.assert_allclose(gradient_moments(torch.tensor(G)), m_np, rtol=1e-12)
    np.testing.assert_allclose(gradient_moments(G, chunk=7), m_np, rtol=1e-12)
    centred = np.mean(np.sum((G - G.mean(0)) ** 2, axis=1))
    assert m_np[1] == pytest.approx(centred, rel=1e-12)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_angles_on_cuda_match_cpu():
    G = _gaussian_grads(200, 9, 1.0, 2.0, seed=4)
    Gc = torch.tensor(G, device="cuda")
    np.testing.assert_allclose(batch_cosines(Gc, 8, n_splits=2, seed=1), batch_cosines(G, 8, n_splits=2, seed=1),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gradient_moments(Gc), gradient_moments(G), rtol=1e-10)
    r = clipped_direction(Gc[:20], 1.0)  # torch input on any device is decomposed in float64 on the host
    np.testing.assert_allclose(r.direction, clipped_direction(G[:20], 1.0).direction, rtol=1e-12)


def test_angle_validation():
    with pytest.raises(ValueError, match="batch_size"):
        batch_cosines(np.ones((10, 2)), 0)
    with pytest.raises(ValueError, match="shape"):
        batch_cosines(np.ones(10), 1)
    with pytest.raises(ValueError, match="n_splits"):
        batch_cosines(np.ones((10, 2)), 2, n_splits=0)


# ---------------------------------------------------------------- the bias floor


@pytest.mark.parametrize("sigma,p", [(1.0, 0.5), (2.0, 0.1), (0.5, 0.01)])
def test_two_point_noise_moments(sigma, p):
    nz = two_point_noise(sigma, p)
    assert nz.values @ nz.probs == pytest.approx(0.0, abs=1e-14)
    assert nz.sigma == pytest.approx(sigma, rel=1e-14)


def _floor_closed_form(sigma, c):
    if c <= sigma:
        return sigma / math.sqrt(3) - c / 3
    p = sigma**2 / (4 * c**2)
    a = sigma * math.sqrt((1 - p) / p)
    return p * (a - c) / (1 - p)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 3.0])
def test_fixed_point_matches_closed_form_and_min_shape(sigma):
    for c in sigma * np.geomspace(0.01, 100, 25):
        nz = floor_noise(sigma, c)
        xbar = clipped_fixed_point(c, nz)
        assert abs(clipped_drift(xbar, c, nz)) < 1e-12
        assert xbar == pytest.approx(_floor_closed_form(sigma, c), rel=1e-9)
        assert 0.2 <= xbar / min(sigma, sigma**2 / c) <= 0.6  # Θ(min{σ, σ²/c})
    # a fixed bounded law has no bias once the threshold exceeds every |x + ξ| near 0
    nz = two_point_noise(sigma, 0.25)
    assert clipped_fixed_point(2 * nz.bound, nz) == pytest.approx(0.0, abs=1e-12)
    assert clipped_fixed_point(math.inf, nz) == 0.0


def test_clipped_sgd_quadratic_matches_a_loop_and_is_seeded():
    nz = two_point_noise(1.0, 0.2)
    run = clipped_sgd_quadratic([nz], [0.5], x0=2.0, lr=0.3, t0=10.0, steps=200, runs=1, seed=4, tail=0.5)
    rng = np.random.default_rng(4)
    x, acc = 2.0, 0.0
    for t in range(200):
        u = rng.random((1, 1))[0, 0]
        xi = nz.values[0] if u < nz.probs[0] else nz.values[1]
        x = x - 0.3 / (1 + t / 10.0) * np.clip(x + xi, -0.5, 0.5)
        if t >= 100:
            acc += x
    assert run.tail_mean[0, 0] == pytest.approx(acc / 100, rel=1e-12)
    again = clipped_sgd_quadratic([nz], [0.5], x0=2.0, lr=0.3, t0=10.0, steps=200, runs=1, seed=4)
    np.testing.assert_array_equal(run.mean_grad, again.mean_grad)


def test_clipped_sgd_settles_at_the_fixed_point_and_sgd_at_zero():
    sigma = 1.0
    cs = np.array([0.3, 1.0, 3.0, math.inf])
    laws = [floor_noise(sigma, c) if np.isfinite(c) else floor_noise(sigma, 1.0) for c in cs]
    run = clipped_sgd_quadratic(laws, cs, steps=6000, runs=200, seed=0)
    for k, c in enumerate(cs[:-1]):
        want = clipped_fixed_point(c, laws[k])
        assert abs(run.plateau[k] - want) <= 0.03 + 5 * run.plateau_se[k]
    assert np.all(np.diff(run.plateau[:-1]) < 0)  # larger threshold, lower floor
    assert run.plateau[-1] < 0.02  # unclipped SGD with the same steps: no floor


def test_noise_validation():
    with pytest.raises(ValueError, match="mean"):
        DiscreteNoise(np.array([1.0, 2.0]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="probs"):
        DiscreteNoise(np.array([1.0, -1.0]), np.array([0.7, 0.7]))
    with pytest.raises(ValueError, match="p"):
        two_point_noise(1.0, 1.0)
    with pytest.raises(ValueError, match="sigma"):
        two_point_noise(0.0, 0.5)
    with pytest.raises(ValueError, match="c"):
        floor_noise(1.0, 0.0)
    with pytest.raises(ValueError, match="thresholds"):
        clipped_sgd_quadratic([two_point_noise(1.0, 0.5)], [1.0, 2.0])
