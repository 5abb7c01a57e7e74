"""Tests of clipcore.training.tasks and the task modules: the initial model, a run's
examples, the per-example objective, and the LSTM's learning rate scaled by the sequence
length."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clipcore import data as D
from clipcore import models as M
from clipcore.angles import per_example_gradients
from clipcore.runtime import seed_everything
from clipcore.training import EXPERIMENTS, RunStore, image_task, lstm_task, preset, train
from clipcore.training.schedule import PlateauHalver
from clipcore.training.tasks import build_model, example_loss, examples, make_task, task_module

from .tiny import lstm_cfg

DT = torch.float64


def test_task_module_per_experiment():
    assert task_module("lstm_ptb") is lstm_task and task_module("resnet_images") is image_task
    with pytest.raises(ValueError, match="mlp"):
        task_module("mlp")


@pytest.mark.parametrize("experiment", ["lstm_ptb", "resnet_images"])
def test_build_model_is_the_initial_model_train_builds(experiment):
    cfg = preset(experiment, next(iter(EXPERIMENTS[experiment])), "smoke")
    mine = build_model(cfg)
    seed_everything(cfg.seed)
    theirs = make_task(cfg, torch.device("cpu")).model  # the training loop's own construction
    for (k, a), b in zip(mine.state_dict().items(), theirs.state_dict().values()):
        assert torch.equal(a, b), k


def test_examples_come_from_the_training_data_and_bad_n_is_named():
    cfg = preset("lstm_ptb", "clip_lr30", "smoke")
    x, y = examples(cfg, 5)
    stream = D.load_ptb().train
    assert x.shape == (5, cfg.bptt) and torch.equal(x[1], stream[cfg.bptt : 2 * cfg.bptt])
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[0, -1:], x[1, :1])
    with pytest.raises(ValueError, match="100000"):
        examples(cfg, 100000)
    icfg = preset("resnet_images", "clip_lr5", "smoke")
    xi, yi = examples(icfg, 10)  # the data set's name is no longer returned ...
    name = image_task.load_images(icfg).name  # ... it is the data's (and the run's meta["dataset"])
    assert xi.shape == (10, 3, 32, 32) and yi.shape == (10,) and "digits" in name
    with pytest.raises(ValueError, match="129"):
        examples(icfg, 129)  # the smoke run trains on 128 images


# ------------------------------------------------------------------------ per-example objective


def _tiny_lstm(seed=0):
    torch.manual_seed(seed)
    return M.LSTMLanguageModel(23, emb_size=5, hidden_size=7, n_layers=2).to(DT)


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

    ex = example_loss(cfg, model)
    G = torch.cat(list(per_example_gradients(ex.loss, ex.params, xs, ys, chunk_size=3)))
    torch.testing.assert_close(G, _loop_grads(model, loss_one, xs, ys), rtol=1e-10, atol=1e-12)


def test_resnet_per_example_gradients_use_fixed_batchnorm_statistics():
    torch.manual_seed(2)
    model = M.ResNetCifar(8, 4, widths=(2, 4, 4)).to(DT)
    xs, ys = torch.randn(6, 3, 8, 8, dtype=DT), torch.randint(0, 4, (6,))
    M.recalibrate_batchnorm(model, xs, batch_size=4)
    ex = example_loss(_Cfg("resnet_images"), model)
    assert not model.training
    G = torch.cat(list(per_example_gradients(ex.loss, ex.params, xs, ys, chunk_size=4)))
    ref = _loop_grads(model, lambda x, y: F.cross_entropy(model(x[None]), y[None]), xs, ys)
    torch.testing.assert_close(G, ref, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------ LSTM learning rate


def test_lstm_lr_scaled_by_seq_len_and_halved_on_plateau(tmp_path):
    # lr 200 with no clipping makes the validation loss stall, so the schedule acts.
    cfg = lstm_cfg(epochs=4, optimizer="sgd", max_norm=None, lr=200.0, probe_every=None, lr_halve_patience=1)
    run = train(cfg, RunStore(tmp_path), progress=False)
    m, ev = run.table(), run.table("eval")
    # Replay the schedule on the logged validation losses: the lr of every step of epoch e
    # is (base lr of epoch e) * seq_len / bptt.
    valid = ev["split"] == "valid"
    halver, base = PlateauHalver(cfg.lr, cfg.lr_halve_patience), {}
    for e, v in zip(ev["epoch"][valid], ev["loss"][valid]):
        base[int(e)] = halver.lr
        halver.update(v)
    assert base[4] < base[1], "the test needs at least one halving"
    expected = np.array([base[int(e)] for e in m["epoch"]]) * m["seq_len"] / cfg.bptt
    np.testing.assert_allclose(m["lr"], expected, rtol=1e-12)
    assert len(np.unique(m["seq_len"])) > 2  # the lengths really are random
    assert m["seq_len"].min() >= 5

    fixed = train(cfg.replace(random_bptt=False, epochs=1), RunStore(tmp_path), progress=False).table()
    assert np.all(fixed["seq_len"] == cfg.bptt) and np.all(fixed["lr"] == cfg.lr)
