"""Tiny training configs and helpers shared by the tests of clipcore.training.

A few hundred PTB tokens and scikit-learn's digits keep the tests fast.
"""

from __future__ import annotations

import numpy as np

from clipcore.training import TrainConfig
from clipcore.training import loop as L

# A few hundred PTB tokens, a 2-layer LSTM of width 16: ~14 steps per epoch.
TINY_LSTM = dict(
    experiment="lstm_ptb",
    name="tiny",
    optimizer="clipped_sgd",
    lr=20.0,
    max_norm=0.25,
    emb_size=8,
    hidden_size=16,
    n_layers=2,
    bptt=8,
    batch_size=4,
    eval_batch_size=4,
    train_fraction=0.0005,
    eval_fraction=0.002,
    epochs=2,
    lr_halve_patience=1,
    alpha=2.0,
    beta_tar=1.0,
    seed=3,
    device="cpu",
    probe_every=5,
    probe_chunks=2,
    power_iters=3,
)
# 64 digits images, ResNet-8 of width 4: 4 steps per epoch.
TINY_RESNET = dict(
    experiment="resnet_images",
    name="tiny",
    optimizer="sgd",
    lr=0.1,
    max_norm=None,
    momentum=0.9,
    weight_decay=5e-4,
    dataset="digits",
    depth=8,
    width=4,
    n_train=64,
    n_test=32,
    batch_size=16,
    eval_batch_size=32,
    epochs=3,
    seed=5,
    device="cpu",
    probe_every=3,
    probe_chunks=1,
    power_iters=3,
)


def lstm_cfg(**kw):
    return TrainConfig.from_dict({**TINY_LSTM, **kw})


def resnet_cfg(**kw):
    return TrainConfig.from_dict({**TINY_RESNET, **kw})


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
    """Wraps clipcore.training.loop._train_step; optionally raises on the ``fail_at``-th call."""

    def __init__(self, monkeypatch, fail_at=None):
        self.calls, self.fail_at, self.inner = 0, fail_at, L._train_step
        monkeypatch.setattr(L, "_train_step", self)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise KeyboardInterrupt("injected interruption")
        return self.inner(*args, **kwargs)
