"""clipcore.optim: every implementation against the float64 oracle and against torch, one norm
across parameter groups, non-finite steps skipped on the device, state round trips, mixed
precision, and no temporaries the size of a gradient."""

import io

import numpy as np
import pytest
import torch

from clipcore import functional as F
from clipcore import reference as R
from clipcore.optim import (
    ClippedSGD,
    MixedClippedSGD,
    NormalizedMomentumSGD,
    NormalizedSGD,
    SmoothedClippedSGD,
)

IMPLS = ["fused", "foreach", "loop"]
SHAPES = ((5, 3), (3,), (2, 2, 2), (4,))


@pytest.fixture(autouse=True)
def _one_thread():
    """Tensors here are tiny: a second thread only adds start-up cost to every kernel."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _params(seed, dtype=torch.float64, shapes=SHAPES):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=g, dtype=torch.float64).to(dtype)) for s in shapes]


def _grads(params, seed, scale=1.0):
    g = torch.Generator().manual_seed(10_000 + seed)
    return [(scale * torch.randn(p.shape, generator=g, dtype=torch.float64)).to(p.dtype) for p in params]


def _set(params, grads):
    for p, g in zip(params, grads):
        p.grad = g.clone()


def _scale(k):
    """Gradient scales from 0.05 to 20, so some steps are clipped and some are not."""
    return float(np.exp(3 * np.sin(k)))


# ---------------------------------------------------------------------------------------------
# Parity: torch and the float64 reference, every implementation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "max_norm,momentum,weight_decay", [(0.25, 0.0, 0.0), (1.0, 0.9, 0.0), (0.5, 0.9, 5e-3), (None, 0.9, 5e-3)]
)
def test_clipped_sgd_with_two_groups_matches_torch(impl, max_norm, momentum, weight_decay):
    """One global norm over both groups, as clip_grad_norm_(all parameters) computes it."""
    ours, theirs = _params(0), _params(0)
    groups = lambda ps: [dict(params=ps[:2]), dict(params=ps[2:], lr=0.02)]  # noqa: E731
    opt = ClippedSGD(
        groups(ours), lr=0.05, max_norm=max_norm, momentum=momentum, weight_decay=weight_decay, impl=impl
    )
    ref = torch.optim.SGD(groups(theirs), lr=0.05, momentum=momentum, weight_decay=weight_decay)
    for k in range(30):
        grads = _grads(ours, k, _scale(k))
        _set(ours, grads), _set(theirs, grads)
        opt.step()
        total = torch.nn.utils.clip_grad_norm_(theirs, max_norm if max_norm is not None else float("inf"))
        ref.step()
        assert float(opt.last_grad_norm) == pytest.approx(float(total), rel=1e-14)
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=0, atol=1e-10)
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=1e-12)  # .grad left clipped, as there


def _reference_step(name, kw, ref, grads, state, norm, m_norm=None):
    """One reference step of one group; returns the new parameters and state."""
    if name == "clipped":
        new, state, _ = R.clipped_sgd_step(ref, grads, state, norm=norm, **kw)
    elif name == "normalized":
        new, _ = R.normalized_sgd_step(ref, grads, norm=norm, **kw)
    elif name == "smoothed":
        new, state, _ = R.smoothed_clipped_sgd_step(ref, grads, state, norm=norm, **kw)
    elif name == "normalized_momentum":
        new, state, _ = R.normalized_momentum_sgd_step(ref, grads, state, m_norm=m_norm, **kw)
    else:
        new, state, _ = R.mixed_clipped_sgd_step(ref, grads, state, norm=norm, m_norm=m_norm, **kw)
    return new, state


OPTIMIZERS = {
    "clipped": (ClippedSGD, dict(max_norm=0.7, momentum=0.8, weight_decay=1e-3)),
    "normalized": (NormalizedSGD, dict(beta=0.1)),
    "smoothed": (SmoothedClippedSGD, dict(L0=1.0, L1=2.0, momentum=0.5, weight_decay=1e-3)),
    "normalized_momentum": (NormalizedMomentumSGD, dict(beta=0.8)),
    "mixed": (MixedClippedSGD, dict(max_norm=0.3, beta=0.9, nu=0.5)),
}


def _initial_state(name, params):
    if name in ("normalized_momentum", "mixed"):
        return [np.zeros(p.shape) for p in params]
    return [None] * len(params)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("per_group", [False, True])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_matches_the_reference(name, per_group, impl):
    """Two groups with different learning rates, 25 steps, to 1e-10 in float64."""
    cls, kw = OPTIMIZERS[name]
    params = _params(1)
    split = [params[:2], params[2:]]
    lrs = [0.1, 0.03]
    opt = cls(
        [dict(params=split[0]), dict(params=split[1], lr=lrs[1])],
        lr=lrs[0],
        per_group=per_group,
        impl=impl,
        **kw,
    )
    refs = [[p.detach().numpy().copy() for p in ps] for ps in split]
    states = [_initial_state(name, ps) for ps in split]
    momentum_method = name in ("normalized_momentum", "mixed")
    for k in range(25):
        grads = _grads(params, 7 * k + 1, _scale(k))
        _set(params, grads)
        opt.step()
        g_np = [[g.numpy() for g in grads[:2]], [g.numpy() for g in grads[2:]]]
        norms = [R.global_norm(g) for g in g_np]
        m_norms = [None, None]
        if momentum_method:
            m_new = [R.ema(s, g, kw["beta"]) for s, g in zip(states, g_np)]
            m_norms = [R.global_norm(m) for m in m_new]
        if not per_group:
            norms = [R.global_norm(g_np[0] + g_np[1])] * 2
            if momentum_method:
                m_norms = [R.global_norm(m_new[0] + m_new[1])] * 2
        for i in range(2):
            refs[i], states[i] = _reference_step(
                name, dict(kw, lr=lrs[i]), refs[i], g_np[i], states[i], norms[i], m_norms[i]
            )
        assert float(opt.last_grad_norm) == pytest.approx(R.global_norm(g_np[0] + g_np[1]), rel=1e-13)
        if per_group:
            np.testing.assert_allclose(
                opt.last_group_norms.numpy(), [R.global_norm(g) for g in g_np], rtol=1e-13
            )
    for ps, ref in zip(split, refs):
        for p, r in zip(ps, ref):
            np.testing.assert_allclose(p.detach().numpy(), r, rtol=0, atol=1e-10)


@pytest.mark.parametrize("impl", IMPLS)
def test_per_group_clipping_matches_torch_clipping_each_group(impl):
    ours, theirs = _params(2), _params(2)
    opt = ClippedSGD(
        [dict(params=ours[:2]), dict(params=ours[2:])], lr=0.1, max_norm=0.5, per_group=True, impl=impl
    )
    ref = torch.optim.SGD([dict(params=theirs[:2]), dict(params=theirs[2:])], lr=0.1)
    for k in range(10):
        grads = _grads(ours, k, 5.0)
        _set(ours, grads), _set(theirs, grads)
        opt.step()
        n1 = torch.nn.utils.clip_grad_norm_(theirs[:2], 0.5)
        n2 = torch.nn.utils.clip_grad_norm_(theirs[2:], 0.5)
        ref.step()
        torch.testing.assert_close(opt.last_group_norms, torch.stack([n1, n2]), rtol=1e-14, atol=0)
        assert opt.last_clip_coef.shape == (2,)
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("momentum,weight_decay", [(0.0, 0.0), (0.9, 5e-4)])
def test_float32_fused_matches_torch_fused(momentum, weight_decay):
    """The float32 path divides by a float32 grad_scale: equal to torch's fused SGD to rounding."""
    ours, theirs = _params(3, torch.float32), _params(3, torch.float32)
    opt = ClippedSGD(ours, lr=0.05, max_norm=0.5, momentum=momentum, weight_decay=weight_decay, impl="fused")
    ref = torch.optim.SGD(theirs, lr=0.05, momentum=momentum, weight_decay=weight_decay, fused=True)
    for k in range(20):
        grads = _grads(ours, k, _scale(k))
        _set(ours, grads), _set(theirs, grads)
        opt.step()
        torch.nn.utils.clip_grad_norm_(theirs, 0.5)
        ref.step()
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("impl", IMPLS)
def test_float32_close_to_the_reference(name, impl):
    cls, kw = OPTIMIZERS[name]
    params = _params(4, torch.float32)
    opt = cls(params, lr=0.05, impl=impl, **kw)
    ref, state = [p.detach().double().numpy() for p in params], _initial_state(name, params)
    for k in range(10):
        grads = _grads(params, k, _scale(k))
        _set(params, grads)
        opt.step()
        g = [x.double().numpy() for x in grads]
        m = R.global_norm(R.ema(state, g, kw["beta"])) if name in ("normalized_momentum", "mixed") else None
        ref, state = _reference_step(name, dict(kw, lr=0.05), ref, g, state, R.global_norm(g), m)
    for p, r in zip(params, ref):
        np.testing.assert_allclose(p.detach().double().numpy(), r, rtol=1e-5, atol=1e-6)


