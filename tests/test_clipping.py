"""The clippers of clipcore.clipping: parity with torch and the float64 oracle, properties in
loops over thresholds, state round trips, low precision, optimizers, and no host sync."""

import io
import math

import numpy as np
import pytest
import torch

from clipcore import clipping as C
from clipcore import clipping_reference as R

SHAPES = [(5, 3), (3,), (2, 2, 2), (), (4, 3, 2, 2), (1, 7)]


def _tensors(seed, shapes=SHAPES, scale=1.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [scale * torch.randn(s, generator=g, dtype=dtype) for s in shapes]


def _params(seed, shapes=SHAPES, grad_scale=1.0, dtype=torch.float64):
    ps = [torch.nn.Parameter(t) for t in _tensors(seed, shapes, dtype=dtype)]
    for p, g in zip(ps, _tensors(10_000 + seed, shapes, grad_scale, dtype)):
        p.grad = g
    return ps


def _np(tensors):
    return [t.detach().double().cpu().numpy() for t in tensors]


def _grads(ps):
    return [p.grad.detach().clone() for p in ps]


def _close(a, b, tol=1e-12):
    for x, y in zip(a, b):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=tol, atol=tol)


def _random_shapes(rng):
    return [
        tuple(int(d) for d in rng.integers(1, 5, size=rng.integers(0, 4))) for _ in range(rng.integers(1, 5))
    ]


