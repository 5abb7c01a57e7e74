r"""Clipped incremental gradient methods (Qian, Wu, Zhuang, Wang, Xiao, AISTATS 2021, claim C2).

Over a finite sum :math:`F = \sum_i f_i` (:class:`~clipcore.finite_sums.FiniteSum`), one epoch
of a clipped incremental method takes the steps :math:`x \leftarrow x - \alpha\,
\mathrm{clip}_\gamma(\nabla f_{i}(x))` for the components (or batches) in cyclic order, in a
fresh random order each epoch (``reshuffled``), or drawn i.i.d. (``iid``, SGD):
:func:`clipped_incremental`. Within a cycle the iterate moves at most :math:`i\alpha\gamma`
after i steps (the displacement bound), so for small :math:`\alpha` an epoch follows the
clipped direction d of :mod:`clipcore.incremental_bias`; clipped full-batch descent
(:func:`clipped_full_batch_descent`) follows d exactly and stalls where :math:`d = 0`
(:func:`clipped_floor`), which need not be stationary for F. :func:`kappa_bound_check`
checks Qian et al.'s sufficient condition :math:`\cos\theta_i \ge \kappa > 0` and its
descent bound on the logged points of runs, and :func:`sufficient_condition_check` decides
claim C2 on a run: does the method converge where the condition holds throughout? For claim
C3, :func:`batch_angles` measures the mean cosine and angle between batch and full gradients
with their sampling spread, :func:`prediction_check` compares them with the prediction by
relative error, and :func:`increase_check` decides whether the cosine grows with the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .finite_sums import FiniteSum
from .incremental_bias import clipped_direction, decompose_components
from .validation import (
    check_choice,
    check_finite_array,
    check_int,
    check_nonnegative,
    check_number,
    check_positive,
    check_positive_array,
    check_threshold,
    invalid,
)

__all__ = [
    "ORDERS",
    "IncrementalRun",
    "clipped_incremental",
    "clipped_full_batch_descent",
    "ClippedFloor",
    "clipped_floor",
    "KappaBoundCheck",
    "kappa_bound_check",
    "ConditionCheck",
    "sufficient_condition_check",
]

ORDERS = ("cyclic", "reshuffled", "iid")


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
        raise invalid("problem", problem, "must be a clipcore.finite_sums.FiniteSum")
    for order in orders:
        check_choice("order", order, ORDERS)
    problem.check_batch_size(batch_size)


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


def clipped_incremental(
    problem: FiniteSum,
    x0,
    *,
    gamma,
    lr,
    batch_size: int = 1,
    order="cyclic",
    epochs: int = 10,
    lr_decay: float = 0.0,
    lr_epochs: float = 1.0,
    log_every: int = 1,
    seed: int = 0,
) -> IncrementalRun:
    r"""Clipped incremental gradient method over the batch components of ``problem``.

    With :math:`n = N/B` components :math:`f_j` (batch means, :class:`~clipcore.finite_sums.FiniteSum`)
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
    gam = check_threshold("gamma", gamma)
    lr_arr = check_positive_array("lr", lr)
    check_int("epochs", epochs, 0)
    check_int("log_every", log_every, 1)
    check_nonnegative("lr_decay", lr_decay)
    check_positive("lr_epochs", lr_epochs)
    x0 = check_finite_array("x0", x0)
    if x0.shape[-1:] != (problem.dim,) or x0.ndim not in (1, 2):
        raise invalid("x0 shape", x0.shape, f"expected ({problem.dim},) or (R, {problem.dim})")
    try:
        (R,) = np.broadcast_shapes(
            gam.reshape(-1).shape, lr_arr.reshape(-1).shape, orders.shape, x0.shape[:-1] or (1,)
        )
    except ValueError:
        raise invalid(
            "shapes",
            (gam.shape, lr_arr.shape, orders.shape, x0.shape),
            "gamma, lr, order and x0 do not broadcast to R runs",
        ) from None
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

    logs = {
        k: []
        for k in (
            "loss",
            "grad_norm",
            "rho",
            "relative_bias",
            "clipped_fraction",
            "sufficient",
            "kappa",
            "kappa_bound",
        )
    }
    logged = []

    def log(epoch):
        with np.errstate(all="ignore"):
            G = problem.example_grads(x)  # [R, N, d]
            parts = _epoch_schedule([o if o == "cyclic" else "reshuffled" for o in orders], N, B, log_rng)
            r = decompose_components(G[rows, parts].mean(-2), gam)  # batch-mean components [R, n, d]
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
    return IncrementalRun(
        order=orders,
        batch_size=B,
        gamma=gam,
        lr=lr_arr,
        epochs=epochs_arr,
        evaluations=epochs_arr * N,
        displacement_ratio=disp_ratio,
        x=x,
        **{k: np.stack(v, axis=-1) for k, v in logs.items()},
    )


