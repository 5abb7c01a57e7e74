r"""Deterministic descent on scalar problems, vectorised over many runs at once (the
deterministic half of the pair with :mod:`clipcore.stochastic_descent`).

The methods are those of Zhang, He, Sra, Jadbabaie (ICLR 2020), Section 3: GD with a fixed
step, clipped GD and normalized GD, with the step sizes of :mod:`clipcore.theory`.

A run is :math:`x_{t+1} = x_t - h_t f'(x_t)` with the step :math:`h_t` given by a *rule*
of the current gradient magnitude and the run's own parameters. Initial points and rule
parameters are broadcast together, so one call runs a whole grid (say, every initial point
times every fixed step) in NumPy float64, only the still-active runs being updated.

:math:`T_\epsilon` counts from 0: it is the first t with :math:`|f'(x_t)| \le \epsilon`
(:func:`iterations_to_eps` runs the descent until then; :func:`clipcore.theory.hitting_time`
reads it off a recorded trace).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .scalar_problems import ScalarProblem
from .smoothed_clipping import smoothed_clipping_step_size
from .theory import clipped_gd_step_size, normalized_gd_step_size
from .validation import check_int, check_positive

__all__ = [
    "gd_rule",
    "clipped_rule",
    "normalized_rule",
    "smoothed_clipping_rule",
    "iterations_to_eps",
    "trajectory",
    "worst_case_iterations",
    "fit_log_growth",
]

Rule = Callable[..., np.ndarray]


def gd_rule(g, h):
    """Gradient descent with a fixed step ``h``."""
    return h


def clipped_rule(g, eta_c, gamma):
    r"""Clipped GD: :math:`h_c = \min\{\eta_c, \gamma\eta_c/|f'|\}`."""
    return clipped_gd_step_size(g, eta_c, gamma)


def normalized_rule(g, eta_n, beta):
    r"""Normalized GD: :math:`h_n = \eta_n/(|f'| + \beta)`."""
    return normalized_gd_step_size(g, eta_n, beta)


def smoothed_clipping_rule(g, eta, L0, L1):
    r"""The (L0, L1) step ("smoothed clipping"): :math:`h = \eta/(L_0 + L_1|f'|)`
    (:mod:`clipcore.smoothed_clipping`)."""
    return smoothed_clipping_step_size(g, eta, L0, L1)


def _broadcast(x0, params):
    names = list(params)
    arrays = np.broadcast_arrays(
        np.asarray(x0, np.float64), *(np.asarray(params[n], np.float64) for n in names)
    )
    shape = arrays[0].shape
    flat = [a.reshape(-1).copy() for a in arrays]
    return shape, flat[0], dict(zip(names, flat[1:]))


def iterations_to_eps(
    problem: ScalarProblem, x0, rule: Rule, eps: float, max_steps: int, blowup: float = 1e150, **params
) -> np.ndarray:
    r""":math:`T_\epsilon` of every run in the broadcast of ``x0`` and the rule's ``params``.

    Returns a float array of that shape: the count where reached, ``inf`` where not within
    ``max_steps`` or where the run diverged (non-finite iterate or gradient above ``blowup``).
    """
    check_positive("eps", eps)
    check_int("max_steps", max_steps, 0)
    shape, x, p = _broadcast(x0, params)
    counts = np.full(x.shape, np.inf)
    idx = np.arange(x.size)
    with np.errstate(over="ignore", invalid="ignore"):
        g = problem.grad(x)
        for t in range(max_steps + 1):
            a = np.abs(g)
            done = a <= eps
            counts[idx[done]] = t
            keep = ~done & np.isfinite(a) & (a < blowup)
            if not keep.all():
                idx, x, g, a = idx[keep], x[keep], g[keep], a[keep]
                p = {k: v[keep] for k, v in p.items()}
            if idx.size == 0 or t == max_steps:
                break
            x = x - rule(a, **p) * g
            g = problem.grad(x)
    return counts.reshape(shape)


def trajectory(problem: ScalarProblem, x0, rule: Rule, n_steps: int, **params) -> np.ndarray:
    """Iterates ``x_0 .. x_n`` of every run, shape ``(n_steps + 1, *broadcast_shape)``."""
    shape, x, p = _broadcast(x0, params)
    xs = [x]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(n_steps):
            g = problem.grad(x)
            x = x - rule(np.abs(g), **p) * g
            xs.append(x)
    return np.stack(xs).reshape((n_steps + 1, *shape))


def worst_case_iterations(
    problem: ScalarProblem, x0, rule: Rule, eps: float, max_steps: int, n_starts: int = 16, **params
) -> np.ndarray:
    r"""Largest :math:`T_\epsilon` over starts :math:`x_0 s`, :math:`s \in \{1/n, 2/n, \dots, 1\}`.

    The theorems' M is a supremum over the sublevel set :math:`\{f \le f(x_0)\}`, so a method
    is judged by its cost from every start in it, not from one point: in one dimension a fixed
    step tuned to a single start can land on the minimiser in one step, which says nothing
    about the method. For the monotone-gradient problems here the starts :math:`x_0 s` cover
    the sublevel set's positive half (the problems are symmetric or minimised on x >= 0).
    """
    check_int("n_starts", n_starts, 1)
    s = np.arange(1, n_starts + 1) / n_starts
    x = np.asarray(x0, np.float64)[..., None] * s
    expanded = {k: np.asarray(v, np.float64)[..., None] for k, v in params.items()}
    return iterations_to_eps(problem, x, rule, eps, max_steps, **expanded).max(axis=-1)


def fit_log_growth(x, counts) -> dict:
    r"""Least-squares fit :math:`T \approx a + b\log x` of iteration counts against a
    parameter (e.g. M), with its largest relative residual :math:`\max_i |T_i - \hat T_i|/T_i`.

    Logarithmic growth is what clipped GD shows on an exponential wall (fixed-length steps over
    a distance :math:`\propto \log M`): a small residual says the counts are explained by
    :math:`\log x` alone. Returns ``{"a", "b", "max_rel_residual"}``; nan unless there are at
    least two points and every count is finite and positive.
    """
    x, t = np.asarray(x, np.float64), np.asarray(counts, np.float64)
    if x.shape != t.shape or x.ndim != 1:
        raise ValueError(f"Invalid shapes: {x.shape} and {t.shape} (need two equal 1-D arrays)")
    nan = float("nan")
    if x.size < 2 or np.any(x <= 0) or not np.all(np.isfinite(t) & (t > 0)):
        return {"a": nan, "b": nan, "max_rel_residual": nan}
    b, a = np.polyfit(np.log(x), t, 1)
    resid = np.abs(t - (a + b * np.log(x))) / t
    return {"a": float(a), "b": float(b), "max_rel_residual": float(resid.max())}