# ---------------------------------------------------------------- global norm clipping


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("max_norm", [1e-3, 0.5, 3.0, 1e3])
def test_global_clip_matches_torch_clip_grad_norm(seed, max_norm):
    shapes = _random_shapes(np.random.default_rng(seed))
    a, b = _params(seed, shapes, 4.0), _params(seed, shapes, 4.0)
    n_ours = C.clip_by_global_norm_(a, max_norm)
    n_torch = torch.nn.utils.clip_grad_norm_(b, max_norm)
    assert n_ours.ndim == 0 and n_ours.dtype == torch.float64
    assert abs(float(n_ours) - float(n_torch)) <= 1e-10
    _close(_grads(a), _grads(b), 1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_global_clip_matches_reference(seed):
    ps = _params(seed, grad_scale=3.0)
    ref, ref_norm = R.clip_by_global_norm(_np(_grads(ps)), 1.5)
    norm = C.clip_by_global_norm_(ps, 1.5)
    assert float(norm) == pytest.approx(ref_norm, rel=1e-12)
    _close(_grads(ps), ref)


@pytest.mark.parametrize("seed", range(5))
def test_global_norm_after_clip_is_at_most_max_norm(seed):
    for max_norm in np.logspace(-4, 2, 13):
        ps = _params(seed, grad_scale=10.0)
        before = _np(_grads(ps))
        C.clip_by_global_norm_(ps, float(max_norm))
        after = _np(_grads(ps))
        assert R.global_norm(after) <= max_norm * (1 + 1e-12)
        # the direction is kept: a non-negative multiple of the original
        f0, f1 = np.concatenate([x.ravel() for x in before]), np.concatenate([x.ravel() for x in after])
        assert f0 @ f1 / (np.linalg.norm(f0) * np.linalg.norm(f1)) == pytest.approx(1.0, abs=1e-12)


def test_global_clip_leaves_small_gradients_and_clips_repeatedly_without_drift():
    ps = _params(0, grad_scale=1e-3)
    before = _grads(ps)
    norm = C.clip_by_global_norm_(ps, 10.0)
    assert float(norm) < 1.0
    _close(_grads(ps), before, 0.0)
    ps = _params(1, grad_scale=100.0)
    for _ in range(100):  # continuously clipping causes no numerical issue
        C.clip_by_global_norm_(ps, 0.7)
    assert R.global_norm(_np(_grads(ps))) == pytest.approx(0.7, rel=1e-5)


def test_global_norm_of_nothing_and_skipped_parameters():
    p = torch.nn.Parameter(torch.ones(3))
    assert float(C.clip_by_global_norm_([p], 1.0)) == 0.0
    q = torch.nn.Parameter(torch.ones(2))
    q.grad = torch.full((2,), 3.0)
    assert float(C.clip_by_global_norm_([p, q], 100.0)) == pytest.approx(math.sqrt(18))
    assert float(C.clip_by_global_norm_(q, 100.0)) == pytest.approx(math.sqrt(18))  # a single tensor


def test_global_norm_mixed_dtypes_accumulates_in_float64():
    a = torch.nn.Parameter(torch.zeros(3, dtype=torch.float32))
    b = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    a.grad, b.grad = torch.full((3,), 1.0 + 1e-7), torch.full((2,), 2.0, dtype=torch.float64)
    n = C.clip_by_global_norm_([a, b], 100.0)
    assert n.dtype == torch.float64
    a32 = float(torch.tensor(1.0 + 1e-7, dtype=torch.float32))
    assert float(n) == pytest.approx(math.sqrt(3 * a32**2 + 8), rel=1e-14)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_large_norm_is_finite(dtype):
    big = 6.0e4 if dtype == torch.float16 else 1.0e30  # finite in the dtype; squares are not
    ps = [torch.nn.Parameter(torch.ones(64, 64, dtype=dtype)) for _ in range(2)]
    for p in ps:
        p.grad = torch.full((64, 64), big, dtype=dtype)
    exact = big * math.sqrt(2 * 64 * 64)
    plain = torch.linalg.vector_norm(ps[0].grad)  # in the gradients' own dtype: overflows
    assert not torch.isfinite(plain)
    norm = C.clip_by_global_norm_(ps, 1.0)
    assert torch.isfinite(norm) and float(norm) == pytest.approx(exact, rel=1e-3)
    assert all(torch.isfinite(p.grad).all() for p in ps)
    assert R.global_norm(_np(_grads(ps))) == pytest.approx(1.0, rel=1e-2)


def test_bad_max_norm():
    with pytest.raises(ValueError, match="max_norm"):
        C.clip_by_global_norm_(_params(0), -1.0)
    with pytest.raises(ValueError, match="max_norm"):
        C.clip_by_global_norm_(_params(0), float("nan"))


# ---------------------------------------------------------------- AGC


def _agc_params(seed, grad_scale):
    ps = _params(seed, grad_scale=grad_scale)
    with torch.no_grad():
        ps[0][1].zero_()  # a unit with ||W_i|| below eps: its threshold is clipping * eps
        ps[4][0] *= 1e-5
    return ps


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("clipping", [0.01, 0.1, 1.0])
def test_agc_matches_reference(seed, clipping):
    for grad_scale in (1e-3, 0.1, 10.0):
        ps = _agc_params(seed, grad_scale)
        ref, ref_norm = R.adaptive_clip(_np(ps), _np(_grads(ps)), clipping)
        norm = C.adaptive_clip_(ps, clipping)
        assert float(norm) == pytest.approx(ref_norm, rel=1e-12)
        _close(_grads(ps), ref)


def test_agc_matches_reference_on_random_shapes():
    rng = np.random.default_rng(3)
    for seed in range(20):
        shapes = _random_shapes(rng)
        ps = _params(seed, shapes, grad_scale=float(rng.choice([1e-3, 1.0, 30.0])))
        eps = float(rng.choice([1e-3, 0.5]))
        ref, _ = R.adaptive_clip(_np(ps), _np(_grads(ps)), 0.05, eps)
        C.adaptive_clip_(ps, 0.05, eps)
        _close(_grads(ps), ref)


@pytest.mark.parametrize("seed", range(4))
def test_agc_each_unit_norm_is_at_most_its_threshold(seed):
    for clipping in np.logspace(-3, 0, 7):
        ps = _agc_params(seed, grad_scale=5.0)
        before = _np(_grads(ps))
        C.adaptive_clip_(ps, float(clipping))
        for w, g0, g1 in zip(_np(ps), before, _np(_grads(ps))):
            t = clipping * np.maximum(R.unitwise_norm(w), 1e-3)
            n0, n1 = R.unitwise_norm(g0), R.unitwise_norm(g1)
            assert np.all(n1 <= t * (1 + 1e-12))
            kept = np.broadcast_to(n0 < t, g0.shape)
            assert np.array_equal(g1[kept], g0[kept])  # units under the threshold untouched


def test_agc_units_are_rows_along_dim_0():
    w = torch.nn.Parameter(torch.ones(3, 4))
    w.grad = torch.full((3, 4), 0.1)
    w.grad[0] = 100.0  # only row 0 is above its threshold 0.5 * ||(1, 1, 1, 1)|| = 1
    C.adaptive_clip_([w], 0.5)
    assert torch.linalg.vector_norm(w.grad[0]).item() == pytest.approx(1.0)
    assert torch.equal(w.grad[1:], torch.full((2, 4), 0.1))
    b = torch.nn.Parameter(torch.ones(4))  # ndim 1: the whole vector is one unit
    b.grad = torch.tensor([10.0, 0.0, 0.0, 0.0])
    C.adaptive_clip_([b], 0.5)
    assert torch.allclose(b.grad, torch.tensor([1.0, 0.0, 0.0, 0.0]))


def test_agc_fp16_large_gradient_is_finite():
    w = torch.nn.Parameter(torch.ones(2, 4096, dtype=torch.float16))
    w.grad = torch.full((2, 4096), 6.0e4, dtype=torch.float16)
    norm = C.adaptive_clip_([w], 0.01)
    assert torch.isfinite(norm) and torch.isfinite(w.grad).all()
    assert float(torch.linalg.vector_norm(w.grad[0].float())) == pytest.approx(0.64, rel=1e-2)


def test_agc_bad_arguments():
    with pytest.raises(ValueError, match="clipping"):
        C.adaptive_clip_(_params(0), 0.0)
    with pytest.raises(ValueError, match="eps"):
        C.adaptive_clip_(_params(0), 0.1, eps=-1.0)


# ---------------------------------------------------------------- AutoClip


def _norm_stream(n, seed=0, spikes=(7, 19)):
    """Gradients whose norms wander, with a few large spikes."""
    rng = np.random.default_rng(seed)
    scales = np.exp(rng.normal(0.0, 0.5, size=n))
    for s in spikes:
        if s < n:
            scales[s] *= 50.0
    return [float(s) for s in scales]


@pytest.mark.parametrize("history", [None, 1, 5])
@pytest.mark.parametrize("percentile", [0.0, 10.0, 37.5, 50.0, 90.0, 100.0])
def test_autoclip_threshold_is_numpy_percentile_and_matches_reference(percentile, history):
    ours, ref = C.AutoClip(percentile, history), R.AutoClip(percentile, history)
    seen = []
    for t, scale in enumerate(_norm_stream(40)):
        ps = _params(t, grad_scale=scale)
        ref_grads, ref_norm = ref(_np(_grads(ps)))
        norm = ours(ps)
        seen.append(ref_norm)
        window = seen if history is None else seen[-history:]
        assert float(ours.threshold) == pytest.approx(np.percentile(window, percentile), rel=1e-12)
        assert float(norm) == pytest.approx(ref_norm, rel=1e-12)
        _close(_grads(ps), ref_grads)
        assert R.global_norm(_np(_grads(ps))) <= float(ours.threshold) * (1 + 1e-12)


def test_autoclip_percentile_of_matches_numpy():
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 10, 101):
        v = rng.exponential(size=n)
        for p in np.linspace(0, 100, 41):
            got = float(C.AutoClip.percentile_of(torch.tensor(v), float(p)))
            assert got == pytest.approx(np.percentile(v, p), rel=1e-13, abs=1e-15)


