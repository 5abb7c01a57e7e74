r"""The growth lemma for (L0, L1)-smooth functions, checked numerically.

**Lemma** (Zhang, He, Sra, Jadbabaie, ICLR 2020: used throughout the proofs of Theorems 3 and
7 in the appendix; stated and proved here for this book, checked by the tests in
tests/test_growth_lemma.py). If f is :math:`(L_0, L_1)`-smooth (Definition 1) and
:math:`\|y - x\| \le r`, then

.. math::
    \|\nabla f(y)\| + \frac{L_0}{L_1} \le e^{L_1 r}\Big(\|\nabla f(x)\| + \frac{L_0}{L_1}\Big).

*Proof.* Let :math:`z(s) = x + s u`, :math:`u = (y - x)/\|y - x\|`, and
:math:`\phi(s) = \|\nabla f(z(s))\| + L_0/L_1`. Then :math:`\phi` is Lipschitz with
:math:`|\phi'(s)| \le \|\nabla^2 f(z(s))u\| \le L_0 + L_1\|\nabla f(z(s))\| = L_1\phi(s)`
almost everywhere, so :math:`(\log\phi)' \le L_1` and Grönwall gives
:math:`\phi(\|y - x\|) \le e^{L_1\|y - x\|}\phi(0) \le e^{L_1 r}\phi(0)`. :math:`\square`

It is tight: for :math:`e^x`, which is :math:`(\delta, 1)`-smooth for every :math:`\delta > 0`,
the ratio of the two sides at :math:`y = x + r` is
:math:`(e^{x+r} + \delta)/(e^{x+r} + e^r\delta) \to 1` as :math:`\delta \to 0`.
"""

from __future__ import annotations

import math

import numpy as np

from .scalar_problems import ScalarProblem
from .validation import check_int, check_positive, invalid

__all__ = [
    "growth_ratio",
    "growth_ratio_from_norms",
    "sample_pairs",
    "worst_growth_ratio",
    "worst_ratio_by_distance",
]


def growth_ratio_from_norms(grad_norm_x, grad_norm_y, distance, L0: float, L1: float) -> np.ndarray:
    r"""LHS/RHS of the growth lemma from gradient norms and distances (any dimension).

    .. math::
        \rho = \frac{\|\nabla f(y)\| + L_0/L_1}{e^{L_1\|y - x\|}(\|\nabla f(x)\| + L_0/L_1)},

    evaluated in log space so that :math:`e^{L_1 r}` cannot overflow. The lemma says
    :math:`\rho \le 1` for every pair (taking r = ‖y − x‖, its sharpest form).
    """
    check_positive("L0", L0)
    check_positive("L1", L1)
    gx, gy, r = (np.asarray(a, np.float64) for a in (grad_norm_x, grad_norm_y, distance))
    if np.any(r < 0) or np.any(gx < 0) or np.any(gy < 0):
        raise invalid(
            "input", (grad_norm_x, grad_norm_y, distance), "gradient norms and distances must be >= 0"
        )
    c = L0 / L1
    return np.exp(np.log(gy + c) - np.log(gx + c) - L1 * r)


def growth_ratio(problem: ScalarProblem, x, y) -> np.ndarray:
    r"""The growth-lemma ratio :math:`\rho(x, y)` for a scalar problem, with its certified
    ``L0``, ``L1`` and :math:`r = |y - x|` (arrays broadcast)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    with np.errstate(over="ignore"):
        gx, gy = np.abs(problem.grad(x)), np.abs(problem.grad(y))
    if not (np.all(np.isfinite(gx)) and np.all(np.isfinite(gy))):
        raise invalid("points", (x, y), "the gradient overflows at some x or y (shrink the range)")
    return growth_ratio_from_norms(gx, gy, np.abs(y - x), problem.L0, problem.L1)


def sample_pairs(rng: np.random.Generator, n: int, x_range: tuple[float, float], r_max: float):
    r"""``n`` random pairs: x uniform on ``x_range``, :math:`y = x + s`, s uniform on
    :math:`[-r_{\max}, r_{\max}]`. Returns ``(x, y)``."""
    check_int("n", n, 1)
    lo, hi = x_range
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise invalid("x_range", x_range, "need finite lo < hi")
    check_positive("r_max", r_max)
    x = rng.uniform(lo, hi, n)
    return x, x + rng.uniform(-r_max, r_max, n)


def worst_growth_ratio(problem: ScalarProblem, x, y) -> float:
    """The largest ratio over the pairs (at most 1 if the lemma, and the certificate, hold)."""
    return float(np.max(growth_ratio(problem, x, y)))


def worst_ratio_by_distance(problem: ScalarProblem, x, r_values) -> np.ndarray:
    r"""For each distance r, :math:`\max_{x,\ y = x \pm r}\rho(x, y)` over the points ``x``.

    Every ratio tends to 1 as :math:`r \to 0` (both sides meet), so tightness is a statement
    at a *fixed* r > 0: the lemma is tight when this stays near 1 for every r.
    """
    x = np.asarray(x, np.float64)
    r_values = np.asarray(r_values, np.float64)
    if r_values.ndim != 1 or np.any(~np.isfinite(r_values)) or np.any(r_values <= 0):
        raise invalid("r_values", r_values, "need a 1-D array of finite values > 0")
    return np.array(
        [max(worst_growth_ratio(problem, x, x + r), worst_growth_ratio(problem, x, x - r)) for r in r_values]
    )
