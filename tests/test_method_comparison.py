"""Tests of clipcore.method_comparison (the chapter *Clipping today*) and of its run table
clipcore.training.comparison: the search, divergence markers, the time to a target, the
envelope-tracking correlation and the sensitivity spread with their verdict rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from clipcore import method_comparison as MC
from clipcore.training import comparison as C
from clipcore.training.config import TrainConfig


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# --------------------------------------------------------------------------------------
# The run table
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["smoke", "ci", "paper"])
@pytest.mark.parametrize("task", C.TASKS)
def test_every_method_and_value_is_a_valid_config(task, profile):
    names = set()
    for name, m in C.METHODS.items():
        assert len(m.grid[task]) >= 2
        assert set(C.grid(name, task, profile)) <= set(m.grid[task])
        for v in m.grid[task]:
            cfg = C.comparison_config(task, name, v, profile, seed=1)
            assert isinstance(cfg, TrainConfig) and getattr(cfg, m.param) == v and cfg.seed == 1
            assert cfg.momentum == 0.0 and cfg.weight_decay == 0.0 and cfg.step_probe_every
            names.add(cfg.name)
    assert len(names) == sum(len(m.grid[task]) for m in C.METHODS.values())  # distinct runs


def test_comparison_config_rejects_unknown_names():
    with pytest.raises(ValueError, match="task"):
        C.comparison_config("mnist", "sgd", 1.0, "smoke")
    with pytest.raises(ValueError, match="method"):
        C.comparison_config("lstm_ptb", "adam", 1.0, "smoke")
    with pytest.raises(ValueError, match="profile"):
        C.comparison_config("lstm_ptb", "sgd", 1.0, "huge")


# --------------------------------------------------------------------------------------
# The search (tiny: two methods at smoke scale)
# --------------------------------------------------------------------------------------


def test_search_chooses_the_lowest_final_loss_and_marks_divergence(tmp_path, monkeypatch, one_thread):
    bad = C.comparison_config("lstm_ptb", "sgd", C.METHODS["sgd"].grid["lstm_ptb"][0], "smoke")
    real = MC.train

    def train(cfg, store, **kw):
        if cfg.identity() == bad.identity():
            raise FloatingPointError("non-finite loss nan at step 3")
        return real(cfg, store, **kw)

    monkeypatch.setattr(MC, "train", train)
    comp = MC.run_comparison("lstm_ptb", "smoke", tmp_path, methods=["sgd", "clipped"], device="cpu")
    seeds = C.SEEDS["smoke"]
    for name in ("sgd", "clipped"):
        finals = {r.value: MC.final_loss(r, 0.2) for r in comp.search[name]}
        assert comp.chosen[name] == min(finals, key=finals.get)
        assert [r.seed for r in comp.runs[name]] == list(seeds)
        assert all(r.value == comp.chosen[name] for r in comp.runs[name])
    diverged = [r for r in comp.search["sgd"] if r.diverged]
    assert len(diverged) == 1 and diverged[0].metrics is None and math.isinf(MC.final_loss(diverged[0], 0.2))
    assert comp.chosen["sgd"] != bad.lr
    assert comp.trained == 2 * len(C.grid("sgd", "lstm_ptb", "smoke")) + 2 * (len(seeds) - 1)
    g, L = comp.step_probes()
    assert g.size == L.size > 0

    # A second call trains nothing: finished runs are loaded, the diverged one is remembered.
    calls = []
    monkeypatch.setattr(MC, "train", lambda *a, **k: calls.append(a))
    again = MC.run_comparison("lstm_ptb", "smoke", tmp_path, methods=["sgd", "clipped"], device="cpu")
    assert calls == [] and again.trained == 0 and again.chosen == comp.chosen
    assert [r.diverged is not None for r in again.search["sgd"]] == [
        r.diverged is not None for r in comp.search["sgd"]
    ]


def test_run_comparison_checks_workers(tmp_path):
    with pytest.raises(ValueError, match="workers"):
        MC.run_comparison("lstm_ptb", "smoke", tmp_path, workers=0)


# --------------------------------------------------------------------------------------
# Time to a target
# --------------------------------------------------------------------------------------


def test_steps_to_target_uses_the_running_mean():
    loss = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 1.0])
    assert MC.steps_to_target(loss, 3.0, 1) == (3, True)
    # Window 2: running means 5, 4.5, 3.5, 2.5, ...: the target 3 is first reached at step 4.
    assert MC.steps_to_target(loss, 3.0, 2) == (4, True)
    assert MC.steps_to_target(loss, 0.5, 1) == (7, False)  # censored at T + 1
    with pytest.raises(ValueError, match="window"):
        MC.steps_to_target(loss, 3.0, 0)


def test_target_loss_and_paired_difference():
    assert MC.target_loss(10.0, 2.0, 0.75) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="fraction"):
        MC.target_loss(10.0, 2.0, 0.0)
    mean, lo, hi = MC.paired_difference([10, 20, 30], [5, 15, 25])
    assert (mean, lo, hi) == (5.0, 5.0, 5.0)  # the same difference on every seed
    mean, lo, hi = MC.paired_difference([10, 22, 30], [5, 15, 25])
    assert lo < mean < hi and lo >= 5.0 and hi <= 7.0
    mean, lo, hi = MC.paired_difference([3.0], [1.0])  # one seed: no interval
    assert mean == 2.0 and math.isnan(lo) and math.isnan(hi)


@pytest.mark.parametrize(
    "lo, hi, censored, status",
    [
        (-5, -1, False, "holds"),
        (-5, 4, False, "holds"),
        (-5, 10, False, "inconclusive"),
        (6, 9, False, "fails"),
        (-5, -1, True, "inconclusive"),
    ],
)
def test_no_later_status(lo, hi, censored, status):
    assert MC.no_later_status(lo, hi, 5.0, censored) == status


# --------------------------------------------------------------------------------------
# Tracking the envelope
# --------------------------------------------------------------------------------------


def _metrics(g, factor, lr=2.0):
    g = np.asarray(g, float)
    return dict(grad_norm=g, lr=np.full(g.size, lr), step_length=lr * factor * g)


def test_effective_factor_and_log_pearson():
    g = np.linspace(0.1, 3.0, 50)
    np.testing.assert_allclose(MC.effective_factor(_metrics(g, 1 / (1 + g))), 1 / (1 + g))
    x = np.exp(np.linspace(0, 2, 30))
    assert MC.log_pearson(x, x**3) == pytest.approx(1.0)
    assert MC.log_pearson(x, 1 / x) == pytest.approx(-1.0)
    assert MC.log_pearson(x, np.ones_like(x)) == 0.0
    y = np.random.default_rng(0).lognormal(size=30)
    assert MC.log_pearson(x, y) == pytest.approx(np.corrcoef(np.log(x), np.log(y))[0, 1])
    assert math.isnan(MC.log_pearson([1.0, 2.0], [1.0, 2.0]))


def test_envelope_tracking_depends_on_the_envelope():
    rng = np.random.default_rng(1)
    runs = []
    for _ in range(3):
        g = np.exp(rng.normal(0.0, 1.0, 300))
        runs.append(_metrics(g, np.minimum(1.0, 0.5 / g)))  # clipping at gamma = 0.5
    r, lo, hi = MC.envelope_tracking(runs, 1.0, 2.0)  # switch point L0 / L1 = 0.5: tracks
    assert r > 0.95 and lo > 0.9 and hi <= 1.0
    far, _, _ = MC.envelope_tracking(runs, 1.0, 0.001)  # switch point 1000: barely varies like it
    assert far < r - 0.05
    # A factor that never changes tracks nothing; a random one has an interval around 0.
    flat = [_metrics(m["grad_norm"], np.ones_like(m["grad_norm"])) for m in runs]
    assert MC.envelope_tracking(flat, 1.0, 2.0)[0] == 0.0
    noise = [_metrics(m["grad_norm"], np.exp(rng.normal(0, 1, m["grad_norm"].size))) for m in runs]
    r0, lo0, hi0 = MC.envelope_tracking(noise, 1.0, 2.0)
    assert lo0 < 0 < hi0 and abs(r0) < 0.15


# --------------------------------------------------------------------------------------
# Sensitivity
# --------------------------------------------------------------------------------------


def _run(losses, value=1.0):
    return MC.RunResult("m", value, 0, dict(loss=np.asarray(losses, float)), None, None)


def test_sensitivity_is_the_spread_of_the_final_losses():
    rng = np.random.default_rng(0)
    runs = [_run(3.0 + 0.01 * rng.normal(size=100)), _run(2.0 + 0.01 * rng.normal(size=100))]
    spread, lo, hi, reps = MC.sensitivity(runs, 0.2, n_boot=500)
    assert spread == pytest.approx(1.0, abs=0.02) and lo < spread < hi and hi - lo < 0.05
    assert reps.shape == (500,)
    div = MC.RunResult("m", 3.0, 0, None, None, None, diverged="nan")
    assert math.isinf(MC.sensitivity(runs + [div], 0.2, n_boot=50)[0])
    with pytest.raises(ValueError, match="tail"):
        MC.final_loss(runs[0], 0.0)


def test_less_sensitive_status():
    small, large, inf = np.full(100, 0.1), np.full(100, 0.5), np.full(100, np.inf)
    assert MC.less_sensitive_status(small, large, 0.95)[3] == "holds"
    assert MC.less_sensitive_status(large, small, 0.95)[3] == "fails"
    spread = np.linspace(-0.1, 0.1, 100)
    assert MC.less_sensitive_status(0.3 + spread, 0.3 - spread, 0.95)[3] == "inconclusive"
    assert MC.less_sensitive_status(inf, small, 0.95)[3] == "fails"
    assert MC.less_sensitive_status(small, inf, 0.95)[3] == "holds"
    assert MC.less_sensitive_status(inf, inf, 0.95)[3] == "inconclusive"


def test_fit_task_envelope_covers_the_probes():
    comp = MC.Comparison("lstm_ptb", "smoke", 0.2)
    g = np.linspace(0.1, 2.0, 40)
    L = 1.0 + 3.0 * g
    probes = dict(estimator=np.array(["step"] * 40), grad_norm=g, smoothness=L)
    comp.runs["m"] = [MC.RunResult("m", 1.0, 0, None, None, probes)]
    L0, L1, n = MC.fit_task_envelope(comp, 1.0)
    assert n == 40 and L0 == pytest.approx(1.0) and L1 == pytest.approx(3.0)


def _synthetic(method, value, seed, start, rate, factor=1.0, n=60):
    rng = np.random.default_rng(seed)
    t = np.arange(1, n + 1)
    loss = 2.0 + (start - 2.0) * np.exp(-rate * t) + 0.01 * rng.normal(size=n)
    g = np.exp(rng.normal(0.0, 0.5, n))
    c = np.minimum(1.0, factor / g)
    m = dict(step=t, loss=loss, grad_norm=g, lr=np.ones(n), step_length=c * g, clipped=(c < 1).astype(float))
    probes = dict(estimator=np.array(["step"] * n), grad_norm=g, smoothness=1.0 + 2.0 * g)
    return MC.RunResult(method, value, seed, m, None, probes)


def test_analyse_decides_every_claim_from_the_runs():
    comp = MC.Comparison("lstm_ptb", "ci", 0.2)
    rates = {"sgd": 0.02, "clipped": 0.1, "agc": 0.3, "autoclip": 0.1, "zclip": 0.02}
    for name, rate in rates.items():
        factor = 0.5 if name in ("clipped", "autoclip") else 1e9  # autoclip clips like the envelope
        comp.search[name] = [_synthetic(name, v, 0, 5.0, rate * v, factor) for v in (1.0, 2.0)]
        comp.chosen[name] = 2.0
        comp.runs[name] = [_synthetic(name, 2.0, s, 5.0, rate * 2.0, factor) for s in range(3)]
    out = MC.analyse(
        comp, target_fraction=0.8, window=3, slack=0.05, envelope_quantile=1.0, min_track=0.5, n_boot=200
    )
    status = {c["key"]: c["status"] for c in out["claims"]}
    assert set(status) == {f"{k}_{m}" for k in ("first", "track", "sens") for m in MC.ADAPTIVE} | {
        "first_clipped"
    }
    assert out["envelope"]["L0"] == pytest.approx(1.0) and out["envelope"]["L1"] == pytest.approx(2.0)
    assert (
        status["first_agc"] == "holds"
        and status["first_zclip"] == "fails"
        and status["first_clipped"] == "holds"
    )
    assert status["track_autoclip"] == "holds" and status["track_zclip"] == "fails"  # never clips: factor 1
    chosen = [r for r in out["search"] if r["status"] == "chosen"]
    assert len(chosen) == len(rates) and all(r["value"] == 2.0 for r in chosen)
