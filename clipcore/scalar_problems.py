r"""Scalar analytic objectives with exact derivatives and certified (L0, L1) constants.

The test problems of Zhang, He, Sra, Jadbabaie (ICLR 2020): :math:`x^p`, :math:`e^{ax}`
(general polynomials for Lemma 2 are :mod:`clipcore.polynomials`), the hard instances behind Theorem 4's lower bound, and
:class:`ExponentialWall`, the steepest (L0, L1)-smooth function (equality in Definition 1).
Each scalar problem evaluates ``f``, ``grad`` (f') and ``hess`` (f'') elementwise on NumPy
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

from .validation import check_int, check_number, check_positive, invalid, is_number

__all__ = [
    "ScalarProblem",
    "Power",
    "Exponential",
    "HardInstanceA",
    "HardInstanceB",
    "ExponentialWall",
    "min_gap_for_gradient",
    "max_envelope_ratio",
]


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


@dataclass(frozen=True)
class ExponentialWall(ScalarProblem):
    r"""The steepest :math:`(L_0, L_1)`-smooth wall, optionally saturating at gradient ``cap``.

    With :math:`u = L_1|x|` and :math:`c = L_0/L_1`:

    - ``cap = inf``: :math:`f(x) = (c/L_1)(e^u - 1 - u)`, :math:`f' = \mathrm{sign}(x)\,c(e^u - 1)`,
      :math:`f'' = L_0e^u = L_0 + L_1|f'|`: equality in Definition 1 everywhere. By the growth
      lemma every :math:`(L_0, L_1)`-smooth f with :math:`f'(0) = 0` has
      :math:`|f'(x)| \le c(e^{L_1|x|} - 1)`, so no function of the class reaches gradient M
      closer to a stationary point than :math:`\log(1 + M/c)/L_1` (:meth:`x0_for_gradient`),
      nor with a smaller gap (:func:`min_gap_for_gradient`): this wall attains both.
    - ``cap = M`` finite: with :math:`a = L_1M/L_0`, :math:`f' = \mathrm{sign}(x)M(e^u - 1)/(e^u + a)`
      follows the wall while :math:`e^u \ll a` and tends to M;
      :math:`f'' = L_0a(1 + a)e^u/(e^u + a)^2` and :math:`L_0 + L_1|f'| = L_0(1 + a)e^u/(e^u + a)`,
      whose ratio is :math:`a/(e^u + a) \le 1`: :math:`(L_0, L_1)`-smooth, with
      :math:`f = (c/L_1)[au + (1 + a)(\log(1 + ae^{-u}) - \log(1 + a))]`. The gradient never
      exceeds M, so a start can be placed at any gap above the wall's own
      (:meth:`x0_for_gap`): M and :math:`\Delta` can be set separately.

    Both are even, C² and minimised at 0 with :math:`f^* = 0`; :math:`|f'|` increases in
    :math:`|x|`, so from :math:`x_0` the largest gradient on :math:`\{f \le f(x_0)\}` is
    :math:`|f'(x_0)|`.
    """

    L0: float = 1.0
    L1: float = 1.0
    cap: float = math.inf

    def __post_init__(self):
        check_positive("L0", self.L0)
        check_positive("L1", self.L1)
        if not (is_number(self.cap) and self.cap > 0):
            raise invalid("cap", self.cap, "must be a number > 0 (inf: no cap)")

    f_star = 0.0

    @property
    def name(self):
        return "f_W" if math.isinf(self.cap) else f"f_W(cap {self.cap:g})"

    @property
    def _a(self):
        return self.L1 * self.cap / self.L0

    def f(self, x):
        xp = _xp(x)
        u = self.L1 * xp.abs(x)
        c = self.L0 / self.L1**2
        if math.isinf(self.cap):
            return c * (xp.expm1(u) - u)
        a = self._a
        return c * (a * u + (1 + a) * (xp.log1p(a * xp.exp(-u)) - math.log1p(a)))

    def grad(self, x):
        xp = _xp(x)
        u = self.L1 * xp.abs(x)
        if math.isinf(self.cap):
            return xp.sign(x) * (self.L0 / self.L1) * xp.expm1(u)
        return xp.sign(x) * self.cap * (-xp.expm1(-u)) / (1 + self._a * xp.exp(-u))

    def hess(self, x):
        xp = _xp(x)
        u = self.L1 * xp.abs(x)
        if math.isinf(self.cap):
            return self.L0 * xp.exp(u)
        a, e = self._a, xp.exp(-u)
        return self.L0 * a * (1 + a) * e / (1 + a * e) ** 2

    def x0_for_gradient(self, M):
        r"""The positive x with :math:`f'(x) = M` (M below the cap)."""
        check_positive("M", M)
        if math.isinf(self.cap):
            return math.log1p(self.L1 * M / self.L0) / self.L1
        if M >= self.cap:
            raise invalid("M", M, f"the gradient stays below the cap {self.cap:g}")
        r = M / self.cap
        return (math.log1p(self._a * r) - math.log1p(-r)) / self.L1

    def divergence_step(self, M):
        r""":math:`h^* = 2x_0/M`: a fixed step above it jumps from :math:`x_0` past :math:`-x_0`
        (with ``cap = inf`` onto a steeper point, from where GD never converges)."""
        return 2.0 * self.x0_for_gradient(M) / M

    def x0_for_gap(self, delta):
        r"""The positive x with :math:`f(x) = \Delta` (bisection: f increases on x >= 0)."""
        check_positive("delta", delta)
        lo, hi = 0.0, 1.0 / self.L1
        while float(self.f(hi)) < delta:
            lo, hi = hi, 2.0 * hi
        while hi - lo > 4e-16 * hi:
            mid = 0.5 * (lo + hi)
            if mid in (lo, hi):
                break
            lo, hi = (mid, hi) if float(self.f(mid)) < delta else (lo, mid)
        return 0.5 * (lo + hi)


def min_gap_for_gradient(M: float, L0: float, L1: float) -> float:
    r"""The least gap :math:`f(y) - f^*` of a univariate :math:`(L_0, L_1)`-smooth f with :math:`|f'(y)| = M`:

    .. math::
        \Delta_{\min}(M) = \frac{M - c\log(1 + M/c)}{L_1}, \qquad c = L_0/L_1 .

    *Proof.* Say :math:`f'(y) = M > 0`. The growth lemma from :math:`y - r` to y gives
    :math:`f'(y - r) \ge (M + c)e^{-L_1r} - c`, positive for :math:`r < r^* = \log(1 + M/c)/L_1`,
    so :math:`f(y) - f^* \ge f(y) - f(y - r^*) \ge \int_0^{r^*}((M + c)e^{-L_1r} - c)\,dr`,
    which is the value above; :class:`ExponentialWall` (``cap = inf``) attains it. So M and the
    gap are not independent in the class: a gap :math:`\Delta` admits only
    :math:`M \lesssim L_1\Delta` (up to the logarithm).
    """
    check_positive("M", M)
    check_positive("L0", L0)
    check_positive("L1", L1)
    c = L0 / L1
    return (M - c * math.log1p(M / c)) / L1


def max_envelope_ratio(problem: ScalarProblem, x) -> float:
    r"""Largest :math:`|f''(x)| / (L_0 + L_1|f'(x)|)` over the points ``x`` (<= 1 certifies)."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.max(np.abs(problem.hess(x)) / problem.envelope(np.abs(problem.grad(x)))))