def test_autoclip_bad_arguments():
    with pytest.raises(ValueError, match="percentile"):
        C.AutoClip(101.0)
    with pytest.raises(ValueError, match="history"):
        C.AutoClip(10.0, history=0)


# ---------------------------------------------------------------- ZClip


@pytest.mark.parametrize("mode", C.ZCLIP_MODES)
@pytest.mark.parametrize("max_norm", [None, 2.0])
def test_zclip_matches_reference(mode, max_norm):
    ours, ref = (
        C.ZClip(warmup_steps=10, mode=mode, max_norm=max_norm),
        R.ZClip(warmup_steps=10, mode=mode, max_norm=max_norm),
    )
    for t, scale in enumerate(_norm_stream(60, spikes=(15, 16, 30, 45))):
        ps = _params(t, grad_scale=scale)
        ref_grads, ref_norm = ref(_np(_grads(ps)))
        norm = ours(ps)
        assert float(norm) == pytest.approx(ref_norm, rel=1e-12)
        _close(_grads(ps), ref_grads)
        if ref.mean is not None:
            assert float(ours.mean) == pytest.approx(ref.mean, rel=1e-12)
            assert float(ours.var) == pytest.approx(ref.var, rel=1e-12)


def test_zclip_no_clipping_during_warmup_then_statistics_of_the_warmup():
    for warmup in (1, 3, 25):
        z = C.ZClip(warmup_steps=warmup)
        norms = []
        for t, scale in enumerate(_norm_stream(warmup, spikes=(0,))):
            ps = _params(t, grad_scale=scale)
            before = _grads(ps)
            norms.append(float(z(ps)))
            _close(_grads(ps), before, 0.0)  # unchanged, spike or not
            assert z.initialized == (t + 1 == warmup)
        assert float(z.mean) == pytest.approx(np.mean(norms), rel=1e-12)
        assert float(z.var) == pytest.approx(np.var(norms), rel=1e-12)


