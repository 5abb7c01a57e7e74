"""Tests for clipcore.experiments: statistics, curves, stored runs, per-example gradients
and the streaming batch-angle measurement, against float64 references and known answers."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clipcore import experiments as E
from clipcore import models as M
from clipcore.incremental import gradient_moments, predicted_cosine
from clipcore.results import RunStore

DT = torch.float64


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


def test_envelope_recovers_a_known_line():
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


def _row(run, est, rho, lo):
    return dict(run=run, estimator=est, rho=rho, lo=lo, hi=1.0, n=10, L0=0.0, L1=0.0)


def test_claim_verdicts_apply_the_stated_criterion():
    table = [
        _row("a", "fixed", 0.9, 0.6), _row("b", "fixed", 0.5, 0.1), _row("c", "fixed", 0.7, 0.3),
        _row("a", "hessian", 0.9, 0.4), _row("b", "hessian", 0.1, -0.3), _row("c", "hessian", 0.2, -0.2),
        _row("a", "faithful", 0.8, 0.55), _row("b", "faithful", 0.61, 0.2), _row("c", "faithful", float("nan"), 0.0),
    ]  # fmt: skip
    v = E.claim_verdicts(table, "a", ["b", "c"], min_lower=0.5, min_gap=0.2)
    assert v["fixed"]["ok"] and v["fixed"]["gap"] == pytest.approx(0.2) and v["fixed"]["max_weak"] == 0.7
    assert not v["hessian"]["ok"] and v["hessian"]["gap_ok"] and not v["hessian"]["lower_ok"]
    assert not v["faithful"]["ok"] and v["faithful"]["lower_ok"] and math.isnan(v["faithful"]["max_weak"])
    # the gap alone: a lower margin flips the fixed verdict
    assert not E.claim_verdicts(table, "a", ["b", "c"], min_gap=0.21)["fixed"]["ok"]
    with pytest.raises(ValueError, match="'z'"):
        E.claim_verdicts(table, "a", ["z"])
    with pytest.raises(ValueError, match="weak"):
        E.claim_verdicts(table, "a", [])


def test_format_table_aligns_columns():
    s = E.format_table([dict(run="a", rho=0.123456), dict(run="bbb", rho=float("nan"))], ["run", "rho"])
    lines = s.splitlines()
    assert len(lines) == 3 and len({len(line) for line in lines}) == 1 and "0.123" in s and "nan" in s


def test_scatter_grid_draws_one_panel_per_run_and_estimator():
    import matplotlib.pyplot as plt

    pts = {r: {e: _pts([1.0, 2.0, 3.0], [1.0, 3.0, 2.0]) for e in ("faithful", "fixed")} for r in ("a", "b", "c")}
    fig = E.scatter_grid(pts, {"a": "(a)"}, envelopes={("a", "fixed"): (0.5, 1.0)}, title="t")
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 6 and panels[0].get_xscale() == "log"
    plt.close(fig)
    fig = E.scatter_grid(pts, {}, log=False)
    assert fig.axes[0].get_xscale() == "linear"
    plt.close(fig)


# ------------------------------------------------------------------------ smoothness studies


def _store_lstm_runs(root):
    """The three smoke LSTM runs, stored without training: 12 steps, probes at steps 1..10.

    Run (a) clip_lr30: fixed and faithful (3 x fixed) rise with the gradient norm, hessian
    falls; runs (b), (c): the reverse. One faithful point of (a) is nan (dropped)."""
    store = RunStore(root)
    g = np.geomspace(0.5, 5.0, 10)
    for name, cfg in E.experiment_configs("lstm_ptb", "smoke", device="cpu").items():
        w = store.start(cfg.experiment, cfg.to_dict())
        for t in range(1, 13):
            w.log(t, loss=3.0 - 0.1 * t)
        rising, falling = 0.2 + 1.5 * g, 1.0 / g
        fixed, hessian = (rising, falling) if name == "clip_lr30" else (falling, g)
        for i, t in enumerate(range(1, 11)):
            faithful = math.nan if (name == "clip_lr30" and t == 5) else 3.0 * fixed[i]
            for est, L in (("faithful", faithful), ("fixed", fixed[i]), ("hessian", hessian[i])):
                w.log_table("probes", step=t, estimator=est, grad_norm=g[i], smoothness=L)
        w.finish(wall_time=1.0)


def test_smoothness_study_of_stored_runs(tmp_path):
    _store_lstm_runs(tmp_path)
    s = E.smoothness_study("lstm_ptb", "smoke", tmp_path, strong="clip_lr30", weak=["noclip_lr2", "clip_lr2"],
                           device="cpu", n_boot=100, level=0.9, seed=3, train_missing=False)  # fmt: skip
    assert list(s.runs) == ["clip_lr30", "noclip_lr2", "clip_lr2"] and s.weak == ("noclip_lr2", "clip_lr2")
    assert list(s.panel.values()) == ["(a) lr 30, clipped at 0.25", "(b) lr 2, no clipping",
                                      "(c) lr 2, clipped at 0.25"]  # fmt: skip
    assert not any(r.trained for r in s.runs.values())
    assert s.config.lr == 30 and s.meta["finished"] is True and s.steps == 12
    # the points are probe_points of each run; the nan point of (a) is dropped
    sizes = {e: p["step"].size for e, p in s.points["clip_lr30"].items()}
    assert sizes == {"faithful": 9, "fixed": 10, "hessian": 10}
    assert s.n_probes == 9
    ref = {n: {e: E.probe_points(r.run, e) for e in ("faithful", "fixed", "hessian")}
           for n, r in s.runs.items()}  # fmt: skip
    assert s.table == E.correlation_table(ref, n_boot=100, level=0.9, seed=3)
    assert len(s.table) == 9 and s.envelopes[("clip_lr30", "fixed")] == pytest.approx((0.2, 1.5), rel=1e-9)
    assert s.verdicts == E.claim_verdicts(s.table, "clip_lr30", ["noclip_lr2", "clip_lr2"])
    assert s.verdicts["fixed"]["ok"] and s.verdicts["fixed"]["gap"] == pytest.approx(2.0)
    assert s.verdicts["faithful"]["ok"] and not s.verdicts["hessian"]["ok"]
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
    assert len(table) == 10 and table[0].split() == ["run", "estimator", "n", "rho", "lo", "hi", "L0", "L1"]
    assert "(a) lr 30, clipped at 0.25" in table[1] and "clip_lr30" not in s.table_text()
    assert s.verdict_text().splitlines() == ["faithful: claim holds (lower end 1.000, gap 2.000)",
                                             "fixed: claim holds (lower end 1.000, gap 2.000)",
                                             "hessian: claim fails (lower end -1.000, gap -2.000)"]  # fmt: skip
    assert s.summary("WHY") == "The authors' estimator reproduces the claim, but `hessian` does not: WHY"


def test_smoothness_study_keeps_the_panel_order_whichever_run_is_strong(tmp_path):
    _store_lstm_runs(tmp_path)
    runs = E.load_runs("lstm_ptb", "smoke", tmp_path, device="cpu", train_missing=False)
    s = E.SmoothnessStudy.from_runs(runs, "clip_lr2", ["clip_lr30"], n_boot=50)
    assert list(s.panel) == list(runs) and s.panel["clip_lr2"].startswith("(c) ")
    assert s.config is runs["clip_lr2"].config and s.weak == ("clip_lr30",)
    assert not s.verdicts["fixed"]["ok"] and s.verdicts["hessian"]["ok"]  # (c) rises in hessian only
    assert s.verdicts["hessian"]["gap"] == pytest.approx(2.0)
    assert s.ratios(runs=["clip_lr2"]).size == 10


def test_smoothness_study_checks_run_names_before_training(tmp_path):
    root = tmp_path / "store"
    for strong, weak, bad in (("clip_lr7", ["clip_lr2"], "clip_lr7"), ("clip_lr30", ["clip_lr30"], "clip_lr30"),
                              ("clip_lr30", "clip_lr2", "clip_lr2"), ("clip_lr30", [], "weak")):  # fmt: skip
        with pytest.raises(ValueError, match=bad):
            E.smoothness_study("lstm_ptb", "smoke", root, strong, weak, device="cpu")
    assert not root.exists()  # nothing was trained (or even stored)
    with pytest.raises(ValueError, match="not finished"):
        E.smoothness_study("lstm_ptb", "smoke", root, "clip_lr30", ["clip_lr2"], device="cpu",
                           train_missing=False)  # fmt: skip


def _verdict(ok):
    return dict(ok=ok, lower_ok=ok, gap_ok=ok, rho=0.9 if ok else 0.1, lo=0.7 if ok else -0.2,
                max_weak=0.1, gap=0.8 if ok else 0.0)  # fmt: skip


@pytest.mark.parametrize("ok, text", [
    ((True, False, True), "The authors' estimator reproduces the claim, but `fixed` does not: W"),
    ((True, False, False), "The authors' estimator reproduces the claim, but `fixed` and `hessian` does not: W"),
    ((True, True, True), "All three estimators reproduce the claim: the corrected ones do not weaken it here."),
    ((False, True, True), "The authors' estimator does not reproduce the claim at this scale, but `fixed` and `hessian` does."),
    ((False, False, True), "The authors' estimator does not reproduce the claim at this scale, but `hessian` does."),
    ((False, False, False), "No estimator reproduces the claim at this scale by the criterion above; the numbers in the table say how far each one is from it."),
])  # fmt: skip
def test_study_summary_follows_the_verdicts(ok, text):
    verdicts = {e: _verdict(v) for e, v in zip(("faithful", "fixed", "hessian"), ok)}
    s = E.SmoothnessStudy("a", ("b",), {}, {}, {}, [], verdicts)
    assert s.summary("W") == text
    partial = {e: verdicts[e] for e in ("faithful", "fixed")}
    with pytest.raises(ValueError, match="hessian"):
        E.SmoothnessStudy("a", ("b",), {}, {}, {}, [], partial).summary("W")


def test_glue_claim_verdicts_glues_four_values_per_estimator(monkeypatch):
    from clipcore import pages

    glued = {}
    monkeypatch.setattr(pages, "_glue", lambda key, value: glued.__setitem__(key, value))
    pages.glue_claim_verdicts("xy", {"fixed": _verdict(True), "hessian": _verdict(False)})
    assert sorted(glued) == sorted(f"xy_{k}_{e}" for k in ("claim", "rho", "lo", "gap")
                                   for e in ("fixed", "hessian"))  # fmt: skip
    assert glued["xy_claim_fixed"].data == "**reproduced**"
    assert glued["xy_claim_hessian"].data == "**not reproduced**"
    assert (glued["xy_rho_fixed"], glued["xy_lo_fixed"], glued["xy_gap_fixed"]) == (0.9, 0.7, 0.8)
    assert (glued["xy_rho_hessian"], glued["xy_lo_hessian"], glued["xy_gap_hessian"]) == (0.1, -0.2, 0.0)
    assert all(type(glued[f"xy_{k}_fixed"]) is float for k in ("rho", "lo", "gap"))


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
    for t, l in enumerate(losses, 1):
        w.log(t, loss=l)
    for row in evals:
        w.log_table("eval", **row)
    for row in probes:
        w.log_table("probes", **row)
    return w.finish(wall_time=1.0)


def test_training_summary_numbers(tmp_path):
    losses = np.linspace(3.0, 1.0, 20)
    evals = [dict(step=10, epoch=1, split="train", loss=2.5), dict(step=10, epoch=1, split="test", loss=2.0, accuracy=0.4),
             dict(step=20, epoch=2, split="train", loss=1.5), dict(step=20, epoch=2, split="test", loss=2.2, accuracy=0.6)]  # fmt: skip
    s = E.training_summary(_fake_run(tmp_path, losses, evals), tail=0.1)
    assert s["steps"] == 20 and s["auc"] == pytest.approx(2.0)
    assert s["final_train"] == pytest.approx(losses[-2:].mean())
    assert s["best_test"] == 2.0 and s["final_test"] == 2.2
    assert s["best_test_accuracy"] == 0.6 and s["final_test_accuracy"] == 0.6
    assert "best_valid" not in s
    with pytest.raises(ValueError, match="tail"):
        E.training_summary(_fake_run(tmp_path / "x", losses, evals), tail=0)


def test_probe_points_keep_finite_positive_pairs_of_one_estimator(tmp_path):
    probes = [dict(step=1, estimator="fixed", grad_norm=1.0, smoothness=2.0),
              dict(step=1, estimator="hessian", grad_norm=1.0, smoothness=5.0),
              dict(step=2, estimator="fixed", grad_norm=0.0, smoothness=2.0),
              dict(step=3, estimator="fixed", grad_norm=1.5, smoothness=float("nan")),
              dict(step=4, estimator="fixed", grad_norm=2.0, smoothness=3.0)]  # fmt: skip
    run = _fake_run(tmp_path, [1.0], [], probes)
    p = E.probe_points(run, "fixed")
    assert p["step"].tolist() == [1.0, 4.0] and p["smoothness"].tolist() == [2.0, 3.0]
    with pytest.raises(ValueError, match="bogus"):
        E.probe_points(run, "bogus")


def test_experiment_configs_share_one_checkpoint_setting():
    cfgs = E.experiment_configs("resnet_images", "ci", device="cpu")
    assert list(cfgs) == ["momentum", "noclip_lr1", "clip_lr5"]
    assert {c.checkpoint_every for c in cfgs.values()} == {E.CHECKPOINT_EVERY["ci"]}
    assert all(c.device == "cpu" for c in cfgs.values())
    assert E.experiment_configs("lstm_ptb", "smoke", epochs=1)["clip_lr30"].epochs == 1
    assert E.run_label(cfgs["momentum"]) == "lr 0.1, momentum 0.9"
    assert E.run_label(cfgs["noclip_lr1"]) == "lr 1, no clipping"
    assert E.run_label(cfgs["clip_lr5"]) == "lr 5, clipped at 0.25"
    with pytest.raises(ValueError, match="huge"):
        E.experiment_configs("lstm_ptb", "huge")
    with pytest.raises(ValueError, match="mlp"):
        E.experiment_configs("mlp", "ci")


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
    init = E.build_model(r.config)
    only = E.load_runs("resnet_images", "smoke", tmp_path, runs=["clip_lr5"], train_missing=False, **kw)
    assert list(only) == ["clip_lr5"] and only["clip_lr5"].run.path == r.run.path
    with pytest.raises(ValueError, match="clip_lr7"):
        E.load_runs("resnet_images", "smoke", tmp_path, runs=["clip_lr7"], **kw)
    assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), init.state_dict().values()))


@pytest.mark.parametrize("experiment", ["lstm_ptb", "resnet_images"])
def test_build_model_is_the_initial_model_train_builds(experiment):
    from clipcore import train as T

    cfg = T.preset(experiment, next(iter(T.EXPERIMENTS[experiment])), "smoke")
    mine = E.build_model(cfg)
    T.seed_everything(cfg.seed)
    theirs = T._TASKS[experiment](cfg, torch.device("cpu")).model  # train's own construction
    for (k, a), b in zip(mine.state_dict().items(), theirs.state_dict().values()):
        assert torch.equal(a, b), k


def test_examples_come_from_the_training_data_and_bad_n_is_named():
    from clipcore import data as D
    from clipcore import train as T

    cfg = T.preset("lstm_ptb", "clip_lr30", "smoke")
    x, y = E.lstm_examples(cfg, 5)
    stream = D.load_ptb().train
    assert x.shape == (5, cfg.bptt) and torch.equal(x[1], stream[cfg.bptt : 2 * cfg.bptt])
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[0, -1:], x[1, :1])
    with pytest.raises(ValueError, match="100000"):
        E.lstm_examples(cfg, 100000)
    icfg = T.preset("resnet_images", "clip_lr5", "smoke")
    xi, yi, name = E.image_examples(icfg, 10)
    assert xi.shape == (10, 3, 32, 32) and yi.shape == (10,) and "digits" in name
    with pytest.raises(ValueError, match="129"):
        E.image_examples(icfg, 129)  # the smoke run trains on 128 images


# ------------------------------------------------------------------------ per-example gradients


def _tiny_lstm(seed=0):
    torch.manual_seed(seed)
    return M.LSTMLanguageModel(23, emb_size=5, hidden_size=7, n_layers=2).to(DT)


def test_functional_lstm_matches_the_model_in_float64():
    model = _tiny_lstm()
    x = torch.randint(0, 23, (9, 4))
    logits, _, out = model(x, model.init_hidden(4))
    params = dict(model.named_parameters())
    f_logits, f_out = E.lstm_lm_forward(params, x, model.n_layers)
    torch.testing.assert_close(f_logits.reshape(-1, 23), logits, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(f_out, out, rtol=1e-12, atol=1e-12)


class _Cfg:
    def __init__(self, experiment, alpha=2.0, beta_tar=1.0):
        self.experiment, self.alpha, self.beta_tar = experiment, alpha, beta_tar


def _loop_grads(model, loss_one, xs, ys):
    """Reference: one autograd backward per example through the nn.Module itself."""
    rows = []
    for x, y in zip(xs, ys):
        model.zero_grad()
        loss_one(x, y).backward()
        rows.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]))
    return torch.stack(rows)


def test_lstm_per_example_gradients_match_autograd_per_sequence():
    model = _tiny_lstm(1)
    cfg = _Cfg("lstm_ptb")
    xs, ys = torch.randint(0, 23, (7, 6)), torch.randint(0, 23, (7, 6))

    def loss_one(x, y):
        logits, _, out, raw = model(x[:, None], model.init_hidden(1), return_raw=True)
        pen = cfg.alpha * out.pow(2).mean() + cfg.beta_tar * (raw[1:] - raw[:-1]).pow(2).mean()
        return F.cross_entropy(logits, y) + pen

    ex = E.example_loss(cfg, model)
    G = torch.cat(list(E.per_example_gradients(ex.loss, ex.params, xs, ys, chunk_size=3)))
    torch.testing.assert_close(G, _loop_grads(model, loss_one, xs, ys), rtol=1e-10, atol=1e-12)
    full = E.full_gradient(ex.loss, ex.params, xs, ys, chunk_size=4)
    torch.testing.assert_close(full, G.mean(0), rtol=1e-10, atol=1e-13)
    batched = E.full_gradient(ex.loss, ex.params, xs, ys, chunk_size=4, batch_loss=ex.batch_loss)
    torch.testing.assert_close(batched, G.mean(0), rtol=1e-10, atol=1e-13)


def test_resnet_per_example_gradients_use_fixed_batchnorm_statistics():
    torch.manual_seed(2)
    model = M.ResNetCifar(8, 4, widths=(2, 4, 4)).to(DT)
    xs, ys = torch.randn(6, 3, 8, 8, dtype=DT), torch.randint(0, 4, (6,))
    E.recalibrate_batchnorm(model, xs, batch_size=4)
    ex = E.example_loss(_Cfg("resnet_images"), model)
    assert not model.training
    G = torch.cat(list(E.per_example_gradients(ex.loss, ex.params, xs, ys, chunk_size=4)))
    ref = _loop_grads(model, lambda x, y: F.cross_entropy(model(x[None]), y[None]), xs, ys)
    torch.testing.assert_close(G, ref, rtol=1e-10, atol=1e-12)
    batched = E.full_gradient(ex.loss, ex.params, xs, ys, chunk_size=4, batch_loss=ex.batch_loss)
    torch.testing.assert_close(batched, G.mean(0), rtol=1e-10, atol=1e-13)


def test_recalibrated_batchnorm_holds_the_average_batch_statistics():
    torch.manual_seed(4)
    model = M.ResNetCifar(8, 3, widths=(3, 4, 4)).to(DT)
    x = torch.randn(10, 3, 8, 8, dtype=DT)
    E.recalibrate_batchnorm(model, x, batch_size=5)  # two equal batches, cumulative average
    h = model.conv1(x)
    torch.testing.assert_close(model.bn1.running_mean, h.mean((0, 2, 3)), rtol=1e-12, atol=1e-12)
    var = 0.5 * (h[:5].var((0, 2, 3)) + h[5:].var((0, 2, 3)))  # BatchNorm stores unbiased variances
    torch.testing.assert_close(model.bn1.running_var, var, rtol=1e-12, atol=1e-12)
    assert model.bn1.momentum == 0.1 and not model.training  # momentum restored, eval mode


# ------------------------------------------------------------------------ streaming batch angles


def _linear_problem(N=60, d=5, seed=0):
    """Least squares: l_i(w) = (a_i.w - b_i)^2 / 2, so g_i = (a_i.w - b_i) a_i in closed form."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(N, d, generator=g, dtype=DT)
    b = torch.randn(N, generator=g, dtype=DT) + 3.0
    w = torch.randn(d, generator=g, dtype=DT) * 0.1

    def loss(p, x, y):
        return 0.5 * (x @ p["w"] - y) ** 2

    G = (A @ w - b)[:, None] * A
    return loss, {"w": w}, A, b, G


