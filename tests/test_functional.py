"""Clipping properties, and parity of ClippedSGD/NormalizedSGD with torch and the float64 oracle."""

import math

import numpy as np
import pytest
import torch

from clipcore import functional as F
from clipcore import reference as R
from clipcore.optim import ClippedSGD, NormalizedSGD


def _params(seed, shapes=((5, 3), (3,), (2, 2, 2)), dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=dtype) for s in shapes]


def _grads_like(params, seed, scale=1.0):
    g = torch.Generator().manual_seed(10_000 + seed)
    return [scale * torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("max_norm", [0.01, 0.5, 3.0])
def test_clipped_norm_at_most_threshold(seed, max_norm):
    grads = _grads_like(_params(seed), seed, scale=10.0)
    norm = F.global_norm(grads)
    coef = F.clip_coefficient(norm, max_norm)
    clipped = [coef * g for g in grads]
    assert float(F.global_norm(clipped)) <= max_norm * (1 + 1e-12)
    # direction preserved: clipped is a non-negative multiple of the original
    flat, flat_c = torch.cat([g.flatten() for g in grads]), torch.cat([c.flatten() for c in clipped])
    cos = torch.dot(flat, flat_c) / (flat.norm() * flat_c.norm())
    assert float(cos) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_clipping_is_idempotent(seed):
    grads = _grads_like(_params(seed), seed, scale=5.0)
    once = [F.clip_coefficient(F.global_norm(grads), 1.0) * g for g in grads]
    twice = [F.clip_coefficient(F.global_norm(once), 1.0) * g for g in once]
    for a, b in zip(once, twice):
        # the torch convention divides by norm + 1e-6, so a second pass shrinks by at most 1e-6
        torch.testing.assert_close(a, b, rtol=2e-6, atol=0)


def test_global_norm_matches_concatenation():
    ts = _params(0)
    assert float(F.global_norm(ts)) == pytest.approx(
        float(torch.cat([t.flatten() for t in ts]).norm()), rel=1e-14
    )


def test_huge_threshold_equals_plain_sgd():
    p1, p2 = _params(1), _params(1)
    grads = _grads_like(p1, 1)
    F.clipped_sgd_step(p1, grads, [None] * 3, lr=0.1, max_norm=1e12)
    F.clipped_sgd_step(p2, grads, [None] * 3, lr=0.1, max_norm=None)
    for a, b in zip(p1, p2):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-15)


def _run_pair(seed, steps, lr, max_norm, momentum, weight_decay):
    """ClippedSGD against clip_grad_norm_ + torch.optim.SGD on the same random gradients."""
    ours = [torch.nn.Parameter(p) for p in _params(seed)]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    opt = ClippedSGD(ours, lr=lr, max_norm=max_norm, momentum=momentum, weight_decay=weight_decay)
    ref = torch.optim.SGD(theirs, lr=lr, momentum=momentum, weight_decay=weight_decay)
    for k in range(steps):
        grads = _grads_like(ours, seed * 1000 + k, scale=float(np.exp(np.sin(k) * 3)))
        for p, q, g in zip(ours, theirs, grads):
            p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        total = torch.nn.utils.clip_grad_norm_(theirs, max_norm if max_norm is not None else float("inf"))
        ref.step()
        assert float(opt.last_grad_norm) == pytest.approx(float(total), rel=1e-12)
    return ours, theirs


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(
    "max_norm,momentum,weight_decay",
    [(0.25, 0.0, 0.0), (1.0, 0.9, 0.0), (0.5, 0.9, 5e-4), (None, 0.9, 5e-4), (10.0, 0.0, 1e-2)],
)
def test_clipped_sgd_matches_torch(seed, max_norm, momentum, weight_decay):
    ours, theirs = _run_pair(seed, 50, 0.05, max_norm, momentum, weight_decay)
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_clipped_sgd_matches_reference(seed):
    params = [torch.nn.Parameter(p) for p in _params(seed)]
    opt = ClippedSGD(params, lr=0.1, max_norm=0.7, momentum=0.8, weight_decay=1e-3)
    ref = [p.detach().numpy().copy() for p in params]
    bufs = [None] * len(ref)
    for k in range(40):
        grads = _grads_like(params, 7 * k + seed, scale=3.0)
        for p, g in zip(params, grads):
            p.grad = g.clone()  # the step scales .grad in place, as clip_grad_norm_ does
        opt.step()
        ref, bufs, norm = R.clipped_sgd_step(
            ref, [g.numpy() for g in grads], bufs, lr=0.1, max_norm=0.7, momentum=0.8, weight_decay=1e-3
        )
        assert float(opt.last_grad_norm) == pytest.approx(norm, rel=1e-13)
    for p, r in zip(params, ref):
        np.testing.assert_allclose(p.detach().numpy(), r, rtol=0, atol=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_normalized_sgd_matches_reference(seed):
    params = [torch.nn.Parameter(p) for p in _params(seed)]
    opt = NormalizedSGD(params, lr=0.3, beta=0.1)
    ref = [p.detach().numpy().copy() for p in params]
    for k in range(30):
        grads = _grads_like(params, 3 * k + seed)
        for p, g in zip(params, grads):
            p.grad = g.clone()  # the step scales .grad in place, as clip_grad_norm_ does
        opt.step()
        ref, norm = R.normalized_sgd_step(ref, [g.numpy() for g in grads], lr=0.3, beta=0.1)
    for p, r in zip(params, ref):
        np.testing.assert_allclose(p.detach().numpy(), r, rtol=0, atol=1e-12)


def test_normalized_step_length():
    p = [torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))]
    p[0].grad = torch.tensor([3.0, 4.0, 0.0, 0.0], dtype=torch.float64)
    NormalizedSGD(p, lr=1.0, beta=1e-12).step()
    assert float(p[0].detach().norm()) == pytest.approx(1.0, rel=1e-11)


