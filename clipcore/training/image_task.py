r"""CIFAR-10 (or the Fashion-MNIST stand-in) with a CIFAR ResNet (Zhang et al., ICLR 2020,
Figs. 3, 4c-d).

Cross-entropy on augmented (random crop + flip), normalised batches; test loss and accuracy
every epoch; the last partial batch of an epoch is dropped. Shuffling and augmentation use
CPU ``torch.Generator`` objects seeded from the config, so the data order does not depend
on the device.

**Probe data**: the first ``probe_fraction`` of the training subset (at most ``probe_chunks``
batches of ``batch_size``), normalised, *without* augmentation. The model stays in train mode
during probes (BatchNorm with batch statistics -- deterministic for a pinned batch; the
estimators work on copies of the buffers, so the running statistics are never touched).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from .. import data as D
from .. import models as M
from ..smoothness import ProbeData
from .tasks import Batch, ExampleLoss

__all__ = ["ImageTask", "TASK", "load_images", "build_model", "example_loss", "examples"]


def load_images(cfg) -> D.ImageData:
    """The run's image data: scikit-learn's digits (``dataset: digits``), else CIFAR-10 in
    ``cfg.data_dir`` or the Fashion-MNIST stand-in (:func:`clipcore.data.load_image_data`)."""
    return D.load_digits_images() if cfg.dataset == "digits" else D.load_image_data(cfg.data_dir)


def build_model(cfg, ds: D.ImageData | None = None) -> M.ResNetCifar:
    """The run's ResNet (depth ``cfg.depth``, widths ``w, 2w, 4w``) for ``ds``'s classes."""
    ds = load_images(cfg) if ds is None else ds
    w = cfg.width
    return M.ResNetCifar(cfg.depth, ds.num_classes, widths=(w, 2 * w, 4 * w))


class ImageTask:
    """CIFAR-10 (or a stand-in) with a CIFAR ResNet."""

    def __init__(self, cfg, device: torch.device):
        self.cfg, self.device = cfg, device
        ds = load_images(cfg)
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
        self.model = build_model(cfg, ds).to(device)
        # CPU generators: the same data order and augmentation on every device.
        self.shuffle_gen = torch.Generator().manual_seed(cfg.seed)
        self.augment_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.perm, self.pos = None, 0
        self.rows = None  # torchrun: this process's rows of every batch (shard)

    # The loop's questions (see clipcore.training.tasks).
    eval_split = "test"
    final_split = None
    lr_patience = None

    def epoch_extras(self, train_loss: float) -> dict:
        return {}

    def step_extras(self, batch: Batch, result: dict) -> dict:
        return {}

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

    def next_batch(self) -> Batch:
        B = self.cfg.batch_size
        idx = self.perm[self.pos : self.pos + B].to(self.device)
        self.pos += B
        x, y = self.train_x[idx], self.train_y[idx]
        if self.cfg.augment:
            x = D.augment(x, self.augment_gen)  # the whole batch: the same draws on every rank
        if self.rows is not None:
            x, y = x[self.rows], y[self.rows]
        return Batch(self._inputs(x), y, 1.0, None)

    def loss(self, batch: Batch):
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

    def probe_data(self) -> dict[str, ProbeData]:
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

        return {name: ProbeData.pinned(chunks, loss, weights) for name in cfg.estimators}

    def shard(self, group) -> None:
        """Train on this process's rows of every batch (torchrun: see
        :mod:`clipcore.training.distributed`)."""
        self.rows = group.shard(self.cfg.batch_size, "batch_size")

    def step_probe_data(self, batch: Batch) -> ProbeData:
        """The objective of the step just taken on ``batch`` (train-mode BatchNorm: the batch's
        own statistics, as in the step; the probe updates copies of the running statistics)."""
        return ProbeData.pinned(
            [(batch.x, batch.y)],
            lambda model, c: F.cross_entropy(model(c[0]), c[1]),
            lambda c: float(c[1].numel()),
        )

    def probe_chunk(self, batch: Batch):
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


TASK = ImageTask


def example_loss(cfg, model: torch.nn.Module) -> ExampleLoss:
    """One image ``x`` ``[3, H, W]``, label ``y``; the model in **eval** mode, so BatchNorm
    uses fixed statistics and the objective is a sum over examples (train-mode batch
    statistics would couple the examples of a batch)."""
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    model.eval()
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def batch_loss(p, X, Y):
        return F.cross_entropy(functional_call(model, (p, buffers), (X,)), Y)

    return ExampleLoss(lambda p, x, y: batch_loss(p, x[None], y[None]), batch_loss, params)


def examples(cfg, n: int, device="cpu") -> tuple[Tensor, Tensor]:
    """The first ``n`` training images of the run (normalised, not augmented) and their labels."""
    ds = load_images(cfg)
    avail = ds.train_x.size(0) if cfg.n_train is None else min(cfg.n_train, ds.train_x.size(0))
    if not (isinstance(n, (int, np.integer)) and 2 <= n <= avail):
        raise ValueError(f"Invalid n: {n!r} (the run trains on {avail} images; need >= 2)")
    x = D.normalize(ds.train_x[:n], ds.mean, ds.std).to(device)
    return x, ds.train_y[:n].to(device)