def _brute_cosines(G, Bs, min_batches, seed):
    """The same shuffles as measure_angles, from the whole gradient matrix."""
    N = G.shape[0]
    rng = np.random.default_rng(seed)
    order = rng.permutation(N)
    extra = {}
    for B in Bs:
        n = N // B
        extra[B] = [rng.permutation(N) for _ in range(max(1, math.ceil(min_batches / n)) - 1)]
    gbar = G.mean(0)
    out = {}
    for B in Bs:
        n = N // B
        parts = []
        for perm in [order] + extra[B]:
            S = G[perm[: n * B]].reshape(n, B, -1).mean(1)
            parts.append((S @ gbar / (S.norm(dim=1) * gbar.norm())).numpy())
        out[B] = np.concatenate(parts)
    return out


@pytest.mark.parametrize("chunk_size", [1, 7, 16, 64])
def test_measure_angles_matches_the_whole_matrix_computation(chunk_size):
    loss, params, A, b, G = _linear_problem(N=60)
    Bs = [1, 4, 16, 25]
    r = E.measure_angles(loss, params, A, b, Bs, min_batches=6, chunk_size=chunk_size, seed=3)
    ref = _brute_cosines(G, Bs, 6, 3)
    for B in Bs:
        np.testing.assert_allclose(r.cosines[B], ref[B], rtol=1e-12, atol=1e-12)
    assert [r.cosines[B].size for B in Bs] == [60, 15, 6, 6]  # extra shuffles up to min_batches
    m2, s2 = gradient_moments(G)
    assert r.mean_sq_norm == pytest.approx(m2, rel=1e-12) and r.sigma2 == pytest.approx(s2, rel=1e-12)
    assert r.n_examples == 60 and r.n_params == 5 and r.mean_check < 1e-13
    np.testing.assert_allclose(r.predicted(), predicted_cosine(m2, s2, 60, np.array(Bs, float)))
    np.testing.assert_allclose(r.angles(1), np.degrees(np.arccos(np.clip(ref[1], -1, 1))))