def clipped_full_batch_descent(
    problem: FiniteSum, x0, *, gamma: float, lr: float, steps: int, batch_size: int = 1
) -> np.ndarray:
    r"""The averaged dynamics of one clipped cycle, :math:`x \leftarrow x - \alpha\,d(x)`,
    :math:`d = \sum_j \mathrm{clip}_\gamma(\nabla f_j(x))` over the fixed batch components.
    ``gamma = inf`` gives plain gradient descent on :math:`F = \sum_j f_j`. Returns the
    iterates ``[steps + 1, d]``."""
    _check_schedule(problem, batch_size, ["cyclic"])
    gam = float(check_threshold("gamma", gamma))
    check_positive("lr", lr)
    check_int("steps", steps, 0)
    batches = np.arange(problem.N).reshape(-1, batch_size)
    x = check_finite_array("x0", x0).reshape(problem.dim).copy()
    xs = [x.copy()]
    for _ in range(steps):
        d = decompose_components(problem.batch_grads(x, batches), gam)["direction"]
        x = x - lr * d
        xs.append(x.copy())
    return np.stack(xs)


@dataclass(frozen=True, eq=False)
class ClippedFloor:
    """Where the averaged clipped dynamics stop (:func:`clipped_floor`)."""

    x: np.ndarray  # the final point
    grad_norm: float  # the floor ‖∇F̄(x)‖
    residual: float  # ‖d(x)‖ / n, 0 at an exact zero of d


def clipped_floor(
    problem: FiniteSum, x0, *, gamma: float, lr: float, steps: int, batch_size: int = 1
) -> ClippedFloor:
    r"""The zero of the clipped direction :math:`d = \sum_j\mathrm{clip}_\gamma(\nabla f_j)` over the
    fixed (cyclic) batch components, found by running :func:`clipped_full_batch_descent` from
    ``x0`` for ``steps`` steps: the point where a cycle of vanishing steps no longer moves, and
    the gradient norm a clipped cyclic method stalls at (Qian et al.'s claim C1)."""
    path = clipped_full_batch_descent(problem, x0, gamma=gamma, lr=lr, steps=steps, batch_size=batch_size)
    n = problem.N // batch_size
    batches = np.arange(problem.N).reshape(n, batch_size)
    d_end = clipped_direction(problem.batch_grads(path[-1], batches), gamma).direction
    return ClippedFloor(
        x=path[-1],
        grad_norm=float(np.linalg.norm(problem.grad(path[-1]))),
        residual=float(np.linalg.norm(d_end) / n),
    )


@dataclass(frozen=True, eq=False)
class KappaBoundCheck:
    """The sufficient condition at the logged points of some runs (:func:`kappa_bound_check`)."""

    n_points: int  # logged points
    n_condition: int  # of them with κ > 0
    holds: bool  # ρ ≥ κ Σ_j min(‖∇f_j‖, γ)/‖∇F‖ > 0 at all of those (vacuously true if none)
    min_margin: float  # smallest ρ − κ Σ_j min(‖∇f_j‖, γ)/‖∇F‖ there (inf if none)