def test_float32_clipping_close_to_float64():
    p64 = _params(3)
    g64 = _grads_like(p64, 3, scale=100.0)
    p32, g32 = [p.float() for p in p64], [g.float() for g in g64]
    F.clipped_sgd_step(p64, g64, [None] * 3, lr=0.1, max_norm=1.0)
    F.clipped_sgd_step(p32, g32, [None] * 3, lr=0.1, max_norm=1.0)
    for a, b in zip(p64, p32):
        torch.testing.assert_close(b.double(), a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(lr=0.0), "learning rate"),
        (dict(lr=-1.0), "learning rate"),
        (dict(lr=float("nan")), "learning rate"),
        (dict(lr=0.1, max_norm=-1.0), "max_norm"),
        (dict(lr=0.1, max_norm=0.0), "max_norm"),
        (dict(lr=0.1, momentum=-0.1), "momentum"),
        (dict(lr=0.1, momentum=1.0), "momentum"),
        (dict(lr=0.1, weight_decay=-1.0), "weight_decay"),
        (dict(lr=0.1, nonfinite="maybe"), "nonfinite"),
    ],
)
def test_clipped_sgd_rejects_bad_values(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ClippedSGD([torch.nn.Parameter(torch.zeros(2))], **kwargs)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(lr=-1, beta=0.1), "learning rate"),
        (dict(lr=1, beta=0.0), "beta"),
        (dict(lr=1, beta=-2.0), "beta"),
    ],
)
def test_normalized_sgd_rejects_bad_values(kwargs, name):
    with pytest.raises(ValueError, match=name):
        NormalizedSGD([torch.nn.Parameter(torch.zeros(2))], **kwargs)


def test_error_message_names_value():
    with pytest.raises(ValueError, match=r"-0\.5"):
        ClippedSGD([torch.nn.Parameter(torch.zeros(2))], lr=-0.5)


def test_nonfinite_raise_mode_raises_and_default_skips():
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.tensor([1.0, float("inf"), 0.0])
    with pytest.raises(FloatingPointError, match="non-finite"):
        ClippedSGD([p], lr=0.1, max_norm=1.0, nonfinite="raise").step()
    opt = ClippedSGD([p], lr=0.1, max_norm=1.0)
    opt.step()
    assert int(opt.skipped_steps) == 1 and torch.equal(p.detach(), torch.ones(3))


@pytest.mark.parametrize(
    "opt_cls,kw", [(ClippedSGD, dict(lr=0.1, max_norm=1.0)), (NormalizedSGD, dict(lr=0.1, beta=1.0))]
)
def test_nonfinite_skip_counts_and_leaves_params(opt_cls, kw):
    p = torch.nn.Parameter(torch.ones(3))
    opt = opt_cls([p], nonfinite="skip", **kw)
    p.grad = torch.tensor([1.0, float("nan"), 0.0])
    opt.step()
    assert opt.skipped_steps == 1 and torch.equal(p.detach(), torch.ones(3))
    p.grad = torch.tensor([1.0, 0.0, 0.0])
    opt.step()
    assert opt.skipped_steps == 1 and not torch.equal(p.detach(), torch.ones(3))
    assert math.isfinite(float(opt.last_grad_norm))


