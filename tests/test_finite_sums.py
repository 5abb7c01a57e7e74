"""Finite-sum problems: per-example gradients against autograd, sums, seeds and validation."""

import math

import numpy as np
import pytest
import torch

from clipcore.finite_sums import (
    FiniteSum,
    LeastSquaresSum,
    LogisticSum,
    QianCounterexample,
    heavy_tailed_least_squares,
    heavy_tailed_logistic,
    interpolating_least_squares,
    kappa_certificate,
)
from clipcore.incremental_bias import clipped_direction

PROBLEMS = [
    heavy_tailed_least_squares(48, 5, seed=1),
    heavy_tailed_least_squares(32, 4, skew=0.0, intercept=False, seed=2),
    heavy_tailed_logistic(40, 6, seed=3),
    heavy_tailed_logistic(24, 3, lam=0.0, flip=0.0, seed=4),
    QianCounterexample(),
]
IDS = ["ls", "ls-sym", "logistic", "logistic-noreg", "qian"]


def _autograd_example_grads(prob, x):
    """Per-example gradients by differentiating each loss separately (float64)."""
    rows = []
    for i in range(prob.N):
        xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(prob.example_losses(xt)[i], xt)
        rows.append(g.numpy())
    return np.stack(rows)


@pytest.mark.parametrize("prob", PROBLEMS, ids=IDS)
def test_example_grads_match_autograd(prob):
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.standard_normal(prob.dim)
        np.testing.assert_allclose(
            prob.example_grads(x), _autograd_example_grads(prob, x), rtol=1e-10, atol=1e-12
        )


