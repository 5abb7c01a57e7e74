"""Tests of clipcore.training.loop: determinism, the run store, resume, clipping metrics,
probes and CUDA.

Tiny models on a few hundred PTB tokens and on scikit-learn's digits keep the file fast.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clipcore import smoothness as S
from clipcore.training import RunStore, train
from clipcore.training import loop as L

from .tiny import TINY_RESNET, StepCounter, assert_tables_equal, lstm_cfg, resnet_cfg, tables


def test_amp_needs_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ValueError, match="amp"):
        train(lstm_cfg(amp=True), RunStore(tmp_path), progress=False)


# --------------------------------------------------------------------------------------
# Determinism, the store, resume
# --------------------------------------------------------------------------------------


def test_same_seed_same_metrics_and_the_seed_matters(tmp_path):
    cfg = lstm_cfg()
    a = train(cfg, RunStore(tmp_path / "a"), progress=False)
    b = train(cfg, RunStore(tmp_path / "b"), progress=False)
    assert_tables_equal(tables(a), tables(b))
    c = train(cfg.replace(seed=4), RunStore(tmp_path / "c"), progress=False)
    assert not np.array_equal(a.table()["loss"], c.table()["loss"])
    assert a.meta["finished"] and a.meta["device"] == "cpu" and a.meta["dataset"].startswith("Penn")


def test_finished_run_is_served_without_training(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    cfg = resnet_cfg(epochs=1)
    first = train(cfg, store, progress=False)
    counter = StepCounter(monkeypatch)
    again = train(cfg, store, progress=False)
    assert counter.calls == 0 and again.path == first.path
    assert_tables_equal(tables(first), tables(again))
    forced = train(cfg, store, force=True, progress=False)
    assert counter.calls == len(first.table()["step"])
    assert_tables_equal(tables(first), tables(forced))
    # A different config is a different run.
    train(cfg.replace(lr=0.05), store, progress=False)
    assert counter.calls == 2 * len(first.table()["step"])


def test_housekeeping_does_not_make_another_run(tmp_path, monkeypatch):
    # The bug: a run trained with --device cpu (no checkpoints) was not the run a page asked
    # for with device auto and the profile's checkpoint cadence, so the page trained again.
    store = RunStore(tmp_path)
    cfg = resnet_cfg(epochs=1, probe_every=None, device="cpu", checkpoint_every=None)
    first = train(cfg, store, progress=False)
    assert first.meta["housekeeping"] == {"device": "cpu", "checkpoint_every": None}
    assert first.meta["config"] == cfg.identity()
    counter = StepCounter(monkeypatch)
    again = train(cfg.replace(device="auto", checkpoint_every=3), store, progress=False)
    assert counter.calls == 0 and again.path == first.path
    assert_tables_equal(tables(first), tables(again))
    assert store.load(cfg.experiment, cfg.replace(device="auto").identity()).path == first.path


@pytest.mark.parametrize("which", ["lstm", "resnet"])
def test_resume_equals_uninterrupted(tmp_path, monkeypatch, which):
    # LSTM: hidden state, BPTT sampler and lr schedule; ResNet: shuffling, augmentation,
    # momentum buffers and BatchNorm statistics all have to survive the checkpoint.
    cfg = lstm_cfg(checkpoint_every=4, epochs=4) if which == "lstm" else resnet_cfg(checkpoint_every=5)
    whole = train(cfg, RunStore(tmp_path / "whole"), progress=False)
    n_steps = len(whole.table()["step"])
    if which == "lstm":  # the schedule state matters: the last epoch's loss is no record
        valid = whole.table("eval")["split"] == "valid"
        assert np.diff(whole.table("eval")["loss"][valid])[-1] > 0

    store = RunStore(tmp_path / "split")
    fail_at = n_steps - 3 if which == "lstm" else 7  # past an epoch end and a checkpoint
    counter = StepCounter(monkeypatch, fail_at=fail_at)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, store, progress=False)
    assert store.load(cfg.experiment, cfg.identity()) is None  # interrupted: never served
    last_ckpt = (fail_at - 1) // cfg.checkpoint_every * cfg.checkpoint_every
    counter.calls, counter.fail_at = 0, None
    resumed = train(cfg, store, progress=False)
    assert counter.calls == n_steps - last_ckpt  # continued, did not start over
    assert resumed.meta["resumes"] == 1
    assert_tables_equal(tables(whole), tables(resumed))


@pytest.mark.parametrize("which", ["lstm", "resnet"])
def test_time_limited_commands_add_up_to_one_run(tmp_path, monkeypatch, which):
    """A long run made as several time-limited calls has the rows of one uninterrupted run."""
    make = lstm_cfg if which == "lstm" else resnet_cfg
    cfg = make(step_probe_every=1, checkpoint_every=None)
    whole = train(cfg, RunStore(tmp_path / "whole"), progress=False)
    clock = {"now": 0.0}
    monkeypatch.setattr(L, "time", type("FakeTime", (), {"time": staticmethod(lambda: clock["now"])}))
    inner = L._train_step

    def ticking(*a, **k):  # every step takes one "second"
        clock["now"] += 1.0
        return inner(*a, **k)

    monkeypatch.setattr(L, "_train_step", ticking)
    store, calls, run = RunStore(tmp_path / "split"), 0, None
    while run is None:
        calls += 1
        assert calls < 20
        run = train(cfg, store, progress=False, time_limit=2.5)
        if run is None:
            assert store.load(cfg.experiment, cfg.identity()) is None  # unfinished: never served
    assert calls >= 3 and run.meta["resumes"] == calls - 1
    assert_tables_equal(tables(whole), tables(run))


def test_time_limit_is_checked(tmp_path):
    with pytest.raises(ValueError, match="time_limit"):
        train(lstm_cfg(), RunStore(tmp_path), progress=False, time_limit=0)


def test_interrupted_without_checkpoint_restarts_cleanly(tmp_path, monkeypatch):
    cfg = resnet_cfg(epochs=1, probe_every=None)
    whole = train(cfg, RunStore(tmp_path / "whole"), progress=False)
    store = RunStore(tmp_path / "split")
    StepCounter(monkeypatch, fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, store, progress=False)
    monkeypatch.undo()
    assert_tables_equal(tables(whole), tables(train(cfg, store, progress=False)))


# --------------------------------------------------------------------------------------
# Step metrics and probes
# --------------------------------------------------------------------------------------


def test_clipped_steps_and_step_length(tmp_path):
    cfg = lstm_cfg(lr=20.0, max_norm=0.1, probe_every=None, lr_halve_patience=None)
    m = train(cfg, RunStore(tmp_path), progress=False).table()
    g, lr, length, clipped = m["grad_norm"], m["lr"], m["step_length"], m["clipped"].astype(bool)
    np.testing.assert_array_equal(clipped, g > cfg.max_norm)
    assert clipped.any()
    # ||x_{t+1} - x_t|| = lr min(1, gamma / ||g||) ||g|| <= lr gamma.
    assert np.all(length <= lr * cfg.max_norm * (1 + 1e-6))
    np.testing.assert_allclose(length[clipped], lr[clipped] * cfg.max_norm, rtol=1e-5)
    np.testing.assert_allclose(length[~clipped], lr[~clipped] * g[~clipped], rtol=1e-5)

    plain = train(cfg.replace(optimizer="sgd", max_norm=None), RunStore(tmp_path), progress=False)
    pm = plain.table()
    assert not pm["clipped"].any()
    np.testing.assert_allclose(pm["step_length"], pm["lr"] * pm["grad_norm"], rtol=1e-5)


def test_momentum_step_length_is_the_real_displacement(tmp_path):
    cfg = resnet_cfg(weight_decay=0.0, probe_every=1, estimators=("fixed",), epochs=1)
    run = train(cfg, RunStore(tmp_path), progress=False)
    m, p = run.table(), run.table("probes")
    # First step: the momentum buffer is the gradient itself, so the step is lr ||g||.
    np.testing.assert_allclose(m["step_length"][0], cfg.lr * m["grad_norm"][0], rtol=1e-4)
    # Later steps carry momentum: not lr ||g||, but the measured displacement (probe rows
    # compute it independently from the parameter snapshots).
    assert abs(m["step_length"][-1] - cfg.lr * m["grad_norm"][-1]) > 1e-3 * m["step_length"][-1]
    np.testing.assert_allclose(p["step_norm"], m["step_length"], rtol=1e-5)


def test_probe_rows(tmp_path):
    cfg = lstm_cfg(epochs=1, lr_halve_patience=None)
    run = train(cfg, RunStore(tmp_path), progress=False)
    m, p = run.table(), run.table("probes")
    n = len(m["step"])
    probed = np.arange(1, n + 1, cfg.probe_every)
    for name in S.ESTIMATORS:
        sel = p["estimator"] == name
        np.testing.assert_array_equal(p["step"][sel], probed)
        assert np.all(np.isfinite(p["smoothness"][sel]) & (p["smoothness"][sel] > 0))
        assert np.all(p["grad_norm"][sel] > 0)
        # The training step's own norm and displacement, copied from the metrics rows.
        np.testing.assert_array_equal(p["train_grad_norm"][sel], m["grad_norm"][probed - 1])
        np.testing.assert_allclose(p["step_norm"][sel], m["step_length"][probed - 1], rtol=1e-4)
    fixed, hess = p["estimator"] == "fixed", p["estimator"] == "hessian"
    # Same pinned chunks at the same point: the same gradient.
    np.testing.assert_allclose(p["grad_norm"][fixed], p["grad_norm"][hess], rtol=1e-5)


@pytest.mark.parametrize("which", ["lstm", "resnet"])
def test_step_probes_reuse_the_steps_own_gradient(tmp_path, monkeypatch, which):
    """A step probe is ``fixed`` on the step's own batch and objective: its gradient norm is
    the step's pre-clip norm, and recomputing the gradient at x_t (no reuse) gives the same
    smoothness, so the reused gradient is the gradient of the probed function."""
    make = lstm_cfg if which == "lstm" else resnet_cfg
    cfg = make(epochs=2, probe_every=None, step_probe_every=2)
    if which == "lstm":
        cfg = cfg.replace(lr_halve_patience=None)
    calls = []
    real = L.estimate

    def checked(name, model, before, after, data, **kw):
        est = real(name, model, before, after, data, **kw)
        if kw.get("grad_before") is not None:
            fresh = real(name, model, before, after, data, **{**kw, "grad_before": None})
            calls.append((est.smoothness, fresh.smoothness, est.grad_norm, fresh.grad_norm))
        return est

    monkeypatch.setattr(L, "estimate", checked)
    run = train(cfg, RunStore(tmp_path), progress=False)
    m, p = run.table(), run.table("probes")
    n = len(m["step"])
    sel = p["estimator"] == L.STEP_PROBE
    np.testing.assert_array_equal(p["step"][sel], np.arange(1, n + 1, 2))
    assert set(p["estimator"]) == {L.STEP_PROBE}  # no pinned probes asked for
    np.testing.assert_allclose(p["grad_norm"][sel], m["grad_norm"][p["step"][sel].astype(int) - 1], rtol=1e-5)
    np.testing.assert_allclose(
        p["step_norm"][sel], m["step_length"][p["step"][sel].astype(int) - 1], rtol=1e-4
    )
    assert np.all(np.isfinite(p["smoothness"][sel]) & (p["smoothness"][sel] > 0))
    assert len(calls) == sel.sum()
    got, fresh, g_got, g_fresh = map(np.array, zip(*calls))
    np.testing.assert_allclose(got, fresh, rtol=1e-4)
    np.testing.assert_allclose(g_got, g_fresh, rtol=1e-5)


def test_step_probes_leave_training_unchanged(tmp_path):
    base = lstm_cfg(epochs=1, probe_every=None)
    plain = train(base, RunStore(tmp_path / "a"), progress=False).table()
    probed = train(base.replace(step_probe_every=1), RunStore(tmp_path / "b"), progress=False).table()
    for col in ("loss", "grad_norm", "step_length"):
        np.testing.assert_array_equal(plain[col], probed[col])


def test_resnet_eval_rows(tmp_path):
    cfg = resnet_cfg(optimizer="clipped_sgd", lr=5.0, max_norm=0.25, momentum=0.0)
    run = train(cfg, RunStore(tmp_path), progress=False)
    ev, m = run.table("eval"), run.table()
    assert list(ev["split"]) == ["train", "test"] * cfg.epochs
    assert np.all((ev["accuracy"][ev["split"] == "test"] >= 0) & (ev["accuracy"][ev["split"] == "test"] <= 1))
    spe = TINY_RESNET["n_train"] // cfg.batch_size
    assert len(m["step"]) == spe * cfg.epochs
    np.testing.assert_array_equal(ev["step"][ev["split"] == "test"], spe * np.arange(1, cfg.epochs + 1))
    # The epoch's "train" row is the mean of its step losses (equal batch sizes).
    for e in range(1, cfg.epochs + 1):
        np.testing.assert_allclose(
            ev["loss"][(ev["split"] == "train") & (ev["epoch"] == e)][0],
            m["loss"][m["epoch"] == e].mean(),
            rtol=1e-12,
        )
    assert run.meta["dataset"].startswith("digits")


def test_max_steps_stops_mid_epoch_and_evaluates(tmp_path):
    run = train(lstm_cfg(epochs=None, max_steps=6), RunStore(tmp_path), progress=False)
    ev = run.table("eval")
    assert len(run.table()["step"]) == 6
    assert list(ev["split"]) == ["train", "valid", "test"]


# --------------------------------------------------------------------------------------
# CUDA
# --------------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(tmp_path):
    # Same seed, same data order (CPU generators): the first steps agree to float32 noise.
    for cfg in (lstm_cfg(epochs=1, probe_every=None), resnet_cfg(epochs=1, probe_every=None)):
        cpu = train(cfg, RunStore(tmp_path / "cpu"), progress=False).table()
        gpu_run = train(cfg.replace(device="cuda"), RunStore(tmp_path / "gpu"), progress=False)
        gpu = gpu_run.table()
        assert gpu_run.meta["device"].startswith("cuda")
        np.testing.assert_allclose(gpu["loss"][:3], cpu["loss"][:3], rtol=2e-3)
        np.testing.assert_allclose(gpu["grad_norm"][:3], cpu["grad_norm"][:3], rtol=2e-2)
        np.testing.assert_array_equal(gpu["lr"][:3], cpu["lr"][:3])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp_dtype", ["bfloat16", "float16"])
def test_cuda_amp_runs(tmp_path, amp_dtype):
    # No weight decay: it is added after clipping, so the step would exceed lr * max_norm.
    cfg = resnet_cfg(
        epochs=1,
        device="cuda",
        amp=True,
        amp_dtype=amp_dtype,
        optimizer="clipped_sgd",
        max_norm=0.25,
        momentum=0.0,
        weight_decay=0.0,
    )
    m = train(cfg, RunStore(tmp_path), progress=False).table()
    assert np.all(np.isfinite(m["loss"]))
    assert np.all(m["step_length"] <= m["lr"] * cfg.max_norm * (1 + 1e-3))