def test_last_grad_norm_and_coefficient_readable():
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    p.grad = torch.tensor([3.0, 4.0], dtype=torch.float64)
    opt = ClippedSGD([p], lr=1.0, max_norm=1.0)
    assert opt.last_grad_norm is None
    opt.step()
    assert float(opt.last_grad_norm) == 5.0
    assert float(opt.last_clip_coef) == pytest.approx(1.0 / (5.0 + 1e-6), rel=1e-14)
    torch.testing.assert_close(p.detach(), -torch.tensor([3.0, 4.0], dtype=torch.float64) / (5.0 + 1e-6))


def test_functional_step_does_not_sync(monkeypatch):
    """The functional core never calls .item()/float() on a tensor (no host-device sync)."""
    params, grads = _params(0), _grads_like(_params(0), 0)

    def boom(*a, **k):
        raise AssertionError("host sync")

    monkeypatch.setattr(torch.Tensor, "item", boom)
    monkeypatch.setattr(torch.Tensor, "__float__", boom)
    monkeypatch.setattr(torch.Tensor, "__bool__", boom)
    norm, coef = F.clipped_sgd_step(params, grads, [None] * 3, lr=0.1, max_norm=0.5, momentum=0.9)
    F.normalized_sgd_step(params, grads, lr=0.1, beta=0.5)
    assert isinstance(norm, torch.Tensor) and norm.dim() == 0 and coef.dim() == 0


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    cpu = [torch.nn.Parameter(p) for p in _params(0)]
    gpu = [torch.nn.Parameter(p.detach().clone().cuda()) for p in cpu]
    o1, o2 = (
        ClippedSGD(cpu, lr=0.1, max_norm=0.5, momentum=0.9),
        ClippedSGD(gpu, lr=0.1, max_norm=0.5, momentum=0.9, nonfinite="ignore"),
    )
    for k in range(10):
        grads = _grads_like(cpu, k, scale=4.0)
        for a, b, g in zip(cpu, gpu, grads):
            a.grad, b.grad = g.clone(), g.clone().cuda()
        o1.step(), o2.step()
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(a.detach(), b.detach().cpu(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("nu", [0.0, 0.5, 1.0])
def test_mixed_clipping_matches_reference(seed, nu):
    from clipcore.optim import MixedClippedSGD

    params = [torch.nn.Parameter(p) for p in _params(seed)]
    opt = MixedClippedSGD(params, lr=0.2, max_norm=0.3, beta=0.9, nu=nu)
    ref = [p.detach().numpy().copy() for p in params]
    avgs = [np.zeros_like(r) for r in ref]
    for k in range(30):
        grads = _grads_like(params, 11 * k + seed, scale=float(np.exp(2 * np.cos(k))))
        for p, g in zip(params, grads):
            p.grad = g.clone()  # the step scales .grad in place, as clip_grad_norm_ does
        opt.step()
        ref, avgs, _ = R.mixed_clipped_sgd_step(
            ref, [g.numpy() for g in grads], avgs, lr=0.2, max_norm=0.3, beta=0.9, nu=nu
        )
    for p, r in zip(params, ref):
        np.testing.assert_allclose(p.detach().numpy(), r, rtol=0, atol=1e-10)


def test_mixed_clipping_step_length_at_most_threshold_and_nu0_is_clipped_sgd():
    from clipcore.optim import MixedClippedSGD

    for nu in (0.0, 1.0):
        p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
        opt = MixedClippedSGD([p], lr=10.0, max_norm=0.5, nu=nu)
        for k in range(5):
            before = p.detach().clone()
            p.grad = torch.tensor([100.0, -50.0, 3.0], dtype=torch.float64) * (k + 1)
            opt.step()
            assert float((p.detach() - before).norm()) <= 0.5 + 1e-12
    # nu = 0: exactly the paper's clipped step h_c = min(eta, gamma / ||g||)
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    p.grad = torch.tensor([3.0, 4.0], dtype=torch.float64)
    MixedClippedSGD([p], lr=1.0, max_norm=1.0, nu=0.0).step()
    torch.testing.assert_close(p.detach(), -torch.tensor([0.6, 0.8], dtype=torch.float64))


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(lr=0.1, max_norm=None), "max_norm"),
        (dict(lr=0.1, max_norm=1.0, beta=1.0), "beta"),
        (dict(lr=0.1, max_norm=1.0, nu=1.5), "nu"),
        (dict(lr=0.0, max_norm=1.0), "learning rate"),
    ],
)
def test_mixed_clipping_rejects_bad_values(kwargs, name):
    from clipcore.optim import MixedClippedSGD

    with pytest.raises(ValueError, match=name):
        MixedClippedSGD([torch.nn.Parameter(torch.zeros(2))], **kwargs)
