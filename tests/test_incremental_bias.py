"""Bias identities of clipped component gradients (Qian et al., AISTATS 2021, claim C1): the
decomposition, its properties on random instances, and its average over partitions."""

import math

import numpy as np
import pytest
import torch

from clipcore.finite_sums import QianCounterexample, heavy_tailed_least_squares
from clipcore.incremental_bias import (
    clip,
    clipped_direction,
    correlation_check,
    direction_angle,
    norm_spread_angles,
    partition_bias,
    trend_check,
)

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


# ---------------------------------------------------------------- partitions


def _manual_direction(G, gamma):
    """d, ∇F and ρ, relative bias, clipped fraction of batch-mean components, by hand."""
    d = np.zeros(G.shape[1])
    for g in G:
        n = np.linalg.norm(g)
        d += (min(1.0, gamma / n) if n > 0 else 1.0) * g
    gF = G.sum(0)
    return (
        d @ gF / (gF @ gF),
        np.linalg.norm(d - gF) / np.linalg.norm(gF),
        np.mean(np.linalg.norm(G, axis=1) > gamma),
    )


def test_partition_bias_matches_a_loop_over_partitions():
    prob = heavy_tailed_least_squares(32, 4, seed=12)
    x, sizes, reps = np.full(4, 0.3), [1, 4, 8, 32], 3
    got = partition_bias(prob, x, 2.0, sizes, n_partitions=reps, rng=np.random.default_rng(5))
    rng = np.random.default_rng(5)
    want = []
    for B in sizes:
        rows = []
        for _ in range(reps):
            perm = rng.permutation(32).reshape(-1, B)
            G = np.stack([prob.example_grads(x)[b].mean(0) for b in perm])
            rows.append(_manual_direction(G, 2.0))
        want.append(np.mean(rows, axis=0))
    want = np.array(want)
    np.testing.assert_array_equal(got.batch_sizes, sizes)
    np.testing.assert_allclose(got.rho, want[:, 0], rtol=1e-12)
    np.testing.assert_allclose(got.relative_bias, want[:, 1], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(got.clipped_fraction, want[:, 2], rtol=1e-15)
    # one batch of everything: a single component, which clipping only shortens
    assert got.relative_bias[-1] == pytest.approx(1 - min(1.0, 2.0 / np.linalg.norm(prob.grad(x))), abs=1e-12)
    with pytest.raises(ValueError, match="batch_size"):
        partition_bias(prob, x, 2.0, [3], n_partitions=1, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="n_partitions"):
        partition_bias(prob, x, 2.0, [1], n_partitions=0, rng=np.random.default_rng(0))


# ---------------------------------------------------------------- the angle between d and ∇F


@pytest.mark.parametrize("seed", range(30))
def test_direction_angle_against_the_cosine_of_d_and_full_gradient(seed):
    G, gamma = _instance(seed)
    norms = np.linalg.norm(G, axis=1)
    gammas = np.array([gamma, 0.5 * gamma, norms.max(), 2 * norms.max(), math.inf])
    got = direction_angle(G, gammas)
    assert got.shape == gammas.shape
    for g, a in zip(gammas, got):
        r = clipped_direction(G, g)
        nd, nF = np.linalg.norm(r.direction), np.linalg.norm(r.full_grad)
        if nd == 0 or nF == 0:
            assert math.isnan(a)
            continue
        u, v = r.direction / nd, r.full_grad / nF  # the stable half-angle form of the angle
        want = math.degrees(2 * math.atan2(np.linalg.norm(u - v), np.linalg.norm(u + v)))
        assert a == pytest.approx(want, abs=1e-6)
        assert (a > 90) == (r.rho < 0) or abs(a - 90) < 1e-9
    # no bias at or above the largest norm
    assert got[2] == pytest.approx(0, abs=1e-6) and got[3] == pytest.approx(0, abs=1e-6)
    assert np.ndim(direction_angle(G, gamma)) == 0


def test_direction_angle_is_undefined_where_d_vanishes():
    q = QianCounterexample()
    assert math.isnan(float(direction_angle(q.example_grads(np.zeros(1)), 1.0)))
    # uphill: one large component clipped against many small opposite ones
    G = np.array([[10.0, 0.0]] + [[-1.0, 0.1]] * 5)
    assert direction_angle(G, 1.0) > 90 and direction_angle(G, 10.0) == pytest.approx(0, abs=1e-9)
    with pytest.raises(ValueError, match="component_grads"):
        direction_angle(np.ones(3), 1.0)
    with pytest.raises(ValueError, match="gamma"):
        direction_angle(G, 0.0)


def test_norm_spread_angles():
    rng = np.random.default_rng(0)
    U = rng.standard_normal((12, 4)) + np.array([2.0, 0, 0, 0])
    z = rng.standard_normal(12)
    spreads = np.array([0.0, 0.5, 1.0, 2.0])
    got = norm_spread_angles(U, z, spreads)
    assert got[0] == pytest.approx(0, abs=1e-6)  # equal norms: clipping is a common rescaling
    u = U / np.linalg.norm(U, axis=1, keepdims=True)
    for s, a in zip(spreads[1:], got[1:]):
        G = u * np.exp(s * z)[:, None]
        d, gF = u.sum(0), G.sum(0)  # every component clipped: d ∝ Σ u_i
        want = math.degrees(math.acos(d @ gF / (np.linalg.norm(d) * np.linalg.norm(gF))))
        assert a == pytest.approx(want, abs=1e-6) and a > 0
    # invariant to the overall scale of the norms and of the directions
    np.testing.assert_allclose(norm_spread_angles(3 * U, z + 5, spreads), got, atol=1e-9)
    with pytest.raises(ValueError, match="z shape"):
        norm_spread_angles(U, z[:-1], spreads)
    with pytest.raises(ValueError, match="directions"):
        norm_spread_angles(np.zeros((3, 2)), np.zeros(3), spreads)


# ---------------------------------------------------------------- interval rules and verdicts


def test_trend_check():
    x = np.arange(10.0)
    rng = np.random.default_rng(0)
    up = [x + 0.1 * rng.standard_normal(10) for _ in range(20)]
    r = trend_check([x] * 20, up, min_corr=0.5)
    assert r.status == "holds" and r.n == 20 and r.lo > 0.5 and r.mean > 0.9
    assert trend_check([x] * 20, up, min_corr=0.5, direction="decreasing").status == "fails"
    assert trend_check([x] * 20, [-u for u in up], min_corr=0.5, direction="decreasing").status == "holds"
    # pure noise: the mean correlation is near 0, well below the threshold: fails
    noise = [rng.standard_normal(10) for _ in range(40)]
    assert trend_check([x] * 40, noise, min_corr=0.5).status == "fails"
    # a mixture whose mean sits at the threshold: inconclusive
    mix = up[:6] + noise[:4]
    mixed = trend_check([x] * 10, mix, min_corr=0.5)
    assert mixed.lo < 0.5 < mixed.hi and mixed.status == "inconclusive"
    # too few instances with a defined correlation (a constant side is undefined)
    few = trend_check([x] * 6, up[:3] + [np.ones(10)] * 3, min_corr=0.5)
    assert few.n == 3 and few.status == "inconclusive" and np.isnan(few.corr[3:]).all()
    with pytest.raises(ValueError, match="direction"):
        trend_check([x], [x], min_corr=0.5, direction="up")
    with pytest.raises(ValueError, match="min_corr"):
        trend_check([x], [x], min_corr=1.0)


def test_correlation_check():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(60)
    r = correlation_check(x, -x + 0.1 * rng.standard_normal(60), min_corr=0.5, direction="decreasing")
    assert r.status == "holds" and r.hi < -0.5 and r.n == 60
    assert correlation_check(x, x, min_corr=0.5, direction="decreasing").status == "fails"
    assert correlation_check(x, rng.standard_normal(60), min_corr=0.5).status == "fails"
    assert correlation_check(x[:5], x[:5], min_corr=0.5).status == "inconclusive"  # too few points
    # a relation of about the threshold's strength: the interval straddles it
    y = x + 1.2 * rng.standard_normal(60)
    mid = correlation_check(x, y, min_corr=0.5)
    assert mid.lo < 0.5 < mid.hi and mid.status == "inconclusive"
    with pytest.raises(ValueError, match="x, y"):
        correlation_check(x, x[:-1], min_corr=0.5)