def test_non_contiguous_parameters_take_the_foreach_path():
    ours = [
        torch.nn.Parameter(torch.randn(4, 3, dtype=torch.float64).t()),
        torch.nn.Parameter(torch.randn(5)),
    ]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    assert not ours[0].is_contiguous()
    _set(ours, _grads(ours, 0))
    with pytest.raises(RuntimeError, match="fused"):
        ClippedSGD(ours, lr=0.1, max_norm=0.3, impl="fused").step()
    opt = ClippedSGD(ours, lr=0.1, max_norm=0.3, momentum=0.9)
    ref = torch.optim.SGD(theirs, lr=0.1, momentum=0.9)
    for k in range(5):
        grads = _grads(ours, k, 3.0)
        _set(ours, grads), _set(theirs, grads)
        opt.step()
        torch.nn.utils.clip_grad_norm_(theirs, 0.3)
        ref.step()
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p.detach(), q.detach().to(p.dtype), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


def _step_length(opt, params, grads):
    before = [p.detach().clone() for p in params]
    _set(params, grads)
    opt.step()
    return float(torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(params, before))))


@pytest.mark.parametrize("max_norm", [0.01, 0.5, 3.0])
def test_global_clipping_bounds_the_step_whatever_the_grouping(max_norm):
    """||x_{k+1} - x_k|| <= lr * max_norm with one norm over all groups; not so per group."""
    for seed in range(5):
        for per_group, bounded in [(False, True), (True, False)]:
            params = _params(seed)
            opt = ClippedSGD(
                [dict(params=[p]) for p in params], lr=0.1, max_norm=max_norm, per_group=per_group
            )
            length = _step_length(opt, params, _grads(params, seed, scale=50.0))
            assert (length <= 0.1 * max_norm * (1 + 1e-12)) == bounded
            if per_group:  # each of the 4 groups moves lr * max_norm: twice the bound in all
                assert length == pytest.approx(2 * 0.1 * max_norm, rel=1e-5)


