r"""The experiments behind one interface, so the training loop has no per-experiment branches.

A task (:class:`clipcore.training.lstm_task.LSTMTask` for ``lstm_ptb``,
:class:`clipcore.training.image_task.ImageTask` for ``resnet_images``) owns a run's data,
model and batch order and answers the loop's questions:

- ``steps_per_epoch()``, ``start_epoch()``, ``epoch_done()``, ``next_batch()`` -> :class:`Batch`;
- ``loss(batch)`` -> ``(objective, cross-entropy, number of targets, penalty or None)``;
- ``evaluate(split, autocast)`` -> ``{"loss", ...}``; ``eval_split`` is the split evaluated
  every epoch, ``final_split`` the one evaluated once at the end (or None), ``lr_patience``
  the plateau-halving patience of the learning rate (or None);
- ``epoch_extras(train_loss)`` and ``step_extras(batch, result)``: the task's own columns of
  the ``eval`` and ``metrics`` tables;
- ``probe_data()`` -> ``{estimator: ProbeData}``: the pinned probe data; ``step_probe_data(batch)``
  -> ``ProbeData``: the objective of the step just taken on ``batch``, exactly (the LSTM's carried
  hidden state included), so the gradient that step computed is its gradient at :math:`x_t`;
- ``state_dict()`` / ``load_state_dict()`` for checkpoints; ``shard(group)``: train on this
  process's share of every batch (data-parallel runs, :mod:`clipcore.training.distributed`).

Module-level functions answer the same questions for a finished run without training:
:func:`build_model` (the run's initial model), :func:`example_loss` (the training objective
split over examples, for per-example gradients) and :func:`examples` (the run's first
training examples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
from torch import Tensor

from ..runtime import seed_everything

__all__ = [
    "Batch",
    "Chunk",
    "ExampleLoss",
    "task_module",
    "make_task",
    "build_model",
    "example_loss",
    "examples",
]


class Batch(NamedTuple):
    x: Tensor
    y: Tensor
    lr_scale: float  # the step's lr is lr * lr_scale (seq_len / bptt for the LSTM)
    seq_len: int | None


class Chunk(NamedTuple):
    first: bool  # a probe chunk that starts from a zero hidden state
    x: Tensor
    y: Tensor
    hidden: tuple | None = None  # or from this (detached) hidden state: a training step's own


@dataclass(frozen=True)
class ExampleLoss:
    r"""The training objective split over examples.

    ``loss(params, x, y)`` is the loss of *one* example, written so :func:`torch.func.vmap`
    can batch it; ``batch_loss(params, X, Y)`` is the mean of ``loss`` over a batch computed
    in one batched forward pass (the same number, much cheaper to differentiate than a
    vmapped sum); ``params`` are the model's trainable parameters (detached).
    """

    loss: Callable
    batch_loss: Callable
    params: dict


def task_module(experiment: str):
    """The module implementing ``experiment`` (``lstm_task`` or ``image_task``)."""
    from . import image_task, lstm_task  # deferred: each pulls in its data loaders

    modules = {"lstm_ptb": lstm_task, "resnet_images": image_task}
    if experiment not in modules:
        raise ValueError(f"Invalid experiment: {experiment!r} (choose from {', '.join(modules)})")
    return modules[experiment]


def make_task(cfg, device: torch.device):
    """The task of ``cfg.experiment``, its data on ``device`` and its model built."""
    return task_module(cfg.experiment).TASK(cfg, device)


def build_model(cfg, device="cpu", seed: bool = True) -> torch.nn.Module:
    """The model the training loop builds for ``cfg``; with ``seed`` it is the run's *initial*
    model (every generator seeded from ``cfg.seed`` first, as the loop does, and no random
    draw between the seeding and the model's construction)."""
    if seed:
        seed_everything(cfg.seed)
    return task_module(cfg.experiment).build_model(cfg).to(device)


def example_loss(cfg, model: torch.nn.Module) -> ExampleLoss:
    """The per-example training objective of ``cfg``'s experiment at ``model``'s parameters
    (see each task module's ``example_loss``)."""
    return task_module(cfg.experiment).example_loss(cfg, model)


def examples(cfg, n: int, device="cpu") -> tuple[Tensor, Tensor]:
    """The first ``n`` training examples of the run of ``cfg`` (inputs, targets), as the
    task's ``examples`` cuts them."""
    return task_module(cfg.experiment).examples(cfg, n, device)