def kappa_bound_check(runs, rtol: float = 1e-12) -> KappaBoundCheck:
    r"""Check the κ bound of claim C2 at every logged point of the :class:`IncrementalRun` logs
    ``runs``, where :math:`\kappa > 0`, up to a relative rounding slack ``rtol``."""
    check_nonnegative("rtol", rtol)
    n_points = n_condition = 0
    holds, min_margin = True, math.inf
    for r in runs:
        kappa, rho, bound = (np.asarray(a, np.float64) for a in (r.kappa, r.rho, r.kappa_bound))
        cond = kappa > 0  # nan (undefined cosines) does not count
        n_points += kappa.size
        n_condition += int(cond.sum())
        if cond.any():
            holds &= bool(np.all((rho[cond] >= bound[cond] * (1 - rtol)) & (bound[cond] > 0)))
            min_margin = min(min_margin, float(np.min(rho[cond] - bound[cond])))
    return KappaBoundCheck(n_points=n_points, n_condition=n_condition, holds=holds, min_margin=min_margin)


# ---------------------------------------------------------------- claim C2: the sufficient condition


@dataclass(frozen=True, eq=False)
class ConditionCheck:
    """Claim C2 on some runs (:func:`sufficient_condition_check`)."""

    n_points: int  # logged points not yet at rounding level (finite κ or not)
    cond_fraction: float  # of them with κ > 0
    kappa_min: float  # smallest logged κ (nan if none finite)
    final_ratio: float  # largest final ‖∇F̄‖ / ‖∇F̄(x0)‖ over the runs
    mid_ratio: float  # the same at the middle logged epoch
    status: str


def sufficient_condition_check(
    run: IncrementalRun,
    rows=None,
    *,
    grad_tol: float,
    min_fraction: float = 1.0,
    min_drop: float = 0.1,
    zero: float = 1e-12,
) -> ConditionCheck:
    r"""Claim C2 -- the sufficient condition :math:`\cos\theta_j \ge \kappa > 0` makes the
    clipped method converge -- decided on the runs ``rows`` (all when None) of ``run``.

    The premise is checked at every logged point (:math:`\kappa > 0`; a point with undefined
    cosines does not count) except those already converged to rounding level,
    :math:`\|\nabla\bar F\|/\|\nabla\bar F(x_0)\| \le` ``zero``, where the cosines are
    rounding noise; the conclusion by the gradient norm relative to the start. The
    criterion: ``not-testable`` when the condition holds at fewer than a ``min_fraction`` of
    the logged points (C2 says nothing there); otherwise ``holds`` when every run ends with
    :math:`\|\nabla\bar F\|/\|\nabla\bar F(x_0)\| \le` ``grad_tol``, ``fails`` when some
    run has stalled above it (over the second half of the logged epochs its gradient norm fell
    by less than a fraction ``min_drop``), else ``inconclusive`` (still falling: the horizon is
    too short)."""
    check_positive("grad_tol", grad_tol)
    if not 0 < check_number("min_fraction", min_fraction) <= 1:
        raise invalid("min_fraction", min_fraction, "must be in (0, 1]")
    if not 0 < check_number("min_drop", min_drop) < 1:
        raise invalid("min_drop", min_drop, "must be in (0, 1)")
    check_nonnegative("zero", zero)
    idx = np.arange(run.grad_norm.shape[0]) if rows is None else np.atleast_1d(np.asarray(rows))
    kappa = np.asarray(run.kappa, np.float64)[idx]
    g = np.asarray(run.grad_norm, np.float64)[idx]
    if g.shape[1] < 2:
        raise invalid("run", f"{g.shape[1]} logged epoch", "need at least two logged epochs")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.isnan(g / g[:, :1]), np.inf, g / g[:, :1])
    live = ratio > zero
    with np.errstate(invalid="ignore"):
        frac = float(np.mean(kappa[live] > 0)) if live.any() else math.nan
    kl = kappa[live]
    kmin = float(np.nanmin(kl)) if np.isfinite(kl).any() else math.nan
    half = g.shape[1] // 2
    final, mid = float(ratio[:, -1].max()), float(ratio[:, half].max())
    if not frac >= min_fraction:
        status = "not-testable"
    elif final <= grad_tol:
        status = "holds"
    else:
        stalled = ~(ratio[:, -1] < (1 - min_drop) * ratio[:, half]) & (ratio[:, -1] > grad_tol)
        status = "fails" if stalled.any() else "inconclusive"
    return ConditionCheck(
        n_points=int(live.sum()),
        cond_fraction=frac,
        kappa_min=kmin,
        final_ratio=final,
        mid_ratio=mid,
        status=status,
    )
