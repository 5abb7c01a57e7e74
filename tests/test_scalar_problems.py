"""Analytic problems: derivatives against autograd, certified (L0, L1) constants on dense grids."""

import math

import numpy as np
import pytest
import torch

from clipcore.scalar_problems import Exponential, HardInstanceA, HardInstanceB, Power, max_envelope_ratio

PROBLEMS = [
    Power(2, 1.0),
    Power(3, 1.0),
    Power(3, 0.2),
    Power(4, 1.0),
    Power(4, 3.0),
    Power(6, 0.5),
    Exponential(1.0),
    Exponential(-2.0, 0.5),
    HardInstanceA(1.0),
    HardInstanceA(4.0),
    HardInstanceB(0.1),
    HardInstanceB(1.0),
]


@pytest.mark.parametrize("prob", PROBLEMS, ids=lambda p: f"{p.name}-{p.L1}")
def test_derivatives_match_autograd(prob):
    x = torch.linspace(-3.0, 3.0, 401, dtype=torch.float64, requires_grad=True)
    f = prob.f(x)
    (g,) = torch.autograd.grad(f.sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    torch.testing.assert_close(g.detach(), prob.grad(x.detach()), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(h, prob.hess(x.detach()), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("prob", PROBLEMS, ids=lambda p: f"{p.name}-{p.L1}")
def test_numpy_and_torch_agree(prob):
    x = np.linspace(-2.5, 2.5, 101)
    for fn in (prob.f, prob.grad, prob.hess):
        np.testing.assert_allclose(fn(x), fn(torch.tensor(x)).numpy(), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("prob", PROBLEMS, ids=lambda p: f"{p.name}-{p.L1}")
def test_certified_constants_hold_on_dense_grid(prob):
    x = np.linspace(-12.0, 12.0, 200_001)
    if isinstance(prob, Exponential):
        x = x / abs(prob.a)
    assert max_envelope_ratio(prob, x) <= 1 + 1e-12


@pytest.mark.parametrize("p,L1", [(3, 1.0), (4, 1.0), (4, 0.5), (5, 2.0)])
def test_power_certificate_is_tight(p, L1):
    prob = Power(p, L1)
    u = (p - 2) / L1  # where the envelope touches
    assert abs(prob.hess(u)) / prob.envelope(abs(prob.grad(u))) == pytest.approx(1.0, rel=1e-12)
    # shrinking L0 by 1% breaks the certificate there
    assert abs(prob.hess(u)) > 0.99 * prob.L0 + L1 * abs(prob.grad(u))


def test_paper_constants():
    assert Power(3, 2.0).L0 == pytest.approx(3 / 2.0)
    assert Power(4, 2.0).L0 == pytest.approx(16 / 4.0)
    assert Exponential(3.0, 0.1).L1 == 3.0 and Exponential(3.0, 0.1).L0 == 0.1


def test_not_L_smooth():
    for prob in (Power(3), Power(4), Exponential(1.0), HardInstanceA(1.0)):
        assert abs(prob.hess(500.0)) > 100 * abs(prob.hess(1.0))


@pytest.mark.parametrize("L1,M", [(1.0, 10.0), (1.0, 1e4), (3.0, 50.0), (0.5, 1e3)])
def test_hard_instance_A(L1, M):
    fa = HardInstanceA(L1)
    x0 = fa.x0_for_gradient(M)
    assert fa.grad(x0) == pytest.approx(M, rel=1e-12)
    assert fa.f(0.0) == 0.0 and fa.f(x0) > 0
    # continuous f and f' at the junction |x| = 1 / L1
    j = 1.0 / L1
    for fn in (fa.f, fa.grad):
        assert fn(j * (1 + 1e-12)) == pytest.approx(fn(j * (1 - 1e-12)), rel=1e-9)
    # above the divergence step, one GD step overshoots to a point with a larger gradient
    h = 1.01 * fa.divergence_step(M)
    x1 = x0 - h * fa.grad(x0)
    assert abs(fa.grad(x1)) > M


def test_hard_instance_B():
    fb = HardInstanceB(0.05)
    x = np.linspace(-100, 100, 10001)
    assert np.all(np.abs(fb.grad(x)) <= 2 * 0.05)  # tanh saturates to 1 in floating point
    assert np.all(fb.hess(x) <= 1.0)
    assert np.all(np.isfinite(fb.f(np.array([1e6, -1e6]))))
    for delta in (1e-4, 0.3, 50.0):
        assert fb.f(fb.x0_for_delta(delta)) == pytest.approx(delta, rel=1e-10)


@pytest.mark.parametrize(
    "bad",
    [
        lambda: Power(1),
        lambda: Power(3, 0.0),
        lambda: Exponential(0.0),
        lambda: Exponential(1.0, -1.0),
        lambda: HardInstanceA(-1.0),
        lambda: HardInstanceB(0.0),
    ],
)
def test_validation(bad):
    with pytest.raises(ValueError, match="Invalid"):
        bad()


def test_x0_for_gradient_inverts_grad():
    for prob in (Power(4), Power(3), Exponential(2.0)):
        for M in (0.5, 10.0, 1e5):
            assert prob.grad(prob.x0_for_gradient(M)) == pytest.approx(M, rel=1e-12)
    assert math.isfinite(HardInstanceA(1.0).x0_for_gradient(0.5))


# ---------------------------------------------------------------- general polynomials (Lemma 2)

from clipcore.polynomials import Polynomial, envelope_check, max_curvature, random_polynomial  # noqa: E402
from clipcore.scalar_problems import ExponentialWall, min_gap_for_gradient  # noqa: E402


def _brute_L0(p, R, n=2_000_001):
    x = np.linspace(-R, R, n)
    return max(0.0, float(np.max(np.abs(p.hess(x)) - p.L1 * np.abs(p.grad(x)))))


@pytest.mark.parametrize("degree", [3, 4, 5, 6])
def test_polynomial_derivatives_match_autograd(degree):
    p = random_polynomial(np.random.default_rng(degree), degree, 1.0, 2.0)
    x = torch.linspace(-3.0, 3.0, 201, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(p.f(x).sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    torch.testing.assert_close(g.detach(), p.grad(x.detach()), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(h, p.hess(x.detach()), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(p.f(np.array([2.0])), np.polyval(p.coeffs[::-1], 2.0), rtol=1e-13)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("L1", [0.5, 1.0, 3.0])
def test_polynomial_L0_is_the_least_constant(seed, L1):
    rng = np.random.default_rng(seed)
    p = random_polynomial(rng, int(rng.integers(3, 7)), L1, 3.0)
    R = p.critical_radius()
    assert abs(p.argmax_L0()) <= R
    L0 = p.L0
    assert L0 > 0
    brute = _brute_L0(p, R)  # a grid maximum: below the sup by at most its resolution
    assert brute <= L0 * (1 + 1e-12) and L0 <= brute * (1 + 1e-4)
    # the envelope holds far outside the critical radius ...
    x = np.linspace(-50 * R, 50 * R, 400_001)
    assert np.max(np.abs(p.hess(x)) / (L0 + L1 * np.abs(p.grad(x)))) <= 1 + 1e-9
    # ... and is touched: a 1% smaller L0 fails at the maximiser
    u = p.argmax_L0()
    assert abs(p.hess(u)) > 0.99 * L0 + L1 * abs(p.grad(u))


def test_polynomial_monomial_agrees_with_power_certificate():
    for deg, L1 in ((3, 1.0), (4, 1.0), (4, 0.5), (5, 2.0)):
        p = Polynomial((0.0,) * deg + (1.0,), L1)
        assert p.L0 == pytest.approx(Power(deg, L1).L0, rel=1e-9)


def test_random_polynomial_has_unit_leading_coefficient_and_lower_terms():
    p = random_polynomial(np.random.default_rng(0), 5, 1.0, 3.0)
    assert p.degree == 5 and abs(p.coeffs[-1]) == 1.0
    assert all(c != 0 for c in p.coeffs[:-1])


def test_polynomial_validation():
    with pytest.raises(ValueError, match="Invalid coeffs"):
        Polynomial((1.0, 2.0))
    with pytest.raises(ValueError, match="Invalid coeffs"):
        Polynomial((1.0, 2.0, 3.0, 0.0))
    with pytest.raises(ValueError, match="Invalid coefficient"):
        Polynomial((1.0, float("nan"), 1.0))


@pytest.mark.parametrize("seed", range(5))
def test_envelope_check_brackets_the_exact_constant(seed):
    p = random_polynomial(np.random.default_rng(seed), 4 + seed % 3, 1.0, 3.0)
    for n in (2001, 200_001):
        e = envelope_check(p, p.critical_radius(), 10.0, n)
        assert e["L0"] * (1 - 1e-12) <= p.L0 <= e["L0_upper"] * (1 + 1e-12)
        assert e["max_ratio_wide"] <= 1 + 1e-12
        assert 0 <= e["resolution"] < 0.05
    assert envelope_check(p, p.critical_radius(), 10.0, 200_001)["resolution"] < 1e-3


def test_envelope_check_flags_a_grid_that_misses_the_maximiser():
    # x^4 with L1 = 1 touches its envelope at |x| = 2: fitted on [-1, 1], L0 is too small
    e = envelope_check(Power(4, 1.0), 1.0, 10.0, 20001)
    assert e["L0"] < 16.0 and e["max_ratio_wide"] > 1.1


def test_max_curvature_bounded_only_for_L_smooth():
    radii = np.array([1.0, 10.0, 100.0])
    assert np.allclose(max_curvature(HardInstanceB(0.1), radii), 1.0)
    grow = max_curvature(Power(4, 1.0), radii)
    np.testing.assert_allclose(grow, 12 * radii**2, rtol=1e-12)
    with pytest.raises(ValueError, match="Invalid radii"):
        max_curvature(Power(4), [1.0, -1.0])


# ---------------------------------------------------------------- the exponential wall

WALLS = [
    ExponentialWall(1.0, 1.0),
    ExponentialWall(2.0, 3.0),
    ExponentialWall(1.0, 10.0),
    ExponentialWall(1.0, 1.0, 100.0),
    ExponentialWall(3.0, 2.0, 50.0),
]


@pytest.mark.parametrize("w", WALLS, ids=lambda w: f"{w.name}-{w.L0}-{w.L1}")
def test_wall_derivatives_and_certificate(w):
    x = torch.linspace(-3.0, 3.0, 401, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(w.f(x).sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    torch.testing.assert_close(g.detach(), w.grad(x.detach()), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(h, w.hess(x.detach()), rtol=1e-9, atol=1e-9)
    xs = np.linspace(-12.0, 12.0, 100_001) / w.L1
    assert max_envelope_ratio(w, xs) <= 1 + 1e-12
    assert w.f(0.0) == 0.0 and np.all(w.f(xs) >= 0)
    assert np.all(np.diff(np.abs(w.grad(xs[xs >= 0]))) >= 0)  # |f'| increases in |x|


def test_uncapped_wall_is_tight_everywhere():
    w = ExponentialWall(2.0, 3.0)
    x = np.linspace(-4.0, 4.0, 1001)
    np.testing.assert_allclose(np.abs(w.hess(x)), w.envelope(np.abs(w.grad(x))), rtol=1e-12)


def test_capped_wall_saturates_below_the_cap():
    w = ExponentialWall(1.0, 1.0, 100.0)
    g = np.abs(w.grad(np.linspace(-20, 20, 10001)))
    assert g.max() < 100.0 and g.max() > 99.0
    # it follows the uncapped wall while e^u << a = L1 M / L0
    np.testing.assert_allclose(w.grad(0.5), ExponentialWall(1.0, 1.0).grad(0.5), rtol=0.02)


@pytest.mark.parametrize("w", WALLS, ids=lambda w: f"{w.name}-{w.L0}-{w.L1}")
def test_wall_inverses(w):
    for M in (0.3, 7.0, 40.0):
        assert w.grad(w.x0_for_gradient(M)) == pytest.approx(M, rel=1e-11)
    for d in (1e-3, 2.0, 500.0):
        assert w.f(w.x0_for_gap(d)) == pytest.approx(d, rel=1e-10)
    x0 = w.x0_for_gradient(7.0)
    x1 = x0 - 1.01 * w.divergence_step(7.0) * w.grad(x0)
    assert x1 < -x0


def test_wall_reaches_M_at_the_growth_lemma_distance():
    # uncapped: x0 = log(1 + L1 M / L0) / L1, closer than f_A's (1 + log(L1 M)) / L1
    w, fa = ExponentialWall(1.0, 3.0), HardInstanceA(3.0)
    for M in (10.0, 1e4):
        assert w.x0_for_gradient(M) == pytest.approx(math.log1p(3.0 * M) / 3.0)
        assert w.x0_for_gradient(M) < fa.x0_for_gradient(M)
    with pytest.raises(ValueError, match="Invalid M"):
        ExponentialWall(1.0, 1.0, 10.0).x0_for_gradient(10.0)
    with pytest.raises(ValueError, match="Invalid cap"):
        ExponentialWall(1.0, 1.0, -1.0)


@pytest.mark.parametrize("L0,L1", [(1.0, 1.0), (2.0, 3.0), (1.0, 10.0)])
def test_min_gap_attained_by_wall_and_below_other_instances(L0, L1):
    w = ExponentialWall(L0, L1)
    for M in (0.5, 10.0, 1e3):
        gap = min_gap_for_gradient(M, L0, L1)
        assert w.f(w.x0_for_gradient(M)) == pytest.approx(gap, rel=1e-9)
        assert 0 < gap < M / L1
    # any other (1, L1)-smooth instance needs at least that gap
    fa = HardInstanceA(L1)
    for M in (10.0, 1e3):
        assert fa.f(fa.x0_for_gradient(M)) >= min_gap_for_gradient(M, 1.0, L1)
    capped = ExponentialWall(L0, L1, 2e3)
    assert capped.f(capped.x0_for_gradient(1e3)) >= min_gap_for_gradient(1e3, L0, L1)
