r"""Stochastic (clipped) gradient descent on analytic objectives, vectorised in torch (the
stochastic half of the pair with :mod:`clipcore.deterministic_descent`).

Zhang, He, Sra, Jadbabaie (ICLR 2020), Theorems 7 and 8. Many independent runs (and a batch of initial
points, e.g. one per value of M) advance together as one tensor of shape
``(*batch, runs, dim)``:

.. math::
    g_t = \nabla f(x_t) + \xi_t, \qquad x_{t+1} = x_t - h(\|g_t\|)\, g_t,

where the step rule :math:`h` sees only the *stochastic* gradient, as in the paper, and the
noise :math:`\xi_t` is drawn uniformly on the sphere of radius :math:`\tau` in
:math:`\mathbb{R}^d` (unbiased by symmetry and bounded: :math:`\|\xi_t\| = \tau`, Assumption 5).

:math:`T_\epsilon` for random iterates is the first t at which
:math:`P(\|\nabla f(x_k)\| \ge \epsilon \ \forall k \le t) \le 1/2`, estimated over the runs
exactly as :func:`clipcore.theory.stochastic_hitting_time` does, but from each run's
first hitting time (:func:`hitting_time_from_hits`), so that long horizons need no
``(runs, T + 1)`` record.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from .scalar_problems import ExponentialWall, HardInstanceA, Power, ScalarProblem
from .theory import THEOREM7_READINGS
from .validation import (
    check_choice,
    check_int,
    check_nonnegative,
    check_open_unit,
    check_positive,
    check_positive_array,
    invalid,
)

__all__ = [
    "SeparableProblem",
    "sphere_noise",
    "StepRule",
    "sgd_rule",
    "clipped_sgd_rule",
    "run_stochastic",
    "first_hitting_times",
    "hitting_time_from_hits",
    "resampled_hitting_times",
    "best_fixed_step",
    "loglog_slope_interval",
]


# ---------------------------------------------------------------- objective


class SeparableProblem:
    r"""The separable sum :math:`f(x) = \sum_{i=1}^d p(x_i)` of a scalar problem p.

    **(L0, L1)-smoothness.** If p is :math:`(L_0, L_1)`-smooth then so is f, with the same
    constants: the Hessian is :math:`\mathrm{diag}(p''(x_i))`, so

    .. math::
        \|\nabla^2 f(x)\| = \max_i |p''(x_i)| \le L_0 + L_1\max_i|p'(x_i)|
        \le L_0 + L_1\|\nabla f(x)\|_2 .

    **M from an axis start.** Let :math:`p` be even with minimum :math:`p(0) = 0`, increasing
    on :math:`[0, \infty)`, and let :math:`\varphi(v) = p'(p^{-1}(v))^2` be convex on
    :math:`[0, \infty)` with :math:`\varphi(0) = 0`. Then :math:`\varphi` is superadditive,
    so on the sublevel set :math:`\{\sum_i p(x_i) \le c\}`,
    :math:`\|\nabla f\|^2 = \sum_i \varphi(p(x_i)) \le \varphi(\sum_i p(x_i)) \le \varphi(c)`,
    with equality on an axis: from :math:`x_0 = (a, 0, \dots, 0)`,
    :math:`M = \sup\{\|\nabla f(x)\| : f(x) \le f(x_0)\} = |p'(a)|`. The condition holds for
    :math:`x^p` with even p (:math:`\varphi(v) = p^2 v^{2 - 2/p}`) and for :math:`f_A`
    (:math:`\varphi(v) = 2v` up to :math:`v = 1/(2L_1^2)`, then :math:`(L_1 v + 1/(2L_1))^2`,
    joined with matching value and slope) and for the uncapped :class:`ExponentialWall`
    (:math:`\varphi' = 2p''`, increasing), the problems :meth:`start_for_gradient` accepts.
    (The capped wall's :math:`\varphi` is not convex: with its gradient saturating, several
    coordinates at the cap beat one, so there M is certified only for ``dim = 1``.)
    """

    def __init__(self, scalar: ScalarProblem, dim: int):
        if not isinstance(scalar, ScalarProblem):
            raise invalid("scalar", scalar, "must be a clipcore.scalar_problems.ScalarProblem")
        check_int("dim", dim, 1)
        self.scalar, self.dim = scalar, int(dim)

    @property
    def name(self):
        return f"sum of {self.scalar.name} over {self.dim} coordinates"

    @property
    def L0(self):
        return self.scalar.L0

    @property
    def L1(self):
        return self.scalar.L1

    @property
    def f_star(self):
        return self.dim * self.scalar.f_star

    def f(self, x):
        """:math:`f(x)`, summing over the last axis (NumPy or torch)."""
        return self.scalar.f(x).sum(-1)

    def grad(self, x):
        r""":math:`\nabla f(x) = (p'(x_1), \dots, p'(x_d))`."""
        return self.scalar.grad(x)

    def hess_diag(self, x):
        r"""The diagonal of :math:`\nabla^2 f(x)`, i.e. :math:`p''(x_i)`."""
        return self.scalar.hess(x)

    def start_for_gradient(self, M: float) -> np.ndarray:
        r"""The axis start :math:`(a, 0, \dots, 0)` with :math:`|p'(a)| = M`; M is then the
        supremum of :math:`\|\nabla f\|` over the initial sublevel set (see the class docstring)."""
        s = self.scalar
        ok = (
            isinstance(s, HardInstanceA)
            or (isinstance(s, Power) and s.p % 2 == 0)
            or (isinstance(s, ExponentialWall) and (math.isinf(s.cap) or self.dim == 1))
        )
        if not ok:
            raise invalid(
                "scalar for start_for_gradient",
                s.name,
                "M is certified only for f_A, even powers and the exponential wall (capped: dim 1)",
            )
        x0 = np.zeros(self.dim)
        x0[0] = s.x0_for_gradient(M)
        return x0


# ---------------------------------------------------------------- noise and step rules


def sphere_noise(
    shape, dim: int, tau: float, generator: torch.Generator | None = None, dtype=torch.float64, device=None
) -> torch.Tensor:
    r"""Samples uniform on the sphere :math:`\{\xi \in \mathbb{R}^d : \|\xi\| = \tau\}`, shape ``(*shape, dim)``.

    A standard Gaussian divided by its norm is uniform on the unit sphere; its law is
    symmetric, so :math:`E\xi = 0` (unbiased), and :math:`\|\xi\| = \tau` almost surely.
    """
    check_int("dim", dim, 1)
    check_nonnegative("tau", tau)
    z = torch.randn((*tuple(shape), dim), generator=generator, dtype=dtype, device=device)
    return z * (tau / torch.linalg.vector_norm(z, dim=-1, keepdim=True))


class StepRule:
    r"""A step-size rule :math:`h(\|g\|)` with parameters broadcast over the batch.

    Each parameter is a scalar or an array of the batch shape (say, one value per M); it is
    converted once per dtype/device and given a trailing axis so it broadcasts against the
    ``(*batch, runs)`` tensor of stochastic-gradient norms.
    """

    def __init__(self, name: str, fn: Callable, **params):
        self.name, self.fn, self.params = name, fn, {k: np.asarray(v, np.float64) for k, v in params.items()}
        self._cache = {}

    def __call__(self, gnorm: torch.Tensor) -> torch.Tensor:
        key = (gnorm.dtype, gnorm.device)
        p = self._cache.get(key)
        if p is None:
            p = {
                k: torch.as_tensor(v, dtype=gnorm.dtype, device=gnorm.device) for k, v in self.params.items()
            }
            p = {k: (v[..., None] if v.ndim else v) for k, v in p.items()}
            self._cache[key] = p
        return self.fn(gnorm, **p)

    def __repr__(self):
        return f"StepRule({self.name!r})"


def sgd_rule(h) -> StepRule:
    r"""SGD with a fixed step h (Theorem 8 uses :math:`h = \min\{1/\sqrt{T}, 1/(L_1(M+\tau))\}`,
    :func:`clipcore.theory.sgd_step_size`). ``h`` may hold one value per batch entry."""
    h = check_positive_array("h", h)
    return StepRule("SGD", lambda g, h: h.expand_as(g), h=h)


def _printed(g, eta, L1, tau):
    return torch.minimum(1.0 / (16.0 * eta * L1 * (g + tau)), eta.expand_as(g))


def _intended(g, eta, L1, tau):
    return torch.minimum(eta.expand_as(g), 1.0 / (16.0 * L1 * (g + tau)))


def clipped_sgd_rule(eta, L1: float, tau: float, reading: str = "intended") -> StepRule:
    r"""Clipped SGD with Theorem 7's step (torch twin of :func:`clipcore.theory.clipped_sgd_step_size`).

    - ``"printed"``: :math:`h = \min\{1/(16\eta L_1(\|g\| + \tau)), \eta\}`;
    - ``"intended"``: :math:`h = \min\{\eta, 1/(16L_1(\|g\| + \tau))\}`;

    with :math:`\eta = \min\{1/(20L_0), 1/(128L_1\tau), 1/\sqrt{T}\}`
    (:func:`clipcore.theory.clipped_sgd_parameters`). For :math:`\eta < 1` the printed step is
    never smaller than the intended one and equals it where :math:`\eta` is the minimum.
    """
    eta = check_positive_array("eta", eta)
    check_positive("L1", L1)
    check_positive("tau", tau)
    check_choice("reading", reading, THEOREM7_READINGS)
    fn = _printed if reading == "printed" else _intended
    return StepRule(f"clipped SGD ({reading})", fn, eta=eta, L1=L1, tau=tau)


# ---------------------------------------------------------------- simulation


def _generator(generator, device) -> torch.Generator:
    if isinstance(generator, torch.Generator):
        return generator
    if generator is None or (isinstance(generator, (int, np.integer)) and not isinstance(generator, bool)):
        g = torch.Generator(device=device)
        g.manual_seed(0 if generator is None else int(generator))
        return g
    raise invalid("generator", generator, "a torch.Generator, an integer seed or None")


def _iterate(problem, x0, rule, tau, T, runs, generator, device, dtype):
    """Yield ``(t, ||grad f(x_t)||)`` for t = 0..T; the noise draws do not depend on when one stops."""
    if not callable(rule):
        raise invalid("rule", rule, "must be callable on gradient norms")
    check_nonnegative("tau", tau)
    check_int("T", T, 0)
    check_int("runs", runs, 1)
    device = torch.device("cpu") if device is None else torch.device(device)
    x0 = torch.as_tensor(np.asarray(x0, np.float64), dtype=dtype, device=device)
    if x0.ndim == 0:
        raise invalid("x0 shape", tuple(x0.shape), "need (..., dim)")
    if not torch.isfinite(x0).all():
        raise invalid("x0", x0, "it has non-finite entries")
    gen = _generator(generator, device)
    batch, dim = tuple(x0.shape[:-1]), x0.shape[-1]
    x = x0[..., None, :].expand(*batch, runs, dim).clone()
    for t in range(T + 1):
        g = problem.grad(x)
        yield t, torch.linalg.vector_norm(g, dim=-1)
        if t == T:
            return
        if tau > 0:
            g = g + sphere_noise((*batch, runs), dim, tau, gen, dtype, device)
        x = x - rule(torch.linalg.vector_norm(g, dim=-1))[..., None] * g


@torch.no_grad()  # plain tensor arithmetic: no autograd bookkeeping on every small op
def run_stochastic(
    problem, x0, rule, tau: float, T: int, runs: int, generator=None, device=None, dtype=torch.float64
) -> torch.Tensor:
    r"""Full record of the true gradient norms :math:`\|\nabla f(x_t)\|`, t = 0..T.

    ``x0`` has shape ``(*batch, dim)``; every batch entry runs ``runs`` independent copies, so
    the result has shape ``(*batch, runs, T + 1)``. ``rule`` maps stochastic-gradient norms
    of shape ``(*batch, runs)`` to steps (:func:`sgd_rule`, :func:`clipped_sgd_rule`).
    ``generator`` is a ``torch.Generator`` on ``device`` or an integer seed; ``tau = 0`` gives
    the deterministic method.
    """
    out = [gn for _, gn in _iterate(problem, x0, rule, tau, T, runs, generator, device, dtype)]
    return torch.stack(out, dim=-1)


@torch.no_grad()
def first_hitting_times(
    problem,
    x0,
    rule,
    tau: float,
    T: int,
    runs: int,
    eps: float,
    generator=None,
    device=None,
    dtype=torch.float64,
    stop_early: bool = True,
    check_every: int = 64,
) -> torch.Tensor:
    r"""Each run's first t with :math:`\|\nabla f(x_t)\| < \epsilon` (``T + 1`` if none up to T).

    Same runs as :func:`run_stochastic` with the same arguments (the same random draws in the
    same order); non-finite iterates never count as a hit. With ``stop_early`` the loop ends
    once every run has hit, checked every ``check_every`` steps (one host sync each).
    Returns an int64 tensor of shape ``(*batch, runs)``.
    """
    check_positive("eps", eps)
    check_int("check_every", check_every, 1)
    hits = None
    for t, gn in _iterate(problem, x0, rule, tau, T, runs, generator, device, dtype):
        if hits is None:
            hits = torch.full(gn.shape, T + 1, dtype=torch.int64, device=gn.device)
        hits.masked_fill_((gn < eps) & (hits > T), t)
        if stop_early and t % check_every == 0 and bool((hits <= T).all()):
            break
    return hits


def hitting_time_from_hits(hits, T: int, prob: float = 0.5) -> np.ndarray:
    r"""Random-iterate :math:`T_\epsilon` from first hitting times, per batch entry.

    The fraction of runs with :math:`\|\nabla f(x_k)\| \ge \epsilon` for all :math:`k \le t`
    is the fraction with hitting time > t; :math:`T_\epsilon` is the first :math:`t \le T` where
    it is at most ``prob`` -- the definition of
    :func:`clipcore.theory.stochastic_hitting_time`. Returns a float array of the batch
    shape, ``inf`` where that never happens within T.
    """
    check_int("T", T, 0)
    check_open_unit("prob", prob)
    h = hits.detach().cpu().numpy() if isinstance(hits, torch.Tensor) else np.asarray(hits)
    if h.ndim < 1 or h.shape[-1] < 1:
        raise invalid("hits shape", h.shape, "need (..., runs)")
    flat = h.reshape(-1, h.shape[-1])
    out = np.full(flat.shape[0], np.inf)
    for i, row in enumerate(flat):
        srt = np.sort(row)
        cand = np.unique(srt[srt <= T])
        # fraction still above eps at t, computed as the theory module does: count / runs
        frac = (row.size - np.searchsorted(srt, cand, side="right")) / row.size
        ok = np.flatnonzero(frac <= prob)
        if ok.size:
            out[i] = cand[ok[0]]
    return out.reshape(h.shape[:-1])


def _hitting_time_of_sorted(srt: np.ndarray, T: int, prob: float) -> np.ndarray:
    """T_eps from hitting times sorted along the last axis: the k-th smallest, k the least count
    with (runs - k) / runs <= prob; inf where that one is beyond T."""
    n = srt.shape[-1]
    # the same float comparison as hitting_time_from_hits: (n - k) / n <= prob
    k = next(k for k in range(1, n + 1) if (n - k) / n <= prob)
    kth = srt[..., k - 1].astype(np.float64)
    return np.where(kth <= T, kth, np.inf)


def resampled_hitting_times(hits, T: int, n_boot: int, seed: int = 0, prob: float = 0.5) -> np.ndarray:
    r"""Bootstrap replicates of the random-iterate :math:`T_\epsilon`, per batch entry.

    Each replicate redraws the runs of every batch entry independently, with replacement, and
    recomputes :func:`hitting_time_from_hits` (the first t at which at most ``prob`` of the
    runs have not yet hit, i.e. an order statistic of the hitting times). Returns an array of
    shape ``(n_boot, *batch)``; ``inf`` where a replicate does not reach the fraction within T.
    """
    check_int("T", T, 0)
    check_int("n_boot", n_boot, 1)
    check_open_unit("prob", prob)
    h = hits.detach().cpu().numpy() if isinstance(hits, torch.Tensor) else np.asarray(hits)
    if h.ndim < 1 or h.shape[-1] < 1:
        raise invalid("hits shape", h.shape, "need (..., runs)")
    rng = np.random.default_rng(seed)
    flat = h.reshape(-1, h.shape[-1])
    n = flat.shape[1]
    idx = rng.integers(0, n, size=(n_boot, flat.shape[0], n))
    draws = np.take_along_axis(np.broadcast_to(flat, (n_boot, *flat.shape)), idx, axis=-1)
    out = _hitting_time_of_sorted(np.sort(draws, axis=-1), T, prob)
    return out.reshape((n_boot, *h.shape[:-1]))


def loglog_slope_interval(x, y, y_boot, level: float = 0.95) -> tuple[float, float, float]:
    r"""Least-squares slope of :math:`\log y` on :math:`\log x`, with a percentile interval from
    bootstrap replicates ``y_boot`` (shape ``(n_boot, len(x))``, e.g. from
    :func:`resampled_hitting_times`). Returns ``(slope, lo, hi)``; all nan unless every y is
    finite and positive (a count not reached within the horizon has no slope), and the
    interval nan if any replicate has a non-finite value.
    """
    check_open_unit("level", level)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    yb = np.asarray(y_boot, np.float64)
    if x.ndim != 1 or y.shape != x.shape or yb.ndim != 2 or yb.shape[1] != x.size:
        raise invalid("shapes", (x.shape, y.shape, yb.shape), "need x (n,), y (n,), y_boot (n_boot, n)")
    nan = float("nan")
    if x.size < 2 or np.any(x <= 0) or not np.all(np.isfinite(y) & (y > 0)):
        return nan, nan, nan
    lx = np.log(x) - np.log(x).mean()

    def slopes(Y):
        ly = np.log(Y)
        return (ly - ly.mean(-1, keepdims=True)) @ lx / (lx @ lx)

    slope = float(slopes(y))
    if not np.all(np.isfinite(yb) & (yb > 0)):
        return slope, nan, nan
    lo, hi = np.quantile(slopes(yb), [(1 - level) / 2, (1 + level) / 2])
    return slope, float(lo), float(hi)


def best_fixed_step(
    problem,
    x0,
    tau: float,
    h_grid,
    T: int,
    runs: int,
    eps: float,
    generator=None,
    device=None,
    prob: float = 0.5,
) -> tuple[float, float, np.ndarray]:
    r"""SGD at its best fixed step of ``h_grid``: the smallest worst-start :math:`T_\epsilon`.

    ``x0`` has shape ``(starts, dim)``; for each step h (in increasing order) the runs of every
    start are simulated with :func:`first_hitting_times` (every h from the same seed ``generator``,
    common random numbers) and the step's cost is the largest :func:`hitting_time_from_hits`
    over the starts. A step only matters if it beats the best so far, so each is simulated up to
    ``min(T, best so far)``: the search costs about as much as its best step plus the failed
    ones up to that count. Returns ``(t_best, h_best, t_per_h)``, with ``t_per_h[i] = inf``
    where step i did not beat the best before it (or never reached eps within T), and
    ``(inf, nan, ...)`` when no step reaches eps within T.
    """
    h_grid = np.asarray(h_grid, np.float64)
    if h_grid.ndim != 1 or h_grid.size < 1 or np.any(~np.isfinite(h_grid)) or np.any(h_grid <= 0):
        raise invalid("h_grid", h_grid, "need a 1-D array of finite steps > 0")
    check_int("T", T, 0)
    if isinstance(generator, torch.Generator):
        raise invalid("generator", generator, "an integer seed or None: every step restarts from it")
    order = np.argsort(h_grid)
    t_per_h = np.full(h_grid.size, np.inf)
    best, h_best = np.inf, float("nan")
    for i in order:
        horizon = int(min(T, best))
        hits = first_hitting_times(
            problem, x0, sgd_rule(h_grid[i]), tau, horizon, runs, eps, generator=generator, device=device
        )
        t = float(np.max(hitting_time_from_hits(hits, horizon, prob)))
        t_per_h[i] = t
        if t < best:
            best, h_best = t, float(h_grid[i])
    return best, h_best, t_per_h
