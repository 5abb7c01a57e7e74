r"""Scalar analytic objectives with exact derivatives and certified (L0, L1) constants.

The test problems of Zhang, He, Sra, Jadbabaie (ICLR 2020): :math:`x^p` and :math:`e^{ax}`
(Lemma 2) and the two hard instances behind Theorem 4's lower bound. Each scalar problem evaluates ``f``, ``grad`` (f') and ``hess`` (f'') elementwise on NumPy
arrays or torch tensors alike, so the same code drives vectorised experiments and is
checked against autograd in the tests. ``L0`` and ``L1`` are *certified*: the inequality
:math:`|f''(x)| \le L_0 + L_1|f'(x)|` holds for every real x (proved in the docstring, and
checked on dense grids by the tests and the book).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .validation import check_int, check_number, check_positive, invalid

__all__ = ["ScalarProblem", "Power", "Exponential", "HardInstanceA", "HardInstanceB", "max_envelope_ratio"]


def _xp(x):
    return torch if isinstance(x, torch.Tensor) else np


class ScalarProblem:
    """Interface: ``f``, ``grad``, ``hess``, certified ``L0``/``L1``, ``f_star`` and ``name``."""

    name: str
    L0: float
    L1: float
    f_star: float

    def f(self, x):  # pragma: no cover - interface
        raise NotImplementedError

    def grad(self, x):  # pragma: no cover - interface
        raise NotImplementedError

    def hess(self, x):  # pragma: no cover - interface
        raise NotImplementedError

    def envelope(self, grad_abs):
        """The certified smoothness envelope :math:`L_0 + L_1|f'|`."""
        return self.L0 + self.L1 * grad_abs

    def x0_for_gradient(self, M: float) -> float:
        """A positive initial point with :math:`f'(x_0) = M` (used to sweep M)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Power(ScalarProblem):
    r""":math:`f(x) = x^p` for an even or odd integer p >= 2 (minimised over x >= 0 for odd p).

    Certified constants (Lemma 2): for every :math:`L_1 > 0`, :math:`x^p` is
    :math:`(p((p-2)/L_1)^{p-2}, L_1)`-smooth. Proof: with :math:`u = |x|`,
    :math:`p(p-1)u^{p-2} - L_1 p u^{p-1}` is maximised at :math:`u = (p-2)/L_1` where it
    equals :math:`p u^{p-2}`. It is not L-smooth for p >= 3: f'' is unbounded.
    """

    p: int = 4
    L1: float = 1.0

    def __post_init__(self):
        check_int("p", self.p, 2)
        check_positive("L1", self.L1)

    @property
    def name(self):
        return f"x^{self.p}"

    @property
    def L0(self):
        return self.p * ((self.p - 2) / self.L1) ** (self.p - 2)

    f_star = 0.0  # on x >= 0 for odd p

    def f(self, x):
        return x**self.p

    def grad(self, x):
        return self.p * x ** (self.p - 1)

    def hess(self, x):
        return self.p * (self.p - 1) * x ** (self.p - 2)

    def x0_for_gradient(self, M):
        check_positive("M", M)
        return (M / self.p) ** (1.0 / (self.p - 1))


@dataclass(frozen=True)
class Exponential(ScalarProblem):
    r""":math:`f(x) = e^{ax}`: :math:`f'' = a f'`, so it is :math:`(\delta, |a|)`-smooth for any
    :math:`\delta > 0` and not L-smooth. Bounded below by 0 (not attained)."""

    a: float = 1.0
    delta: float = 1e-3

    def __post_init__(self):
        if check_number("a", self.a) == 0:
            raise invalid("a", self.a, "must be a finite non-zero number")
        check_positive("delta", self.delta)

    name = "e^x"
    f_star = 0.0

    @property
    def L0(self):
        return self.delta

    @property
    def L1(self):
        return abs(self.a)

    def f(self, x):
        return _xp(x).exp(self.a * x)

    def grad(self, x):
        return self.a * _xp(x).exp(self.a * x)

    def hess(self, x):
        return self.a**2 * _xp(x).exp(self.a * x)

    def x0_for_gradient(self, M):
        check_positive("M", M)
        return math.log(M / abs(self.a)) / self.a