def test_zclip_clips_a_spike_to_the_reciprocal_threshold_and_leaves_the_rest():
    z = C.ZClip(warmup_steps=4)
    for t, s in enumerate([1.0, 1.2, 0.8, 1.0]):
        z(_params(t, shapes=[(10,)], grad_scale=s))
    mean, std = float(z.mean), float(z.var) ** 0.5
    calm = _params(50, shapes=[(10,)], grad_scale=1.0)
    n_calm = R.global_norm(_np(_grads(calm)))
    assert (n_calm - mean) / (std + 1e-6) <= 2.5
    before = _grads(calm)
    z(calm)
    _close(_grads(calm), before, 0.0)
    mean, std = float(z.mean), float(z.var) ** 0.5
    spike = _params(51, shapes=[(10,)], grad_scale=100.0)
    n = float(z(spike))
    zs = (n - mean) / (std + 1e-6)
    assert zs > 2.5
    target = mean + 2.5**2 / zs * std
    assert R.global_norm(_np(_grads(spike))) == pytest.approx(target * n / (n + 1e-6), rel=1e-12)
    assert float(z.mean) == pytest.approx(0.97 * mean + 0.03 * target, rel=1e-12)


def test_zclip_bad_arguments():
    for kwargs, name in (
        ({"alpha": 1.0}, "alpha"),
        ({"z_thresh": 0.0}, "z_thresh"),
        ({"warmup_steps": 0}, "warmup_steps"),
        ({"mode": "zscore"}, "mode"),
        ({"max_norm": -1.0}, "max_norm"),
    ):
        with pytest.raises(ValueError, match=name):
            C.ZClip(**kwargs)


# ---------------------------------------------------------------- state round trips


def _make(kind):
    return {
        "autoclip": lambda: C.AutoClip(25.0),
        "autoclip_window": lambda: C.AutoClip(60.0, history=7),
        "zclip": lambda: C.ZClip(warmup_steps=6),
        "zclip_mean": lambda: C.ZClip(warmup_steps=6, mode="mean", max_norm=3.0),
    }[kind]()


@pytest.mark.parametrize("kind", ["autoclip", "autoclip_window", "zclip", "zclip_mean"])
@pytest.mark.parametrize("split", [0, 3, 6, 25])
def test_state_dict_round_trip_through_torch_load_weights_only(kind, split):
    stream = _norm_stream(45, spikes=(8, 30))
    a = _make(kind)
    for t in range(split):
        a(_params(t, grad_scale=stream[t]))
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = _make(kind)
    b.load_state_dict(torch.load(buf, weights_only=True))
    for t in range(split, len(stream)):
        pa, pb = _params(t, grad_scale=stream[t]), _params(t, grad_scale=stream[t])
        assert float(a(pa)) == float(b(pb))
        _close(_grads(pa), _grads(pb), 0.0)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        if isinstance(sa[k], torch.Tensor):
            assert torch.equal(sa[k], sb[k])
        else:
            assert sa[k] == sb[k]


def test_autoclip_state_loads_into_a_smaller_window_keeping_the_newest_norms():
    a = C.AutoClip(50.0)
    for t in range(30):
        a(_params(t, grad_scale=1.0 + t))
    b = C.AutoClip(50.0, history=4)
    b.load_state_dict(a.state_dict())
    assert torch.equal(b.state_dict()["norms"], a.state_dict()["norms"][-4:])
    assert a.state_dict()["norms"].numel() == 30  # the unbounded buffer grew past its first size


def test_state_dicts_refuse_inconsistent_input():
    with pytest.raises(ValueError, match="norms"):
        C.AutoClip(10.0).load_state_dict({"norms": torch.ones(5), "count": 2})
    with pytest.raises(ValueError, match="warmup_norms"):
        C.ZClip(warmup_steps=5).load_state_dict(
            {"step": 2, "warmup_norms": torch.ones(3), "mean": None, "var": None}
        )
    with pytest.raises(ValueError, match="mean"):
        C.ZClip(warmup_steps=2).load_state_dict(
            {"step": 4, "warmup_norms": torch.zeros(0), "mean": None, "var": None}
        )


# ---------------------------------------------------------------- with torch optimizers


