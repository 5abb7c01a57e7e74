r"""The (L0, L1) step :math:`\eta/(L_0 + L_1\|g\|)` ("smoothed clipping") and the convex
(L0, L1) bounds of the 2024 papers, with descent counted to a function gap.

Two papers of 2024 analyse gradient descent on *convex* :math:`(L_0, L_1)`-smooth functions
(Definition 1 of Zhang et al.: :math:`\|\nabla^2 f\| \le L_0 + L_1\|\nabla f\|`) with steps
that shrink as the gradient grows, and prove rates free of the exponential dependence on the
initial distance :math:`R = \|x_0 - x^*\|` that older bounds had (through M):

- **Gorbunov, Tupitsa, Choudhury, Aliev, Richtárik, Horváth, Takáč**, "Methods for convex
  (L0, L1)-smooth optimization: clipping, acceleration, and adaptivity" (arXiv 2409.14989,
  ICLR 2025), Algorithm 1, (L0,L1)-GD: :math:`x^{k+1} = x^k - \eta\nabla f(x^k)/(L_0 + L_1\|\nabla f(x^k)\|)`
  with :math:`0 < \eta \le \nu/2`, :math:`\nu e^\nu = 1` (:data:`OMEGA`, :math:`\nu \approx 0.567`)
  [transcribed]. Its convex rate is :math:`O(\max\{L_0R^2/\epsilon, L_1^2R^2\})` iterations to
  :math:`f(x^k) - f^* \le \epsilon`; the theorem's constants were not recovered for this book,
  so only that shape is checked (:func:`gorbunov_rate_shape`), never a constant.
- **Vankov, Rodomanov, Nedich, Sankar, Stich**, "Optimizing (L0, L1)-smooth functions by
  gradient methods" (arXiv 2410.10800, v3), Section 3: three steps from the upper model
  :math:`f(y) \le f(x) + \langle\nabla f(x), y - x\rangle + \frac{L_0 + L_1\|\nabla f(x)\|}{L_1^2}\phi(L_1\|y - x\|)`,
  :math:`\phi(t) = e^t - t - 1` -- the optimal :math:`\eta^*` (:func:`optimal_step_size`), the
  simplified :math:`1/(L_0 + \tfrac32L_1\|g\|)` and the clipped
  :math:`\min\{1/(2L_0), 1/(3L_1\|g\|)\}`, ordered :math:`\eta^{cl} \le \eta^{si} \le \eta^*` --
  and, for convex f, :math:`f(x_K) - f^* \le \epsilon` once
  :math:`K \ge \frac2a\frac{L_0R^2}{\epsilon} + \frac3aL_1R\ln\frac{F_0}{\epsilon}`,
  :math:`F_0 = f(x_0) - f^*`, with a = 1 for :math:`\eta^*` and :math:`\eta^{si}` and a = 1/2
  for :math:`\eta^{cl}` (Section 3, the convex gradient method, in arXiv v3; the version
  reviewed at ICLR 2025 discusses it, its Theorem 3.2, as :math:`O(L_0R^2/\epsilon + L_1^2R^2)`;
  :func:`vankov_gd_bound`); and (Section 4) the normalized gradient method
  :math:`x_{k+1} = x_k - \beta_k\nabla f(x_k)/\|\nabla f(x_k)\|` with
  :math:`\beta_k = \hat R/\sqrt{K + 1}` reaches :math:`\min_{k \le K} f(x_k) - f^* \le \epsilon`
  once :math:`K + 1 \ge \max\{L_0\bar R^2/\epsilon, \tfrac49(L_1\bar R)^2\}`,
  :math:`\bar R = \tfrac12(R^2/\hat R + \hat R)` (:func:`vankov_ngm_horizon`, run by :func:`normalized_method`). These constants are
  *transcribed* from a secondary transcription of the paper, so the book checks them
  numerically (measured count <= bound on every run) and says so.

Smoothed clipping is normalized GD in disguise: :math:`\eta/(L_0 + L_1\|g\|) = \eta_n/(\|g\| + \beta)`
with :math:`\eta_n = \eta/L_1` and :math:`\beta = L_0/L_1` (derived; :func:`as_normalized`).

A run here stops at the first t with :math:`f(x_t) - f^* \le \epsilon` (the convex papers'
criterion), counted from 0 (:func:`iterations_to_gap`); the rules are those of
:mod:`clipcore.deterministic_descent` (a rule maps the gradient magnitude and its parameters to
the step :math:`h_t` of :math:`x_{t+1} = x_t - h_tf'(x_t)`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .scalar_problems import ScalarProblem
from .validation import check_int, check_positive, invalid

__all__ = [
    "OMEGA",
    "smoothed_clipping_step_size",
    "as_normalized",
    "optimal_step_size",
    "simplified_step_size",
    "clipping_step_size",
    "gorbunov_eta",
    "vankov_clipped_parameters",
    "vankov_gd_bound",
    "vankov_ngm_horizon",
    "gorbunov_rate_shape",
    "iterations_to_gap",
    "normalized_method",
]

# The omega constant W(1): the root of nu e^nu = 1 (Gorbunov et al.'s step bound is nu / 2).
OMEGA = 0.5671432904097838


def _positive(**values):
    for name, v in values.items():
        check_positive(name, v)


def smoothed_clipping_step_size(grad_norm, eta: float, L0: float, L1: float):
    r"""The (L0, L1) step :math:`h = \eta/(L_0 + L_1\|g\|)` (array-friendly in ``grad_norm``)."""
    return eta / (L0 + L1 * np.asarray(grad_norm, np.float64))


def as_normalized(eta: float, L0: float, L1: float) -> dict:
    r"""The normalized-GD parameters of the same step: :math:`\eta_n = \eta/L_1`,
    :math:`\beta = L_0/L_1`, so :math:`\eta_n/(\|g\| + \beta) = \eta/(L_0 + L_1\|g\|)` (derived)."""
    _positive(eta=eta, L0=L0, L1=L1)
    return {"eta_n": eta / L1, "beta": L0 / L1}


def optimal_step_size(grad_norm, L0: float, L1: float):
    r"""Vankov et al.'s :math:`\eta^* = \frac{1}{L_1\|g\|}\ln\Bigl(1 + \frac{L_1\|g\|}{L_0 + L_1\|g\|}\Bigr)`,
    the minimiser of their upper model along :math:`-g` (its limit :math:`1/L_0` at :math:`g = 0`)."""
    a = L1 * np.asarray(grad_norm, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.log1p(a / (L0 + a)) / a
    return np.where(a > 0, h, 1.0 / L0)


def simplified_step_size(grad_norm, L0: float, L1: float):
    r"""Vankov et al.'s :math:`\eta^{si} = 1/(L_0 + \tfrac32L_1\|g\|)`: smoothed clipping with
    :math:`\eta = 1` and :math:`L_1` scaled by 3/2."""
    return smoothed_clipping_step_size(grad_norm, 1.0, L0, 1.5 * L1)


def clipping_step_size(grad_norm, L0: float, L1: float):
    r"""Vankov et al.'s :math:`\eta^{cl} = \min\{1/(2L_0), 1/(3L_1\|g\|)\}`: clipped GD with
    :func:`vankov_clipped_parameters`."""
    g = np.asarray(grad_norm, np.float64)
    with np.errstate(divide="ignore"):
        return np.minimum(1.0 / (2.0 * L0), 1.0 / (3.0 * L1 * g))


def gorbunov_eta() -> float:
    r"""Gorbunov et al.'s largest step parameter :math:`\eta = \nu/2 \approx 0.2836`."""
    return OMEGA / 2.0


