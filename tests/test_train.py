"""Tests of clipcore.train: config validation, determinism, resume, the run store, clipping
metrics, the LSTM learning-rate rules, probes and the command line.

Tiny models on a few hundred PTB tokens and on scikit-learn's digits keep the file fast.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from clipcore import smoothness as S
from clipcore import train as T
from clipcore.results import RunStore

# A few hundred PTB tokens, a 2-layer LSTM of width 16: ~14 steps per epoch.
TINY_LSTM = dict(
    experiment="lstm_ptb", name="tiny", optimizer="clipped_sgd", lr=20.0, max_norm=0.25,
    emb_size=8, hidden_size=16, n_layers=2, bptt=8, batch_size=4, eval_batch_size=4,
    train_fraction=0.0005, eval_fraction=0.002, epochs=2, lr_halve_patience=1,
    alpha=2.0, beta_tar=1.0, seed=3, device="cpu",
    probe_every=5, probe_chunks=2, power_iters=3,
)  # fmt: skip
# 64 digits images, ResNet-8 of width 4: 4 steps per epoch.
TINY_RESNET = dict(
    experiment="resnet_images", name="tiny", optimizer="sgd", lr=0.1, max_norm=None,
    momentum=0.9, weight_decay=5e-4, dataset="digits", depth=8, width=4, n_train=64,
    n_test=32, batch_size=16, eval_batch_size=32, epochs=3, seed=5, device="cpu",
    probe_every=3, probe_chunks=1, power_iters=3,
)  # fmt: skip


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models gain nothing from intra-op threads, and on a loaded machine spinning
    # OpenMP workers make them many times slower; restore the setting afterwards.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def lstm_cfg(**kw):
    return T.TrainConfig.from_dict({**TINY_LSTM, **kw})


def resnet_cfg(**kw):
    return T.TrainConfig.from_dict({**TINY_RESNET, **kw})


def tables(run, names=("metrics", "eval", "probes")):
    return {n: run.table(n) for n in names if n in run.tables}


def assert_tables_equal(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].keys() == b[name].keys(), name
        for col in a[name]:
            x, y = a[name][col], b[name][col]
            assert x.shape == y.shape, (name, col)
            if x.dtype.kind == "f":
                np.testing.assert_array_equal(x, y, err_msg=f"{name}.{col}")
            else:
                assert list(x) == list(y), (name, col)


class StepCounter:
    """Wraps train._train_step; optionally raises on the ``fail_at``-th call."""

    def __init__(self, monkeypatch, fail_at=None):
        self.calls, self.fail_at, self.inner = 0, fail_at, T._train_step
        monkeypatch.setattr(T, "_train_step", self)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise KeyboardInterrupt("injected interruption")
        return self.inner(*args, **kwargs)


# --------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------


def test_from_dict_round_trip_and_canonical_types():
    cfg = lstm_cfg(lr=30, estimators=["fixed", "hessian"], probe_points=[0.25, 1])
    assert cfg.lr == 30.0 and isinstance(cfg.lr, float)
    assert cfg.estimators == ("fixed", "hessian") and cfg.probe_points == (0.25, 1.0)
    d = cfg.to_dict()
    assert d["estimators"] == ["fixed", "hessian"]
    assert T.TrainConfig.from_dict(d) == cfg
    assert set(d) == set(T.TrainConfig.keys())
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0


def test_unknown_keys_are_named():
    with pytest.raises(ValueError, match="bogus.*learning_rate|learning_rate.*bogus"):
        T.TrainConfig.from_dict({**TINY_LSTM, "learning_rate": 1.0, "bogus": 2})
    with pytest.raises(ValueError, match="lrr"):
        lstm_cfg().replace(lrr=1.0)


@pytest.mark.parametrize(
    "key, value",
    [
        ("lr", 0.0), ("lr", -1.0), ("lr", math.inf), ("lr", "fast"), ("max_norm", 0.0),
        ("max_norm", -0.25), ("momentum", 1.0), ("momentum", -0.1), ("weight_decay", -1e-4),
        ("batch_size", 0), ("batch_size", 2.5), ("eval_batch_size", 0), ("epochs", 0),
        ("max_steps", -3), ("seed", -1), ("estimators", ("fixed", "nope")),
        ("estimators", ("fixed", "fixed")), ("estimators", "fixed"), ("probe_points", (0.0,)),
        ("probe_points", (1.5,)), ("optimizer", "adam"), ("experiment", "mnist"),
        ("train_fraction", 0.0), ("train_fraction", 1.5), ("depth", 10), ("bptt", 1),
        ("device", "gpu"), ("amp", "yes"), ("random_bptt", 1), ("name", "a b"), ("power_iters", 0),
        ("probe_every", 0), ("amp_dtype", "float8"), ("dataset", "mnist"),
    ],
)  # fmt: skip
def test_bad_values_raise_naming_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        lstm_cfg(**{key: value})


def test_cross_field_rules():
    with pytest.raises(ValueError, match="max_norm"):
        lstm_cfg(optimizer="sgd", max_norm=0.25)
    with pytest.raises(ValueError, match="max_norm"):
        lstm_cfg(optimizer="clipped_sgd", max_norm=None)
    with pytest.raises(ValueError, match="epochs"):
        lstm_cfg(epochs=None, max_steps=None)
    with pytest.raises(ValueError, match="momentum"):
        lstm_cfg(optimizer="normalized_sgd", max_norm=None, momentum=0.9)
    lstm_cfg(optimizer="normalized_sgd", max_norm=None, beta=0.25)  # valid


def test_presets_cover_every_run_and_profile():
    for exp, runs in T.EXPERIMENTS.items():
        for run in runs:
            for profile in T.PROFILES:
                cfg = T.preset(exp, run, profile)
                assert cfg.experiment == exp and cfg.name == run
                assert cfg.probe_every and set(cfg.estimators) == set(S.ESTIMATORS)
    clip = T.preset("lstm_ptb", "clip_lr30", "paper")
    # The authors' setting (PAPER.md, "Authors' LSTM setting").
    assert (clip.lr, clip.max_norm, clip.optimizer) == (30.0, 0.25, "clipped_sgd")
    assert (clip.emb_size, clip.hidden_size, clip.n_layers, clip.batch_size) == (200, 512, 2, 256)
    assert (clip.bptt, clip.random_bptt, clip.epochs, clip.lr_halve_patience) == (70, True, 150, 5)
    assert (clip.alpha, clip.beta_tar, clip.seed, clip.train_fraction) == (2.0, 1.0, 1111, 1.0)
    noclip = T.preset("lstm_ptb", "noclip_lr2", "paper")
    assert (noclip.optimizer, noclip.lr, noclip.max_norm) == ("sgd", 2.0, None)
    assert T.preset("lstm_ptb", "clip_lr2", "ci").max_norm == 0.25
    mom = T.preset("resnet_images", "momentum", "paper")
    assert (mom.lr, mom.momentum, mom.weight_decay, mom.batch_size, mom.epochs, mom.depth) == (
        0.1, 0.9, 5e-4, 128, 200, 20)  # fmt: skip
    c5 = T.preset("resnet_images", "clip_lr5", "ci", seed=7)
    assert (c5.lr, c5.max_norm, c5.momentum, c5.seed) == (5.0, 0.25, 0.0, 7)
    with pytest.raises(ValueError, match="nope"):
        T.preset("lstm_ptb", "nope")
    with pytest.raises(ValueError, match="huge"):
        T.preset("lstm_ptb", "clip_lr30", "huge")
    with pytest.raises(ValueError, match="bogus"):
        T.preset("lstm_ptb", "clip_lr30", "ci", bogus=1)


def test_resolve_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert T.resolve_device("auto").type == expected
    assert T.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device"):
        T.resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            T.resolve_device("cuda")


def test_amp_needs_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ValueError, match="amp"):
        T.train(lstm_cfg(amp=True), RunStore(tmp_path), progress=False)


# --------------------------------------------------------------------------------------
# Learning-rate rules
# --------------------------------------------------------------------------------------


def test_plateau_halver():
    h = T.PlateauHalver(lr=8.0, patience=2)
    halved = [h.update(v) for v in [5.0, 4.0, 4.5, 4.0, 3.0, 3.5, 3.5, 3.5, 3.5]]
    # 4.5 and 4.0 do not beat 4.0 (two bad epochs -> halve); 3.0 improves; then two bad -> halve,
    # and the count restarts, so two more bad epochs halve again.
    assert halved == [False, False, False, True, False, False, True, False, True]
    assert h.lr == 1.0 and h.best == 3.0
    never = T.PlateauHalver(lr=1.0, patience=None)
    assert not any(never.update(v) for v in [1.0, 2.0, 3.0, 4.0])
    assert never.lr == 1.0


def test_lstm_lr_scaled_by_seq_len_and_halved_on_plateau(tmp_path):
    # lr 200 with no clipping makes the validation loss stall, so the schedule acts.
    cfg = lstm_cfg(epochs=4, optimizer="sgd", max_norm=None, lr=200.0, probe_every=None,
                   lr_halve_patience=1)  # fmt: skip
    run = T.train(cfg, RunStore(tmp_path), progress=False)
    m, ev = run.table(), run.table("eval")
    # Replay the schedule on the logged validation losses: the lr of every step of epoch e
    # is (base lr of epoch e) * seq_len / bptt.
    valid = ev["split"] == "valid"
    halver, base = T.PlateauHalver(cfg.lr, cfg.lr_halve_patience), {}
    for e, v in zip(ev["epoch"][valid], ev["loss"][valid]):
        base[int(e)] = halver.lr
        halver.update(v)
    assert base[4] < base[1], "the test needs at least one halving"
    expected = np.array([base[int(e)] for e in m["epoch"]]) * m["seq_len"] / cfg.bptt
    np.testing.assert_allclose(m["lr"], expected, rtol=1e-12)
    assert len(np.unique(m["seq_len"])) > 2  # the lengths really are random
    assert m["seq_len"].min() >= 5

    fixed = T.train(cfg.replace(random_bptt=False, epochs=1), RunStore(tmp_path), progress=False).table()
    assert np.all(fixed["seq_len"] == cfg.bptt) and np.all(fixed["lr"] == cfg.lr)


# --------------------------------------------------------------------------------------
# Determinism, the store, resume
# --------------------------------------------------------------------------------------


def test_same_seed_same_metrics_and_the_seed_matters(tmp_path):
    cfg = lstm_cfg()
    a = T.train(cfg, RunStore(tmp_path / "a"), progress=False)
    b = T.train(cfg, RunStore(tmp_path / "b"), progress=False)
    assert_tables_equal(tables(a), tables(b))
    c = T.train(cfg.replace(seed=4), RunStore(tmp_path / "c"), progress=False)
    assert not np.array_equal(a.table()["loss"], c.table()["loss"])
    assert a.meta["finished"] and a.meta["device"] == "cpu" and a.meta["dataset"].startswith("Penn")


def test_finished_run_is_served_without_training(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    cfg = resnet_cfg(epochs=1)
    first = T.train(cfg, store, progress=False)
    counter = StepCounter(monkeypatch)
    again = T.train(cfg, store, progress=False)
    assert counter.calls == 0 and again.path == first.path
    assert_tables_equal(tables(first), tables(again))
    forced = T.train(cfg, store, force=True, progress=False)
    assert counter.calls == len(first.table()["step"])
    assert_tables_equal(tables(first), tables(forced))
    # A different config is a different run.
    T.train(cfg.replace(lr=0.05), store, progress=False)
    assert counter.calls == 2 * len(first.table()["step"])


@pytest.mark.parametrize("which", ["lstm", "resnet"])
def test_resume_equals_uninterrupted(tmp_path, monkeypatch, which):
    # LSTM: hidden state, BPTT sampler and lr schedule; ResNet: shuffling, augmentation,
    # momentum buffers and BatchNorm statistics all have to survive the checkpoint.
    cfg = lstm_cfg(checkpoint_every=4, epochs=4) if which == "lstm" else resnet_cfg(checkpoint_every=5)
    whole = T.train(cfg, RunStore(tmp_path / "whole"), progress=False)
    n_steps = len(whole.table()["step"])
    if which == "lstm":  # the schedule state matters: the last epoch's loss is no record
        valid = whole.table("eval")["split"] == "valid"
        assert np.diff(whole.table("eval")["loss"][valid])[-1] > 0

    store = RunStore(tmp_path / "split")
    fail_at = n_steps - 3 if which == "lstm" else 7  # past an epoch end and a checkpoint
    counter = StepCounter(monkeypatch, fail_at=fail_at)
    with pytest.raises(KeyboardInterrupt):
        T.train(cfg, store, progress=False)
    assert store.load(cfg.experiment, cfg.to_dict()) is None  # interrupted: never served
    last_ckpt = (fail_at - 1) // cfg.checkpoint_every * cfg.checkpoint_every
    counter.calls, counter.fail_at = 0, None
    resumed = T.train(cfg, store, progress=False)
    assert counter.calls == n_steps - last_ckpt  # continued, did not start over
    assert resumed.meta["resumes"] == 1
    assert_tables_equal(tables(whole), tables(resumed))


def test_interrupted_without_checkpoint_restarts_cleanly(tmp_path, monkeypatch):
    cfg = resnet_cfg(epochs=1, probe_every=None)
    whole = T.train(cfg, RunStore(tmp_path / "whole"), progress=False)
    store = RunStore(tmp_path / "split")
    StepCounter(monkeypatch, fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        T.train(cfg, store, progress=False)
    monkeypatch.undo()
    assert_tables_equal(tables(whole), tables(T.train(cfg, store, progress=False)))


# --------------------------------------------------------------------------------------
# Step metrics and probes
# --------------------------------------------------------------------------------------


def test_clipped_steps_and_step_length(tmp_path):
    cfg = lstm_cfg(lr=20.0, max_norm=0.1, probe_every=None, lr_halve_patience=None)
    m = T.train(cfg, RunStore(tmp_path), progress=False).table()
    g, lr, length, clipped = m["grad_norm"], m["lr"], m["step_length"], m["clipped"].astype(bool)
    np.testing.assert_array_equal(clipped, g > cfg.max_norm)
    assert clipped.any()
    # ||x_{t+1} - x_t|| = lr min(1, gamma / ||g||) ||g|| <= lr gamma.
    assert np.all(length <= lr * cfg.max_norm * (1 + 1e-6))
    np.testing.assert_allclose(length[clipped], lr[clipped] * cfg.max_norm, rtol=1e-5)
    np.testing.assert_allclose(length[~clipped], lr[~clipped] * g[~clipped], rtol=1e-5)

    plain = T.train(cfg.replace(optimizer="sgd", max_norm=None), RunStore(tmp_path), progress=False)
    pm = plain.table()
    assert not pm["clipped"].any()
    np.testing.assert_allclose(pm["step_length"], pm["lr"] * pm["grad_norm"], rtol=1e-5)


def test_momentum_step_length_is_the_real_displacement(tmp_path):
    cfg = resnet_cfg(weight_decay=0.0, probe_every=1, estimators=("fixed",), epochs=1)
    run = T.train(cfg, RunStore(tmp_path), progress=False)
    m, p = run.table(), run.table("probes")
    # First step: the momentum buffer is the gradient itself, so the step is lr ||g||.
    np.testing.assert_allclose(m["step_length"][0], cfg.lr * m["grad_norm"][0], rtol=1e-4)
    # Later steps carry momentum: not lr ||g||, but the measured displacement (probe rows
    # compute it independently from the parameter snapshots).
    assert abs(m["step_length"][-1] - cfg.lr * m["grad_norm"][-1]) > 1e-3 * m["step_length"][-1]
    np.testing.assert_allclose(p["step_norm"], m["step_length"], rtol=1e-5)


def test_probe_rows(tmp_path):
    cfg = lstm_cfg(epochs=1, lr_halve_patience=None)
    run = T.train(cfg, RunStore(tmp_path), progress=False)
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


def test_resnet_eval_rows(tmp_path):
    cfg = resnet_cfg(optimizer="clipped_sgd", lr=5.0, max_norm=0.25, momentum=0.0)
    run = T.train(cfg, RunStore(tmp_path), progress=False)
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
            m["loss"][m["epoch"] == e].mean(), rtol=1e-12,
        )  # fmt: skip
    assert run.meta["dataset"].startswith("digits")


def test_max_steps_stops_mid_epoch_and_evaluates(tmp_path):
    run = T.train(lstm_cfg(epochs=None, max_steps=6), RunStore(tmp_path), progress=False)
    ev = run.table("eval")
    assert len(run.table()["step"]) == 6
    assert list(ev["split"]) == ["train", "valid", "test"]


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def test_cli_help_lists_experiments_runs_and_keys(capsys):
    assert T.main(["--help"]) == 0
    out = capsys.readouterr().out
    for exp, runs in T.EXPERIMENTS.items():
        assert exp in out
        for run in runs:
            assert run in out
    for key in T.TrainConfig.keys():
        assert f"--{key}" in out


def test_cli_unknown_key_and_bad_value_exit_2(capsys):
    assert T.main(["lstm_ptb", "--bogus_key", "1"]) == 2
    assert "bogus_key" in capsys.readouterr().err
    assert T.main(["lstm_ptb", "--lr", "-1"]) == 2
    assert "lr" in capsys.readouterr().err
    assert T.main(["nope"]) == 2


def test_cli_trains_and_stores(tmp_path, capsys):
    argv = ["resnet_images", "--run", "clip_lr5", "--profile", "smoke", "--results-dir",
            str(tmp_path), "--epochs", "1", "--estimators", "[fixed]", "--no-progress"]  # fmt: skip
    assert T.main(argv) == 0
    out = capsys.readouterr().out
    cfg = T.preset("resnet_images", "clip_lr5", "smoke", epochs=1, estimators=["fixed"])
    run = RunStore(tmp_path).load("resnet_images", cfg.to_dict())
    assert run is not None and str(run.path) in out
    assert set(run.table("probes")["estimator"]) == {"fixed"}


# --------------------------------------------------------------------------------------
# CUDA
# --------------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(tmp_path):
    # Same seed, same data order (CPU generators): the first steps agree to float32 noise.
    for cfg in (lstm_cfg(epochs=1, probe_every=None), resnet_cfg(epochs=1, probe_every=None)):
        cpu = T.train(cfg, RunStore(tmp_path / "cpu"), progress=False).table()
        gpu_run = T.train(cfg.replace(device="cuda"), RunStore(tmp_path / "gpu"), progress=False)
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
    cfg = resnet_cfg(epochs=1, device="cuda", amp=True, amp_dtype=amp_dtype,
                     optimizer="clipped_sgd", max_norm=0.25, momentum=0.0, weight_decay=0.0)  # fmt: skip
    m = T.train(cfg, RunStore(tmp_path), progress=False).table()
    assert np.all(np.isfinite(m["loss"]))
    assert np.all(m["step_length"] <= m["lr"] * cfg.max_norm * (1 + 1e-3))
