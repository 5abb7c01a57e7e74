r"""Local-smoothness estimators along a training trajectory.

Zhang et al. (ICLR 2020, Figs. 1-3, 5) plot the gradient norm :math:`\|\nabla f(x_t)\|`
against an estimate of the local smoothness at every iterate :math:`x_t`. Three estimators
share one interface, :func:`estimate`, chosen by name (see ``ESTIMATORS``):

``fixed`` (the corrected estimator, the paper's definition)
    .. math::
        \hat L(x_t) = \max_{s \in S} \frac{\|\nabla f(x_t + s d) - \nabla f(x_t)\|}{\|s d\|},
        \qquad d = x_{t+1} - x_t,

    with every gradient the weighted *mean* of chunk gradients on the same pinned chunks.

``faithful`` (the authors' released code, flaws kept)
    One point :math:`s = 1/2`; the numerator *sums* chunk gradients while the x-axis is the
    norm of the *averaged* gradient (a factor of about the number of chunks, ≈6 for PTB), and
    the two gradient evaluations use different data draws (the authors' sampler draws fresh
    random sequence lengths at each evaluation).

``hessian``
    :math:`\|\nabla^2 f(x_t)\|_2`, the quantity of Definition 1, by power iteration on
    Hessian-vector products of the pinned chunks' weighted mean loss.

The model is never mutated: every evaluation goes through :func:`torch.func.functional_call`
with the requested parameters and *copies* of the buffers (so a BatchNorm in training mode
updates copies of its running statistics, not the model's), and gradients come from
:func:`torch.autograd.grad`, so the parameters' ``.grad`` fields are untouched. The model's
train/eval mode is used as it is: the caller decides which loss surface is probed.

The (L0, L1) envelope of the estimates is :mod:`clipcore.envelope`; the rank statistics the
verdicts use are :mod:`clipcore.stats`.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call

ESTIMATORS = ("faithful", "fixed", "hessian")

__all__ = [
    "ESTIMATORS",
    "ProbeData",
    "SmoothnessEstimate",
    "estimate",
]


@dataclass(frozen=True)
class ProbeData:
    """The data a smoothness probe evaluates gradients on.

    ``chunks(draw)`` returns the chunks of one gradient evaluation (evaluated in order, one
    at a time, so a stateful ``loss`` may carry e.g. an LSTM hidden state from chunk to
    chunk). Pinned data ignores ``draw``; the faithful LSTM sampler uses it to draw fresh
    random sequence lengths. ``loss(model, chunk)`` is the scalar mean loss on one chunk
    and may call any method of the model. ``weights(chunk)``, if given, is the chunk's
    weight in the mean (e.g. its number of tokens); equal weights otherwise.
    """

    chunks: Callable[[int], Sequence[Any]]
    loss: Callable[[nn.Module, Any], Tensor]
    weights: Callable[[Any], float] | None = None

    @classmethod
    def pinned(cls, chunks: Sequence[Any], loss, weights=None) -> "ProbeData":
        """Data that is the same ``chunks`` for every draw."""
        frozen = tuple(chunks)
        return cls(chunks=lambda draw: frozen, loss=loss, weights=weights)


@dataclass(frozen=True)
class SmoothnessEstimate:
    """``grad_norm`` (x-axis), ``smoothness`` (y-axis), the estimator's name and details."""

    grad_norm: float
    smoothness: float
    estimator: str
    extra: dict = field(default_factory=dict)


class _LossCall(nn.Module):
    """``forward(chunk) = loss(model, chunk)``, so ``functional_call`` can swap the model's
    parameters for the whole loss computation, whatever model methods the loss calls."""

    def __init__(self, model: nn.Module, loss):
        super().__init__()
        self.model = model
        # Bypass nn.Module.__setattr__: a loss that is itself a Module must not be
        # registered (its parameters are not the model's).
        self.__dict__["_loss"] = loss

    def forward(self, chunk):
        return self.__dict__["_loss"](self.model, chunk)