@pytest.mark.parametrize("L0,L1", [(1.0, 1.0), (0.1, 10.0), (10.0, 0.5), (0.0, 2.0), (3.0, 0.0)])
def test_smoothed_step_length(L0, L1):
    """||dx|| = lr ||g|| / (L0 + L1 ||g||) <= lr / L1, for gradients from tiny to huge."""
    lr = 0.3
    for k, scale in enumerate([1e-8, 1e-3, 1.0, 1e3, 1e8]):
        params = _params(k)
        grads = _grads(params, k, scale)
        opt = SmoothedClippedSGD(params, lr=lr, L0=L0, L1=L1)
        n = R.global_norm([g.numpy() for g in grads])
        length = _step_length(opt, params, grads)
        assert length == pytest.approx(lr * n / (L0 + L1 * n), rel=1e-12)
        if L1 > 0:
            assert length <= lr / L1 * (1 + 1e-12)
        assert float(opt.last_clip_coef) == pytest.approx(1 / (L0 + L1 * n), rel=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
def test_zero_gradient_takes_no_step_and_makes_no_nan(impl):
    for cls, kw in [
        (SmoothedClippedSGD, dict(L0=0.0, L1=1.0)),
        (NormalizedMomentumSGD, dict(beta=0.9)),
        (MixedClippedSGD, dict(max_norm=1.0)),
        (NormalizedSGD, dict(beta=1e-3)),
        (ClippedSGD, dict(max_norm=1.0)),
    ]:
        params = _params(0)
        before = [p.detach().clone() for p in params]
        opt = cls(params, lr=0.5, impl=impl, **kw)
        _set(params, [torch.zeros_like(p) for p in params])
        opt.step()
        for p, b in zip(params, before):
            assert torch.equal(p.detach(), b), cls.__name__
        assert int(opt.skipped_steps) == 0


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("per_group", [False, True])
def test_normalized_momentum_step_length_is_exactly_lr(impl, per_group):
    params = _params(5)
    groups = [dict(params=params[:2]), dict(params=params[2:])]
    opt = NormalizedMomentumSGD(groups, lr=0.25, beta=0.9, per_group=per_group, impl=impl)
    for k in range(20):
        before = [p.detach().clone() for p in params]
        _set(params, _grads(params, k, _scale(k)))
        opt.step()
        moves = [float(torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(ps, bs))))
                 for ps, bs in [(params[:2], before[:2]), (params[2:], before[2:])]]  # fmt: skip
        if per_group:  # each group moves lr
            assert moves == pytest.approx([0.25, 0.25], rel=1e-12)
        else:  # all groups together move lr
            assert float(np.hypot(*moves)) == pytest.approx(0.25, rel=1e-12)


