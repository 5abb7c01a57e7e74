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
    :math:`\|\nabla^2 f(x_t)\|_2 = \max_i |\lambda_i|`, the operator norm that Definition 1
    bounds, of the Hessian :math:`H` of the pinned chunks' weighted mean loss, by the Lanczos
    method on Hessian-vector products (as PyHessian does). From a seeded random unit start,
    :math:`k` products build an orthonormal basis :math:`Q_k` of the Krylov space
    :math:`\mathrm{span}\{v, Hv, \dots, H^{k-1} v\}` (with full reorthogonalisation, in
    float64) and the tridiagonal :math:`T_k = Q_k^\top H Q_k`; the estimate is the Ritz value
    :math:`\theta` of largest modulus, :math:`\max_j |\theta_j|` over the eigenvalues of
    :math:`T_k`. Every Ritz value lies in :math:`[\lambda_{\min}, \lambda_{\max}]`, so the
    estimate never exceeds the norm, and it is at least the modulus of the Rayleigh quotient of
    any vector of the Krylov space (what :math:`k` power iterations would return).

    Stopping rule: after each product, the residual of the Ritz pair :math:`(\theta, y = Q_k s)`
    is :math:`\|Hy - \theta y\| = |\beta_k s_k|` (:math:`\beta_k` the next off-diagonal of
    :math:`T`, :math:`s_k` the last component of :math:`s`); the iteration stops, *converged*,
    once :math:`|\beta_k s_k| \le \mathrm{tol} \cdot |\theta|` (``HESSIAN_TOL`` = 1e-3 by
    default), or when :math:`\beta_k = 0` (the Krylov space is invariant: its Ritz values are
    exact eigenvalues). A residual :math:`r` puts an eigenvalue of :math:`H` within :math:`r`
    of :math:`\theta` (within :math:`r^2/\delta` for a gap :math:`\delta` to the rest of the
    spectrum), so a converged estimate is an eigenvalue to a relative ``tol``; that it is
    the one of largest modulus is what Lanczos gives in practice from a random start, not a
    certificate (no Krylov method can see an eigenvector its start is orthogonal to).
    ``power_iters`` is the most products used; an estimate that has not met the tolerance by
    then is still returned, a lower bound flagged ``extra["converged"] = False``.

    Why not a fixed number of power iterations (this estimator's earlier form): the Rayleigh
    quotient :math:`v^\top H v` of the iterate weighs every eigenvalue with its sign. When
    :math:`\lambda_{\min} \approx -\lambda_{\max}` (negative curvature as large as the
    positive, as away from a minimum), power iteration hardly separates the two ends (the ratio
    of their moduli is near 1), the iterate keeps weight on both, and they cancel in the quotient:
    on a spectrum :math:`\{1, -1.02, \dots\}` its modulus was 0.19 for a norm of 1.02, and
    a few iterations are also low on a PSD spectrum with a small gap (2.6% for a 0.5% gap),
    in both cases with nothing to say so.

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
# The training loop's dense probe: ``fixed`` on each step's own batch, reusing the step's
# gradient (clipcore.training.loop); a row label of the probes table, not an estimator here.
STEP_PROBE = "step"
PROBES = (STEP_PROBE, *ESTIMATORS)
HESSIAN_TOL = 1e-3  # hessian: relative Lanczos residual bound at which the estimate is converged

__all__ = [
    "ESTIMATORS",
    "STEP_PROBE",
    "PROBES",
    "HESSIAN_TOL",
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

    def lanczos(self, point, chunks, weights, max_hvps: int, tol: float, generator) -> dict:
        r"""Lanczos with full reorthogonalisation on the weighted mean Hessian
        :math:`H = \sum_i w_i \nabla^2 f_i / \sum_i w_i` (Hessian-vector products by double
        backward), at most ``max_hvps`` products, stopping once the Ritz pair
        :math:`(\theta, y)` of largest :math:`|\theta|` has :math:`\|Hy - \theta y\| =
        |\beta_k s_k| \le` ``tol`` :math:`|\theta|`. The Krylov basis is flat float64 over the
        trainable parameters (the products themselves run in the parameters' dtype)."""
        leaves = self._leaves(point)
        buffers = {k: b.clone() for k, b in self.buffers.items()}
        tw = sum(weights)
        train = [i for i, t in enumerate(self.trainable) if t]
        dev = point[train[0]].device
        gen_device = generator.device
        # The start vector: a seeded Gaussian per trainable parameter (zero on frozen ones).
        start = [
            torch.randn(point[i].shape, generator=generator, dtype=point[i].dtype, device=gen_device)
            for i in train
        ]
        q = torch.cat([s.to(dev, torch.float64).reshape(-1) for s in start])
        q = q / torch.linalg.vector_norm(q)
        sizes = [point[i].numel() for i in train]

        def unflat(flat: Tensor) -> list[Tensor | None]:
            parts = iter(flat.split(sizes))
            out: list[Tensor | None] = [None] * len(point)
            for i in train:
                p = point[i]
                out[i] = next(parts).reshape(p.shape).to(p.device, p.dtype)
            return out

        # With one chunk the first-order graph is built once and reused (retain_graph).
        single = len(chunks) == 1
        cached = None
        grad_acc = [torch.zeros_like(p) for p in point]
        loss_acc = 0.0

        def hvp(flat: Tensor, first: bool, last: bool) -> Tensor:
            nonlocal cached, loss_acc
            v = unflat(flat)
            hv = torch.zeros_like(flat)
            for chunk, w in zip(chunks, weights):
                if cached is not None:
                    g = cached
                else:
                    loss = self._loss(leaves, buffers, chunk)
                    g = self._grad(loss, leaves, create_graph=True)
                    if first:
                        loss_acc += w * float(loss.detach())
                        for a, gi in zip(grad_acc, g):
                            if gi is not None:
                                a.add_(gi.detach(), alpha=w)
                gv = sum((gi * vi).sum() for gi, vi in zip(g, v) if gi is not None and gi.requires_grad)
                keep = single and not last
                if isinstance(gv, Tensor) and gv.requires_grad:
                    h = self._grad(gv, leaves, retain_graph=keep)
                    hv += (w / tw) * torch.cat(
                        [
                            (h[i] if h[i] is not None else torch.zeros_like(point[i]))
                            .to(dev, torch.float64)
                            .reshape(-1)
                            for i in train
                        ]
                    )
                if keep:
                    cached = g
            return hv

        # The orthonormal Krylov basis, one row per product, preallocated.
        basis = torch.empty(max_hvps, q.numel(), dtype=torch.float64, device=dev)
        basis[0] = q
        alphas: list[float] = []
        betas: list[float] = []
        theta, resid, ritz, done, converged = 0.0, math.inf, np.zeros(0), 0, False
        for k in range(max_hvps):
            w = hvp(basis[k], first=k == 0, last=k == max_hvps - 1)
            done = k + 1
            alpha = float(basis[k] @ w)
            w.add_(basis[k], alpha=-alpha)
            if betas:
                w.add_(basis[k - 1], alpha=-betas[-1])
            # Full reorthogonalisation, twice ("twice is enough"): the basis stays orthonormal
            # to rounding, so no spurious copies of converged Ritz values appear.
            Q = basis[: k + 1]
            for _ in range(2):
                w.sub_(Q.T @ (Q @ w))
            beta = float(torch.linalg.vector_norm(w))
            if not (math.isfinite(alpha) and math.isfinite(beta)):
                # A non-finite Hessian-vector product (a diverged run): no estimate, flagged.
                theta, resid, ritz = math.nan, math.nan, np.full(1, math.nan)
                break
            alphas.append(alpha)
            T = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
            ritz, vecs = np.linalg.eigh(T)
            top = int(np.argmax(np.abs(ritz)))
            theta = float(ritz[top])
            # ||H y - theta y|| for the Ritz vector y = Q s: beta_k times s's last component.
            resid = beta * abs(float(vecs[-1, top]))
            if resid <= tol * abs(theta) or beta == 0.0:
                # beta = 0: the Krylov space is invariant and its Ritz values are exact.
                converged = True
                break
            betas.append(beta)
            if k + 1 < max_hvps:
                basis[k + 1] = w / beta
        return {
            "grad": grad_acc,
            "loss": loss_acc / tw,
            "eigenvalue": theta,
            "residual": resid,
            "ritz": [float(r) for r in ritz],
            "iterations": done,
            "converged": converged,
        }


def _norm(ts: Sequence[Tensor]) -> float:
    """Global L2 norm, accumulated in float64, as a Python float."""
    if not ts:
        return 0.0
    sq = sum(float(torch.linalg.vector_norm(t.detach(), dtype=torch.float64)) ** 2 for t in ts)
    return math.sqrt(sq)


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
    tol: float = HESSIAN_TOL,
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
        smoothness :math:`= \max_j |\theta_j| \le \|\nabla^2 \bar f(x_t)\|_2`, the Ritz value
        of largest modulus after at most ``power_iters`` Lanczos steps (one Hessian-vector
        product each) from a random unit start drawn from ``generator`` (a fresh generator
        seeded with 0 if None, so results are reproducible), stopping once its residual
        bound is at most ``tol`` times it (see the module docstring). ``extra`` holds
        ``converged`` (bool: the tolerance was met), ``iterations`` (products used),
        ``residual`` (:math:`\|Hy - \theta y\|`), ``eigenvalue`` (the signed :math:`\theta`),
        ``ritz`` (all Ritz values) and ``tol``. grad_norm :math:`= \|\bar g(x_t)\|` from the
        first product's pass. ``tol`` is used by ``hessian`` only. A non-finite product (a
        diverged run) gives ``smoothness = nan``, ``converged = False``.

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
        if not isinstance(power_iters, (int, np.integer)) or isinstance(power_iters, bool) or power_iters < 1:
            raise ValueError(f"power_iters must be an int >= 1, got {power_iters!r}")
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not (0.0 < tol < 1.0):
            raise ValueError(f"tol must be a number in (0, 1), got {tol!r}")
        if after is not None:
            probe.check_point(after, "after")
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        chunks, weights = probe.chunks(draw)
        ctx = torch.backends.cudnn.flags(enabled=False) if probe.rnn else contextlib.nullcontext()
        with ctx:
            r = probe.lanczos(x, chunks, weights, int(power_iters), float(tol), generator)
        grad = _scale(r["grad"], 1.0 / sum(weights))
        return SmoothnessEstimate(
            grad_norm=_norm(grad),
            smoothness=abs(r["eigenvalue"]),
            estimator=name,
            extra={
                "eigenvalue": r["eigenvalue"],
                "residual": r["residual"],
                "converged": r["converged"],
                "iterations": r["iterations"],
                "tol": float(tol),
                "ritz": r["ritz"],
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