@dataclass(frozen=True)
class HardInstanceA(ScalarProblem):
    r"""The steep instance :math:`f_A` for Theorem 4.

    :math:`f_A'(x) = x` for :math:`|x| \le 1/L_1` and :math:`\mathrm{sign}(x)e^{L_1|x|-1}/L_1`
    outside; then :math:`f_A'' = 1` inside and :math:`L_1|f_A'|` outside, so :math:`f_A` is
    :math:`(1, L_1)`-smooth, with :math:`f_A^* = 0` at 0. From
    :math:`x_0 = (1 + \log(L_1 M))/L_1`, :math:`f_A'(x_0) = M`. Fixed-step GD with
    :math:`h > 2x_0/M` never converges from :math:`x_0`.
    """

    L1: float = 1.0

    def __post_init__(self):
        check_positive("L1", self.L1)

    name = "f_A"
    L0 = 1.0
    f_star = 0.0

    def _parts(self, x):
        xp = _xp(x)
        a = xp.abs(x)
        inside = a <= 1.0 / self.L1
        # Exponent capped inside the quadratic zone so the unused branch never overflows.
        e = xp.exp(xp.where(inside, 0.0 * a, self.L1 * a - 1.0))
        return xp, a, inside, e

    def f(self, x):
        xp, a, inside, e = self._parts(x)
        outer = 1.0 / (2 * self.L1**2) + (e - 1.0) / self.L1**2
        return xp.where(inside, 0.5 * x * x, outer)

    def grad(self, x):
        xp, a, inside, e = self._parts(x)
        return xp.where(inside, x, xp.sign(x) * e / self.L1)

    def hess(self, x):
        xp, a, inside, e = self._parts(x)
        return xp.where(inside, 1.0 + 0.0 * x, e)

    def x0_for_gradient(self, M):
        check_positive("M", M)
        if self.L1 * M <= 1.0:
            return M  # quadratic zone: f'(M) = M
        return (1.0 + math.log(self.L1 * M)) / self.L1

    def divergence_step(self, M):
        r""":math:`h^* = 2x_0/M`: above it, GD from :func:`x0_for_gradient` (M) never converges."""
        return 2.0 * self.x0_for_gradient(M) / M


@dataclass(frozen=True)
class HardInstanceB(ScalarProblem):
    r"""The flat instance :math:`f_B(x) = 4\epsilon^2\log\cosh(x/(2\epsilon))` for Theorem 4.

    :math:`f_B' = 2\epsilon\tanh(x/(2\epsilon))`, so :math:`|f_B'| < 2\epsilon`; :math:`f_B'' =
    \mathrm{sech}^2(x/(2\epsilon)) \le 1`: (1, L1)-smooth for every :math:`L_1 \ge 0`
    (``L1`` is kept only for a common interface). Each GD step with step h lowers
    :math:`f_B` by at most :math:`4h\epsilon^2`, which forces many steps when h is small.
    """

    eps: float = 0.1
    L1: float = 1.0

    def __post_init__(self):
        check_positive("eps", self.eps)

    name = "f_B"
    L0 = 1.0
    f_star = 0.0

    def f(self, x):
        xp = _xp(x)
        z = xp.abs(x / (2 * self.eps))
        # log cosh z = z + log1p(e^{-2z}) - log 2, stable for large z.
        return 4 * self.eps**2 * (z + xp.log1p(xp.exp(-2 * z)) - math.log(2.0))

    def grad(self, x):
        return 2 * self.eps * _xp(x).tanh(x / (2 * self.eps))

    def hess(self, x):
        t = _xp(x).tanh(x / (2 * self.eps))
        return 1.0 - t * t

    def x0_for_delta(self, delta):
        r"""The positive x0 with :math:`f_B(x_0) = \Delta`."""
        check_positive("delta", delta)
        # cosh(z) = e^u  =>  z = arccosh(e^u) = u + log(1 + sqrt(1 - e^{-2u})), stable for any u > 0.
        u = delta / (4 * self.eps**2)
        z = u + math.log1p(math.sqrt(-math.expm1(-2 * u)))
        return 2 * self.eps * z


def max_envelope_ratio(problem: ScalarProblem, x) -> float:
    r"""Largest :math:`|f''(x)| / (L_0 + L_1|f'(x)|)` over the points ``x`` (<= 1 certifies)."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.max(np.abs(problem.hess(x)) / problem.envelope(np.abs(problem.grad(x)))))