class _Probe:
    """Evaluates weighted chunk gradients and Hessian-vector products at given parameters."""

    def __init__(self, model: nn.Module, data: ProbeData):
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
        if not isinstance(data, ProbeData):
            raise ValueError(f"data must be a ProbeData, got {type(data).__name__}")
        named = list(model.named_parameters())
        self.names = ["model." + n for n, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.trainable = [p.requires_grad for _, p in named]
        if not any(self.trainable):
            raise ValueError("model has no parameter with requires_grad=True")
        # Copies, so in-place buffer updates (BatchNorm statistics) never reach the model.
        self.buffers = {"model." + n: b.detach().clone() for n, b in model.named_buffers()}
        self.call = _LossCall(model, data.loss)
        self.data = data
        # cuDNN RNNs have no double backward; the native kernels do.
        self.rnn = any(isinstance(m, nn.RNNBase) for m in model.modules())

    def check_point(self, point, what: str) -> list[Tensor]:
        if point is None or len(point) != len(self.shapes):
            n = None if point is None else len(point)
            raise ValueError(f"{what} has {n} tensors, the model has {len(self.shapes)} parameters")
        for i, (t, s) in enumerate(zip(point, self.shapes)):
            if not isinstance(t, Tensor) or t.shape != s:
                got = getattr(t, "shape", type(t).__name__)
                raise ValueError(f"{what}[{i}] has shape {got}, expected {tuple(s)}")
        return [t.detach() for t in point]

    def chunks(self, draw: int) -> tuple[list, list[float]]:
        chunks = list(self.data.chunks(draw))
        if not chunks:
            raise ValueError(f"data.chunks({draw}) returned no chunks")
        if self.data.weights is None:
            weights = [1.0] * len(chunks)
        else:
            weights = [float(self.data.weights(c)) for c in chunks]
            bad = [w for w in weights if not (math.isfinite(w) and w >= 0)]
            if bad or sum(weights) <= 0:
                raise ValueError(f"chunk weights must be finite, >= 0 and not all 0, got {weights}")
        return chunks, weights

    def _leaves(self, point: list[Tensor]) -> list[Tensor]:
        return [p.detach().requires_grad_(t) for p, t in zip(point, self.trainable)]

    def _loss(self, leaves: list[Tensor], buffers: dict, chunk) -> Tensor:
        args = dict(zip(self.names, leaves))
        args.update(buffers)
        loss = functional_call(self.call, args, (chunk,))
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise ValueError(f"data.loss must return a scalar tensor, got {loss!r}")
        return loss.reshape(())

    def _grad(self, loss, leaves, **kw) -> list[Tensor | None]:
        wrt = [x for x, t in zip(leaves, self.trainable) if t]
        gs = iter(torch.autograd.grad(loss, wrt, allow_unused=True, **kw))
        return [next(gs) if t else None for t in self.trainable]

    def gradient(self, point, chunks, weights) -> tuple[list[Tensor], float]:
        r""":math:`(\sum_i w_i \nabla f_i(x), \sum_i w_i f_i(x) / \sum_i w_i)`."""
        leaves = self._leaves(point)
        buffers = {k: b.clone() for k, b in self.buffers.items()}
        acc = [torch.zeros_like(p) for p in point]
        loss_acc = 0.0
        for chunk, w in zip(chunks, weights):
            loss = self._loss(leaves, buffers, chunk)
            for a, g in zip(acc, self._grad(loss, leaves)):
                if g is not None:
                    a.add_(g.detach(), alpha=w)
            loss_acc += w * float(loss.detach())
        return acc, loss_acc / sum(weights)

    def power_iteration(self, point, chunks, weights, iters: int, generator) -> dict:
        r"""Power iteration :math:`v \leftarrow Hv/\|Hv\|` on the weighted mean Hessian
        :math:`H = \sum_i w_i \nabla^2 f_i / \sum_i w_i`, by double backward."""
        leaves = self._leaves(point)
        buffers = {k: b.clone() for k, b in self.buffers.items()}
        tw = sum(weights)
        gen_device = generator.device
        v = [
            torch.randn(p.shape, generator=generator, dtype=p.dtype, device=gen_device).to(p.device)
            if t
            else torch.zeros_like(p)
            for p, t in zip(point, self.trainable)
        ]
        v = _scale(v, 1.0 / _norm(v))
        # With one chunk the first-order graph is built once and reused (retain_graph).
        cached = None
        grad_acc, loss_acc = None, 0.0
        rayleigh, hv_norm, done = 0.0, 0.0, 0
        for it in range(iters):
            hv = [torch.zeros_like(p) for p in point]
            for chunk, w in zip(chunks, weights):
                if cached is not None:
                    g = cached
                else:
                    loss = self._loss(leaves, buffers, chunk)
                    g = self._grad(loss, leaves, create_graph=True)
                    if it == 0:
                        loss_acc += w * float(loss.detach())
                if it == 0:
                    if grad_acc is None:
                        grad_acc = [torch.zeros_like(p) for p in point]
                    for a, gi in zip(grad_acc, g):
                        if gi is not None:
                            a.add_(gi.detach(), alpha=w)
                gv = sum((gi * vi).sum() for gi, vi in zip(g, v) if gi is not None and gi.requires_grad)
                if isinstance(gv, Tensor) and gv.requires_grad:
                    keep = len(chunks) == 1 and it < iters - 1
                    for a, h in zip(hv, self._grad(gv, leaves, retain_graph=keep)):
                        if h is not None:
                            a.add_(h.detach(), alpha=w / tw)
                if len(chunks) == 1 and it < iters - 1:
                    cached = g
            rayleigh = _dot(v, hv)
            hv_norm = _norm(hv)
            done = it + 1
            if hv_norm == 0.0:  # zero Hessian (e.g. a linear loss): v cannot be renormalised
                break
            v = _scale(hv, 1.0 / hv_norm)
        return {
            "grad": grad_acc,
            "loss": loss_acc / tw,
            "rayleigh": rayleigh,
            "hv_norm": hv_norm,
            "iters": done,
        }


def _norm(ts: Sequence[Tensor]) -> float:
    """Global L2 norm, accumulated in float64, as a Python float."""
    if not ts:
        return 0.0
    sq = sum(float(torch.linalg.vector_norm(t.detach(), dtype=torch.float64)) ** 2 for t in ts)
    return math.sqrt(sq)


def _dot(a: Sequence[Tensor], b: Sequence[Tensor]) -> float:
    return sum(float(torch.sum(x.double() * y.double())) for x, y in zip(a, b))


def _scale(ts: Sequence[Tensor], c: float) -> list[Tensor]:
    return [t * c for t in ts]


def _sub(a: Sequence[Tensor], b: Sequence[Tensor]) -> list[Tensor]:
    return [x - y for x, y in zip(a, b)]


def _axpy(x: Sequence[Tensor], s: float, d: Sequence[Tensor]) -> list[Tensor]:
    return [xi + s * di for xi, di in zip(x, d)]


def _check_points(points) -> tuple[float, ...]:
    try:
        pts = tuple(float(s) for s in points)
    except TypeError:
        raise ValueError(f"points must be a sequence of numbers in (0, 1], got {points!r}") from None
    if not pts or any(not (0.0 < s <= 1.0) for s in pts):
        raise ValueError(f"points must be non-empty with every s in (0, 1], got {points!r}")
    return pts


def estimate(
    name: str,
    model: nn.Module,
    before: Sequence[Tensor],
    after: Sequence[Tensor] | None,
    data: ProbeData,
    *,
    points: Sequence[float] = (0.5,),
    power_iters: int = 20,
    generator: torch.Generator | None = None,
    draw: int = 0,
    grad_before: Sequence[Tensor] | None = None,
) -> SmoothnessEstimate:
    r"""Estimate the local smoothness at :math:`x_t` = ``before`` with estimator ``name``.

    ``before`` and ``after`` are :math:`x_t` and :math:`x_{t+1}` as lists in
    ``model.parameters()`` order (``after`` may be None for ``hessian``). ``draw`` selects
    the data draw (the training loop passes the step number): ``fixed`` and ``hessian``
    evaluate ``data.chunks(draw)`` once and use it everywhere, ``faithful`` evaluates
    ``data.chunks(2 draw)`` at :math:`x_t` and ``data.chunks(2 draw + 1)`` at the midpoint.

    ``fixed``
        grad_norm :math:`= \|\bar g(x_t)\|` with :math:`\bar g = \sum_i w_i \nabla f_i / \sum_i w_i`;
        smoothness :math:`= \max_{s \in \text{points}} \|\bar g(x_t + s d) - \bar g(x_t)\| / \|s d\|`.
    ``faithful`` (Zhang et al.'s code)
        grad_norm :math:`= \|\sum_{i \in D_0} \nabla f_i(x_t)\| / |D_0|` (unweighted mean, as the
        code divides the summed gradient's norm by the number of chunks);
        smoothness :math:`= \|\sum_{j \in D_1} \nabla f_j(x_t + d/2) - \sum_{i \in D_0} \nabla f_i(x_t)\|
        / \|d/2\|` with *summed* gradients and two draws :math:`D_0 \ne D_1`. ``points`` is ignored.
    ``hessian``
        smoothness :math:`= |v^\top \nabla^2 \bar f(x_t) v|`, the Rayleigh quotient after
        ``power_iters`` power iterations from a random unit start drawn from ``generator``
        (a fresh generator seeded with 0 if None, so results are reproducible);
        ``extra["hv_norm"]`` holds :math:`\|\nabla^2 \bar f\, v\|`, also a lower bound on
        :math:`\|\nabla^2 \bar f\|_2`. grad_norm :math:`= \|\bar g(x_t)\|` from the same pass.

    ``grad_before`` (``fixed`` only): :math:`\bar g(x_t)` on ``data.chunks(draw)``, when the
    caller already has it -- e.g. the gradient a training step just computed, with that step's
    batch as the probe data. The evaluation at :math:`x_t` is then skipped, so one point costs
    one gradient evaluation instead of two (``extra["loss"]`` is nan: the loss at
    :math:`x_t` was not evaluated). The caller vouches that it is the gradient of the same
    function; :mod:`benchmarks` checks that it gives the same estimate.

    A zero step (:math:`d = 0`) gives ``smoothness = nan`` for ``fixed`` and ``faithful``:
    the difference quotient is undefined, and nan keeps the point off log-scale plots.
    """
    if name not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; choose one of {ESTIMATORS}")
    if not isinstance(draw, (int, np.integer)) or isinstance(draw, bool):
        raise ValueError(f"draw must be an int, got {draw!r}")
    probe = _Probe(model, data)
    x = probe.check_point(before, "before")
    if grad_before is not None:
        if name != "fixed":
            raise ValueError(f"grad_before is only used by the 'fixed' estimator, not {name!r}")
        given = probe.check_point(grad_before, "grad_before")

    if name == "hessian":
        if not isinstance(power_iters, (int, np.integer)) or power_iters < 1:
            raise ValueError(f"power_iters must be an int >= 1, got {power_iters!r}")
        if after is not None:
            probe.check_point(after, "after")
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        chunks, weights = probe.chunks(draw)
        ctx = torch.backends.cudnn.flags(enabled=False) if probe.rnn else contextlib.nullcontext()
        with ctx:
            r = probe.power_iteration(x, chunks, weights, int(power_iters), generator)
        grad = _scale(r["grad"], 1.0 / sum(weights))
        return SmoothnessEstimate(
            grad_norm=_norm(grad),
            smoothness=abs(r["rayleigh"]),
            estimator=name,
            extra={
                "rayleigh": r["rayleigh"],
                "hv_norm": r["hv_norm"],
                "iters": r["iters"],
                "loss": r["loss"],
                "n_chunks": len(chunks),
            },
        )

    y = probe.check_point(after, "after")
    d = _sub(y, x)
    step_norm = _norm(d)

    if name == "fixed":
        pts = _check_points(points)
        chunks, weights = probe.chunks(draw)
        tw = sum(weights)
        if grad_before is None:
            g0, loss0 = probe.gradient(x, chunks, weights)
            g0 = _scale(g0, 1.0 / tw)
        else:  # the caller's gradient at x_t: one evaluation saved
            g0, loss0 = given, math.nan
        ratios = {}
        if step_norm > 0:
            for s in pts:
                gs, _ = probe.gradient(_axpy(x, s, d), chunks, weights)
                ratios[s] = _norm(_sub(_scale(gs, 1.0 / tw), g0)) / (s * step_norm)
        smooth = max(ratios.values()) if ratios else math.nan
        return SmoothnessEstimate(
            grad_norm=_norm(g0),
            smoothness=smooth,
            estimator=name,
            extra={"step_norm": step_norm, "ratios": ratios, "loss": loss0, "n_chunks": len(chunks)},
        )

    # faithful: summed chunk gradients, unweighted, two different draws.
    chunks0, _ = probe.chunks(2 * int(draw))
    ones0 = [1.0] * len(chunks0)
    g0_sum, loss0 = probe.gradient(x, chunks0, ones0)
    n1 = None
    smooth = math.nan
    if step_norm > 0:
        chunks1, _ = probe.chunks(2 * int(draw) + 1)
        n1 = len(chunks1)
        g1_sum, _ = probe.gradient(_axpy(x, 0.5, d), chunks1, [1.0] * n1)
        smooth = _norm(_sub(g1_sum, g0_sum)) / (0.5 * step_norm)
    return SmoothnessEstimate(
        grad_norm=_norm(g0_sum) / len(chunks0),
        smoothness=smooth,
        estimator=name,
        extra={"step_norm": step_norm, "n_chunks": (len(chunks0), n1), "loss": loss0},
    )