@pytest.mark.parametrize("prob", PROBLEMS, ids=IDS)
def test_numpy_and_torch_agree_and_batched_shapes(prob):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3, prob.dim))
    idx = rng.integers(0, prob.N, size=(3, 2))
    for fn in (prob.example_losses, prob.example_grads):
        full = fn(X)
        np.testing.assert_allclose(full, fn(torch.tensor(X)).numpy(), rtol=1e-12, atol=1e-13)
        # a batch of runs with their own examples equals the rows of the full evaluation
        sub = fn(X, idx)
        np.testing.assert_allclose(sub, full[np.arange(3)[:, None], idx], rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(
            sub, fn(torch.tensor(X), torch.tensor(idx)).numpy(), rtol=1e-12, atol=1e-13
        )
        # one run at a time gives the same rows
        for r in range(3):
            np.testing.assert_allclose(fn(X[r], idx[r]), sub[r], rtol=1e-13, atol=1e-14)
    assert prob.example_grads(X).shape == (3, prob.N, prob.dim)


@pytest.mark.parametrize("prob", PROBLEMS, ids=IDS)
def test_mean_gradient_and_loss(prob):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(prob.dim)
    np.testing.assert_allclose(prob.grad(x), prob.example_grads(x).mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(prob.loss(x), prob.example_losses(x).mean(), rtol=1e-13)
    xt = torch.tensor(x, requires_grad=True)
    (g,) = torch.autograd.grad(prob.loss(xt), xt)
    np.testing.assert_allclose(prob.grad(x), g.numpy(), rtol=1e-10, atol=1e-12)
    X = rng.standard_normal((4, prob.dim))
    np.testing.assert_allclose(prob.grad(X), prob.example_grads(X).mean(-2), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("B", [1, 2, 4, 8])
def test_batch_components_sum_to_F(B):
    prob = heavy_tailed_least_squares(64, 7, seed=5)
    x = np.random.default_rng(3).standard_normal(7)
    batches = np.random.default_rng(B).permutation(64).reshape(-1, B)
    comp = prob.batch_grads(x, batches)
    assert comp.shape == (64 // B, 7)
    # F = Σ_j f_j = (N/B) F̄ for batch-mean components, whatever the partition
    np.testing.assert_allclose(comp.sum(0), 64 / B * prob.grad(x), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(comp[1], prob.example_grads(x)[batches[1]].mean(0), rtol=1e-13)


def test_least_squares_minimizer_is_stationary_but_examples_are_not():
    prob = heavy_tailed_least_squares(256, 10, seed=0)
    xs = prob.minimizer()
    G = prob.example_grads(xs)
    assert np.linalg.norm(prob.grad(xs)) < 1e-10 * np.linalg.norm(G, axis=1).max()
    assert np.median(np.linalg.norm(G, axis=1)) > 0.1  # noisy targets: no interpolation


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_example_gradients_are_heavy_tailed(seed):
    prob = heavy_tailed_least_squares(512, 20, seed=seed)
    norms = np.linalg.norm(prob.example_grads(prob.minimizer()), axis=1)
    assert norms.max() > 8 * np.median(norms)
    # the skewed noise leaves a systematic sign in the intercept residuals' tail
    r = prob.A @ prob.minimizer() - prob.b
    assert np.mean(r**3) < 0  # targets above the fit (right-skewed noise) give negative residuals


def test_constructors_are_seeded():
    a, b, c = (heavy_tailed_least_squares(30, 4, seed=s) for s in (7, 7, 8))
    np.testing.assert_array_equal(a.A, b.A)
    np.testing.assert_array_equal(a.b, b.b)
    assert not np.array_equal(a.A, c.A)
    l1, l2 = heavy_tailed_logistic(30, 4, seed=9), heavy_tailed_logistic(30, 4, seed=9)
    np.testing.assert_array_equal(l1.y, l2.y)
    assert set(np.unique(l1.y)) <= {-1.0, 1.0}


def test_counterexample():
    q = QianCounterexample()
    assert isinstance(q, FiniteSum) and q.N == 2 and q.dim == 1
    x = np.linspace(-12, 5, 35)[:, None]
    np.testing.assert_allclose(q.F_grad(x)[:, 0], 9 + 2 * x[:, 0], rtol=1e-14, atol=1e-13)
    np.testing.assert_allclose(q.example_grads(np.zeros(1))[:, 0], [10.0, -1.0])
    np.testing.assert_allclose(q.F(x)[...,], 9 * x[:, 0] + x[:, 0] ** 2, rtol=1e-13, atol=1e-12)


def test_validation():
    with pytest.raises(ValueError, match="shapes"):
        LeastSquaresSum(np.ones((3, 2)), np.ones(4))
    with pytest.raises(ValueError, match="y"):
        LogisticSum(np.ones((3, 2)), np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="lam"):
        LogisticSum(np.ones((2, 2)), np.ones(2), lam=-1.0)
    with pytest.raises(ValueError, match="N"):
        heavy_tailed_least_squares(0, 3)
    with pytest.raises(ValueError, match="df"):
        heavy_tailed_least_squares(10, 3, df=0)
    with pytest.raises(ValueError, match="flip"):
        heavy_tailed_logistic(10, 3, flip=0.5)
    with pytest.raises(ValueError, match="skew"):
        heavy_tailed_least_squares(10, 3, skew=-1.0)
    prob = heavy_tailed_least_squares(10, 3)
    with pytest.raises(ValueError, match="x shape"):
        prob.grad(np.ones(4))
    with pytest.raises(ValueError, match="x shape"):
        prob.example_grads(np.ones((2, 2, 3)))


def test_max_curvature_is_the_largest_hessian_eigenvalue():
    prob = heavy_tailed_least_squares(40, 5, seed=3)
    L = prob.max_curvature()
    # the Hessian of the mean loss is A^T A / N: check against its Rayleigh quotient and power iteration
    H = prob.A.T @ prob.A / prob.N
    v = np.ones(5)
    for _ in range(500):
        v = H @ v
        v /= np.linalg.norm(v)
    assert L == pytest.approx(v @ H @ v, rel=1e-10)
    u = np.random.default_rng(0).standard_normal((100, 5))
    assert np.all(np.einsum("kd,de,ke->k", u, H, u) <= L * np.sum(u * u, axis=1) * (1 + 1e-12))
    # gradient differences are L-Lipschitz
    x, y = np.random.default_rng(1).standard_normal((2, 5))
    assert np.linalg.norm(prob.grad(x) - prob.grad(y)) <= L * np.linalg.norm(x - y) * (1 + 1e-12)


# ---------------------------------------------------------------- the interpolating isotropic sum (claim C2)


@pytest.mark.parametrize("df", [math.inf, 2.5])
def test_interpolating_least_squares_is_isotropic_and_interpolates(df):
    prob = interpolating_least_squares(96, 6, df=df, seed=3)
    assert isinstance(prob, LeastSquaresSum) and (prob.N, prob.dim) == (96, 6)
    np.testing.assert_allclose(prob.A.T @ prob.A / prob.N, np.eye(6), atol=1e-10)
    x_star = prob.minimizer()
    np.testing.assert_allclose(prob.A @ x_star, prob.b, atol=1e-10)
    # every per-example gradient vanishes at x*: there is nothing for clipping to bias
    assert np.abs(prob.example_grads(x_star)).max() < 1e-10
    # the full mean gradient is e = x - x* (H = I)
    x = np.random.default_rng(0).standard_normal(6)
    np.testing.assert_allclose(prob.grad(x), x - x_star, atol=1e-10)
    again = interpolating_least_squares(96, 6, df=df, seed=3)
    np.testing.assert_array_equal(prob.A, again.A)


def test_interpolating_least_squares_validation():
    with pytest.raises(ValueError, match="N"):
        interpolating_least_squares(4, 6)
    with pytest.raises(ValueError, match="df"):
        interpolating_least_squares(16, 2, df=0.0)


@pytest.mark.parametrize("df,B", [(math.inf, 16), (2.5, 16), (math.inf, 48), (2.5, 96)])
def test_kappa_certificate_bounds_every_cosine_everywhere(df, B):
    prob = interpolating_least_squares(96, 6, df=df, seed=1)
    cert = kappa_certificate(prob, B)
    assert 0 < cert <= 1
    batches = np.arange(prob.N).reshape(-1, B)
    rng = np.random.default_rng(2)
    x_star = prob.minimizer()
    kappas = []
    for scale in (1e-6, 1.0, 1e3):
        for _ in range(40):
            x = x_star + scale * rng.standard_normal(6)
            r = clipped_direction(prob.batch_grads(x, batches), 0.1)
            kappas.append(r.kappa)
            # the bound the certificate gives for every component at this point
            assert r.kappa >= cert * (1 - 1e-9)
    if B == prob.N:  # one component: it is the full gradient
        assert cert == pytest.approx(1.0) and min(kappas) == pytest.approx(1.0)
    else:  # several components: they do differ from the full gradient
        assert min(kappas) < 0.999


def test_kappa_certificate_is_zero_or_an_error_where_it_does_not_apply():
    prob = interpolating_least_squares(96, 6, seed=1)
    assert kappa_certificate(prob, 4) == 0.0  # batches of fewer than d examples: singular H_j
    with pytest.raises(ValueError, match="isotropic"):
        kappa_certificate(heavy_tailed_least_squares(48, 5, seed=1), 8)
    noisy = LeastSquaresSum(prob.A, prob.b + 0.1 * np.random.default_rng(0).standard_normal(96))
    with pytest.raises(ValueError, match="interpolating"):
        kappa_certificate(noisy, 16)
    with pytest.raises(ValueError, match="LeastSquaresSum"):
        kappa_certificate(QianCounterexample(), 1)
    with pytest.raises(ValueError, match="batch_size"):
        kappa_certificate(prob, 7)
