"""Stochastic clipped SGD / SGD (Theorems 7 and 8): objective certificate, noise, rules, runs."""

import math

import numpy as np
import pytest
import torch

from clipcore import theory
from clipcore.deterministic_descent import gd_rule, trajectory
from clipcore.scalar_problems import Exponential, ExponentialWall, HardInstanceA, Power
from clipcore.stochastic_descent import (
    SeparableProblem,
    best_fixed_step,
    clipped_sgd_rule,
    first_hitting_times,
    hitting_time_from_hits,
    loglog_slope_interval,
    resampled_hitting_times,
    run_stochastic,
    sgd_rule,
    sphere_noise,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: OpenMP start-up costs more than it saves; restored for other test files."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


PROBLEMS = [
    SeparableProblem(HardInstanceA(1.0), 4),
    SeparableProblem(HardInstanceA(2.5), 3),
    SeparableProblem(Power(4, 1.0), 4),
    SeparableProblem(Power(6, 0.5), 2),
    SeparableProblem(ExponentialWall(2.0, 1.5), 3),
]


def _points(rng, prob, n):
    # mixed scales so that both the flat and the steep regions of p are visited
    # (x^p touches its envelope at |x| = (p - 2)/L1, f_A everywhere past 1/L1)
    if isinstance(prob.scalar, Power):
        scale = 1.5 * (prob.scalar.p - 2) / prob.L1
    else:
        scale = 4.0 / prob.L1
    return rng.uniform(-1, 1, (n, prob.dim)) * scale * rng.uniform(0.05, 1.0, (n, 1))


@pytest.mark.parametrize("prob", PROBLEMS, ids=lambda p: f"{p.scalar.name}-{p.L1}-{p.dim}")
def test_separable_certificate_with_autograd_hessian(prob):
    rng = np.random.default_rng(0)
    worst = 0.0
    for x in _points(rng, prob, 60):
        xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(prob.f(xt), xt)
        torch.testing.assert_close(g, prob.grad(xt.detach()), rtol=1e-10, atol=1e-12)
        H = torch.autograd.functional.hessian(prob.f, xt.detach())
        torch.testing.assert_close(torch.diagonal(H), prob.hess_diag(xt.detach()), rtol=1e-10, atol=1e-12)
        hnorm = torch.linalg.matrix_norm(H, ord=2).item()
        worst = max(worst, hnorm / (prob.L0 + prob.L1 * torch.linalg.vector_norm(g).item()))
    assert worst <= 1 + 1e-12
    assert worst > 0.3  # the sample reaches where the certificate matters


@pytest.mark.parametrize("prob", PROBLEMS, ids=lambda p: f"{p.scalar.name}-{p.L1}-{p.dim}")
@pytest.mark.parametrize("M", [0.5, 3.0, 50.0, 2000.0])
def test_axis_start_gives_sublevel_sup(prob, M):
    x0 = prob.start_for_gradient(M)
    assert np.linalg.norm(prob.grad(x0)) == pytest.approx(M, rel=1e-12)
    # random points pushed out to the boundary of {f <= f(x0)} along random rays
    rng = np.random.default_rng(1)
    c = prob.f(x0)
    u = rng.normal(size=(2000, prob.dim))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    lo, hi = np.zeros(2000), np.full(2000, 10.0 * abs(x0[0]) + 10.0)
    for _ in range(100):  # bisection for f(s u) = c
        mid = (lo + hi) / 2
        inside = prob.f(mid[:, None] * u) <= c
        lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
    norms = np.linalg.norm(prob.grad(lo[:, None] * u), axis=1)
    assert norms.max() <= M * (1 + 1e-9)


def test_start_for_gradient_refuses_uncertified():
    with pytest.raises(ValueError, match="start_for_gradient"):
        SeparableProblem(Exponential(1.0), 3).start_for_gradient(10.0)
    # the capped wall's gradient saturates: two coordinates at the cap beat one, so only dim 1
    capped = ExponentialWall(1.0, 1.0, 10.0)
    with pytest.raises(ValueError, match="start_for_gradient"):
        SeparableProblem(capped, 2).start_for_gradient(5.0)
    x0 = SeparableProblem(capped, 1).start_for_gradient(5.0)
    assert capped.grad(x0[0]) == pytest.approx(5.0)
    a = capped.x0_for_gradient(9.9)
    two = np.array([capped.x0_for_gap(capped.f(a) / 2)] * 2)
    assert np.linalg.norm(capped.grad(two)) > 9.9  # same gap, larger gradient norm
    with pytest.raises(ValueError, match="dim"):
        SeparableProblem(Power(4), 0)
    with pytest.raises(ValueError, match="scalar"):
        SeparableProblem("x^4", 2)


def test_sphere_noise_is_bounded_and_unbiased():
    gen = torch.Generator().manual_seed(3)
    tau, n, d = 0.7, 200_000, 5
    xi = sphere_noise((n,), d, tau, gen)
    torch.testing.assert_close(
        torch.linalg.vector_norm(xi, dim=-1), torch.full((n,), tau, dtype=torch.float64), rtol=1e-12, atol=0
    )
    # each coordinate has variance tau^2 / d, so its mean is within 5 standard errors of 0
    se = tau / math.sqrt(d * n)
    assert xi.mean(0).abs().max().item() < 5 * se
    # and the second moment is isotropic: E xi xi^T = tau^2 / d I
    cov = (xi.T @ xi / n).numpy()
    np.testing.assert_allclose(cov, tau**2 / d * np.eye(d), atol=5 * tau**2 / d * math.sqrt(2 / n) * 3)
    assert torch.count_nonzero(sphere_noise((4,), 3, 0.0, gen)) == 0
    with pytest.raises(ValueError, match="tau"):
        sphere_noise((2,), 3, -1.0)


@pytest.mark.parametrize("reading", theory.THEOREM7_READINGS)
def test_rule_matches_theory_step(reading):
    g = np.concatenate([[0.0, 1e-12], np.logspace(-6, 8, 300)])
    eta, L1, tau = 0.02, 1.5, 0.3
    got = clipped_sgd_rule(eta, L1, tau, reading)(torch.tensor(g)).numpy()
    np.testing.assert_allclose(got, theory.clipped_sgd_step_size(g, eta, L1, tau, reading), rtol=1e-15)


def test_readings_differ_as_expected():
    eta, L1, tau = 0.01, 1.0, 0.5
    g = torch.logspace(-4, 6, 500, dtype=torch.float64)
    p = clipped_sgd_rule(eta, L1, tau, "printed")(g)
    i = clipped_sgd_rule(eta, L1, tau, "intended")(g)
    assert torch.all(p >= i)  # eta < 1: the printed threshold is 1/eta times larger
    small = (g + tau) <= 1 / (16 * L1 * eta)  # intended not clipping: both equal eta
    assert torch.all(p[small] == eta) and torch.all(i[small] == eta)
    big = (g + tau) >= 1 / (16 * L1 * eta**2)  # both clipping: ratio exactly 1/eta
    assert big.any()
    torch.testing.assert_close(p[big] / i[big], torch.full_like(p[big], 1 / eta), rtol=1e-12, atol=0)
    # clipped step length h ||g|| is bounded by 1/(16 L1) (intended) and 1/(16 eta L1) (printed)
    assert torch.all(i * g <= 1 / (16 * L1) * (1 + 1e-12))
    assert torch.all(p * g <= 1 / (16 * eta * L1) * (1 + 1e-12))


def test_rule_batches_parameters():
    h = np.array([0.1, 0.2, 0.3])
    g = torch.ones(3, 5, dtype=torch.float64)
    out = sgd_rule(h)(g)
    assert out.shape == (3, 5)
    torch.testing.assert_close(out[:, 0], torch.tensor(h))
    with pytest.raises(ValueError, match="h"):
        sgd_rule([0.1, -1.0])
    with pytest.raises(ValueError, match="reading"):
        clipped_sgd_rule(0.1, 1.0, 0.1, "typo")
    with pytest.raises(ValueError, match="eta"):
        clipped_sgd_rule(0.0, 1.0, 0.1)


def test_zero_noise_equals_deterministic_trajectory():
    """tau = 0 reproduces clipcore.deterministic_descent in float64 (axis start: coordinate 0 is the 1D run)."""
    fa = HardInstanceA(1.0)
    prob = SeparableProblem(fa, 3)
    M = np.array([20.0, 500.0])
    x0 = np.stack([prob.start_for_gradient(m) for m in M])
    n, eta, tau_rule = 300, 0.01, 0.2
    for rule, oned in [
        (sgd_rule([0.02, 0.003]), dict(rule=gd_rule, h=np.array([0.02, 0.003]))),
        (
            clipped_sgd_rule(eta, 1.0, tau_rule, "intended"),
            dict(rule=lambda a: theory.clipped_sgd_step_size(a, eta, 1.0, tau_rule, "intended")),
        ),
        (
            clipped_sgd_rule(eta, 1.0, tau_rule, "printed"),
            dict(rule=lambda a: theory.clipped_sgd_step_size(a, eta, 1.0, tau_rule, "printed")),
        ),
    ]:
        norms = run_stochastic(prob, x0, rule, 0.0, n, runs=2, generator=0).numpy()
        ref_rule = oned.pop("rule")
        xs = trajectory(fa, x0[:, 0], ref_rule, n, **oned)  # (n + 1, 2)
        ref = np.abs(fa.grad(xs)).T
        for r in range(2):  # every run is the same deterministic run
            np.testing.assert_allclose(norms[:, r, :], ref, rtol=1e-12, atol=1e-14)


def test_zero_noise_off_axis_matches_numpy_loop():
    prob = SeparableProblem(Power(4, 1.0), 4)
    x0 = np.array([1.3, -0.7, 0.2, 2.1])
    eta, L1, tau = 0.01, prob.L1, 0.1
    norms = run_stochastic(prob, x0, clipped_sgd_rule(eta, L1, tau), 0.0, 200, runs=1).numpy()[0]
    x = x0.copy()
    for t in range(200):
        g = prob.grad(x)
        assert np.linalg.norm(g) == pytest.approx(norms[t], rel=1e-12)
        x = x - theory.clipped_sgd_step_size(np.linalg.norm(g), eta, L1, tau, "intended") * g
    assert np.linalg.norm(prob.grad(x)) == pytest.approx(norms[-1], rel=1e-12)


def test_hits_agree_with_full_record_and_theory_counter():
    prob = SeparableProblem(HardInstanceA(1.0), 3)
    x0 = np.stack([prob.start_for_gradient(m) for m in (5.0, 40.0)])
    rule = clipped_sgd_rule(0.05, 1.0, 0.5)
    T, runs, eps = 400, 64, 0.15
    norms = run_stochastic(prob, x0, rule, 0.5, T, runs, generator=7)
    hits = first_hitting_times(prob, x0, rule, 0.5, T, runs, eps, generator=7, stop_early=False)
    hits_early = first_hitting_times(prob, x0, rule, 0.5, T, runs, eps, generator=7, check_every=5)
    assert torch.equal(hits, hits_early)  # stopping early changes nothing
    for b in range(2):
        below = (norms[b] < eps).numpy()
        expect = np.where(below.any(1), below.argmax(1), T + 1)
        np.testing.assert_array_equal(hits[b].numpy(), expect)
    te = hitting_time_from_hits(hits, T)
    for b in range(2):
        assert te[b] == theory.stochastic_hitting_time(norms[b].numpy(), eps)
    for prob_ in (0.1, 0.9):
        assert hitting_time_from_hits(hits, T, prob_)[1] == theory.stochastic_hitting_time(
            norms[1].numpy(), eps, prob_
        )


def test_hitting_time_from_hits_edge_cases():
    T = 10
    assert hitting_time_from_hits(np.array([T + 1] * 4), T) == np.inf
    assert hitting_time_from_hits(np.array([0, 0, 11, 11]), T) == 0  # half the runs: enough
    assert hitting_time_from_hits(np.array([0, 3, 5, 11]), T) == 3
    assert hitting_time_from_hits(np.array([0, 3, 5, 11]), T, prob=0.2) == np.inf
    with pytest.raises(ValueError, match="prob"):
        hitting_time_from_hits(np.array([1]), T, prob=1.0)


def test_seeded_runs_are_reproducible():
    prob = SeparableProblem(HardInstanceA(1.0), 4)
    x0 = prob.start_for_gradient(100.0)
    rule = clipped_sgd_rule(0.02, 1.0, 0.5, "printed")
    a = run_stochastic(prob, x0, rule, 0.5, 100, 8, generator=123)
    b = run_stochastic(prob, x0, rule, 0.5, 100, 8, generator=torch.Generator().manual_seed(123))
    c = run_stochastic(prob, x0, rule, 0.5, 100, 8, generator=124)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a[0], a[1])  # the runs are independent of each other


