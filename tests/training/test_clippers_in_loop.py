"""Tests of the clipping methods in the training loop (clipcore.training.methods): every
optimizer choice and clipper trains, its ``clipped`` flag and ``clip_threshold`` follow its
rule (checked against the float64 oracle of clipcore.clipping_reference where there is one),
its closed-form step length is the measured displacement, a resumed run equals an
uninterrupted one with the clipper's state, and the step probe sees the unclipped gradient."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from clipcore import clipping_reference as R
from clipcore.training import RunStore, TrainConfig, train
from clipcore.training import loop as L
from clipcore.training import methods as Mth
from clipcore.training.tasks import Batch

from .tiny import StepCounter, assert_tables_equal, lstm_cfg, tables

# One config per method of the comparison chapter, on the tiny LSTM.
METHODS = {
    "sgd": dict(optimizer="sgd", max_norm=None, lr=2.0),
    "clipped_sgd": dict(optimizer="clipped_sgd", max_norm=0.1, lr=20.0),
    "agc": dict(optimizer="sgd", max_norm=None, lr=20.0, clipper="agc", agc_clipping=0.05),
    "autoclip": dict(optimizer="sgd", max_norm=None, lr=20.0, clipper="autoclip", autoclip_percentile=25.0),
    "zclip": dict(optimizer="sgd", max_norm=None, lr=2.0, clipper="zclip", zclip_z=1.0, zclip_warmup=5),
    "smoothed": dict(optimizer="smoothed_clipped_sgd", max_norm=None, lr=5.0, L0=0.25, L1=1.0),
    "nmsgd": dict(optimizer="normalized_momentum_sgd", max_norm=None, lr=0.5, avg_beta=0.9),
    "mixed": dict(optimizer="mixed_clipped_sgd", max_norm=0.1, lr=20.0, avg_beta=0.9, nu=1.0),
    "mixed_half": dict(optimizer="mixed_clipped_sgd", max_norm=0.1, lr=20.0, avg_beta=0.9, nu=0.5),
}


def cfg_of(method, **kw):
    return lstm_cfg(**{**METHODS[method], "probe_every": None, "lr_halve_patience": None, **kw})


def metrics(tmp_path, method, **kw):
    return train(cfg_of(method, **kw), RunStore(tmp_path), progress=False).table()


# --------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, value",
    [
        ("clipper", "adaclip"),
        ("agc_clipping", 0.0),
        ("autoclip_percentile", 101.0),
        ("zclip_z", -1.0),
        ("zclip_alpha", 1.0),
        ("zclip_warmup", 0),
        ("L0", -1.0),
        ("avg_beta", 1.0),
        ("nu", 1.5),
        ("optimizer", "adam"),
    ],
)
def test_bad_values_raise_naming_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        lstm_cfg(**{key: value})


def test_cross_field_rules():
    with pytest.raises(ValueError, match="clipper"):
        lstm_cfg(clipper="agc")  # with clipped_sgd
    with pytest.raises(ValueError, match="max_norm"):
        lstm_cfg(optimizer="mixed_clipped_sgd", max_norm=None)
    with pytest.raises(ValueError, match="max_norm"):
        lstm_cfg(optimizer="smoothed_clipped_sgd", max_norm=0.25)
    with pytest.raises(ValueError, match="L0/L1"):
        lstm_cfg(optimizer="smoothed_clipped_sgd", max_norm=None, L0=0.0, L1=0.0)
    for opt in ("normalized_momentum_sgd", "mixed_clipped_sgd"):
        with pytest.raises(ValueError, match="momentum"):
            lstm_cfg(**{**METHODS["mixed" if opt == "mixed_clipped_sgd" else "nmsgd"], "momentum": 0.9})
    lstm_cfg(optimizer="sgd", max_norm=None, clipper="zclip")  # valid


def test_defaults_leave_existing_configs_unchanged():
    cfg = lstm_cfg()
    assert cfg.clipper is None and cfg.optimizer == "clipped_sgd"
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


# --------------------------------------------------------------------------------------
# Every method trains; its clipped flag and threshold follow its rule
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_trains_and_logs_its_threshold(tmp_path, method):
    m = metrics(tmp_path, method, epochs=1)
    assert {"clipped", "clip_threshold", "step_length"} <= set(m)
    assert np.all(np.isfinite(m["loss"])) and np.all(m["step_length"] > 0)
    # Trains: the last steps' loss is below the first's.
    assert m["loss"][-3:].mean() < m["loss"][0]


def test_fixed_and_mixed_thresholds(tmp_path):
    for method, gamma in (("clipped_sgd", 0.3), ("mixed", 0.08)):
        m = metrics(tmp_path, method, max_norm=gamma)
        np.testing.assert_allclose(m["clip_threshold"], gamma, rtol=1e-7)
        g, lr, length, clipped = m["grad_norm"], m["lr"], m["step_length"], m["clipped"].astype(bool)
        assert clipped.any() and not clipped.all()
        if method == "clipped_sgd":
            np.testing.assert_array_equal(clipped, g > gamma)
        else:  # clipped on the momentum average: its step is lr min(||m||, gamma)
            np.testing.assert_allclose(length[clipped], lr[clipped] * gamma, rtol=1e-5)
            assert np.all(length[~clipped] < lr[~clipped] * gamma * (1 + 1e-6))


def test_plain_sgd_never_clips(tmp_path):
    m = metrics(tmp_path, "sgd", epochs=1)
    assert not m["clipped"].any() and np.all(np.isnan(m["clip_threshold"]))


def test_smoothed_threshold_is_L0_over_L1(tmp_path):
    cfg = cfg_of("smoothed")
    m = metrics(tmp_path, "smoothed")
    g, lr = m["grad_norm"], m["lr"]
    np.testing.assert_allclose(m["clip_threshold"], cfg.L0 / cfg.L1)
    np.testing.assert_array_equal(m["clipped"].astype(bool), g > cfg.L0 / cfg.L1)
    assert m["clipped"].any() and not m["clipped"].all()
    np.testing.assert_allclose(m["step_length"], lr * g / (cfg.L0 + cfg.L1 * g), rtol=1e-5)


def test_normalized_momentum_steps_have_length_lr(tmp_path):
    m = metrics(tmp_path, "nmsgd")
    assert m["clipped"].all()
    np.testing.assert_allclose(m["step_length"], m["lr"], rtol=1e-6)


def test_autoclip_threshold_is_the_percentile_of_the_norms_so_far(tmp_path):
    m = metrics(tmp_path, "autoclip")
    g, thr, clipped = m["grad_norm"], m["clip_threshold"], m["clipped"].astype(bool)
    ref = np.array([np.percentile(g[: t + 1], 25.0) for t in range(g.size)])
    np.testing.assert_allclose(thr, ref, rtol=1e-5)
    np.testing.assert_array_equal(clipped, g > thr)
    assert clipped.any() and not clipped.all()
    # The step SGD takes on the clipped gradient: lr min(1, thr / (||g|| + eps)) ||g||.
    coef = np.minimum(1.0, thr / (g + 1e-6))
    np.testing.assert_allclose(m["step_length"], m["lr"] * coef * g, rtol=1e-4)


def test_zclip_threshold_follows_the_reference(tmp_path):
    cfg = cfg_of("zclip")
    m = metrics(tmp_path, "zclip")
    g, thr, clipped = m["grad_norm"], m["clip_threshold"], m["clipped"].astype(bool)
    ref = R.ZClip(alpha=cfg.zclip_alpha, z_thresh=cfg.zclip_z, warmup_steps=cfg.zclip_warmup)
    want = []
    for norm in g:
        if ref.step < ref.warmup_steps:
            want.append(math.nan)
        else:
            want.append(ref.mean + ref.z_thresh * (math.sqrt(ref.var) + ref.eps))
        # The reference clipper updates its statistics from the norm alone.
        ref([np.array([norm])])
    want = np.array(want)
    assert np.all(np.isnan(thr[: cfg.zclip_warmup])) and not clipped[: cfg.zclip_warmup].any()
    np.testing.assert_allclose(thr[cfg.zclip_warmup :], want[cfg.zclip_warmup :], rtol=1e-4)
    np.testing.assert_array_equal(
        clipped[cfg.zclip_warmup :], g[cfg.zclip_warmup :] > thr[cfg.zclip_warmup :]
    )
    assert clipped.any() and not clipped.all()
    assert np.all(m["step_length"][clipped] < m["lr"][clipped] * g[clipped] * (1 - 1e-4))


def test_agc_clips_by_units(tmp_path):
    small = metrics(tmp_path, "agc", epochs=1)
    assert np.all(np.isnan(small["clip_threshold"]))
    assert small["clipped"].all()  # lambda 0.05: some unit exceeds its threshold
    assert np.all(small["step_length"] < small["lr"] * small["grad_norm"])
    # A lambda no unit reaches: never clipped, exactly plain SGD.
    loose = metrics(tmp_path, "agc", epochs=1, agc_clipping=1e6)
    plain = metrics(tmp_path, "sgd", epochs=1, lr=cfg_of("agc").lr)
    assert not loose["clipped"].any()
    for col in ("loss", "grad_norm", "step_length"):
        np.testing.assert_array_equal(loose[col], plain[col])


# --------------------------------------------------------------------------------------
# The step: closed-form lengths, hook order, the probe's gradient
# --------------------------------------------------------------------------------------


class _Quadratic:
    """A stand-in task for _train_step: f(x) = sum_i c_i x_i^2 / 2 on two parameters."""

    def __init__(self):
        torch.manual_seed(0)
        self.a = torch.nn.Parameter(torch.randn(5, 3))
        self.b = torch.nn.Parameter(torch.randn(4))
        self.params = [self.a, self.b]

    def loss(self, batch):
        f = 0.5 * (3.0 * self.a.square().sum() + 0.2 * self.b.square().sum())
        return f, f, 1, None


@pytest.mark.parametrize("method", sorted(METHODS))
def test_closed_form_step_length_is_the_displacement(method):
    cfg = cfg_of(method, zclip_warmup=1)
    task = _Quadratic()
    opt = L.make_optimizer(cfg, task.params, nonfinite="raise")
    amp = L._Amp(cfg, torch.device("cpu"))
    batch = Batch(None, None, 1.0, None)
    for _ in range(4):  # momentum averages and clipper histories fill up
        res = L._train_step(task, opt, batch, 0.3 * cfg.lr, amp, snapshot=True)
        measured = L._step_length(cfg, 0.3 * cfg.lr, res, task.params, exact_formula=False)
        closed = Mth.closed_form_step_length(cfg, 0.3 * cfg.lr, res)
        if closed is None:
            assert Mth.needs_snapshot(opt)
            continue
        np.testing.assert_allclose(float(closed), float(measured), rtol=1e-5)


def test_clipper_runs_after_earlier_step_pre_hooks():
    """A pre-hook registered before the first step (the data-parallel average) changes the
    gradients first: the clipper measures and clips what the optimizer steps on."""
    cfg = cfg_of("autoclip", lr=1.0)
    task = _Quadratic()
    opt = L.make_optimizer(cfg, task.params)

    def double(optimizer, args, kwargs):
        for p in task.params:
            p.grad.mul_(2.0)

    opt.register_step_pre_hook(double)
    amp = L._Amp(cfg, torch.device("cpu"))
    before = [p.detach().clone() for p in task.params]
    res = L._train_step(task, opt, Batch(None, None, 1.0, None), 1.0, amp, snapshot=True)
    want = 2.0 * math.sqrt(sum(float((c * p).square().sum()) for c, p in zip((3.0, 0.2), before)))
    np.testing.assert_allclose(float(res["grad_norm"]), want, rtol=1e-6)


def test_step_probe_sees_the_unclipped_gradient(tmp_path):
    run = train(cfg_of("autoclip", step_probe_every=1, epochs=1), RunStore(tmp_path), progress=False)
    m, p = run.table(), run.table("probes")
    assert m["clipped"].any()
    steps = p["step"].astype(int) - 1
    np.testing.assert_allclose(p["grad_norm"], m["grad_norm"][steps], rtol=1e-4)
    clipped = m["clipped"][steps].astype(bool)
    assert np.all(p["grad_norm"][clipped] > 1.01 * m["clip_threshold"][steps][clipped])


# --------------------------------------------------------------------------------------
# Resume with the clipper's state
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["autoclip", "zclip", "mixed"])
def test_resume_equals_uninterrupted_with_clipper_state(tmp_path, monkeypatch, method):
    cfg = cfg_of(method, checkpoint_every=4, epochs=2, zclip_warmup=3)
    whole = train(cfg, RunStore(tmp_path / "whole"), progress=False)
    n_steps = len(whole.table()["step"])
    store = RunStore(tmp_path / "split")
    counter = StepCounter(monkeypatch, fail_at=n_steps - 3)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, store, progress=False)
    counter.calls, counter.fail_at = 0, None
    resumed = train(cfg, store, progress=False)
    assert resumed.meta["resumes"] == 1 and counter.calls < n_steps
    assert_tables_equal(tables(whole), tables(resumed))


def test_a_checkpoint_without_clipper_state_is_refused():
    opt = L.make_optimizer(cfg_of("zclip"), _Quadratic().params)
    with pytest.raises(ValueError, match="clipper"):
        Mth.load_clipper_state(opt, None)
    Mth.load_clipper_state(L.make_optimizer(cfg_of("sgd"), _Quadratic().params), None)  # no clipper


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", ["agc", "autoclip", "zclip", "smoothed", "nmsgd", "mixed"])
def test_methods_on_cuda_match_cpu(tmp_path, method):
    """On CUDA the decisions stay on the device (metrics flushed in batches): the same
    thresholds and flags as on the CPU for the first steps."""
    cfg = cfg_of(method, epochs=1)
    cpu = train(cfg, RunStore(tmp_path / "cpu"), progress=False).table()
    gpu = train(cfg.replace(device="cuda"), RunStore(tmp_path / "gpu"), progress=False).table()
    np.testing.assert_allclose(gpu["loss"][:3], cpu["loss"][:3], rtol=2e-3)
    np.testing.assert_allclose(gpu["clip_threshold"][:3], cpu["clip_threshold"][:3], rtol=2e-2)
    np.testing.assert_allclose(gpu["step_length"][:3], cpu["step_length"][:3], rtol=2e-2)