def vankov_clipped_parameters(L0: float, L1: float) -> dict:
    r""":math:`\eta^{cl}` as Zhang et al.'s clipped step :math:`\min\{\eta_c, \gamma\eta_c/\|g\|\}`:
    :math:`\eta_c = 1/(2L_0)`, :math:`\gamma = 2L_0/(3L_1)`."""
    _positive(L0=L0, L1=L1)
    return {"eta_c": 1.0 / (2.0 * L0), "gamma": 2.0 * L0 / (3.0 * L1)}


def vankov_gd_bound(L0: float, L1: float, R, F0, eps: float, a: float = 1.0):
    r"""Vankov et al., convex gradient method (transcribed): :math:`f(x_K) - f^* \le \epsilon`
    for every :math:`K \ge \frac2a\frac{L_0R^2}{\epsilon} + \frac3aL_1R\ln\frac{F_0}{\epsilon}`;
    a = 1 for :math:`\eta^*` and :math:`\eta^{si}`, a = 1/2 for :math:`\eta^{cl}`.

    Array-friendly in ``R`` and ``F0``; where :math:`F_0 \le \epsilon` the bound is 0 (the start
    already qualifies)."""
    _positive(L0=L0, L1=L1, eps=eps, a=a)
    R, F0 = np.broadcast_arrays(np.asarray(R, np.float64), np.asarray(F0, np.float64))
    if np.any(R < 0) or np.any(F0 < 0):
        raise invalid("R, F0", (R, F0), "must be >= 0")
    with np.errstate(divide="ignore"):
        b = 2.0 / a * L0 * R**2 / eps + 3.0 / a * L1 * R * np.log(F0 / eps)
    return np.where(F0 > eps, b, 0.0)