def test_float32_gradients_agree_with_the_float64_computation():
    loss, params, A, b, G = _linear_problem(N=60, seed=2)
    Bs = [1, 4, 16, 25]
    r32 = E.measure_angles(loss, {"w": params["w"].float()}, A.float(), b.float(), Bs, min_batches=6,
                           chunk_size=7, seed=3)  # fmt: skip
    ref = _brute_cosines(G, Bs, 6, 3)
    for B in Bs:
        np.testing.assert_allclose(r32.cosines[B], ref[B], rtol=0, atol=1e-5)
    m2, s2 = gradient_moments(G)
    assert r32.mean_sq_norm == pytest.approx(m2, rel=1e-5) and r32.sigma2 == pytest.approx(s2, rel=1e-5)


def test_angles_shrink_with_batch_size_as_predicted():
    """Gaussian per-example gradients: the prediction is close for every B (it is exact for
    the root mean square; the mean of the cosine is within a few hundredths here)."""
    N, d = 2048, 50
    g = torch.Generator().manual_seed(7)
    mu = torch.zeros(d, dtype=DT)
    mu[0] = 1.0
    G = mu + 0.7 * torch.randn(N, d, generator=g, dtype=DT)

    def loss(p, x, y):  # gradient of <p, x> is x: the per-example gradient is the row itself
        return p["w"] @ x + 0 * y

    r = E.measure_angles(loss, {"w": torch.zeros(d, dtype=DT)}, G, torch.zeros(N, dtype=DT),
                         [1, 4, 16, 64, 256], min_batches=32, chunk_size=256)  # fmt: skip
    med = r.median_angles()
    assert np.all(np.diff(med) < 0)
    assert np.max(np.abs(r.mean_cosines() - r.predicted())) < 0.03


