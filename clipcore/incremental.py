r"""Clipping in incremental gradient methods (Qian et al., AISTATS 2021) and the stochastic
bias floor of clipped SGD (Koloskova, Hendrikx, Stich, ICML 2023).

For a finite sum :math:`F = \sum_{i=1}^n f_i` and a threshold :math:`\gamma`, with
:math:`\mathrm{clip}_\gamma(g) = \min\{1, \gamma/\|g\|\}\,g` (exactly, no epsilon), one pass of
a clipped incremental method moves, to first order, along

.. math::
    d(x) = \sum_i \mathrm{clip}_\gamma(\nabla f_i(x)), \qquad
    C = \{i : \|\nabla f_i\| > \gamma\}.

The bias identities (derived in PAPER.md, proved by the tests):

.. math::
    d - \nabla F = -\sum_{i\in C}\Bigl(1 - \frac{\gamma}{\|\nabla f_i\|}\Bigr)\nabla f_i,
    \qquad
    \langle d, \nabla F\rangle = \|\nabla F\|\sum_i \min\{\|\nabla f_i\|, \gamma\}\cos\theta_i,

with :math:`\theta_i` the angle between :math:`\nabla f_i` and :math:`\nabla F`. The effective
step multiplier is :math:`\rho = \langle d, \nabla F\rangle/\|\nabla F\|^2` and
:math:`d_\perp = d - \rho\nabla F`; d is a descent direction iff :math:`\rho > 0`, there is no
bias when :math:`\gamma \ge \max_i\|\nabla f_i\|`, and :math:`\cos\theta_i \ge \kappa > 0` for
every i gives :math:`\langle d, \nabla F\rangle \ge \kappa\|\nabla F\|\sum_i\min\{\|\nabla f_i\|,
\gamma\}` (the sufficient condition, Qian et al.'s claim C2). Note that the quantity
:math:`\sum_i \min\{\|\nabla f_i\|,\gamma\}\cos\theta_i/\|\nabla F\|` *equals* :math:`\rho` by
the second identity; the checkable condition is :math:`\kappa = \min_i\cos\theta_i > 0`.

Sections: the bias decomposition (:func:`clipped_direction`), clipped incremental methods
over a :class:`~clipcore.problems.FiniteSum` (:func:`clipped_incremental`,
:func:`clipped_full_batch_descent`), angles between batch and full gradients
(:func:`batch_cosines`, :func:`predicted_cosine`; claim C3), and the bias floor of clipped SGD
on a quadratic (:func:`clipped_sgd_quadratic`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .problems import FiniteSum

ORDERS = ("cyclic", "reshuffled", "iid")


def _check_gamma(gamma):
    g = np.asarray(gamma, np.float64)
    if g.size == 0 or np.any(np.isnan(g)) or np.any(g <= 0):
        raise ValueError(f"Invalid gamma: {gamma!r} (must be > 0; inf means no clipping)")
    return g


def _as_float64(a, name):
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a, np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"Invalid {name}: contains non-finite values")
    return a


# ---------------------------------------------------------------------------------------------
# The bias decomposition
# ---------------------------------------------------------------------------------------------


def _decompose(G, gamma):
    r"""Vectorised decomposition of component gradients ``G [..., n, d]`` at thresholds
    ``gamma`` (broadcastable to ``G.shape[:-2]``). Undefined cosines (zero gradients) are nan;
    their terms in the sums are 0 (the component contributes nothing either way)."""
    norms = np.linalg.norm(G, axis=-1)
    gam = np.asarray(gamma, np.float64)[..., None]
    clipped = norms > gam
    scale = np.where(clipped, gam / np.where(clipped, norms, 1.0), 1.0)
    d = np.einsum("...n,...nd->...d", scale, G)
    gF = G.sum(-2)
    nF = np.linalg.norm(gF, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.einsum("...nd,...d->...n", G, gF) / (norms * nF[..., None])
        cos = np.where((norms > 0) & (nF[..., None] > 0), cos, np.nan)
        rho = np.einsum("...d,...d->...", d, gF) / nF**2
        perp = d - rho[..., None] * gF
        rel_bias = np.linalg.norm(d - gF, axis=-1) / nF
        capped = np.minimum(norms, gam)
        suff = np.nansum(np.where(np.isnan(cos), 0.0, capped * cos), axis=-1) / nF
        kappa = np.min(np.where(np.isnan(cos), np.inf, cos), axis=-1)
        kappa = np.where(np.isinf(kappa), np.nan, kappa)
        kappa_bound = kappa * capped.sum(-1) / nF
    return dict(direction=d, full_grad=gF, norms=norms, clipped=clipped, cos=cos, rho=rho,
                perp=perp, relative_bias=rel_bias, sufficient=suff, kappa=kappa,
                kappa_bound=kappa_bound, clipped_fraction=clipped.mean(-1))


@dataclass(frozen=True, eq=False)
class ClippedDirection:
    r"""The clipped direction :math:`d = \sum_i\mathrm{clip}_\gamma(\nabla f_i)` and its
    decomposition against :math:`\nabla F = \sum_i\nabla f_i` (see the module docstring).

    ``cos`` is nan for a zero component gradient (or when :math:`\nabla F = 0`, where
    ``rho`` and ``relative_bias`` are nan too)."""

    gamma: float
    direction: np.ndarray  # d, [d]
    full_grad: np.ndarray  # ∇F, [d]
    norms: np.ndarray  # ‖∇f_i‖, [n]
    clipped: np.ndarray  # the clipped set C as a boolean mask, [n]
    cos: np.ndarray  # cos θ_i, [n]
    rho: float  # ⟨d, ∇F⟩ / ‖∇F‖²
    perp: np.ndarray  # d⊥ = d − ρ∇F, [d]
    relative_bias: float  # ‖d − ∇F‖ / ‖∇F‖
    sufficient: float  # Σ min(‖∇f_i‖, γ) cos θ_i / ‖∇F‖  (= rho, by the identity)
    kappa: float  # min_i cos θ_i
    kappa_bound: float  # κ Σ min(‖∇f_i‖, γ) / ‖∇F‖, a lower bound on rho when κ > 0

    @property
    def bias(self) -> np.ndarray:
        r""":math:`d - \nabla F`."""
        return self.direction - self.full_grad

    @property
    def clipped_fraction(self) -> float:
        return float(self.clipped.mean())

    @property
    def is_descent(self) -> bool:
        r"""Whether d is a descent direction for F, i.e. :math:`\rho > 0`."""
        return bool(self.rho > 0)


def clip(g, gamma):
    r""":math:`\mathrm{clip}_\gamma(g) = \min\{1, \gamma/\|g\|\}\,g` on the last axis (no epsilon)."""
    g = _as_float64(g, "g")
    gam = _check_gamma(gamma)
    n = np.linalg.norm(g, axis=-1, keepdims=True)
    over = n > gam
    return np.where(over, gam / np.where(over, n, 1.0), 1.0) * g


def clipped_direction(component_grads, gamma: float) -> ClippedDirection:
    r"""Decompose :math:`d = \sum_i\mathrm{clip}_\gamma(\nabla f_i)` for the component gradients
    ``component_grads`` (``[n, d]``, NumPy or torch; computed in float64).

    Raises ValueError for ``gamma <= 0`` (``inf`` means no clipping), a non-2-D or empty
    array, or non-finite entries.
    """
    G = _as_float64(component_grads, "component_grads")
    if G.ndim != 2 or G.shape[0] < 1 or G.shape[1] < 1:
        raise ValueError(f"Invalid component_grads shape: {G.shape} (expected [n, d] with n, d >= 1)")
    gam = _check_gamma(gamma)
    if gam.ndim != 0:
        raise ValueError(f"Invalid gamma: {gamma!r} (must be a scalar)")
    r = _decompose(G, float(gam))
    scalars = ("rho", "relative_bias", "sufficient", "kappa", "kappa_bound")
    return ClippedDirection(gamma=float(gam), **{k: (float(v) if k in scalars else v)
                                                 for k, v in r.items() if k != "clipped_fraction"})


# ---------------------------------------------------------------------------------------------
# Clipped incremental gradient methods
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class IncrementalRun:
    r"""Log of :func:`clipped_incremental` for R runs (one per threshold/step pair).

    Logged arrays are ``[R, K]`` over the logged epochs ``epochs`` (``[K]``, starting at 0);
    ``evaluations`` counts per-example gradient evaluations (N per epoch). ``grad_norm`` is
    :math:`\|\nabla\bar F\|` (the *mean* gradient, comparable across batch sizes; the sum over
    components is :math:`\nabla F = \frac NB\nabla\bar F`). ``rho``, ``relative_bias``,
    ``clipped_fraction``, ``sufficient``, ``kappa`` and ``kappa_bound`` are those of
    :func:`clipped_direction` for the batch-mean components of one partition of the data
    (the fixed one for ``cyclic``, a fresh random one for the other orders).
    ``displacement_ratio[r]`` is the largest :math:`\|x^i - x^0\|/(i\alpha\gamma)` over every
    step i of every epoch (the bound says at most 1).
    """

    order: np.ndarray  # [R] order of each run
    batch_size: int
    gamma: np.ndarray
    lr: np.ndarray
    epochs: np.ndarray
    evaluations: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    rho: np.ndarray
    relative_bias: np.ndarray
    clipped_fraction: np.ndarray
    sufficient: np.ndarray
    kappa: np.ndarray
    kappa_bound: np.ndarray
    displacement_ratio: np.ndarray
    x: np.ndarray


def _check_schedule(problem, batch_size, orders):
    if not isinstance(problem, FiniteSum):
        raise ValueError(f"Invalid problem: {problem!r} (must be a clipcore.problems.FiniteSum)")
    for order in orders:
        if order not in ORDERS:
            raise ValueError(f"Invalid order: {order!r} (choose from {ORDERS})")
    if not (isinstance(batch_size, (int, np.integer)) and 1 <= batch_size <= problem.N
            and problem.N % batch_size == 0):
        raise ValueError(f"Invalid batch_size: {batch_size!r} (must divide N = {problem.N}, so that "
                         "the batch components sum to F exactly)")


def _epoch_schedule(orders, N, B, rng):
    """Example indices ``[R, n, B]`` of every step of one epoch, run by run."""
    n = N // B
    rows = []
    for order in orders:
        if order == "cyclic":
            rows.append(np.arange(N))
        elif order == "reshuffled":
            rows.append(rng.permutation(N))
        else:  # iid: B examples uniformly with replacement at each step
            rows.append(rng.integers(0, N, size=N))
    return np.stack(rows).reshape(len(orders), n, B)


def clipped_incremental(problem: FiniteSum, x0, *, gamma, lr, batch_size: int = 1,
                        order="cyclic", epochs: int = 10, lr_decay: float = 0.0,
                        lr_epochs: float = 1.0, log_every: int = 1, seed: int = 0) -> IncrementalRun:
    r"""Clipped incremental gradient method over the batch components of ``problem``.

    With :math:`n = N/B` components :math:`f_j` (batch means, :class:`~clipcore.problems.FiniteSum`)
    one epoch makes n steps

    .. math::
        x \leftarrow x - \alpha_k\,\mathrm{clip}_\gamma(\nabla f_{j}(x)),
        \qquad \alpha_k = \alpha/(1 + k/k_0)^{p}\ \text{in epoch } k = 0, 1, \dots,

    with j running over the batches in a fixed order (``cyclic``: batch j holds examples
    jB..(j+1)B-1), a fresh permutation per epoch (``reshuffled``), or, for ``iid`` (SGD), each
    step's batch being B examples drawn uniformly *with* replacement, independently across
    steps. The step is constant within an epoch (p = ``lr_decay``, :math:`k_0` = ``lr_epochs``).
    ``gamma``, ``lr`` and ``order`` (a name or one per run) broadcast to R runs, all
    driven in one vectorised loop, each run with its own random order; ``gamma = inf`` is
    unclipped. ``x0`` is ``[d]`` (shared) or ``[R, d]``. Logging every ``log_every`` epochs
    uses a separate random stream, so it never changes the trajectory. Runs that overflow are
    reported as nan.
    """
    orders = np.atleast_1d(np.asarray(order, dtype=object))
    _check_schedule(problem, batch_size, orders)
    gam = _check_gamma(gamma)
    lr_arr = np.asarray(lr, np.float64)
    if lr_arr.size == 0 or not np.all(np.isfinite(lr_arr) & (lr_arr > 0)):
        raise ValueError(f"Invalid lr: {lr!r} (must be finite and > 0)")
    for name, v, low in (("epochs", epochs, 0), ("log_every", log_every, 1)):
        if not (isinstance(v, (int, np.integer)) and v >= low):
            raise ValueError(f"Invalid {name}: {v!r} (must be an integer >= {low})")
    if not (isinstance(lr_decay, (int, float)) and lr_decay >= 0):
        raise ValueError(f"Invalid lr_decay: {lr_decay!r} (must be >= 0)")
    if not (isinstance(lr_epochs, (int, float)) and lr_epochs > 0):
        raise ValueError(f"Invalid lr_epochs: {lr_epochs!r} (must be > 0)")
    x0 = _as_float64(x0, "x0")
    if x0.shape[-1:] != (problem.dim,) or x0.ndim not in (1, 2):
        raise ValueError(f"Invalid x0 shape: {x0.shape} (expected ({problem.dim},) or (R, {problem.dim}))")
    try:
        (R,) = np.broadcast_shapes(gam.reshape(-1).shape, lr_arr.reshape(-1).shape, orders.shape,
                                   x0.shape[:-1] or (1,))
    except ValueError:
        raise ValueError(f"Invalid shapes: gamma {gam.shape}, lr {lr_arr.shape}, order {orders.shape} "
                         f"and x0 {x0.shape} do not broadcast to R runs") from None
    gam = np.broadcast_to(gam.reshape(-1), (R,)).copy()
    lr_arr = np.broadcast_to(lr_arr.reshape(-1), (R,)).copy()
    orders = np.broadcast_to(orders, (R,)).copy()
    x = np.broadcast_to(x0, (R, problem.dim)).copy()

    N, B = problem.N, batch_size
    n = N // B
    rng = np.random.default_rng(seed)
    log_rng = np.random.default_rng([seed, 1])
    rows = np.arange(R)[:, None, None]
    arrays = problem._arrays()  # the step loop calls the NumPy primitives directly (speed)

    logs = {k: [] for k in ("loss", "grad_norm", "rho", "relative_bias", "clipped_fraction",
                            "sufficient", "kappa", "kappa_bound")}
    logged = []

    def log(epoch):
        with np.errstate(all="ignore"):
            G = problem.example_grads(x)  # [R, N, d]
            parts = _epoch_schedule([o if o == "cyclic" else "reshuffled" for o in orders], N, B, log_rng)
            r = _decompose(G[rows, parts].mean(-2), gam)  # batch-mean components [R, n, d]
            logs["loss"].append(problem.loss(x))
            logs["grad_norm"].append(np.linalg.norm(G.mean(-2), axis=-1))
        for k in logs:
            if k not in ("loss", "grad_norm"):
                logs[k].append(r[k])
        logged.append(epoch)

    disp_ratio = np.zeros(R)
    hist = np.empty((n, R, problem.dim))
    steps = np.arange(1, n + 1)[:, None]
    log(0)
    with np.errstate(all="ignore"):
        for k in range(epochs):
            alpha = lr_arr / (1.0 + k / lr_epochs) ** lr_decay
            sched = _epoch_schedule(orders, N, B, rng)
            start = x.copy()
            for i in range(n):
                idx = sched[:, i]  # [R, B]
                g = problem._grads(np, {key: v[idx] for key, v in arrays.items()}, x, idx)
                g = g[:, 0] if B == 1 else g.mean(1)
                # clip_γ(g) = min(1, γ/‖g‖) g exactly: γ/0 = inf and γ = inf both give scale 1
                scale = np.minimum(1.0, gam / np.sqrt(np.einsum("rd,rd->r", g, g)))
                x = x - (alpha * scale)[:, None] * g
                hist[i] = x
            # ‖x^i − x^0‖ ≤ i α γ for every step i of the cycle (checked after the fact, vectorised)
            moved = np.linalg.norm(hist - start, axis=-1)  # [n, R]
            ratio = np.where(np.isinf(gam), 0.0, moved / (steps * alpha * gam))
            disp_ratio = np.fmax(disp_ratio, ratio.max(0))
            if (k + 1) % log_every == 0 or k + 1 == epochs:
                log(k + 1)
    epochs_arr = np.asarray(logged)
    return IncrementalRun(order=orders, batch_size=B, gamma=gam, lr=lr_arr, epochs=epochs_arr,
                          evaluations=epochs_arr * N, displacement_ratio=disp_ratio, x=x,
                          **{k: np.stack(v, axis=-1) for k, v in logs.items()})


def clipped_full_batch_descent(problem: FiniteSum, x0, *, gamma: float, lr: float, steps: int,
                               batch_size: int = 1) -> np.ndarray:
    r"""The averaged dynamics of one clipped cycle, :math:`x \leftarrow x - \alpha\,d(x)`,
    :math:`d = \sum_j \mathrm{clip}_\gamma(\nabla f_j(x))` over the fixed batch components.
    ``gamma = inf`` gives plain gradient descent on :math:`F = \sum_j f_j`. Returns the
    iterates ``[steps + 1, d]``."""
    _check_schedule(problem, batch_size, ["cyclic"])
    gam = float(_check_gamma(gamma))
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"Invalid lr: {lr!r} (must be finite and > 0)")
    if not (isinstance(steps, (int, np.integer)) and steps >= 0):
        raise ValueError(f"Invalid steps: {steps!r} (must be an integer >= 0)")
    batches = np.arange(problem.N).reshape(-1, batch_size)
    x = _as_float64(x0, "x0").reshape(problem.dim).copy()
    xs = [x.copy()]
    for _ in range(steps):
        d = _decompose(problem.batch_grads(x, batches), gam)["direction"]
        x = x - lr * d
        xs.append(x.copy())
    return np.stack(xs)


# ---------------------------------------------------------------------------------------------
# Angles between batch gradients and the full gradient (claim C3)
# ---------------------------------------------------------------------------------------------


def _as_matrix(example_grads):
    G = example_grads
    if not isinstance(G, torch.Tensor):
        G = np.asarray(G, np.float64)
    if G.ndim != 2 or G.shape[0] < 2 or G.shape[1] < 1:
        raise ValueError(f"Invalid example_grads shape: {tuple(G.shape)} (expected [N, d] with N >= 2)")
    return G


def gradient_moments(example_grads, chunk: int = 4096) -> tuple[float, float]:
    r""":math:`(\|\bar g\|^2, \sigma^2)` of per-example gradients ``[N, d]`` (NumPy or torch, on
    its own device): :math:`\bar g = \frac1N\sum_i g_i` and
    :math:`\sigma^2 = \frac1N\sum_i\|g_i - \bar g\|^2` (trace of the population covariance),
    computed centred, in row chunks, so no copy of the matrix is made."""
    G = _as_matrix(example_grads)
    N = G.shape[0]
    if isinstance(G, torch.Tensor):
        Gd = G.double() if G.dtype != torch.float64 else G
        mean = Gd.mean(0)
        var = sum(float(((Gd[s:s + chunk] - mean) ** 2).sum()) for s in range(0, N, chunk)) / N
        return float(mean @ mean), var
    mean = G.mean(0)
    var = sum(float(((G[s:s + chunk] - mean) ** 2).sum()) for s in range(0, N, chunk)) / N
    return float(mean @ mean), var


def predicted_cosine(mean_sq_norm, sigma2, N: int, batch_size):
    r"""Predicted cosine between a batch-mean gradient (B examples drawn without replacement)
    and the full mean gradient :math:`\bar g`:

    .. math::
        \cos\theta \approx \frac{\|\bar g\|}{\sqrt{\|\bar g\|^2 + \sigma^2\frac{N-B}{B(N-1)}}}.

    The denominator is exact for the root mean square: :math:`E\|\bar g_B\|^2 = \|\bar g\|^2
    + \sigma^2 (N-B)/(B(N-1))` and :math:`E\langle\bar g_B, \bar g\rangle = \|\bar g\|^2`; the
    cosine replaces a mean of ratios by a ratio of means. ``batch_size`` may be an array."""
    B = np.asarray(batch_size, np.float64)
    if not (isinstance(N, (int, np.integer)) and N >= 2):
        raise ValueError(f"Invalid N: {N!r} (must be an integer >= 2)")
    if np.any(B < 1) or np.any(B > N):
        raise ValueError(f"Invalid batch_size: {batch_size!r} (must be in [1, N = {N}])")
    if mean_sq_norm < 0 or sigma2 < 0:
        raise ValueError(f"Invalid moments: {mean_sq_norm!r}, {sigma2!r} (must be >= 0)")
    var_B = sigma2 * (N - B) / (B * (N - 1))
    return np.sqrt(mean_sq_norm) / np.sqrt(mean_sq_norm + var_B)


def batch_cosines(example_grads, batch_size: int, *, n_splits: int = 1, seed=0) -> np.ndarray:
    r"""Cosines between batch-mean gradients and the full mean gradient.

    The N examples are shuffled and split into :math:`\lfloor N/B\rfloor` disjoint batches of
    size B (sampling without replacement; a remainder is left out of the batches but not of the
    full gradient), ``n_splits`` times with fresh shuffles. Works on NumPy arrays and on torch
    tensors (on their device, e.g. per-example gradients of a network). Returns a float64 array
    of ``n_splits * (N // B)`` cosines.
    """
    G = _as_matrix(example_grads)
    N = G.shape[0]
    if not (isinstance(batch_size, (int, np.integer)) and 1 <= batch_size <= N):
        raise ValueError(f"Invalid batch_size: {batch_size!r} (must be an integer in [1, N = {N}])")
    if not (isinstance(n_splits, (int, np.integer)) and n_splits >= 1):
        raise ValueError(f"Invalid n_splits: {n_splits!r} (must be an integer >= 1)")
    rng = np.random.default_rng(seed)
    n = N // batch_size
    out = []
    is_torch = isinstance(G, torch.Tensor)
    mean = G.mean(0)
    for _ in range(n_splits):
        perm = rng.permutation(N)[: n * batch_size]
        if is_torch:
            idx = torch.as_tensor(perm, device=G.device)
            Gb = G.index_select(0, idx).reshape(n, batch_size, -1).mean(1).double()
            m = mean.double()
            cos = (Gb @ m) / (torch.linalg.vector_norm(Gb, dim=1) * torch.linalg.vector_norm(m))
            out.append(cos.cpu().numpy())
        else:
            Gb = G[perm].reshape(n, batch_size, -1).mean(1)
            out.append((Gb @ mean) / (np.linalg.norm(Gb, axis=1) * np.linalg.norm(mean)))
    return np.concatenate(out)


# ---------------------------------------------------------------------------------------------
# The bias floor of clipped SGD (Koloskova, Hendrikx, Stich 2023)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DiscreteNoise:
    """A zero-mean noise law on finitely many values (bounded by construction)."""

    values: np.ndarray
    probs: np.ndarray

    def __post_init__(self):
        v, p = np.asarray(self.values, np.float64), np.asarray(self.probs, np.float64)
        if v.ndim != 1 or v.shape != p.shape or v.size < 1:
            raise ValueError(f"Invalid noise: values {v.shape} and probs {p.shape} must be equal 1-D shapes")
        if np.any(p < 0) or abs(p.sum() - 1) > 1e-12:
            raise ValueError(f"Invalid probs: {p!r} (must be >= 0 and sum to 1)")
        if abs(float(v @ p)) > 1e-12 * max(1.0, float(np.abs(v).max())):
            raise ValueError(f"Invalid noise: mean {float(v @ p)!r} (must be 0)")
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "probs", p)

    @property
    def sigma(self) -> float:
        return float(np.sqrt(self.probs @ self.values**2))

    @property
    def bound(self) -> float:
        return float(np.abs(self.values).max())


def two_point_noise(sigma: float, p: float) -> DiscreteNoise:
    r"""Zero-mean noise with variance :math:`\sigma^2`: :math:`+\sigma\sqrt{(1-p)/p}` with
    probability p and :math:`-\sigma\sqrt{p/(1-p)}` otherwise (asymmetric for p != 1/2)."""
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"Invalid sigma: {sigma!r} (must be finite and > 0)")
    if not (isinstance(p, (int, float)) and 0 < p < 1):
        raise ValueError(f"Invalid p: {p!r} (must be in (0, 1))")
    return DiscreteNoise(np.array([sigma * math.sqrt((1 - p) / p), -sigma * math.sqrt(p / (1 - p))]),
                         np.array([p, 1 - p]))


def floor_noise(sigma: float, c: float, p_max: float = 0.25) -> DiscreteNoise:
    r"""The two-point law used for threshold c: :math:`p = \min\{p_\max, \sigma^2/(4c^2)\}`.

    Derived for this project after Koloskova et al.'s lower-bound construction (the law depends
    on c). For :math:`c \ge \sigma` the rare value is :math:`a \approx 2c > c` and gets clipped
    while the frequent one :math:`-b` does not; the fixed point of
    :math:`x \mapsto E\,\mathrm{clip}_c(x + \xi)` is then :math:`\bar x = \frac{p}{1-p}(a - c)
    \approx \sigma^2/(4c)`. For :math:`c \le \sigma` (with :math:`p_\max = 1/4`)
    :math:`\bar x = \sigma/\sqrt3 - c/3`. Both are :math:`\Theta(\min\{\sigma, \sigma^2/c\})`.
    """
    if not (isinstance(c, (int, float)) and c > 0):
        raise ValueError(f"Invalid c: {c!r} (must be > 0)")
    return two_point_noise(sigma, min(p_max, sigma**2 / (4 * c**2)))


def clipped_drift(x, c: float, noise: DiscreteNoise):
    r""":math:`E\,\mathrm{clip}_c(x + \xi)`, the mean clipped gradient of :math:`f = x^2/2` at x."""
    x = np.asarray(x, np.float64)
    return (np.clip(x[..., None] + noise.values, -c, c) * noise.probs).sum(-1)


def clipped_fixed_point(c: float, noise: DiscreteNoise, iters: int = 200) -> float:
    r"""A root of :math:`x \mapsto E\,\mathrm{clip}_c(x + \xi)` by bisection (the drift is
    non-decreasing, -c far left and +c far right): where clipped SGD with vanishing steps on
    :math:`f = x^2/2` settles, so :math:`|\bar x| = |f'(\bar x)|` is the bias floor."""
    if not (c > 0):
        raise ValueError(f"Invalid c: {c!r} (must be > 0)")
    if math.isinf(c):
        return 0.0
    lo, hi = -noise.bound - c, noise.bound + c
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if clipped_drift(mid, c, noise) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass(frozen=True, eq=False)
class QuadraticSGDRun:
    r"""Clipped SGD on :math:`f(x) = x^2/2` for K laws/thresholds times R runs.

    ``t`` ``[T']`` are the logged iterations; ``mean_abs_grad`` ``[K, T']`` is
    :math:`E|f'(x_t)|` over runs; ``mean_grad`` ``[K, T']`` the run average of :math:`f'(x_t)`
    (its absolute value is :math:`|f'(E x_t)|`, the bias); ``tail_mean`` ``[K, R]`` each run's
    average iterate over the last ``tail`` fraction of the iterations; ``plateau`` ``[K]`` is
    :math:`|f'|` at the average of those (over runs), with standard error ``plateau_se``."""

    c: np.ndarray
    t: np.ndarray
    lr: np.ndarray
    mean_abs_grad: np.ndarray
    mean_grad: np.ndarray
    tail_mean: np.ndarray
    plateau: np.ndarray
    plateau_se: np.ndarray


def clipped_sgd_quadratic(noises, c, *, x0: float = 1.0, lr: float = 0.5, t0: float = 100.0,
                          decay: float = 1.0, steps: int = 20000, runs: int = 200, tail: float = 0.5,
                          n_log: int = 100, seed: int = 0) -> QuadraticSGDRun:
    r"""Clipped SGD :math:`x \leftarrow x - \eta_t\,\mathrm{clip}_{c_k}(x + \xi)` on
    :math:`f(x) = x^2/2` with shrinking steps :math:`\eta_t = \eta_0/(1 + t/t_0)^{\text{decay}}`,
    vectorised over K (noise law, threshold) pairs and R independent runs; ``c = inf`` is
    plain SGD with the same steps. Seeded."""
    noises = list(noises)
    c = _check_gamma(c).reshape(-1)
    if len(noises) != c.size:
        raise ValueError(f"Invalid noises: {len(noises)} laws for {c.size} thresholds")
    for name, v in (("steps", steps), ("runs", runs), ("n_log", n_log)):
        if not (isinstance(v, (int, np.integer)) and v >= 1):
            raise ValueError(f"Invalid {name}: {v!r} (must be an integer >= 1)")
    if not (0 < tail <= 1):
        raise ValueError(f"Invalid tail: {tail!r} (must be in (0, 1])")
    if not (lr > 0 and t0 > 0 and decay >= 0):
        raise ValueError(f"Invalid step schedule: lr={lr!r}, t0={t0!r}, decay={decay!r}")
    K, R = c.size, runs
    rng = np.random.default_rng(seed)
    # Two-point (or general discrete) laws: draw by inverse CDF from one uniform per step.
    m = max(n.values.size for n in noises)
    vals = np.zeros((K, m))
    cdf = np.ones((K, m))
    for k, nz in enumerate(noises):
        vals[k, : nz.values.size] = nz.values
        cdf[k, : nz.values.size] = np.cumsum(nz.probs)
    cdf[:, -1] = 1.0
    x = np.full((K, R), float(x0))
    log_t = np.unique(np.round(np.geomspace(1, steps, n_log)).astype(int))
    log_t = np.concatenate([[0], log_t])
    mean_abs, mean_x, lrs = [np.abs(x).mean(1)], [x.mean(1)], [lr]
    tail_start = steps - max(1, int(round(tail * steps)))
    acc = np.zeros((K, R))
    li = 1
    cc = c[:, None]
    for t in range(steps):
        eta = lr / (1.0 + t / t0) ** decay
        u = rng.random((K, R))
        j = (u[..., None] >= cdf[:, None, :]).sum(-1)  # index of the drawn value, [K, R]
        xi = np.take_along_axis(vals, j, axis=1)
        x = x - eta * np.clip(x + xi, -cc, cc)
        if t + 1 > tail_start:
            acc += x
        if li < log_t.size and t + 1 == log_t[li]:
            mean_abs.append(np.abs(x).mean(1))
            mean_x.append(x.mean(1))
            lrs.append(eta)
            li += 1
    tail_mean = acc / (steps - tail_start)
    avg = tail_mean.mean(1)
    se = tail_mean.std(1, ddof=1) / math.sqrt(R) if R > 1 else np.full(K, np.nan)
    return QuadraticSGDRun(c=c, t=log_t, lr=np.asarray(lrs), mean_abs_grad=np.stack(mean_abs, 1),
                           mean_grad=np.stack(mean_x, 1), tail_mean=tail_mean, plateau=np.abs(avg),
                           plateau_se=se)
