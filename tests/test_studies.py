"""Tests for clipcore.studies: correlation statistics of probe points, smoothness studies of
stored runs, curves and the run store, against known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from clipcore import studies as E
from clipcore.stats import claim_verdicts
from clipcore.training import RunStore, experiment_configs
from clipcore.training.tasks import build_model


def _pts(g, L, step=None):
    g, L = np.asarray(g, float), np.asarray(L, float)
    return {"step": np.arange(g.size, dtype=float) if step is None else step, "grad_norm": g, "smoothness": L}


# ------------------------------------------------------------------------ correlation statistics


def test_monotone_points_give_rho_one_with_a_degenerate_interval():
    rng = np.random.default_rng(0)
    g = np.sort(rng.uniform(0.1, 10, 40))
    L = 0.5 + 2.0 * g**1.5  # strictly increasing in g
    (row,) = E.correlation_table({"a": {"fixed": _pts(g, L)}}, n_boot=300, seed=1)
    assert row["n"] == 40 and row["rho"] == pytest.approx(1.0, abs=1e-12)
    assert row["lo"] == pytest.approx(1.0, abs=1e-12) and row["hi"] == pytest.approx(1.0, abs=1e-12)
    (anti,) = E.correlation_table({"a": {"fixed": _pts(g, 1.0 / g)}}, n_boot=300, seed=1)
    assert anti["rho"] == pytest.approx(-1.0, abs=1e-12)


def test_independent_points_interval_covers_zero():
    rng = np.random.default_rng(3)
    covered = 0
    for k in range(20):
        g, L = rng.lognormal(size=200), rng.lognormal(size=200)
        (row,) = E.correlation_table({"a": {"hessian": _pts(g, L)}}, n_boot=400, seed=k)
        assert row["lo"] < row["rho"] < row["hi"]
        covered += row["lo"] <= 0 <= row["hi"]
    assert covered >= 17  # 95% intervals: 20 draws, P(fewer than 17 cover) < 2%


def test_correlation_table_envelope_recovers_a_known_line():
    rng = np.random.default_rng(5)
    L0, L1 = 0.3, 2.0
    g = np.r_[0.05, 4.0, rng.uniform(0.1, 3.9, 100)]
    L = L0 + L1 * g
    L[2:] *= rng.uniform(0.2, 0.99, 100)  # strictly below the line except its two ends
    (row,) = E.correlation_table({"a": {"fixed": _pts(g, L)}}, n_boot=50)
    assert row["L0"] == pytest.approx(L0, rel=1e-9) and row["L1"] == pytest.approx(L1, rel=1e-9)


def test_too_few_points_give_nan_not_an_error():
    (one,) = E.correlation_table({"a": {"fixed": _pts([1.0], [2.0])}})
    assert one["n"] == 1 and all(math.isnan(one[k]) for k in ("rho", "lo", "hi", "L0", "L1"))
    (two,) = E.correlation_table({"a": {"fixed": _pts([1.0, 2.0], [2.0, 3.0])}})
    assert math.isnan(two["rho"]) and two["L0"] == pytest.approx(1.0) and two["L1"] == pytest.approx(1.0)


# ------------------------------------------------------------------------ smoothness studies


def _store_lstm_runs(root, **overrides):
    """The three smoke LSTM runs, stored without training: 12 steps, probes at steps 1..10.

    Run (a) clip_lr30: fixed and faithful (3 x fixed) rise with the gradient norm, hessian
    falls; runs (b), (c): the reverse. One faithful point of (a) is nan (dropped)."""
    store = RunStore(root)
    g = np.geomspace(0.5, 5.0, 10)
    for name, cfg in experiment_configs("lstm_ptb", "smoke", device="cpu", **overrides).items():
        w = store.start(cfg.experiment, cfg.identity())
        for t in range(1, 13):
            w.log(t, loss=3.0 - 0.1 * t)
        rising, falling = 0.2 + 1.5 * g, 1.0 / g
        fixed, hessian = (rising, falling) if name == "clip_lr30" else (falling, g)
        for i, t in enumerate(range(1, 11)):
            faithful = math.nan if (name == "clip_lr30" and t == 5) else 3.0 * fixed[i]
            for est, L in (("faithful", faithful), ("fixed", fixed[i]), ("hessian", hessian[i])):
                w.log_table("probes", step=t, estimator=est, grad_norm=g[i], smoothness=L)
        w.finish(wall_time=1.0)


def test_further_seeds_are_pooled_into_every_statistic(tmp_path):
    _store_lstm_runs(tmp_path)
    base = experiment_configs("lstm_ptb", "smoke")["clip_lr30"].seed
    _store_lstm_runs(tmp_path, seed=base + 1)
    kw = dict(
        strong="clip_lr30", weak=["noclip_lr2", "clip_lr2"], device="cpu", n_boot=100, train_missing=False
    )
    one = E.smoothness_study("lstm_ptb", "smoke", tmp_path, **kw)
    two = E.smoothness_study("lstm_ptb", "smoke", tmp_path, seeds=2, **kw)
    assert one.seeds == [base] and two.seeds == [base, base + 1]
    p1, p2 = one.points["clip_lr30"]["fixed"], two.points["clip_lr30"]["fixed"]
    assert p2["step"].size == 2 * p1["step"].size
    np.testing.assert_array_equal(p2["seed"], np.repeat([base, base + 1], p1["step"].size))
    assert {r["n"] for r in two.table if r["estimator"] == "fixed"} == {20}
    assert two.ratios().size == 2 * one.ratios().size
    assert two.hessian_converged["clip_lr30"] == (20, 20)
    assert {r["seed"] for r in two.points_rows()} == {base, base + 1}
    assert two.probes_note().endswith(f"with 2 seed(s) ({base}, {base + 1}) whose points are pooled")
    assert two.probes_note().startswith("by the pinned estimators every 4 steps (18 or more points per run")
    with pytest.raises(ValueError, match="not finished"):
        E.smoothness_study("lstm_ptb", "smoke", tmp_path, seeds=3, **kw)


def test_smoothness_study_of_stored_runs(tmp_path):
    _store_lstm_runs(tmp_path)
    s = E.smoothness_study(
        "lstm_ptb",
        "smoke",
        tmp_path,
        strong="clip_lr30",
        weak=["noclip_lr2", "clip_lr2"],
        device="cpu",
        n_boot=100,
        level=0.9,
        seed=3,
        train_missing=False,
    )
    assert list(s.runs) == ["clip_lr30", "noclip_lr2", "clip_lr2"] and s.weak == ("noclip_lr2", "clip_lr2")
    assert list(s.panel.values()) == [
        "(a) lr 30, clipped at 0.25",
        "(b) lr 2, no clipping",
        "(c) lr 2, clipped at 0.25",
    ]
    assert not any(r.trained for r in s.runs.values())
    assert s.config.lr == 30 and s.meta["finished"] is True and s.steps == 12
    # the points are probe_points of each run; the nan point of (a) is dropped
    sizes = {e: p["step"].size for e, p in s.points["clip_lr30"].items()}
    assert sizes == {"faithful": 9, "fixed": 10, "hessian": 10}
    assert s.n_probes == 9
    ref = {
        n: {e: E.probe_points(r.run, e) for e in ("faithful", "fixed", "hessian")} for n, r in s.runs.items()
    }
    corr = E.correlations(ref, n_boot=100, level=0.9, seed=3)
    assert repr(s.table) == repr(E.correlation_table(ref, corr))  # repr: nan == nan
    assert len(s.table) == 9 and s.envelopes[("clip_lr30", "fixed")] == pytest.approx((0.2, 1.5), rel=1e-9)
    assert repr(s.verdicts) == repr(claim_verdicts(corr, "clip_lr30", ["noclip_lr2", "clip_lr2"], level=0.9))
    v = s.verdicts
    assert v["fixed"]["status"] == "holds" and v["fixed"]["gap"] == pytest.approx(2.0)
    assert v["hessian"]["status"] == "fails"
    # 9 points in (a) is below the 10 the criterion needs: undecidable, whatever rho says
    assert v["faithful"]["rho"] == pytest.approx(1.0) and v["faithful"]["status"] == "inconclusive"
    # g rises with the step in every run: given the step nothing is left to correlate
    assert all(v[e]["status_detrended"] == "inconclusive" for e in v)
    # ratios at common steps only: 9 in (a), 10 in each other run, all exactly 3
    assert s.ratios(runs=["clip_lr30"]).size == 9 and s.ratios().size == 29
    np.testing.assert_allclose(s.ratios(), 3.0, rtol=1e-12)
    g = np.geomspace(0.5, 5.0, 10)
    np.testing.assert_allclose(s.ratios(runs=["noclip_lr2"], num="hessian", den="fixed"), g**2, rtol=1e-12)
    # text the pages print
    lines = s.run_sources().splitlines()
    assert len(lines) == 3 and lines[1].startswith("(b) lr 2, no clipping ")
    assert "loaded from the run store" in lines[1]
    assert str(s.runs["noclip_lr2"].run.path) in lines[1]
    table = s.table_text().splitlines()
    assert len(table) == 10 and table[0].split() == [
        "run",
        "estimator",
        "n",
        "rho",
        "lo",
        "hi",
        "rho_detrended",
        "lo_detrended",
        "hi_detrended",
        "L0",
        "L1",
    ]
    assert "(a) lr 30, clipped at 0.25" in table[1] and "clip_lr30" not in s.table_text()
    assert s.verdict_text().splitlines()[1] == (
        "fixed: holds (rho(a) in [1.000, 1.000], gap in [2.000, 2.000]); detrended inconclusive"
    )
    assert s.summary("WHY") == (
        "On the pinned data the claim holds for `fixed`; fails for `hessian`; inconclusive for `faithful`."
    )


def test_smoothness_study_keeps_the_panel_order_whichever_run_is_strong(tmp_path):
    _store_lstm_runs(tmp_path)
    runs = E.load_runs("lstm_ptb", "smoke", tmp_path, device="cpu", train_missing=False)
    s = E.SmoothnessStudy.from_runs(runs, "clip_lr2", ["clip_lr30"], n_boot=50)
    assert list(s.panel) == list(runs) and s.panel["clip_lr2"].startswith("(c) ")
    assert s.config is runs["clip_lr2"].config and s.weak == ("clip_lr30",)
    assert (
        s.verdicts["fixed"]["status"] == "fails" and s.verdicts["hessian"]["status"] == "holds"
    )  # (c) rises in hessian only
    assert s.verdicts["hessian"]["gap"] == pytest.approx(2.0)
    assert s.ratios(runs=["clip_lr2"]).size == 10


def test_smoothness_study_checks_run_names_before_training(tmp_path):
    root = tmp_path / "store"
    for strong, weak, bad in (
        ("clip_lr7", ["clip_lr2"], "clip_lr7"),
        ("clip_lr30", ["clip_lr30"], "clip_lr30"),
        ("clip_lr30", "clip_lr2", "clip_lr2"),
        ("clip_lr30", [], "weak"),
    ):
        with pytest.raises(ValueError, match=bad):
            E.smoothness_study("lstm_ptb", "smoke", root, strong, weak, device="cpu")
    assert not root.exists()  # nothing was trained (or even stored)
    with pytest.raises(ValueError, match="not finished"):
        E.smoothness_study(
            "lstm_ptb", "smoke", root, "clip_lr30", ["clip_lr2"], device="cpu", train_missing=False
        )


@pytest.mark.parametrize(
    "statuses, text",
    [
        (
            ("holds", "fails", "holds"),
            "The authors' estimator reproduces the claim, but `fixed` does not (fails): W",
        ),
        (
            ("holds", "fails", "inconclusive"),
            "The authors' estimator reproduces the claim, but `fixed` and `hessian` does not (fails, inconclusive): W",
        ),
        (
            ("holds",) * 3,
            "All three pinned-data estimators reproduce the claim too.",
        ),
        (
            ("fails", "holds", "inconclusive"),
            "On the pinned data the claim holds for `fixed`; fails for `faithful`; inconclusive for `hessian`.",
        ),
    ],
)
def test_study_summary_follows_the_verdicts(statuses, text):
    verdicts = {e: {"status": v} for e, v in zip(("faithful", "fixed", "hessian"), statuses)}
    s = E.SmoothnessStudy("a", ("b",), {}, {}, {}, [], verdicts)
    assert s.summary("W") == text
    partial = {e: verdicts[e] for e in ("faithful", "fixed")}
    with pytest.raises(ValueError, match="hessian"):
        E.SmoothnessStudy("a", ("b",), {}, {}, {}, [], partial).summary("W")


def test_study_summary_leads_with_the_step_probe():
    verdicts = {e: {"status": "inconclusive"} for e in ("faithful", "fixed", "hessian")}
    verdicts["step"] = {"status": "holds"}
    pts = {r: {"step": {"step": np.arange(n)}} for r, n in (("a", 300), ("b", 280))}
    s = E.SmoothnessStudy("a", ("b",), {}, {}, pts, [], verdicts)
    assert s.summary("W").startswith(
        "On the dense `step` probe (280 or more points per run) the claim **holds**. "
    )


# ------------------------------------------------------------------------ curves and stored runs


def test_running_mean_matches_a_loop():
    rng = np.random.default_rng(0)
    y = rng.normal(size=57)
    for w in (1, 4, 57, 100):
        ref = [y[max(0, t - w + 1) : t + 1].mean() for t in range(y.size)]
        np.testing.assert_allclose(E.running_mean(y, w), ref, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="window"):
        E.running_mean(y, 0)


def _fake_run(tmp_path, losses, evals, probes=()):
    store = RunStore(tmp_path)
    w = store.start("exp", {"name": "r"})
    for t, loss in enumerate(losses, 1):
        w.log(t, loss=loss)
    for row in evals:
        w.log_table("eval", **row)
    for row in probes:
        w.log_table("probes", **row)
    return w.finish(wall_time=1.0)


def test_training_summary_numbers(tmp_path):
    losses = np.linspace(3.0, 1.0, 20)
    evals = [
        dict(step=10, epoch=1, split="train", loss=2.5),
        dict(step=10, epoch=1, split="test", loss=2.0, accuracy=0.4),
        dict(step=20, epoch=2, split="train", loss=1.5),
        dict(step=20, epoch=2, split="test", loss=2.2, accuracy=0.6),
    ]
    s = E.training_summary(_fake_run(tmp_path, losses, evals), tail=0.1)
    assert s["steps"] == 20 and s["auc"] == pytest.approx(2.0)
    assert s["final_train"] == pytest.approx(losses[-2:].mean())
    assert s["best_test"] == 2.0 and s["final_test"] == 2.2
    assert s["best_test_accuracy"] == 0.6 and s["final_test_accuracy"] == 0.6
    assert "best_valid" not in s
    with pytest.raises(ValueError, match="tail"):
        E.training_summary(_fake_run(tmp_path / "x", losses, evals), tail=0)


def test_probe_points_keep_finite_positive_pairs_of_one_estimator(tmp_path):
    probes = [
        dict(step=1, estimator="fixed", grad_norm=1.0, smoothness=2.0),
        dict(step=1, estimator="hessian", grad_norm=1.0, smoothness=5.0),
        dict(step=2, estimator="fixed", grad_norm=0.0, smoothness=2.0),
        dict(step=3, estimator="fixed", grad_norm=1.5, smoothness=float("nan")),
        dict(step=4, estimator="fixed", grad_norm=2.0, smoothness=3.0),
    ]
    run = _fake_run(tmp_path, [1.0], [], probes)
    p = E.probe_points(run, "fixed")
    assert p["step"].tolist() == [1.0, 4.0] and p["smoothness"].tolist() == [2.0, 3.0]
    with pytest.raises(ValueError, match="bogus"):
        E.probe_points(run, "bogus")


def test_run_label():
    # (experiment_configs itself: tests/training/test_presets.py)
    cfgs = experiment_configs("resnet_images", "ci", device="cpu")
    assert E.run_label(cfgs["momentum"]) == "lr 0.1, momentum 0.9"
    assert E.run_label(cfgs["noclip_lr1"]) == "lr 1, no clipping"
    assert E.run_label(cfgs["clip_lr5"]) == "lr 5, clipped at 0.25"


def test_load_runs_trains_once_then_loads_and_keeps_a_checkpoint(tmp_path):
    kw = dict(device="cpu", epochs=None, max_steps=3, probe_every=2)
    with pytest.raises(ValueError, match="not finished"):
        E.load_runs("resnet_images", "smoke", tmp_path, train_missing=False, **kw)
    first = E.load_runs("resnet_images", "smoke", tmp_path, **kw)
    assert all(r.trained for r in first.values())
    again = E.load_runs("resnet_images", "smoke", tmp_path, **kw)
    assert not any(r.trained for r in again.values())
    assert [r.run.path for r in again.values()] == [r.run.path for r in first.values()]
    r = again["clip_lr5"]
    model, step = E.checkpoint_model(r.run, r.config)
    assert step == 2  # checkpoint_every = 2 in smoke; the last step (3) is not checkpointed
    init = build_model(r.config)
    only = E.load_runs("resnet_images", "smoke", tmp_path, runs=["clip_lr5"], train_missing=False, **kw)
    assert list(only) == ["clip_lr5"] and only["clip_lr5"].run.path == r.run.path
    with pytest.raises(ValueError, match="clip_lr7"):
        E.load_runs("resnet_images", "smoke", tmp_path, runs=["clip_lr7"], **kw)
    assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), init.state_dict().values()))


def test_unconverged_hessian_probes_are_counted_and_left_out(tmp_path):
    store = RunStore(tmp_path)
    w = store.start("exp", {"name": "r"})
    w.log(1, loss=1.0)
    for t, conv in ((1, 1), (2, 0), (3, 1)):
        w.log_table("probes", step=t, estimator="hessian", grad_norm=1.0 + t, smoothness=2.0, converged=conv)
        w.log_table("probes", step=t, estimator="fixed", grad_norm=1.0 + t, smoothness=2.0)
    run = w.finish(wall_time=1.0)
    assert list(E.probe_points(run, "hessian")["step"]) == [1.0, 3.0]
    assert list(E.probe_points(run, "fixed")["step"]) == [1.0, 2.0, 3.0]  # no flag: all kept
    assert E.hessian_convergence(run) == (2, 3)


def test_hessian_note_counts_every_run(tmp_path):
    _store_lstm_runs(tmp_path)
    runs = E.load_runs("lstm_ptb", "smoke", tmp_path, device="cpu", train_missing=False)
    s = E.SmoothnessStudy.from_runs(runs, "clip_lr30", ["clip_lr2"], n_boot=20)
    assert s.hessian_note().startswith("30 of 30 `hessian` probes converged")