def test_measure_angles_rejects_bad_input():
    loss, params, A, b, _ = _linear_problem(N=20)
    for bad in ([20], [0, 2], [], [2, 2]):
        with pytest.raises(ValueError, match="batch_sizes"):
            E.measure_angles(loss, params, A, b, bad)
    with pytest.raises(ValueError, match="min_batches"):
        E.measure_angles(loss, params, A, b, [2], min_batches=0)
    with pytest.raises(ValueError, match="chunk_size"):
        E.measure_angles(loss, params, A, b, [2], chunk_size=0)
    with pytest.raises(ValueError, match="labels"):
        E.measure_angles(loss, params, A, b[:5], [2])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_measure_angles_on_cuda_matches_cpu():
    model = _tiny_lstm(3)
    cfg = _Cfg("lstm_ptb")
    xs, ys = torch.randint(0, 23, (24, 6)), torch.randint(0, 23, (24, 6))
    ex = E.example_loss(cfg, model)
    cpu = E.measure_angles(ex.loss, ex.params, xs, ys, [1, 4, 16], min_batches=4, chunk_size=5)
    ex = E.example_loss(cfg, model.cuda())
    gpu = E.measure_angles(ex.loss, ex.params, xs.cuda(), ys.cuda(), [1, 4, 16], min_batches=4,
                           chunk_size=5, batch_loss=ex.batch_loss)  # fmt: skip
    for B in (1, 4, 16):
        np.testing.assert_allclose(gpu.cosines[B], cpu.cosines[B], rtol=1e-9, atol=1e-10)
    assert gpu.sigma2 == pytest.approx(cpu.sigma2, rel=1e-9)
