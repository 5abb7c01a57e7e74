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