def test_normalized_sgd_and_mixed_use_one_norm_across_groups():
    """The same parameters in one group or in four give the same step."""
    for cls, kw in [(NormalizedSGD, dict(beta=0.1)), (MixedClippedSGD, dict(max_norm=0.2, nu=0.7))]:
        one, four = _params(6), _params(6)
        o1 = cls(one, lr=0.1, **kw)
        o4 = cls([dict(params=[p]) for p in four], lr=0.1, **kw)
        for k in range(5):
            grads = _grads(one, k, 4.0)
            _set(one, grads), _set(four, grads)
            o1.step(), o4.step()
        for p, q in zip(one, four):
            torch.testing.assert_close(p.detach(), q.detach(), rtol=0, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# Low precision
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", ["auto", "foreach", "loop"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_finite_low_precision_gradients_have_a_finite_norm(dtype, impl):
    """100 000 entries of 300: a norm of 94 868, above float16's largest value (65 504)."""
    p = torch.nn.Parameter(torch.zeros(100_000, dtype=dtype))
    p.grad = torch.full((100_000,), 300.0, dtype=dtype)
    opt = ClippedSGD([p], lr=1.0, max_norm=1.0, impl=impl)
    opt.step()
    exact = 300.0 * np.sqrt(100_000)
    assert opt.last_grad_norm.dtype == torch.float32
    assert float(opt.last_grad_norm) == pytest.approx(exact, rel=1e-3)
    assert int(opt.skipped_steps) == 0
    step = float(p.detach().float().norm())
    assert step == pytest.approx(1.0, rel=1e-2)  # clipped to max_norm, not skipped


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_on_the_cpu_refuses_the_fused_kernel_and_matches_the_reference(dtype):
    params = _params(4, dtype)
    with pytest.raises(RuntimeError, match="float32 or float64 on the CPU"):
        _set(params, _grads(params, 0))
        ClippedSGD(params, lr=0.1, max_norm=0.5, impl="fused").step()
    opt = ClippedSGD(params, lr=0.1, max_norm=0.5, momentum=0.9, weight_decay=1e-2)
    ref, bufs = [p.detach().double().numpy() for p in params], [None] * len(params)
    for k in range(5):
        grads = _grads(params, k, _scale(k))
        _set(params, grads)
        opt.step()
        g = [x.double().numpy() for x in grads]
        ref, bufs, _ = R.clipped_sgd_step(ref, g, bufs, lr=0.1, max_norm=0.5, momentum=0.9, weight_decay=1e-2)
    for p, r in zip(params, ref):
        np.testing.assert_allclose(p.detach().double().numpy(), r, rtol=0.03, atol=0.03)


def test_global_norm_of_mixed_dtypes_accumulates_wide():
    ts = [torch.full((10,), 3e4, dtype=torch.float16), torch.ones(3, dtype=torch.float64)]
    n = F.global_norm(ts)
    assert n.dtype == torch.float64 and float(n) == pytest.approx(np.sqrt(10 * 9e8 + 3), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Non-finite steps and synchronisation
# ---------------------------------------------------------------------------------------------


def _state_tensors(opt):
    return [t.clone() for st in opt.state.values() for t in st.values() if isinstance(t, torch.Tensor)]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_skipped_step_changes_nothing(name, impl):
    """A NaN or inf gradient leaves parameters and state untouched, and the next finite step is
    exactly the step an optimizer that never saw the bad gradient takes."""
    cls, kw = OPTIMIZERS[name]
    a, b = _params(7), _params(7)
    oa, ob = cls(a, lr=0.1, impl=impl, **kw), cls(b, lr=0.1, impl=impl, **kw)
    for k in range(3):
        grads = _grads(a, k, 2.0)
        _set(a, grads), _set(b, grads)
        oa.step(), ob.step()
    before, state = [p.detach().clone() for p in a], _state_tensors(oa)
    for bad in (float("nan"), float("inf"), -float("inf")):
        grads = _grads(a, 99, 2.0)
        grads[1][0] = bad
        _set(a, grads)
        oa.step()
        for p, x in zip(a, before):
            assert torch.equal(p.detach(), x)
        for s, t in zip(_state_tensors(oa), state):
            assert torch.equal(s, t)
    assert int(oa.skipped_steps) == 3 and int(ob.skipped_steps) == 0
    assert not torch.isfinite(oa.last_grad_norm)
    grads = _grads(a, 5, 2.0)
    _set(a, grads), _set(b, grads)
    oa.step(), ob.step()
    for p, q in zip(a, b):
        assert torch.equal(p.detach(), q.detach())


def _forbid_host_reads(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("host sync")

    for name in ("item", "__float__", "__bool__", "__int__", "__index__", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, boom)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("nonfinite", ["skip", "ignore"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_step_reads_no_device_value_on_the_host(name, nonfinite, impl, monkeypatch):
    """On the CPU the stand-in for a host-device sync is any read of a tensor's value in Python."""
    cls, kw = OPTIMIZERS[name]
    params = _params(8)
    opt = cls(
        [dict(params=params[:2]), dict(params=params[2:], lr=0.01)],
        lr=0.1,
        nonfinite=nonfinite,
        impl=impl,
        **kw,
    )
    grads = _grads(params, 0)
    grads[0][0, 0] = float("nan")
    _forbid_host_reads(monkeypatch)
    for g in (grads, _grads(params, 1)):
        _set(params, g)
        opt.step()
    monkeypatch.undo()
    assert int(opt.skipped_steps) == (1 if nonfinite == "skip" else 0)


def test_raise_mode_synchronises_and_raises(monkeypatch):
    params = _params(9)
    _set(params, _grads(params, 0))
    opt = ClippedSGD(params, lr=0.1, max_norm=1.0, nonfinite="raise")
    _forbid_host_reads(monkeypatch)
    with pytest.raises(AssertionError, match="host sync"):
        opt.step()
    monkeypatch.undo()
    params[0].grad[0, 0] = float("inf")
    with pytest.raises(FloatingPointError, match="non-finite gradient norm inf"):
        opt.step()


def test_functional_steps_read_no_device_value_on_the_host(monkeypatch):
    params = [p.detach() for p in _params(0)]
    grads = _grads(params, 0)
    avgs = [torch.zeros_like(p) for p in params]
    found = torch.tensor(0.0)
    _forbid_host_reads(monkeypatch)
    for impl in IMPLS:
        F.clipped_sgd_step(
            params, grads, [None] * 4, lr=0.1, max_norm=0.5, momentum=0.9, found_inf=found, impl=impl
        )
        F.normalized_sgd_step(params, grads, lr=0.1, beta=0.5, impl=impl)
        F.smoothed_clipped_sgd_step(params, grads, lr=0.1, L0=1.0, L1=1.0, found_inf=found, impl=impl)
        F.normalized_momentum_sgd_step(params, grads, avgs, lr=0.1, beta=0.9, found_inf=found, impl=impl)
        F.mixed_clipped_sgd_step(params, grads, avgs, lr=0.1, max_norm=1.0, beta=0.9, nu=0.5, impl=impl)


# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------


def test_skipped_steps_survives_state_dict_and_safe_loading():
    params = _params(0)
    opt = ClippedSGD(params, lr=0.1, max_norm=1.0, momentum=0.9)
    for bad in (True, True, False):
        grads = _grads(params, 0)
        if bad:
            grads[0][0, 0] = float("nan")
        _set(params, grads)
        opt.step()
    assert isinstance(opt.skipped_steps, torch.Tensor) and opt.skipped_steps.dtype == torch.int64
    loaded = _through_a_file(opt.state_dict())
    again = ClippedSGD(_params(0), lr=0.1, max_norm=1.0, momentum=0.9)
    again.load_state_dict(loaded)
    assert int(again.skipped_steps) == 2
    # a state dict from before the counter existed loads with a count of zero
    old = {k: v for k, v in opt.state_dict().items() if k != "skipped_steps"}
    fresh = ClippedSGD(_params(0), lr=0.1, max_norm=1.0, momentum=0.9)
    fresh.load_state_dict(old)
    assert int(fresh.skipped_steps) == 0


def _through_a_file(state):
    """What a checkpoint does: save, then load safely (also: no tensor shared with the source)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dict_round_trip_continues_exactly(name):
    cls, kw = OPTIMIZERS[name]
    a = _params(10)
    oa = cls(a, lr=0.1, **kw)
    for k in range(4):
        _set(a, _grads(a, k, _scale(k)))
        oa.step()
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    ob = cls(b, lr=0.1, **kw)
    ob.load_state_dict(_through_a_file(oa.state_dict()))
    for k in range(4, 8):
        grads = _grads(a, k, _scale(k))
        _set(a, grads), _set(b, grads)
        oa.step(), ob.step()
    for p, q in zip(a, b):
        assert torch.equal(p.detach(), q.detach())


def test_momentum_buffers_are_torch_compatible():
    """ClippedSGD's per-parameter state is torch.optim.SGD's: momentum buffers move between them."""
    ours, theirs = _params(11), _params(11)
    opt = ClippedSGD(ours, lr=0.1, momentum=0.9)
    _set(ours, _grads(ours, 0))
    opt.step()
    sgd = torch.optim.SGD(theirs, lr=0.1, momentum=0.9)
    state = _through_a_file(opt.state_dict())["state"]
    sgd.load_state_dict({"state": state, "param_groups": sgd.state_dict()["param_groups"]})
    grads = _grads(ours, 1)
    _set(ours, grads), _set(theirs, grads)
    for p, q in zip(ours, theirs):
        q.data.copy_(p.detach())
    opt.step(), sgd.step()
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=0, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# Mixed precision (GradScaler) and memory
# ---------------------------------------------------------------------------------------------


def _scaled_run(unscale_first, nonfinite="skip", overflow_at=None):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = ClippedSGD(model.parameters(), lr=0.1, max_norm=0.5, momentum=0.9, nonfinite=nonfinite)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12) if unscale_first is not None else None
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    for k in range(6):
        opt.zero_grad()
        loss = model(x).pow(2).mean()
        if scaler is None:
            loss.backward()
            opt.step()
            continue
        scaler.scale(loss).backward()
        if k == overflow_at:
            next(model.parameters()).grad[0, 0] = float("inf")
        if unscale_first:
            scaler.unscale_(opt)
        scaler.step(opt)
        scaler.update()
    return model, opt, scaler


@pytest.mark.parametrize("unscale_first", [True, False])
def test_grad_scaler_steps_equal_unscaled_steps(unscale_first):
    plain, _, _ = _scaled_run(None)
    scaled, opt, _ = _scaled_run(unscale_first)
    for p, q in zip(plain.parameters(), scaled.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert int(opt.skipped_steps) == 0


@pytest.mark.parametrize("nonfinite", ["skip", "raise", "ignore"])
def test_grad_scaler_overflow_is_skipped_on_the_device(nonfinite):
    _, opt, scaler = _scaled_run(True, nonfinite=nonfinite, overflow_at=2)
    assert int(opt.skipped_steps) == 1
    assert scaler.get_scale() == 2.0**11  # the scaler saw the overflow and backed off
    assert all(torch.isfinite(p).all() for g in opt.param_groups for p in g["params"])


def _allocated_bytes(fn) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    return sum(e.cpu_memory_usage for e in prof.events() if e.cpu_memory_usage > 0)


@pytest.mark.parametrize("impl", ["fused", "foreach"])
def test_a_step_allocates_no_gradient_sized_temporary(impl):
    params = _params(0, torch.float32, shapes=((256, 256), (256,), (128, 512)))
    size = sum(p.numel() * p.element_size() for p in params)
    ours = ClippedSGD(params, lr=0.1, max_norm=0.5, momentum=0.9, weight_decay=5e-4, impl=impl)
    theirs = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4, foreach=True)
    _set(params, _grads(params, 0))
    ours.step(), theirs.step()  # momentum buffers exist from here on
    assert _allocated_bytes(ours.step) < 0.02 * size
    # the measurement sees the temporary of torch's weight decay (and so could fail above)
    assert _allocated_bytes(theirs.step) >= size


# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls,kwargs,name",
    [
        (ClippedSGD, dict(lr=0.1, impl="fast"), "impl"),
        (ClippedSGD, dict(lr=0.1, per_group="yes"), "per_group"),
        (ClippedSGD, dict(lr=0.1, nonfinite="maybe"), "nonfinite"),
        (SmoothedClippedSGD, dict(lr=0.1, L0=-1.0, L1=1.0), "L0"),
        (SmoothedClippedSGD, dict(lr=0.1, L0=1.0, L1=float("inf")), "L1"),
        (SmoothedClippedSGD, dict(lr=0.1, L0=0.0, L1=0.0), "L1"),
        (SmoothedClippedSGD, dict(lr=0.0, L0=1.0, L1=1.0), "learning rate"),
        (SmoothedClippedSGD, dict(lr=0.1, L0=1.0, L1=1.0, momentum=1.0), "momentum"),
        (NormalizedMomentumSGD, dict(lr=0.1, beta=1.0), "beta"),
        (NormalizedMomentumSGD, dict(lr=0.1, beta=-0.1), "beta"),
        (NormalizedMomentumSGD, dict(lr=-0.1), "learning rate"),
        (NormalizedSGD, dict(lr=0.1, beta=1.0, impl="cuda"), "impl"),
    ],
)
def test_rejects_bad_values(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls([torch.nn.Parameter(torch.zeros(2))], **kwargs)


def test_fused_on_a_device_without_the_kernel_is_an_error():
    p = torch.nn.Parameter(torch.zeros(3, device="meta"))
    p.grad = torch.zeros(3, device="meta")
    with pytest.raises(RuntimeError, match="impl='fused'"):
        F.scaled_sgd_step_([p], [p.grad], None, None, lr=0.1, impl="fused")


def test_sparse_gradients_are_refused():
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.zeros(3).to_sparse()
    with pytest.raises(RuntimeError, match="sparse"):
        ClippedSGD([p], lr=0.1).step()


# ---------------------------------------------------------------------------------------------
# CUDA
# ---------------------------------------------------------------------------------------------

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cuda_matches_the_cpu_without_syncing(name, impl, dtype):
    cls, kw = OPTIMIZERS[name]
    cpu = _params(12, dtype)
    gpu = [torch.nn.Parameter(p.detach().clone().cuda()) for p in cpu]
    o_cpu, o_gpu = cls(cpu, lr=0.1, impl=impl, **kw), cls(gpu, lr=0.1, impl=impl, **kw)
    for k in range(10):
        grads = _grads(cpu, k, _scale(k))
        if k == 4:
            grads[2][0, 0, 0] = float("nan")
        _set(cpu, grads), _set(gpu, [g.cuda() for g in grads])
        o_cpu.step()
        torch.cuda.set_sync_debug_mode("error")
        try:
            o_gpu.step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    tol = dict(rtol=0, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(a.detach(), b.detach().cpu(), **tol)
    assert int(o_gpu.skipped_steps) == 1 and o_gpu.skipped_steps.device.type == "cuda"


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_low_precision_norm_is_finite(dtype):
    p = torch.nn.Parameter(torch.zeros(100_000, dtype=dtype, device="cuda"))
    p.grad = torch.full((100_000,), 300.0, dtype=dtype, device="cuda")
    opt = ClippedSGD([p], lr=1.0, max_norm=1.0)
    opt.step()
    assert float(opt.last_grad_norm) == pytest.approx(300.0 * np.sqrt(100_000), rel=1e-3)
    assert int(opt.skipped_steps) == 0


@pytest.mark.cuda
@cuda
def test_cuda_grad_scaler_does_not_sync():
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1).cuda()
    opt = ClippedSGD(model.parameters(), lr=0.1, max_norm=0.5, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda")
    x = torch.randn(16, 8, device="cuda")
    for _ in range(3):
        opt.zero_grad()
        with torch.autocast("cuda", dtype=torch.float16):
            loss = model(x).float().pow(2).mean()
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.cuda.set_sync_debug_mode("error")
        try:
            scaler.step(opt)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        scaler.update()
    assert all(torch.isfinite(p).all() for p in model.parameters())