def _clip_reference(kind, clipper_ref, params_np, grads_np):
    if kind == "global":
        return R.clip_by_global_norm(grads_np, 0.8)[0]
    if kind == "agc":
        return R.adaptive_clip(params_np, grads_np, 0.05)[0]
    return clipper_ref(grads_np)[0]


@pytest.mark.parametrize("kind", ["global", "agc", "autoclip", "zclip"])
@pytest.mark.parametrize("opt", ["sgd", "adamw"])
def test_clippers_drive_torch_optimizers_like_the_reference(kind, opt):
    """Ours + a torch optimizer equals (reference-clipped gradients) + the same optimizer."""
    make_opt = {
        "sgd": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-3),
        "adamw": lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.01),
    }[opt]
    clip = {
        "global": lambda ps: C.clip_by_global_norm_(ps, 0.8),
        "agc": lambda ps: C.adaptive_clip_(ps, 0.05),
        "autoclip": C.AutoClip(30.0),
        "zclip": C.ZClip(warmup_steps=5),
    }[kind]
    ref_clip = {"autoclip": R.AutoClip(30.0), "zclip": R.ZClip(warmup_steps=5)}.get(kind)
    a, b = _params(0), _params(0)
    oa, ob = make_opt(a), make_opt(b)
    stream = _norm_stream(20, spikes=(9, 14))
    for t in range(20):
        g = _tensors(500 + t, scale=stream[t])
        for pa, pb, gi in zip(a, b, g):
            pa.grad, pb.grad = gi.clone(), gi.clone()
        clip(a)
        for pb, gi in zip(b, _clip_reference(kind, ref_clip, _np(b), _np(_grads(b)))):
            pb.grad = torch.from_numpy(gi)
        oa.step()
        ob.step()
        _close(_np(a), _np(b), 1e-10)


# ---------------------------------------------------------------- no host-device sync


def _all_clippers():
    return [
        lambda ps: C.clip_by_global_norm_(ps, 0.5),
        lambda ps: C.adaptive_clip_(ps, 0.02),
        C.AutoClip(10.0),
        C.AutoClip(90.0, history=3),
        C.ZClip(warmup_steps=3),
        C.ZClip(warmup_steps=2, mode="max", max_norm=1.0),
    ]


def _forbid_host_reads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a tensor value was read on the host")

    for name in ("item", "__bool__", "__float__", "__int__", "__index__", "tolist", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, refuse)


def test_no_clipper_reads_a_tensor_value_on_the_host(monkeypatch):
    clippers = _all_clippers()
    batches = [_params(t, grad_scale=s) for t, s in enumerate(_norm_stream(12, spikes=(5, 9)))]
    with monkeypatch.context() as m:
        _forbid_host_reads(m)
        with pytest.raises(AssertionError, match="host"):
            bool(torch.tensor(1.0))  # the guard is live
        for clip in clippers:
            for ps in batches:
                clip(ps)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_clippers_match_cpu_and_do_not_synchronise():
    cpu, gpu = _all_clippers(), _all_clippers()
    stream = _norm_stream(12, spikes=(5, 9))
    torch.cuda.set_sync_debug_mode("error")
    try:
        for clip_c, clip_g in zip(cpu, gpu):
            for t, s in enumerate(stream):
                pc = _params(t, grad_scale=s, dtype=torch.float32)
                pg = [torch.nn.Parameter(p.detach().cuda()) for p in pc]
                for a, b in zip(pg, pc):
                    a.grad = b.grad.cuda()
                nc, ng = clip_c(pc), clip_g(pg)
                assert ng.device.type == "cuda"
                torch.cuda.set_sync_debug_mode(0)
                assert float(ng) == pytest.approx(float(nc), rel=1e-5)
                for a, b in zip(pg, pc):
                    torch.testing.assert_close(a.grad.cpu(), b.grad, rtol=1e-4, atol=1e-6)
                torch.cuda.set_sync_debug_mode("error")
    finally:
        torch.cuda.set_sync_debug_mode(0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_low_precision_foreach_norm_is_finite(dtype):
    big = 6.0e4 if dtype == torch.float16 else 1.0e30
    ps = [torch.nn.Parameter(torch.ones(256, 256, dtype=dtype, device="cuda")) for _ in range(3)]
    for p in ps:
        p.grad = torch.full_like(p, big)
    norm = C.clip_by_global_norm_(ps, 1.0)
    assert float(norm) == pytest.approx(big * math.sqrt(3 * 256 * 256), rel=1e-3)
    assert all(torch.isfinite(p.grad).all() for p in ps)