def test_diverged_runs_never_hit():
    prob = SeparableProblem(HardInstanceA(1.0), 2)
    M = 1e3
    x0 = prob.start_for_gradient(M)
    h = 1.5 * HardInstanceA(1.0).divergence_step(M)  # fixed step above h*: GD blows up
    hits = first_hitting_times(prob, x0, sgd_rule(h), 0.1, 50, 16, 0.1, generator=0)
    assert torch.all(hits == 51)


@pytest.mark.parametrize(
    "bad,match",
    [
        (dict(T=-1), "T"),
        (dict(runs=0), "runs"),
        (dict(tau=-0.1), "tau"),
        (dict(generator="x"), "generator"),
        (dict(x0=np.array([np.nan, 0.0])), "x0"),
        (dict(rule=3.0), "rule"),
    ],
)
def test_run_validation(bad, match):
    prob = SeparableProblem(Power(4), 2)
    kw = dict(problem=prob, x0=np.array([1.0, 0.0]), rule=sgd_rule(0.01), tau=0.1, T=5, runs=2)
    kw.update(bad)
    with pytest.raises(ValueError, match=match):
        run_stochastic(**kw)
    if match == "T":
        with pytest.raises(ValueError, match="eps"):
            first_hitting_times(prob, np.array([1.0, 0.0]), sgd_rule(0.01), 0.1, 5, 2, eps=0.0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_without_noise():
    prob = SeparableProblem(HardInstanceA(1.0), 3)
    x0 = prob.start_for_gradient(200.0)
    rule = clipped_sgd_rule(0.01, 1.0, 0.5)
    cpu = run_stochastic(prob, x0, rule, 0.0, 200, 4)
    gpu = run_stochastic(prob, x0, rule, 0.0, 200, 4, device="cuda").cpu()
    torch.testing.assert_close(gpu, cpu, rtol=1e-10, atol=1e-12)
    hits = first_hitting_times(prob, x0, rule, 0.5, 2000, 32, 0.1, generator=0, device="cuda")
    assert hits.device.type == "cuda" and bool((hits <= 2000).all())


# ---------------------------------------------------------------- bootstrap and tuned SGD


def test_resampled_hitting_times_are_resamples():
    rng = np.random.default_rng(0)
    T = 50
    hits = rng.integers(0, 70, (3, 2, 9))
    boot = resampled_hitting_times(hits, T, 400, seed=1)
    assert boot.shape == (400, 3, 2)
    # each replicate is the T_eps of some resample, so it is one of the observed hitting times or inf
    for b in range(3):
        for s_ in range(2):
            vals = set(hits[b, s_][hits[b, s_] <= T].tolist()) | {np.inf}
            assert set(np.unique(boot[:, b, s_]).tolist()) <= vals
    # all runs equal: every replicate equals the original
    same = np.full((2, 5), 7)
    assert np.all(resampled_hitting_times(same, T, 50) == hitting_time_from_hits(same, T))
    # with one run per entry a replicate is that run
    one = np.array([[3], [60]])
    np.testing.assert_array_equal(resampled_hitting_times(one, T, 4), np.tile([3.0, np.inf], (4, 1)))
    # reproducible, and the median of the replicates sits near the original
    again = resampled_hitting_times(hits, T, 400, seed=1)
    np.testing.assert_array_equal(boot, again)
    big = rng.integers(0, 40, (1, 2000))
    reps = resampled_hitting_times(big, T, 200, seed=2)
    assert abs(np.median(reps) - hitting_time_from_hits(big, T)[0]) <= 2


def test_loglog_slope_interval():
    x = np.array([1.0, 10.0, 100.0])
    y = 5.0 * x**0.7
    rng = np.random.default_rng(0)
    yb = y * np.exp(rng.normal(0, 0.05, (500, 3)))
    s, lo, hi = loglog_slope_interval(x, y, yb, 0.9)
    assert s == pytest.approx(0.7)
    assert lo < 0.7 < hi and hi - lo < 0.1
    assert all(np.isnan(loglog_slope_interval(x, np.r_[y[:2], np.inf], yb)))
    s2, lo2, hi2 = loglog_slope_interval(x, y, np.c_[yb[:, :2], np.full(500, np.inf)])
    assert s2 == pytest.approx(0.7) and np.isnan(lo2) and np.isnan(hi2)
    with pytest.raises(ValueError, match="Invalid shapes"):
        loglog_slope_interval(x, y, yb[:, :2])


def test_best_fixed_step_matches_a_full_grid_search():
    prob = SeparableProblem(ExponentialWall(1.0, 1.0, 30.0), 1)
    w = prob.scalar
    starts = (w.x0_for_gap(60.0) * np.array([0.5, 1.0]))[:, None]
    tau, T, runs, eps = 0.5, 3000, 32, 0.1
    hs = np.logspace(-3, 0, 9)
    t_best, h_best, t_per_h = best_fixed_step(prob, starts, tau, hs[::-1], T, runs, eps, generator=3)
    full = np.array(
        [
            hitting_time_from_hits(
                first_hitting_times(prob, starts, sgd_rule(h), tau, T, runs, eps, 3), T
            ).max()
            for h in hs
        ]
    )
    assert np.isfinite(full).any()
    assert t_best == full.min()
    assert h_best == hs[np.flatnonzero(full == full.min())[0]]
    # per step: the count where it beat the best before it, inf where it could not
    assert np.all((t_per_h[::-1] == full) | np.isinf(t_per_h[::-1]))
    with pytest.raises(ValueError, match="Invalid h_grid"):
        best_fixed_step(prob, starts, tau, [0.1, -1.0], T, runs, eps)
