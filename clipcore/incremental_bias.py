r"""The bias of clipped component gradients (Qian, Wu, Zhuang, Wang, Xiao, AISTATS 2021, claim C1).

For a finite sum :math:`F = \sum_{i=1}^n f_i` and a threshold :math:`\gamma`, with
:math:`\mathrm{clip}_\gamma(g) = \min\{1, \gamma/\|g\|\}\,g` (exactly, no epsilon), one pass of
a clipped incremental method moves, to first order, along

.. math::
    d(x) = \sum_i \mathrm{clip}_\gamma(\nabla f_i(x)), \qquad
    C = \{i : \|\nabla f_i\| > \gamma\}.

The bias identities (Qian et al.'s claim C1 made exact; derived for this book, proved by the
tests in tests/test_incremental_bias.py):

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

This module holds the decomposition (:func:`clipped_direction`, and :func:`partition_bias`
over random partitions into batches), the angle between d and :math:`\nabla F`
(:func:`direction_angle`, :func:`norm_spread_angles`) and the checks that turn measured
relations into verdicts (:func:`trend_check`, :func:`correlation_check`, with the interval
rules of :mod:`clipcore.claims` and :func:`clipcore.stats.mean_interval`); the clipped incremental methods that follow d are
:mod:`clipcore.incremental_methods`, the angles of claim C3 :mod:`clipcore.angles`, the
stochastic bias floor of clipped SGD :mod:`clipcore.bias_floor`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .claims import from_interval
from .finite_sums import FiniteSum
from .stats import bootstrap_ci, mean_interval, rank_correlation
from .validation import check_choice, check_finite_array, check_int, check_number, check_threshold, invalid

__all__ = [
    "clip",
    "decompose_components",
    "ClippedDirection",
    "clipped_direction",
    "PartitionBias",
    "partition_bias",
    "direction_angle",
    "norm_spread_angles",
    "TrendCheck",
    "trend_check",
    "CorrelationCheck",
    "correlation_check",
]


def decompose_components(G, gamma):
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
    return dict(
        direction=d,
        full_grad=gF,
        norms=norms,
        clipped=clipped,
        cos=cos,
        rho=rho,
        perp=perp,
        relative_bias=rel_bias,
        sufficient=suff,
        kappa=kappa,
        kappa_bound=kappa_bound,
        clipped_fraction=clipped.mean(-1),
    )


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
    g = check_finite_array("g", g)
    gam = check_threshold("gamma", gamma)
    n = np.linalg.norm(g, axis=-1, keepdims=True)
    over = n > gam
    return np.where(over, gam / np.where(over, n, 1.0), 1.0) * g


def clipped_direction(component_grads, gamma: float) -> ClippedDirection:
    r"""Decompose :math:`d = \sum_i\mathrm{clip}_\gamma(\nabla f_i)` for the component gradients
    ``component_grads`` (``[n, d]``, NumPy or torch; computed in float64).

    Raises ValueError for ``gamma <= 0`` (``inf`` means no clipping), a non-2-D or empty
    array, or non-finite entries.
    """
    G = check_finite_array("component_grads", component_grads)
    if G.ndim != 2 or G.shape[0] < 1 or G.shape[1] < 1:
        raise invalid("component_grads shape", G.shape, "expected [n, d] with n, d >= 1")
    gam = check_threshold("gamma", gamma)
    if gam.ndim != 0:
        raise invalid("gamma", gamma, "must be a scalar")
    r = decompose_components(G, float(gam))
    scalars = ("rho", "relative_bias", "sufficient", "kappa", "kappa_bound")
    return ClippedDirection(
        gamma=float(gam),
        **{k: (float(v) if k in scalars else v) for k, v in r.items() if k != "clipped_fraction"},
    )


@dataclass(frozen=True, eq=False)
class PartitionBias:
    """Means over random partitions (:func:`partition_bias`), each ``[K]``: one per batch size."""

    batch_sizes: np.ndarray
    rho: np.ndarray
    relative_bias: np.ndarray  # ‖d − ∇F‖ / ‖∇F‖
    clipped_fraction: np.ndarray


def partition_bias(
    problem: FiniteSum, x, gamma: float, batch_sizes, *, n_partitions: int, rng: np.random.Generator
) -> PartitionBias:
    r"""The decomposition of :func:`clipped_direction` at ``x``, averaged over random partitions.

    For each batch size B (in order), ``n_partitions`` times: a fresh random partition of the N
    examples into N/B batches (``rng.permutation(N)``, consumed in that order), whose batch-mean
    gradients are the components; the means of :math:`\rho`, of the relative bias and of the
    clipped fraction over the partitions are returned."""
    check_int("n_partitions", n_partitions, 1)
    sizes = list(batch_sizes)
    if not isinstance(problem, FiniteSum):
        raise invalid("problem", problem, "must be a clipcore.finite_sums.FiniteSum")
    for B in sizes:
        problem.check_batch_size(B)
    keys = ("rho", "relative_bias", "clipped_fraction")
    means = {k: [] for k in keys}
    for B in sizes:
        rs = [
            clipped_direction(problem.batch_grads(x, rng.permutation(problem.N).reshape(-1, B)), gamma)
            for _ in range(n_partitions)
        ]
        for k in keys:
            means[k].append(np.mean([getattr(r, k) for r in rs]))
    return PartitionBias(batch_sizes=np.asarray(sizes), **{k: np.array(v) for k, v in means.items()})


# ---------------------------------------------------------------- the angle of d to ∇F


def direction_angle(component_grads, gamma) -> np.ndarray:
    r"""The angle in degrees between :math:`d = \sum_i\mathrm{clip}_\gamma(\nabla f_i)` and
    :math:`\nabla F` for the component gradients ``[n, d]`` at each threshold of ``gamma``
    (a scalar or an array; the result has its shape): :math:`\arctan2(\|d_\perp\|,
    \rho\|\nabla F\|)`, 0 without bias, above 90 when d points uphill. Unlike the relative bias
    :math:`\|d - \nabla F\|/\|\nabla F\|` it ignores the length of d, which a step size can
    undo. nan where :math:`\nabla F = 0` or d = 0."""
    G = check_finite_array("component_grads", component_grads)
    if G.ndim != 2 or G.shape[0] < 1 or G.shape[1] < 1:
        raise invalid("component_grads shape", G.shape, "expected [n, d] with n, d >= 1")
    gam = check_threshold("gamma", gamma)
    flat = gam.reshape(-1)
    r = decompose_components(np.broadcast_to(G, (flat.size, *G.shape)), flat)
    nF = np.linalg.norm(r["full_grad"], axis=-1)
    along = r["rho"] * nF
    across = np.linalg.norm(r["perp"], axis=-1)
    with np.errstate(invalid="ignore"):
        ang = np.degrees(np.arctan2(across, along))
    ang = np.where((nF > 0) & np.isfinite(along) & ((across > 0) | (along != 0)), ang, np.nan)
    return ang.reshape(gam.shape)


def norm_spread_angles(directions, z, spreads) -> np.ndarray:
    r"""The bias that unequal norms alone create: components :math:`g_i = e^{s z_i} u_i` with
    the directions ``directions`` ``[n, d]`` (normalised here) and log-norm profile ``z``
    ``[n]``, at the threshold :math:`\gamma = \min_i\|g_i\|` (every component clipped, so
    :math:`d \propto \sum_i u_i` whatever s). Returns :func:`direction_angle` for each spread
    s of ``spreads`` (``[S]``); it is 0 at s = 0, where all norms are equal and clipping is a
    common rescaling."""
    U = check_finite_array("directions", directions)
    if U.ndim != 2 or U.shape[0] < 1:
        raise invalid("directions shape", U.shape, "expected [n, d] with n >= 1")
    nrm = np.linalg.norm(U, axis=1, keepdims=True)
    if np.any(nrm == 0):
        raise invalid("directions", "a zero row", "every direction must be non-zero")
    z = check_finite_array("z", z)
    if z.shape != (U.shape[0],):
        raise invalid("z shape", z.shape, f"expected ({U.shape[0]},)")
    s = check_finite_array("spreads", spreads).reshape(-1)
    U = U / nrm
    out = []
    for sv in s:
        scale = np.exp(sv * (z - z.min()))  # the smallest norm is 1: the threshold
        out.append(float(direction_angle(U * scale[:, None], 1.0)))
    return np.array(out)


# ---------------------------------------------------------------- interval rules and verdicts


def _rank_correlation(x, y) -> float:
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return math.nan
    return rank_correlation(x[ok], y[ok])


def _direction_status(lo, hi, min_corr, direction):
    if direction == "increasing":
        return from_interval(lo, hi, min_corr, above=True)
    return from_interval(lo, hi, -min_corr, above=False)


@dataclass(frozen=True, eq=False)
class TrendCheck:
    """Per-instance rank correlations and the verdict on their mean (:func:`trend_check`)."""

    corr: np.ndarray  # Spearman correlation of each instance (nan where undefined), [K]
    mean: float
    lo: float
    hi: float
    n: int  # instances with a defined correlation
    status: str


def trend_check(
    xs,
    ys,
    *,
    min_corr: float,
    direction: str = "increasing",
    min_instances: int = 5,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> TrendCheck:
    r"""Does y rise (``direction="increasing"``) or fall with x *within* each instance?

    ``xs`` and ``ys`` are sequences of equal-length 1-D arrays, one pair per instance. Each
    instance gives its Spearman correlation (nan with fewer than three finite pairs or a
    constant side; dropped); the criterion, fixed before the numbers, is on the mean over
    instances and its bootstrap interval (:func:`clipcore.stats.mean_interval`): ``holds`` when the whole
    interval is above ``min_corr`` (below ``-min_corr`` for ``"decreasing"``), ``fails``
    when it is all on the other side, ``inconclusive`` when it straddles the threshold or
    fewer than ``min_instances`` instances have a defined correlation."""
    check_choice("direction", direction, ("increasing", "decreasing"))
    if not 0 <= check_number("min_corr", min_corr) < 1:
        raise invalid("min_corr", min_corr, "must be in [0, 1)")
    check_int("min_instances", min_instances, 2)
    xs, ys = list(xs), list(ys)
    if len(xs) != len(ys):
        raise invalid("xs, ys", (len(xs), len(ys)), "need one y array per x array")
    corr = np.array([_rank_correlation(x, y) for x, y in zip(xs, ys)], dtype=np.float64)
    mean, lo, hi = mean_interval(corr, level=level, n_boot=n_boot, seed=seed)
    n = int(np.isfinite(corr).sum())
    status = "inconclusive" if n < min_instances else _direction_status(lo, hi, min_corr, direction)
    return TrendCheck(corr=corr, mean=mean, lo=lo, hi=hi, n=n, status=status)


@dataclass(frozen=True, eq=False)
class CorrelationCheck:
    """One rank correlation across instances and its verdict (:func:`correlation_check`)."""

    rho: float
    lo: float
    hi: float
    n: int
    status: str


def correlation_check(
    x,
    y,
    *,
    min_corr: float,
    direction: str = "increasing",
    min_points: int = 10,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> CorrelationCheck:
    r"""Does y rise (or fall) with x *across* instances (one value of each per instance)?

    The Spearman correlation of the finite pairs with its percentile-bootstrap interval
    (:func:`clipcore.stats.bootstrap_ci`); ``holds`` when the whole interval is above
    ``min_corr`` (below ``-min_corr`` for ``"decreasing"``), ``fails`` when it is all on the
    other side, ``inconclusive`` when it straddles or fewer than ``min_points`` pairs are
    finite."""
    check_choice("direction", direction, ("increasing", "decreasing"))
    if not 0 <= check_number("min_corr", min_corr) < 1:
        raise invalid("min_corr", min_corr, "must be in [0, 1)")
    check_int("min_points", min_points, 3)
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    if x.shape != y.shape:
        raise invalid("x, y", (x.size, y.size), "need one y per x")
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    if n < min_points:
        return CorrelationCheck(rho=math.nan, lo=math.nan, hi=math.nan, n=n, status="inconclusive")
    rho = _rank_correlation(x[ok], y[ok])
    lo, hi = bootstrap_ci(x[ok], y[ok], n_boot=n_boot, level=level, seed=seed)
    return CorrelationCheck(rho=rho, lo=lo, hi=hi, n=n, status=_direction_status(lo, hi, min_corr, direction))