def vankov_ngm_horizon(L0: float, L1: float, R, eps: float, R_hat=None):
    r"""Vankov et al., normalized gradient method (transcribed): the least :math:`K + 1` that their
    bound allows, :math:`\max\{L_0\bar R^2/\epsilon, \tfrac49(L_1\bar R)^2\}` with
    :math:`\bar R = \tfrac12(R^2/\hat R + \hat R)` (:math:`\bar R = R` for ``R_hat = R``, the
    default), run with :math:`\beta_k = \hat R/\sqrt{K + 1}`."""
    _positive(L0=L0, L1=L1, eps=eps)
    R = np.asarray(R, np.float64)
    R_hat = R if R_hat is None else np.asarray(R_hat, np.float64)
    R_bar = 0.5 * (R**2 / R_hat + R_hat)
    return np.maximum(L0 * R_bar**2 / eps, 4.0 / 9.0 * (L1 * R_bar) ** 2)


def gorbunov_rate_shape(L0: float, L1: float, R, eps: float):
    r"""The shape of Gorbunov et al.'s convex rate, :math:`L_0R^2/\epsilon + L_1^2R^2` (their
    :math:`O(\max\{\cdot, \cdot\})`, up to a factor 2): no constant of theirs is in it, so a
    count divided by it can only be judged by its trend, not against 1."""
    _positive(L0=L0, L1=L1, eps=eps)
    R = np.asarray(R, np.float64)
    return L0 * R**2 / eps + (L1 * R) ** 2


def _broadcast(x0, params):
    names = list(params)
    arrays = np.broadcast_arrays(
        np.asarray(x0, np.float64), *(np.asarray(params[n], np.float64) for n in names)
    )
    return (
        arrays[0].shape,
        arrays[0].reshape(-1).copy(),
        {n: a.reshape(-1).copy() for n, a in zip(names, arrays[1:])},
    )


def iterations_to_gap(
    problem: ScalarProblem, x0, rule: Callable, eps: float, max_steps: int, blowup: float = 1e150, **params
) -> np.ndarray:
    r"""First t with :math:`f(x_t) - f^* \le \epsilon` for every run in the broadcast of ``x0`` and
    the rule's ``params`` (``inf`` where not within ``max_steps``, or where the run diverged:
    a non-finite iterate, or a gradient above ``blowup``)."""
    check_positive("eps", eps)
    check_int("max_steps", max_steps, 0)
    shape, x, p = _broadcast(x0, params)
    counts = np.full(x.shape, np.inf)
    idx = np.arange(x.size)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(max_steps + 1):
            gap = problem.f(x) - problem.f_star
            g = problem.grad(x)
            done = gap <= eps
            counts[idx[done]] = t
            keep = ~done & np.isfinite(gap) & np.isfinite(g) & (np.abs(g) < blowup)
            if not keep.all():
                idx, x, g = idx[keep], x[keep], g[keep]
                p = {k: v[keep] for k, v in p.items()}
            if idx.size == 0 or t == max_steps:
                break
            x = x - rule(np.abs(g), **p) * g
    return counts.reshape(shape)


def normalized_method(problem: ScalarProblem, x0, step, n_steps, eps: float) -> tuple[np.ndarray, np.ndarray]:
    r"""The normalized gradient method :math:`x_{k+1} = x_k - \beta\,f'(x_k)/|f'(x_k)|` with the
    fixed step :math:`\beta` = ``step`` for K = ``n_steps`` steps, for every run in the broadcast
    of the three. Returns ``(min_gap, hit)``: :math:`\min_{0 \le k \le K} f(x_k) - f^*` and the
    first k <= K with :math:`f(x_k) - f^* \le \epsilon` (``inf`` if none). At a stationary point
    the direction is undefined: the run stays there (``sign(0) = 0``)."""
    check_positive("eps", eps)
    shape, x, p = _broadcast(x0, {"step": step, "n_steps": n_steps})
    K, beta = p["n_steps"], p["step"]
    if np.any(K < 0) or np.any(K != np.round(K)):
        raise invalid("n_steps", n_steps, "must be integers >= 0")
    best = problem.f(x) - problem.f_star
    # The running minimum only falls, so the first k with a gap <= eps is the number of
    # k <= K whose running minimum is still above eps.
    above = (best > eps).astype(np.int64)
    out_best, out_above = best.copy(), above.copy()
    idx = np.arange(x.size)
    k = 0
    while idx.size:
        # Runs whose horizon is reached leave the batch; the rest step together.
        stop = K[idx] <= k
        if stop.any():
            out_best[idx[stop]], out_above[idx[stop]] = best[stop], above[stop]
            keep = ~stop
            idx, x, beta, best, above = idx[keep], x[keep], beta[keep], best[keep], above[keep]
            if not idx.size:
                break
        x = x - beta * np.sign(problem.grad(x))  # sign(0) = 0: a stationary point stays put
        np.minimum(best, problem.f(x) - problem.f_star, out=best)
        above += best > eps
        k += 1
    hit = np.where(out_best <= eps, out_above.astype(np.float64), np.inf)
    return out_best.reshape(shape), hit.reshape(shape)
