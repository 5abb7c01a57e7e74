r"""The one training loop behind every experiment page, and ``python -m clipcore train``.

Two experiments of Zhang, He, Sra, Jadbabaie (ICLR 2020, Figs. 1-4):

``lstm_ptb``
    The authors' reduced AWD-LSTM on word-level Penn Treebank (Figs. 1, 2, 4a-b). Each step
    draws a random BPTT length :math:`\ell` (:func:`clipcore.data.sample_bptt`), uses the
    learning rate :math:`\eta\,\ell/\text{bptt}`, carries the (detached) hidden state from
    chunk to chunk within an epoch and minimises

    .. math::
        \underbrace{\tfrac{1}{TB}\textstyle\sum_{t,b} -\log p(w_{t+1,b} \mid w_{\le t,b})}_{\text{loss}}
        + \alpha\,\operatorname{mean}(o_t^2) + \beta_\text{TAR}\,\operatorname{mean}((h_t - h_{t-1})^2),

    halving :math:`\eta` when the validation loss has not improved for ``lr_halve_patience``
    epochs. Validation loss and perplexity every epoch, test at the end.

``resnet_images``
    A CIFAR ResNet (ResNet-20 by default) on CIFAR-10, or on the Fashion-MNIST stand-in
    (Figs. 3, 4c-d): cross-entropy on augmented (random crop + flip), normalised batches;
    test loss/accuracy every epoch.

Every step logs the pre-clip gradient norm :math:`\|g_t\|` (the paper's x-axis), whether it
was clipped (:math:`\|g_t\| > \gamma`), the learning rate and the step length
:math:`\|x_{t+1} - x_t\|`, which is :math:`\eta \min\{1, \gamma/\|g_t\|\}\|g_t\|` for clipped
SGD without momentum or weight decay (``eps`` as in ``clip_grad_norm_``), and the measured
parameter displacement otherwise. At steps :math:`1, 1 + k, 1 + 2k, \dots` (``k =
probe_every``) each smoothness estimator of :mod:`clipcore.smoothness` is evaluated on the
segment :math:`x_t \to x_{t+1}` of that step ("The smoothness estimator" in PAPER.md); the
rows (step, estimator, grad_norm, smoothness, the step's own ``train_grad_norm`` and
``step_norm``, ``probe_loss``) go to the ``probes`` table.

**Probe data.** LSTM: the first ``probe_fraction`` of the (used) training stream, batchified
with the training batch size, capped at ``probe_chunks`` x ``bptt`` rows, cut into
consecutive chunks evaluated from a zero hidden state that is carried from chunk to chunk
(as the authors' code). ``fixed`` and ``hessian`` use pinned chunks of length ``bptt``,
weighted by their number of tokens; ``faithful`` redraws random lengths at every draw (a
NumPy generator seeded by ``(seed, draw)``, so it is reproducible). ResNet: the first
``probe_fraction`` of the training subset (at most ``probe_chunks`` batches of
``batch_size``), normalised, *without* augmentation. The model stays in **train mode**
during probes: the probed function is the training objective the optimiser follows (for
the ResNet, BatchNorm with batch statistics -- deterministic for a pinned batch; the running
statistics are never touched because the estimators work on copies of the buffers). The
LSTM probe loss includes the AR/TAR penalties for the same reason; weight decay is not part
of it. Probes run in full precision, outside autocast.

**Device and sync.** The device is chosen once, by :func:`resolve_device`. On the CPU every
step's metrics are read with ``.item()`` right away; on CUDA they stay on the device and are
copied to the host in one transfer every ``CUDA_FLUSH_EVERY`` steps (and at probes, epoch ends
and checkpoints), and the optimiser skips its per-step finiteness check; a non-finite loss
or gradient norm raises ``FloatingPointError`` at the next flush instead. With
``amp_dtype="float16"`` a ``GradScaler`` scales the loss; gradients are unscaled before the
norm is measured and clipped, and a step the scaler skips (inf/nan gradient) is logged with
its non-finite norm and a zero step length instead of stopping the run.

**Reproducibility.** Python, NumPy and torch are seeded from ``config.seed``; the BPTT
sampler is a ``numpy.random.Generator`` and the ResNet's shuffling and augmentation use CPU
``torch.Generator`` objects, all seeded from it (so the data order does not depend on the
device). A checkpoint (every ``checkpoint_every`` steps) holds the model, the optimiser, all
RNG and sampler states, the position in the epoch, the carried hidden state and the
learning-rate schedule; a resumed run writes exactly the rows an uninterrupted run would.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import random
import re
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from . import data as D
from . import functional as FN
from . import models as M
from . import smoothness as S
from .optim import ClippedSGD, NormalizedSGD

__all__ = [
    "TrainConfig",
    "EXPERIMENTS",
    "PROFILES",
    "preset",
    "resolve_device",
    "seed_everything",
    "PlateauHalver",
    "train",
    "main",
    "CUDA_FLUSH_EVERY",
]

EXPERIMENT_NAMES = ("lstm_ptb", "resnet_images")
OPTIMIZERS = ("sgd", "clipped_sgd", "normalized_sgd")
PROFILE_NAMES = ("smoke", "ci", "paper")
AMP_DTYPES = ("bfloat16", "float16")
DATASETS = ("auto", "digits")
# CUDA: per-step metrics stay on the device and are copied to the host every this many steps.
CUDA_FLUSH_EVERY = 50

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------


def _f(default, help, kind):
    return field(default=default, metadata={"help": help, "kind": kind})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (and so its run-store hash).

    Build it with :meth:`from_dict` (rejects unknown keys) or :func:`preset`; every value is
    validated on construction and a bad one raises ``ValueError`` naming it. Knobs of the
    other experiment are ignored (but still part of the hash).
    """

    experiment: str = _f("lstm_ptb", "experiment: " + " | ".join(EXPERIMENT_NAMES), "choice")
    name: str = _f("run", "run label, e.g. clip_lr30 (letters, digits, _ . -)", "name")
    # optimiser
    optimizer: str = _f("clipped_sgd", "sgd (momentum SGD = sgd with momentum) | clipped_sgd | normalized_sgd", "choice")
    lr: float = _f(30.0, "learning rate eta (> 0)", "pos_float")
    max_norm: float | None = _f(0.25, "clipping threshold gamma on the global L2 norm (clipped_sgd only; null otherwise)", "pos_float?")
    momentum: float = _f(0.0, "heavy-ball momentum in [0, 1) (sgd / clipped_sgd)", "unit_float")
    weight_decay: float = _f(0.0, "L2 weight decay >= 0 (sgd / clipped_sgd)", "nonneg_float")
    beta: float = _f(1.0, "normalized_sgd: step lr / (||g|| + beta), beta > 0", "pos_float")
    # length, batches, device
    epochs: int | None = _f(1, "number of epochs (null: until max_steps)", "pos_int?")
    max_steps: int | None = _f(None, "stop after this many optimiser steps (null: after epochs)", "pos_int?")
    batch_size: int = _f(32, "training batch size", "pos_int")
    eval_batch_size: int = _f(10, "evaluation batch size", "pos_int")
    seed: int = _f(0, "seed of every random number generator", "nonneg_int")
    device: str = _f("auto", "auto (CUDA when present, else CPU) | cpu | cuda | cuda:N", "device")
    amp: bool = _f(False, "automatic mixed precision (CUDA only)", "bool")
    amp_dtype: str = _f("bfloat16", "autocast dtype: bfloat16 | float16 (float16 uses a GradScaler)", "amp_dtype")
    # LSTM (lstm_ptb)
    emb_size: int = _f(200, "LSTM: embedding size (= last layer width, tied decoder)", "pos_int")
    hidden_size: int = _f(512, "LSTM: hidden size of the inner layers", "pos_int")
    n_layers: int = _f(2, "LSTM: number of layers", "pos_int")
    bptt: int = _f(70, "LSTM: (mean) BPTT length", "bptt")
    random_bptt: bool = _f(True, "LSTM: random BPTT length per step, lr scaled by seq_len / bptt", "bool")
    alpha: float = _f(2.0, "LSTM: activation regularisation (AR) weight", "nonneg_float")
    beta_tar: float = _f(1.0, "LSTM: temporal activation regularisation (TAR) weight", "nonneg_float")
    lr_halve_patience: int | None = _f(5, "LSTM: halve lr after this many epochs without a better validation loss (null: never)", "pos_int?")
    train_fraction: float = _f(1.0, "LSTM: use only this leading fraction of the training tokens", "fraction")
    eval_fraction: float = _f(1.0, "LSTM: use only this leading fraction of the valid/test tokens", "fraction")
    # ResNet (resnet_images)
    dataset: str = _f("auto", "images: auto (CIFAR-10 in data_dir, else Fashion-MNIST stand-in) | digits", "dataset")
    depth: int = _f(20, "ResNet depth 6n+2 (20: ResNet-20)", "depth")
    width: int = _f(16, "ResNet base width (stages width, 2 width, 4 width)", "pos_int")
    n_train: int | None = _f(None, "images: use only the first n_train training images (null: all)", "pos_int?")
    n_test: int | None = _f(None, "images: evaluate on the first n_test test images (null: all)", "pos_int?")
    augment: bool = _f(True, "images: random crop (pad 4) + horizontal flip", "bool")
    # smoothness probes
    probe_every: int | None = _f(None, "probe the smoothness every k steps (null: never)", "pos_int?")
    estimators: tuple[str, ...] = _f(S.ESTIMATORS, "estimators to probe with: " + ", ".join(S.ESTIMATORS), "estimators")
    probe_points: tuple[float, ...] = _f((0.5,), "fixed: points s in (0, 1] on the segment", "points")
    probe_fraction: float = _f(0.1, "probe data: this leading fraction of the training stream", "fraction")
    probe_chunks: int | None = _f(None, "probe data: at most this many chunks / batches (null: no cap)", "pos_int?")
    power_iters: int = _f(20, "hessian: power iterations", "pos_int")
    # housekeeping
    checkpoint_every: int | None = _f(None, "checkpoint every k steps (null: never)", "pos_int?")
    data_dir: str | None = _f(None, "data directory (PTB files / CIFAR-10); null: installed defaults", "str?")

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = _coerce(f.name, f.metadata["kind"], getattr(self, f.name))
            object.__setattr__(self, f.name, value)
        if self.epochs is None and self.max_steps is None:
            raise ValueError("Invalid epochs/max_steps: both are None (set at least one)")
        if self.optimizer == "clipped_sgd" and self.max_norm is None:
            raise ValueError("Invalid max_norm: None with optimizer 'clipped_sgd' (use optimizer 'sgd')")
        if self.optimizer != "clipped_sgd" and self.max_norm is not None:
            raise ValueError(
                f"Invalid max_norm: {self.max_norm!r} with optimizer {self.optimizer!r} "
                "(only clipped_sgd clips; set max_norm to null or use clipped_sgd)"
            )
        if self.optimizer == "normalized_sgd" and (self.momentum or self.weight_decay):
            raise ValueError(
                f"Invalid momentum/weight_decay: {self.momentum!r}/{self.weight_decay!r} "
                "(normalized_sgd takes neither)"
            )

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Build from a plain dict (e.g. YAML/JSON); unknown keys raise ``ValueError``."""
        if not isinstance(d, dict):
            raise ValueError(f"config must be a dict, got {type(d).__name__}")
        unknown = sorted(set(d) - set(cls.keys()))
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(unknown)}")
        return cls(**d)

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists); ``from_dict(to_dict())`` round-trips."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def replace(self, **changes) -> "TrainConfig":
        unknown = sorted(set(changes) - set(self.keys()))
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)


def _bad(name, value, why):
    return ValueError(f"Invalid {name}: {value!r} ({why})")


def _coerce(name: str, kind: str, v):
    """Validate one config value and return its canonical form (ints for floats, tuples)."""
    optional = kind.endswith("?")
    if optional and v is None:
        return None
    kind = kind.rstrip("?")
    is_num = isinstance(v, (int, float)) and not isinstance(v, bool)
    is_int = isinstance(v, (int, np.integer)) and not isinstance(v, bool)
    if kind in ("pos_float", "nonneg_float", "unit_float", "fraction"):
        if not (is_num and math.isfinite(v)):
            raise _bad(name, v, "must be a finite number")
        v = float(v)
        ok = {"pos_float": v > 0, "nonneg_float": v >= 0, "unit_float": 0 <= v < 1,
              "fraction": 0 < v <= 1}[kind]  # fmt: skip
        rule = {"pos_float": "> 0", "nonneg_float": ">= 0", "unit_float": "in [0, 1)",
                "fraction": "in (0, 1]"}[kind]  # fmt: skip
        if not ok:
            raise _bad(name, v, f"must be {rule}")
        return v
    if kind in ("pos_int", "nonneg_int", "bptt", "depth"):
        if not is_int:
            raise _bad(name, v, "must be an integer")
        v = int(v)
        if kind == "nonneg_int" and v < 0:
            raise _bad(name, v, "must be >= 0")
        if kind == "pos_int" and v < 1:
            raise _bad(name, v, "must be >= 1")
        if kind == "bptt" and v < 2:
            raise _bad(name, v, "must be >= 2")
        if kind == "depth" and (v < 8 or (v - 2) % 6):
            raise _bad(name, v, "must be 6n + 2 with n >= 1")
        return v
    if kind == "bool":
        if not isinstance(v, bool):
            raise _bad(name, v, "must be true or false")
        return v
    if kind in ("str", "name", "device", "choice", "amp_dtype", "dataset"):
        if not isinstance(v, str):
            raise _bad(name, v, "must be a string")
        if kind == "name" and not _NAME_RE.match(v):
            raise _bad(name, v, "letters, digits, '_', '.', '-' only")
        if kind == "device" and not _DEVICE_RE.match(v):
            raise _bad(name, v, "auto, cpu, cuda, cuda:N or mps")
        choices = {"choice": {"experiment": EXPERIMENT_NAMES, "optimizer": OPTIMIZERS}.get(name),
                   "amp_dtype": AMP_DTYPES, "dataset": DATASETS}.get(kind)  # fmt: skip
        if choices is not None and v not in choices:
            raise _bad(name, v, "choose from " + ", ".join(choices))
        return v
    if kind == "estimators":
        if isinstance(v, str) or not isinstance(v, (list, tuple)):
            raise _bad(name, v, "must be a list of estimator names")
        bad = [e for e in v if e not in S.ESTIMATORS]
        if bad or len(set(v)) != len(v):
            raise _bad(name, tuple(v), "names from " + ", ".join(S.ESTIMATORS) + ", no repeats")
        return tuple(v)
    if kind == "points":
        if isinstance(v, str) or not isinstance(v, (list, tuple)) or not v:
            raise _bad(name, v, "must be a non-empty list of numbers in (0, 1]")
        pts = []
        for s in v:
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 < s <= 1:
                raise _bad(name, tuple(v), "every point must be in (0, 1]")
            pts.append(float(s))
        return tuple(pts)
    raise AssertionError(kind)  # pragma: no cover


# --------------------------------------------------------------------------------------
# Presets: the runs of the experiment chapters, at three scales
# --------------------------------------------------------------------------------------

# The runs of Figs. 2-4 (PAPER.md). ResNet: weight decay 5e-4 of the baseline is kept in all
# three runs; only the momentum run uses momentum.
EXPERIMENTS: dict[str, dict[str, dict[str, Any]]] = {
    "lstm_ptb": {
        "clip_lr30": dict(optimizer="clipped_sgd", lr=30.0, max_norm=0.25),
        "noclip_lr2": dict(optimizer="sgd", lr=2.0, max_norm=None),
        "clip_lr2": dict(optimizer="clipped_sgd", lr=2.0, max_norm=0.25),
    },
    "resnet_images": {
        "momentum": dict(optimizer="sgd", lr=0.1, max_norm=None, momentum=0.9, weight_decay=5e-4),
        "noclip_lr1": dict(optimizer="sgd", lr=1.0, max_norm=None, weight_decay=5e-4),
        "clip_lr5": dict(optimizer="clipped_sgd", lr=5.0, max_norm=0.25, weight_decay=5e-4),
    },
}

# Scale of each experiment per profile. `paper` is the authors' setting (PAPER.md, "Authors'
# LSTM setting"; ResNet-20, batch 128, 200 epochs), probing every 100 steps. `ci` (real
# PTB and images, ~150 steps per run, 20-22 probes of every estimator) was sized by
# measurement: each run takes 52-59 s on 2 idle CPU cores (the Hessian is about half of it),
# so all six runs fit in about 6 minutes. `smoke` takes a few seconds per run. The ResNet runs of
# `ci` probe one batch, so there `faithful` (no random lengths, one chunk) equals `fixed`.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "lstm_ptb": dict(
            emb_size=16, hidden_size=32, n_layers=2, bptt=10, batch_size=8, eval_batch_size=10,
            train_fraction=0.001, eval_fraction=0.01, epochs=2, lr_halve_patience=1,
            alpha=2.0, beta_tar=1.0, seed=1111,
            probe_every=4, probe_fraction=0.1, probe_chunks=1, power_iters=2,
        ),
        "resnet_images": dict(
            dataset="digits", depth=8, width=4, n_train=128, n_test=64, batch_size=32,
            eval_batch_size=64, epochs=2, augment=True, seed=0,
            probe_every=2, probe_fraction=0.1, probe_chunks=1, power_iters=2,
        ),
    },
    "ci": {
        "lstm_ptb": dict(
            emb_size=64, hidden_size=128, n_layers=2, bptt=35, batch_size=16, eval_batch_size=32,
            train_fraction=0.02, eval_fraction=0.1, epochs=5, lr_halve_patience=2,
            alpha=2.0, beta_tar=1.0, seed=1111,
            probe_every=8, probe_fraction=0.1, probe_chunks=1, power_iters=3,
        ),
        "resnet_images": dict(
            dataset="auto", depth=8, width=16, n_train=1792, n_test=1000, batch_size=64,
            eval_batch_size=500, epochs=5, augment=True, seed=0,
            probe_every=7, probe_fraction=0.1, probe_chunks=1, power_iters=3,
        ),
    },
    "paper": {
        "lstm_ptb": dict(
            emb_size=200, hidden_size=512, n_layers=2, bptt=70, batch_size=256, eval_batch_size=10,
            train_fraction=1.0, eval_fraction=1.0, epochs=150, lr_halve_patience=5,
            alpha=2.0, beta_tar=1.0, seed=1111,
            # Probes on the first 2 chunks (35,840 tokens, 3.9% of train; the authors used 10%)
            # every 100 steps: cuDNN has no double backward, so a Hessian-vector product runs
            # on the native LSTM kernels at ~16 steps per chunk (H100, benchmarks/); this keeps
            # the probes at ~2 s each; a run took 432-449 s on one H100.
            probe_every=100, probe_fraction=0.1, probe_chunks=2, power_iters=5,
        ),
        "resnet_images": dict(
            dataset="auto", depth=20, width=16, n_train=None, n_test=None, batch_size=128,
            eval_batch_size=1000, epochs=200, augment=True, seed=0,
            probe_every=100, probe_fraction=0.1, probe_chunks=4, power_iters=10,
        ),
    },
}


def preset(experiment: str, run: str, profile: str = "ci", **overrides) -> TrainConfig:
    """The config of run ``run`` of ``experiment`` at ``profile`` scale, with ``overrides``.

    >>> preset("lstm_ptb", "clip_lr30", "smoke").lr
    30.0
    """
    if experiment not in EXPERIMENTS:
        raise ValueError(f"Invalid experiment: {experiment!r} (choose from {', '.join(EXPERIMENTS)})")
    if run not in EXPERIMENTS[experiment]:
        raise ValueError(
            f"Invalid run: {run!r} for {experiment} (choose from {', '.join(EXPERIMENTS[experiment])})"
        )
    if profile not in PROFILES:
        raise ValueError(f"Invalid profile: {profile!r} (choose from {', '.join(PROFILES)})")
    d = dict(experiment=experiment, name=run)
    d.update(PROFILES[profile][experiment])
    d.update(EXPERIMENTS[experiment][run])
    d.update(overrides)
    return TrainConfig.from_dict(d)


# --------------------------------------------------------------------------------------
# Device, seeds, learning-rate schedule
# --------------------------------------------------------------------------------------


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The one place the device is chosen: ``auto`` is CUDA when available, else the CPU."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str) or not _DEVICE_RE.match(device):
        raise ValueError(f"Invalid device: {device!r} (auto, cpu, cuda, cuda:N or mps)")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"Invalid device: {device!r} (CUDA is not available here)")
    if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"Invalid device: {device!r} (MPS is not available here)")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (every device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class PlateauHalver:
    r"""Halve the learning rate when the validation loss stalls (the authors' LSTM schedule).

    After each epoch's validation loss :math:`v`: if :math:`v < v^*` then :math:`v^* \leftarrow v`
    and the count of bad epochs resets; otherwise the count grows and, once it reaches
    ``patience``, the learning rate is halved and the count resets. ``patience=None`` never
    halves.
    """

    lr: float
    patience: int | None
    best: float = math.inf
    bad_epochs: int = 0

    def update(self, val_loss: float) -> bool:
        """Record one epoch's validation loss; True when this call halved ``lr``."""
        if val_loss < self.best:
            self.best, self.bad_epochs = float(val_loss), 0
            return False
        self.bad_epochs += 1
        if self.patience is not None and self.bad_epochs >= self.patience:
            self.lr /= 2.0
            self.bad_epochs = 0
            return True
        return False


# --------------------------------------------------------------------------------------
# The two experiments: data, model, batches, loss, evaluation, probe data
# --------------------------------------------------------------------------------------


class _Batch(NamedTuple):
    x: Tensor
    y: Tensor
    lr_scale: float  # the step's lr is lr * lr_scale (seq_len / bptt for the LSTM)
    seq_len: int | None


class _Chunk(NamedTuple):
    first: bool  # a probe chunk that starts from a zero hidden state
    x: Tensor
    y: Tensor


class _LSTMTask:
    """Word-level PTB with the reduced AWD-LSTM."""

    def __init__(self, cfg: TrainConfig, device: torch.device):
        self.cfg, self.device = cfg, device
        corpus = D.load_ptb(cfg.data_dir)
        n_tok = max(2 * cfg.batch_size, int(corpus.train.numel() * cfg.train_fraction))
        self.train_data = D.batchify(corpus.train[:n_tok], cfg.batch_size, device)
        if self.train_data.size(0) < 3:
            raise ValueError(
                f"Invalid train_fraction: {cfg.train_fraction!r} (leaves fewer than 3 rows of "
                f"batch_size {cfg.batch_size})"
            )

        def split(tokens):
            n = max(2 * cfg.eval_batch_size, int(tokens.numel() * cfg.eval_fraction))
            return D.batchify(tokens[:n], cfg.eval_batch_size, device)

        self.eval_data = {"valid": split(corpus.valid), "test": split(corpus.test)}
        self.model = M.LSTMLanguageModel(
            corpus.vocab_size, cfg.emb_size, cfg.hidden_size, cfg.n_layers, tie_weights=True
        ).to(device)
        self.sampler = np.random.default_rng(cfg.seed)  # the BPTT-length sampler
        self.pos, self.hidden = 0, None
        self.dataset_name = f"Penn Treebank ({corpus.source})"

    def steps_per_epoch(self) -> int:
        return max(1, math.ceil((self.train_data.size(0) - 2) / self.cfg.bptt))

    def start_epoch(self) -> None:
        # AWD-LSTM: a fresh zero hidden state at the start of every epoch.
        self.pos, self.hidden = 0, self.model.init_hidden(self.cfg.batch_size)

    def epoch_done(self) -> bool:
        # AWD-LSTM: ``while i < train_data.size(0) - 1 - 1``.
        return self.pos >= self.train_data.size(0) - 2

    def next_batch(self) -> _Batch:
        cfg = self.cfg
        # max_delta=None: the authors' fork has no upper cap on the length.
        seq_len = D.sample_bptt(self.sampler, cfg.bptt, max_delta=None) if cfg.random_bptt else cfg.bptt
        x, y = D.get_batch(self.train_data, self.pos, seq_len)
        self.pos += seq_len
        return _Batch(x, y, seq_len / cfg.bptt, seq_len)

    def loss(self, batch: _Batch):
        """(objective, cross-entropy, number of targets, AR + TAR) for one training chunk."""
        logits, hidden, out, raw = self.model(batch.x, M.detach_hidden(self.hidden), return_raw=True)
        # Stored detached: the next chunk starts a new graph (AWD-LSTM repackage_hidden).
        self.hidden = M.detach_hidden(hidden)
        ce = F.cross_entropy(logits.float(), batch.y)
        pen = _lstm_penalty(out, raw, self.cfg)
        return ce + pen, ce, batch.y.numel(), pen

    @torch.no_grad()
    def evaluate(self, split: str, autocast) -> dict:
        """Token-weighted mean cross-entropy over ``split`` in bptt chunks, hidden carried."""
        src, cfg = self.eval_data[split], self.cfg
        self.model.eval()
        hidden = self.model.init_hidden(cfg.eval_batch_size)
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        count = 0
        for i in range(0, src.size(0) - 1, cfg.bptt):
            x, y = D.get_batch(src, i, cfg.bptt)
            with autocast():
                logits, hidden, _ = self.model(x, hidden)
            total += F.cross_entropy(logits.float(), y, reduction="sum").double()
            count += y.numel()
        self.model.train()
        loss = float(total) / count
        return {"loss": loss, "ppl": math.exp(min(loss, 700.0))}

    def probe_data(self) -> dict[str, S.ProbeData]:
        cfg = self.cfg
        n_tok = self.train_data.numel()
        # The first probe_fraction of the token stream, batchified with the training batch
        # size (the authors' "first 10% of the training data"), capped at probe_chunks chunks.
        stream = self.train_data.t().reshape(-1)[: max(2 * cfg.batch_size, int(n_tok * cfg.probe_fraction))]
        src = D.batchify(stream, cfg.batch_size)
        rows = src.size(0)
        if cfg.probe_chunks is not None:
            rows = min(rows, cfg.probe_chunks * cfg.bptt + 1)
        src = src[:rows]

        def chunks_of(lengths):
            out, i = [], 0
            for L in lengths:
                if i >= rows - 1:
                    break
                x, y = D.get_batch(src, i, int(L))
                out.append(_Chunk(i == 0, x, y))
                i += int(L)
            return out

        pinned = chunks_of([cfg.bptt] * rows)

        def faithful_chunks(draw: int):
            # Fresh random lengths at every draw, reproducibly (seed, draw).
            rng = np.random.default_rng([cfg.seed, int(draw)])
            lengths = (D.sample_bptt(rng, cfg.bptt, max_delta=None) for _ in range(rows))
            return chunks_of(lengths)

        def weights(c):
            return float(c.y.numel())

        out = {}
        for name in cfg.estimators:
            loss = _LSTMProbeLoss(cfg)
            if name == "faithful":
                out[name] = S.ProbeData(chunks=faithful_chunks, loss=loss)
            else:
                out[name] = S.ProbeData.pinned(pinned, loss, weights)
        return out

    def probe_chunk(self, batch: _Batch) -> _Chunk:
        """A training batch as a probe chunk (from a zero hidden state: equal to the step's
        objective only for a batch that starts an epoch)."""
        return _Chunk(True, batch.x, batch.y)

    def state_dict(self) -> dict:
        return {
            "pos": self.pos,
            "hidden": [(h.detach().cpu(), c.detach().cpu()) for h, c in self.hidden],
            "sampler": self.sampler.bit_generator.state,
        }

    def load_state_dict(self, st: dict) -> None:
        self.pos = int(st["pos"])
        self.hidden = [(h.to(self.device), c.to(self.device)) for h, c in st["hidden"]]
        self.sampler.bit_generator.state = st["sampler"]


def _lstm_penalty(out: Tensor, raw: Tensor, cfg: TrainConfig) -> Tensor:
    r"""AR :math:`\alpha\,\mathrm{mean}(o^2)` on the last layer's output + TAR on its raw output."""
    pen = out.new_zeros((), dtype=torch.float32)
    if cfg.alpha:
        pen = pen + M.activation_penalty(out.float(), cfg.alpha)
    if cfg.beta_tar and raw.size(0) > 1:
        pen = pen + M.temporal_penalty(raw.float(), cfg.beta_tar)
    return pen


class _LSTMProbeLoss:
    """Training objective on one probe chunk; the hidden state is carried between chunks
    (detached) and reset to zero at a chunk marked ``first``."""

    def __init__(self, cfg: TrainConfig):
        self.cfg, self.hidden = cfg, None

    def __call__(self, model, chunk: _Chunk) -> Tensor:
        if chunk.first or self.hidden is None:
            self.hidden = model.init_hidden(chunk.x.size(1))
        logits, hidden, out, raw = model(chunk.x, self.hidden, return_raw=True)
        self.hidden = M.detach_hidden(hidden)
        return F.cross_entropy(logits, chunk.y) + _lstm_penalty(out, raw, self.cfg)


class _ImageTask:
    """CIFAR-10 (or a stand-in) with a CIFAR ResNet."""

    def __init__(self, cfg: TrainConfig, device: torch.device):
        self.cfg, self.device = cfg, device
        ds = D.load_digits_images() if cfg.dataset == "digits" else D.load_image_data(cfg.data_dir)
        n = ds.train_x.size(0) if cfg.n_train is None else cfg.n_train
        if n > ds.train_x.size(0):
            raise ValueError(f"Invalid n_train: {n} (the data set has {ds.train_x.size(0)} training images)")
        if n < cfg.batch_size:
            raise ValueError(f"Invalid n_train: {n} (smaller than batch_size {cfg.batch_size})")
        n_test = ds.test_x.size(0) if cfg.n_test is None else min(cfg.n_test, ds.test_x.size(0))
        self.ds = ds
        self.dataset_name = ds.name
        self.train_x, self.train_y = ds.train_x[:n].to(device), ds.train_y[:n].to(device)
        self.test_x, self.test_y = ds.test_x[:n_test].to(device), ds.test_y[:n_test].to(device)
        w = cfg.width
        self.model = M.ResNetCifar(cfg.depth, ds.num_classes, widths=(w, 2 * w, 4 * w)).to(device)
        # CPU generators: the same data order and augmentation on every device.
        self.shuffle_gen = torch.Generator().manual_seed(cfg.seed)
        self.augment_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.perm, self.pos = None, 0

    def steps_per_epoch(self) -> int:
        return self.train_x.size(0) // self.cfg.batch_size  # the last partial batch is dropped

    def start_epoch(self) -> None:
        self.perm = torch.randperm(self.train_x.size(0), generator=self.shuffle_gen)
        self.pos = 0

    def _inputs(self, x_uint8: Tensor) -> Tensor:
        return D.normalize(x_uint8, self.ds.mean, self.ds.std)

    def epoch_done(self) -> bool:
        # The partial last batch is dropped: a batch of 1 breaks train-mode BatchNorm.
        return self.pos + self.cfg.batch_size > self.perm.numel()

    def next_batch(self) -> _Batch:
        B = self.cfg.batch_size
        idx = self.perm[self.pos : self.pos + B].to(self.device)
        self.pos += B
        x = self.train_x[idx]
        if self.cfg.augment:
            x = D.augment(x, self.augment_gen)
        return _Batch(self._inputs(x), self.train_y[idx], 1.0, None)

    def loss(self, batch: _Batch):
        """(objective, cross-entropy, number of targets, None): no penalty here."""
        ce = F.cross_entropy(self.model(batch.x).float(), batch.y)
        return ce, ce, batch.y.numel(), None

    @torch.no_grad()
    def evaluate(self, split: str, autocast) -> dict:
        assert split == "test"
        self.model.eval()
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        for s in range(0, self.test_x.size(0), self.cfg.eval_batch_size):
            x = self._inputs(self.test_x[s : s + self.cfg.eval_batch_size])
            y = self.test_y[s : s + self.cfg.eval_batch_size]
            with autocast():
                logits = self.model(x).float()
            total += F.cross_entropy(logits, y, reduction="sum").double()
            correct += (logits.argmax(1) == y).sum()
        self.model.train()
        n = self.test_x.size(0)
        return {"loss": float(total) / n, "accuracy": int(correct) / n}

    def probe_data(self) -> dict[str, S.ProbeData]:
        cfg, B = self.cfg, self.cfg.batch_size
        n_batches = max(1, math.ceil(cfg.probe_fraction * self.train_x.size(0) / B))
        if cfg.probe_chunks is not None:
            n_batches = min(n_batches, cfg.probe_chunks)
        chunks = []
        for k in range(n_batches):
            x = self.train_x[k * B : (k + 1) * B]
            if x.size(0) < 2:
                break
            chunks.append((self._inputs(x), self.train_y[k * B : (k + 1) * B]))

        def loss(model, chunk):
            return F.cross_entropy(model(chunk[0]), chunk[1])

        def weights(chunk):
            return float(chunk[1].numel())

        return {name: S.ProbeData.pinned(chunks, loss, weights) for name in cfg.estimators}

    def probe_chunk(self, batch: _Batch):
        """A training batch (augmented, normalised) as a probe chunk."""
        return (batch.x, batch.y)

    def state_dict(self) -> dict:
        return {
            "pos": self.pos,
            "perm": self.perm,
            "shuffle_gen": self.shuffle_gen.get_state(),
            "augment_gen": self.augment_gen.get_state(),
        }

    def load_state_dict(self, st: dict) -> None:
        self.pos, self.perm = int(st["pos"]), st["perm"]
        self.shuffle_gen.set_state(st["shuffle_gen"])
        self.augment_gen.set_state(st["augment_gen"])


_TASKS = {"lstm_ptb": _LSTMTask, "resnet_images": _ImageTask}


# --------------------------------------------------------------------------------------
# One training step, metric buffering, probes
# --------------------------------------------------------------------------------------


def make_optimizer(cfg: TrainConfig, params, nonfinite: str = "raise"):
    """``ClippedSGD`` (``max_norm=None`` for plain/momentum SGD) or ``NormalizedSGD``."""
    if cfg.optimizer == "normalized_sgd":
        return NormalizedSGD(params, lr=cfg.lr, beta=cfg.beta, nonfinite=nonfinite)
    return ClippedSGD(
        params, lr=cfg.lr, max_norm=cfg.max_norm, momentum=cfg.momentum,
        weight_decay=cfg.weight_decay, nonfinite=nonfinite,
    )  # fmt: skip


def _train_step(task, optimizer, batch: _Batch, lr: float, amp: "_Amp", snapshot: bool) -> dict:
    """One optimiser step at learning rate ``lr``; returns device tensors (no host sync).

    Keys: ``objective``, ``loss`` (cross-entropy), ``n`` (targets), ``penalty`` (LSTM),
    ``grad_norm`` (pre-clip, of the unscaled gradient), ``coef`` (clip coefficient) and
    ``before`` (the parameters before the step, when ``snapshot``).
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    with amp.autocast():
        objective, ce, n, pen = task.loss(batch)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    before = [p.detach().clone() for p in params] if snapshot else None
    coef = None
    if amp.scaler is not None:
        # float16: clip and measure the UNSCALED gradient; the scaler skips inf/nan steps.
        amp.scaler.scale(objective).backward()
        amp.scaler.unscale_(optimizer)
        norm = FN.global_norm([p.grad for p in params if p.grad is not None])
        amp.scaler.step(optimizer)
        amp.scaler.update()
    else:
        objective.backward()
        optimizer.step()
        norm = optimizer.last_grad_norm
        coef = getattr(optimizer, "last_clip_coef", None)
    return {"objective": objective.detach(), "loss": ce.detach(), "n": n,
            "penalty": None if pen is None else pen.detach(), "grad_norm": norm.detach(),
            "coef": coef, "before": before}  # fmt: skip


class _Amp:
    """Autocast context and GradScaler, decided once from the config and the device."""

    def __init__(self, cfg: TrainConfig, device: torch.device):
        self.enabled = cfg.amp
        if cfg.amp and device.type != "cuda":
            raise ValueError(f"Invalid amp: True on device {device} (automatic mixed precision needs CUDA)")
        self.dtype = torch.bfloat16 if cfg.amp_dtype == "bfloat16" else torch.float16
        self.scaler = (
            torch.amp.GradScaler("cuda") if cfg.amp and self.dtype == torch.float16 else None
        )
        self.device_type = device.type

    def autocast(self):
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)


class _MetricBuffer:
    """Per-step rows whose values may be device tensors; ``flush`` copies them in one go."""

    def __init__(self, writer, every: int, scaled: bool = False):
        self.writer, self.every, self.rows = writer, every, []
        # float16 + GradScaler: an inf/nan gradient is a skipped step, not a divergence.
        self.scaled = scaled
        self.last: dict | None = None

    def add(self, row: dict) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.every:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        keys = [k for k, v in self.rows[0].items() if isinstance(v, Tensor)]
        if keys:
            stacked = torch.stack([torch.stack([r[k].float() for k in keys]) for r in self.rows])
            values = stacked.cpu().tolist()  # the one host sync
        for i, row in enumerate(self.rows):
            out = dict(row)
            if keys:
                out.update(zip(keys, values[i]))
            if not (math.isfinite(out["loss"]) and (self.scaled or math.isfinite(out["grad_norm"]))):
                raise FloatingPointError(
                    f"non-finite loss {out['loss']} / grad_norm {out['grad_norm']} at step {out['step']}"
                )
            out["clipped"] = bool(out["clipped"])
            self.writer.log(**out)
            self.last = out
        self.rows = []


def _step_length(cfg: TrainConfig, lr: float, res: dict, params, exact_formula: bool) -> Tensor:
    r""":math:`\|x_{t+1} - x_t\|`: closed form where it is exact, measured otherwise."""
    norm = res["grad_norm"]
    if exact_formula:
        if cfg.optimizer == "normalized_sgd":
            return lr * norm / (norm + cfg.beta)
        coef = res["coef"] if res["coef"] is not None else torch.ones_like(norm)
        return lr * coef * norm
    diff = torch._foreach_sub([p.detach() for p in params], res["before"])
    return FN.global_norm(diff)


def _probe_rows(task, cfg: TrainConfig, probe_data, before, step: int, epoch: int, train_norm: float):
    """One ``probes`` row per estimator for the segment ``before`` -> current parameters."""
    model = task.model
    after = [p.detach() for p in model.parameters()]
    step_norm = float(FN.global_norm(torch._foreach_sub(after, before)))
    rows = []
    for name in cfg.estimators:
        # Seeded per step: a resumed run draws the same power-iteration start.
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        with warnings.catch_warnings():
            # cuDNN LSTMs warn when evaluated at swapped-in (non-flattened) weights: expected.
            warnings.filterwarnings("ignore", message=".*contiguous chunk of memory.*")
            est = S.estimate(
                name, model, before, after, probe_data[name], points=cfg.probe_points,
                power_iters=cfg.power_iters, generator=gen, draw=step,
            )  # fmt: skip
        rows.append(dict(step=step, epoch=epoch, estimator=name, grad_norm=est.grad_norm,
                         smoothness=est.smoothness, train_grad_norm=train_norm,
                         step_norm=step_norm, probe_loss=float(est.extra.get("loss", math.nan))))  # fmt: skip
    return rows


# --------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------


def _rng_state(device: torch.device) -> dict:
    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict) -> None:
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st:
        torch.cuda.set_rng_state_all(st["cuda"])


def train(config: TrainConfig | dict, store, force: bool = False, progress: bool = True):
    """Train one run and store it; return the finished :class:`clipcore.results.Run`.

    An identical finished run in ``store`` is returned as it is (no training) unless
    ``force``; an interrupted one resumes from its last checkpoint (or restarts if it has
    none). Tables written: ``metrics`` (one row per step), ``eval`` (per epoch: split
    ``train`` = token/sample-weighted mean training loss of the epoch, ``valid`` (LSTM) or
    ``test`` (ResNet); LSTM: ``test`` once at the end), ``probes`` (see the module docstring).
    """
    if isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig or a dict, got {type(config).__name__}")
    cfg, cfg_dict = config, config.to_dict()
    if not force:
        done = store.load(cfg.experiment, cfg_dict)
        if done is not None:
            return done

    device = resolve_device(cfg.device)
    amp = _Amp(cfg, device)
    writer = store.start(cfg.experiment, cfg_dict, force=force, device=str(device))
    with writer:  # on an exception: flush the rows, record the time spent, stay unfinished
        return _train_run(cfg, cfg_dict, store, writer, device, amp, progress)


def _train_run(cfg: TrainConfig, cfg_dict: dict, store, writer, device, amp: "_Amp", progress: bool):
    seed_everything(cfg.seed)
    task = _TASKS[cfg.experiment](cfg, device)
    writer.meta["dataset"] = task.dataset_name
    writer.meta["n_parameters"] = M.count_parameters(task.model)
    model = task.model
    model.train()
    params = list(model.parameters())
    on_cuda = device.type == "cuda"
    # CUDA: no per-step finiteness sync in the optimiser; _MetricBuffer checks at flush.
    optimizer = make_optimizer(cfg, params, nonfinite="ignore" if on_cuda else "raise")
    schedule = PlateauHalver(cfg.lr, cfg.lr_halve_patience if cfg.experiment == "lstm_ptb" else None)
    probe_data = task.probe_data() if cfg.probe_every else None
    exact_formula = amp.scaler is None and cfg.momentum == 0.0 and cfg.weight_decay == 0.0

    step, epoch, in_epoch, wall_before = 0, 1, False, 0.0
    acc = {"sum": 0.0, "n": 0}  # the epoch's weighted training loss
    ckpt = writer.load_checkpoint()
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        task.load_state_dict(ckpt["task"])
        loop = ckpt["loop"]
        step, epoch, in_epoch, wall_before = loop["step"], loop["epoch"], loop["in_epoch"], loop["wall"]
        acc = dict(loop["acc"])
        schedule = PlateauHalver(**loop["schedule"])
        if amp.scaler is not None and ckpt.get("scaler"):
            amp.scaler.load_state_dict(ckpt["scaler"])
        _set_rng_state(ckpt["rng"])
    # Rows past the checkpoint (or all rows, without one) came from the interrupted process.
    writer.truncate_after(step)
    buffer = _MetricBuffer(writer, CUDA_FLUSH_EVERY if on_cuda else 1, scaled=amp.scaler is not None)

    spe = task.steps_per_epoch()
    total = cfg.max_steps if cfg.epochs is None else cfg.epochs * spe
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    bar = _progress_bar(total, step, f"{cfg.experiment}/{cfg.name}", progress)
    t0 = time.time()

    def end_epoch():
        """Flush, evaluate, log the epoch's rows and update the lr schedule."""
        buffer.flush()
        train_loss = float(acc["sum"]) / max(acc["n"], 1)
        writer.log_table("eval", step=step, epoch=epoch, split="train", loss=train_loss,
                         **({"ppl": math.exp(min(train_loss, 700.0))} if cfg.experiment == "lstm_ptb" else {}),
                         lr=schedule.lr)  # fmt: skip
        split = "valid" if cfg.experiment == "lstm_ptb" else "test"
        ev = task.evaluate(split, amp.autocast)
        writer.log_table("eval", step=step, epoch=epoch, split=split, lr=schedule.lr, **ev)
        if cfg.experiment == "lstm_ptb":
            schedule.update(ev["loss"])
        return ev

    def checkpoint():
        buffer.flush()
        writer.flush()
        writer.save_checkpoint({
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "task": task.state_dict(),
            "loop": {"step": step, "epoch": epoch, "in_epoch": in_epoch, "acc": dict(acc),
                     "wall": wall_before + time.time() - t0,
                     "schedule": dataclasses.asdict(schedule)},
            "rng": _rng_state(device),
            "scaler": amp.scaler.state_dict() if amp.scaler is not None else None,
        })  # fmt: skip

    with bar:  # closed on an exception too
        while True:
            if not in_epoch:
                task.start_epoch()
                in_epoch, acc = True, {"sum": 0.0, "n": 0}
            if task.epoch_done():
                end_epoch()
                in_epoch = False
                if cfg.epochs is not None and epoch >= cfg.epochs:
                    break
                epoch += 1
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                    checkpoint()
                continue

            batch = task.next_batch()
            step += 1
            lr = schedule.lr * batch.lr_scale
            probing = bool(cfg.probe_every) and (step - 1) % cfg.probe_every == 0
            res = _train_step(task, optimizer, batch, lr, amp, snapshot=probing or not exact_formula)
            row = dict(step=step, epoch=epoch, loss=res["loss"], grad_norm=res["grad_norm"],
                       clipped=(res["grad_norm"] > cfg.max_norm) if cfg.max_norm is not None
                       else torch.zeros((), dtype=torch.bool, device=device),
                       step_length=_step_length(cfg, lr, res, params, exact_formula), lr=lr)  # fmt: skip
            if cfg.experiment == "lstm_ptb":
                row.update(seq_len=batch.seq_len, penalty=res["penalty"])
            acc["sum"] += res["loss"] * res["n"] if on_cuda else float(res["loss"]) * res["n"]
            acc["n"] += res["n"]
            buffer.add(row)
            if probing:
                buffer.flush()
                for prow in _probe_rows(task, cfg, probe_data, res["before"], step, epoch,
                                        buffer.last["grad_norm"]):  # fmt: skip
                    writer.log_table("probes", **prow)
            bar.update(1)
            if buffer.last is not None and step % 10 == 0:
                bar.set_postfix(loss=f"{buffer.last['loss']:.3f}", lr=f"{lr:.3g}", refresh=False)

            if cfg.max_steps is not None and step >= cfg.max_steps:
                end_epoch()  # the last, partial epoch gets its evaluation too
                break
            # At an epoch's last step the checkpoint waits for the epoch's eval rows (same step).
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and not task.epoch_done():
                checkpoint()

        buffer.flush()
        if cfg.experiment == "lstm_ptb":
            ev = task.evaluate("test", amp.autocast)
            writer.log_table("eval", step=step, epoch=epoch, split="test", lr=schedule.lr, **ev)
    writer.flush()
    writer.finish(wall_time=wall_before + time.time() - t0)
    run = store.load(cfg.experiment, cfg_dict)
    if run is None:  # pragma: no cover - a store that cannot read back what it wrote
        raise RuntimeError(f"the run store did not return the finished run {cfg.name!r}")
    return run


class _NoBar:
    """Stands in for tqdm when the progress bar is off (no tqdm import, no notebook warning)."""

    def update(self, n=1):
        pass

    def set_postfix(self, **kw):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _progress_bar(total: int, initial: int, desc: str, progress: bool):
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    with warnings.catch_warnings():
        # tqdm.auto in a kernel without ipywidgets warns and falls back to the text bar.
        warnings.filterwarnings("ignore", message="IProgress not found")
        # disable=None: tqdm turns itself off when the output is not a terminal.
        return tqdm(total=total, initial=initial, desc=desc, disable=None, dynamic_ncols=True,
                    leave=False)  # fmt: skip


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def _help_epilog() -> str:
    lines = ["experiments and runs:"]
    for exp, runs in EXPERIMENTS.items():
        for run, settings in runs.items():
            lines.append(f"  {exp} {run}: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    lines.append("")
    lines.append("profiles (smoke: seconds; ci: minutes on 2 CPU cores; paper: the authors' "
                 "settings, wants a GPU) set, per experiment (smoke / ci / paper):")
    for exp in EXPERIMENTS:
        keys = list(dict.fromkeys(k for p in PROFILE_NAMES for k in PROFILES[p][exp]))
        vals = [f"{k} " + "/".join(str(PROFILES[p][exp].get(k)) for p in PROFILE_NAMES) for k in keys]
        lines.append(f"  {exp}: " + ", ".join(vals))
    lines.append("")
    lines.append("config keys (--key value overrides the preset; values are parsed as YAML, "
                 "e.g. null, true, [fixed, hessian]; TrainConfig defaults in brackets):")
    for f in dataclasses.fields(TrainConfig):
        default = list(f.default) if isinstance(f.default, tuple) else f.default
        lines.append(f"  --{f.name:<18} {f.metadata['help']} [{default}]")
    return "\n".join(lines)


_STRING_KEYS = ("name", "device", "data_dir", "optimizer", "dataset", "amp_dtype")


def _parse_overrides(extra: list[str]) -> dict:
    """``--key value`` / ``--key=value`` pairs; values parsed with YAML (``null``, lists...)."""
    import yaml

    keys = set(TrainConfig.keys())
    out, i = {}, 0
    while i < len(extra):
        tok = extra[i]
        if not tok.startswith("--") or tok == "--":
            raise ValueError(f"unexpected argument {tok!r} (config keys are given as --key value)")
        key, has_value, value = tok[2:].partition("=")
        key = key.replace("-", "_")
        if key not in keys:
            raise ValueError(f"unknown config key {key!r} (see --help for the keys)")
        if key == "experiment":
            raise ValueError("the experiment is the positional argument, not --experiment")
        if not has_value:
            if i + 1 >= len(extra):
                raise ValueError(f"config key {key!r} needs a value")
            value = extra[i + 1]
            i += 1
        i += 1
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key] = value
        # String keys keep their text (a run named 1e3 stays "1e3"); null still means None.
        if key in _STRING_KEYS and out[key] is not None and not isinstance(out[key], str):
            out[key] = value
    return out


def main(argv=None) -> int:
    """``python -m clipcore train <experiment> [--run NAME] [--profile P] [--key value ...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m clipcore train",
        description="Train and store the runs of an experiment (all its runs unless --run).",
        epilog=_help_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("experiment", choices=list(EXPERIMENTS))
    parser.add_argument("--run", action="append", help="run name (repeatable); default: every run")
    parser.add_argument("--profile", default="ci", choices=list(PROFILES))
    parser.add_argument("--results-dir", default="results", help="run store root [default results]")
    parser.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (overrides the config)")
    parser.add_argument("--force", action="store_true", help="retrain even if a finished run exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    try:
        args, extra = parser.parse_known_args(argv)
        overrides = _parse_overrides(extra)
        if args.device is not None:
            overrides["device"] = args.device
        runs = args.run or list(EXPERIMENTS[args.experiment])
        configs = [preset(args.experiment, r, args.profile, **overrides) for r in runs]
    except SystemExit as exc:  # --help, or an argparse error (exit 2)
        return int(exc.code or 0)
    except ValueError as exc:
        parser.print_usage(sys.stderr)
        print(f"python -m clipcore train: error: {exc}", file=sys.stderr)
        return 2

    from .results import RunStore

    store = RunStore(args.results_dir)
    for cfg in configs:
        t = time.time()
        run = train(cfg, store, force=args.force, progress=not args.no_progress)
        print(f"{cfg.experiment}/{cfg.name}: {run.path}  ({time.time() - t:.1f} s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
