r"""Scalar analytic objectives with exact derivatives and certified (L0, L1) constants.

The test problems of Zhang, He, Sra, Jadbabaie (ICLR 2020): :math:`x^p`, :math:`e^{ax}` and
general polynomials (Lemma 2), the hard instances behind Theorem 4's lower bound, and
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
    "Polynomial",
    "random_polynomial",
    "envelope_check",
    "max_curvature",
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
class Polynomial(ScalarProblem):
    r"""A univariate polynomial :math:`f(x) = \sum_k c_k x^k` (``coeffs`` ascending, degree >= 2,
    non-zero leading coefficient), with the smallest :math:`L_0` for the given :math:`L_1`.

    **The constant.** :math:`L_0(L_1) = \max\{0, \sup_x g(x)\}` with :math:`g = |f''| - L_1|f'|`
    is the least :math:`L_0` making f :math:`(L_0, L_1)`-smooth. For degree n >= 2,
    :math:`L_1|f'|` (degree n - 1) outgrows :math:`|f''|` (degree n - 2), so
    :math:`g \to -\infty` and the sup is a maximum, attained where g is not differentiable (a
    root of f' or of f'') or where, with the signs :math:`s_1, s_2` of f', f'' fixed,
    :math:`g' = s_2 f^{(3)} - L_1 s_1 f'' = 0`, i.e. at a real root of :math:`f^{(3)} \mp L_1 f''`.
    :attr:`L0` evaluates g at the real parts of all those roots (NumPy's companion-matrix
    roots; an error :math:`\delta` in a root moves g by :math:`O(\delta)` at a kink and
    :math:`O(\delta^2)` at a smooth maximum). This is Lemma 2's "for some constants" made
    explicit; for degree >= 3 the polynomial is not L-smooth, :math:`|f''|` being unbounded.
    """

    coeffs: tuple = (0.0, 0.0, 0.0, 1.0)
    L1: float = 1.0

    def __post_init__(self):
        c = tuple(check_number("coefficient", v) for v in self.coeffs)
        if len(c) < 3 or c[-1] == 0:
            raise invalid("coeffs", self.coeffs, "need degree >= 2 with a non-zero leading coefficient")
        check_positive("L1", self.L1)
        object.__setattr__(self, "coeffs", c)

    @property
    def degree(self) -> int:
        return len(self.coeffs) - 1

    @property
    def name(self):
        return f"polynomial of degree {self.degree}"

    f_star = float("nan")  # odd degrees are unbounded below; only f' and f'' are used

    def _coef(self, k: int) -> tuple:
        c = np.polynomial.polynomial.polyder(np.asarray(self.coeffs, np.float64), k)
        return tuple(float(v) for v in c) if c.size else (0.0,)

    @staticmethod
    def _horner(c, x):
        out = 0.0 * x + c[-1]
        for a in c[-2::-1]:
            out = out * x + a
        return out

    def f(self, x):
        return self._horner(self.coeffs, x)

    def grad(self, x):
        return self._horner(self._coef(1), x)

    def hess(self, x):
        return self._horner(self._coef(2), x)

    def critical_points(self) -> np.ndarray:
        r"""The candidate maximisers of :math:`|f''| - L_1|f'|` (see the class docstring), and 0."""
        P = np.polynomial.Polynomial
        d1, d2, d3 = (P(self._coef(k)) for k in (1, 2, 3))
        pts = [np.zeros(1)]
        for q in (d1, d2, d3 - self.L1 * d2, d3 + self.L1 * d2):
            if q.degree() >= 1:
                pts.append(np.real(q.roots()))
        return np.unique(np.concatenate(pts))

    def _excess(self, x):
        return np.abs(self.hess(x)) - self.L1 * np.abs(self.grad(x))

    @property
    def L0(self):
        return float(max(0.0, np.max(self._excess(self.critical_points()))))

    def argmax_L0(self) -> float:
        r"""The point where :math:`|f''| - L_1|f'|` is largest (where the envelope touches)."""
        x = self.critical_points()
        return float(x[np.argmax(self._excess(x))])

    def critical_radius(self) -> float:
        r"""A radius R with every candidate of :meth:`critical_points` in :math:`[-R, R]`: the
        largest Cauchy bound :math:`1 + \max_i|q_i/q_m|` over the polynomials whose roots they are.
        A grid over :math:`[-R, R]` therefore contains the maximiser of :math:`|f''| - L_1|f'|`."""
        P = np.polynomial.Polynomial
        d1, d2, d3 = (P(self._coef(k)) for k in (1, 2, 3))
        r = 1.0
        for q in (d1, d2, d3 - self.L1 * d2, d3 + self.L1 * d2):
            c = q.coef
            if q.degree() >= 1:
                r = max(r, 1.0 + float(np.max(np.abs(c[:-1] / c[-1]))))
        return r


def random_polynomial(
    rng: np.random.Generator, degree: int, L1: float = 1.0, scale: float = 1.0
) -> Polynomial:
    r"""A :class:`Polynomial` of the given degree, leading coefficient :math:`\pm 1` (random sign)
    and every lower-order coefficient drawn from :math:`N(0, \text{scale}^2)`."""
    check_int("degree", degree, 2)
    check_positive("scale", scale)
    c = rng.normal(0.0, scale, degree + 1)
    c[-1] = rng.choice([-1.0, 1.0])
    return Polynomial(tuple(float(v) for v in c), L1)


def envelope_check(
    problem: ScalarProblem, radius: float, wide: float, n_grid: int, L1: float | None = None
) -> dict:
    r"""Find :math:`L_0` for a given :math:`L_1` on a grid, bound the grid's shortfall, and check
    the constant on a wider grid.

    With :math:`g = |f''| - L_1|f'|` on ``n_grid`` points of :math:`[-R, R]` (spacing
    :math:`\delta`), the grid's constant is :math:`\hat L_0 = \max\{0, \max_j g_j\}`: the height
    of the envelope of :math:`|f''|` against :math:`|f'|` read off the grid. Between two grid
    points g can exceed both by at most its Lipschitz constant there times :math:`\delta/2`:
    on :math:`[x_j, x_{j+1}]`, :math:`g \le (g_j + g_{j+1} + \ell_j\delta)/2`, with
    :math:`\ell_j` estimated by the largest of the discrete slopes :math:`|g_{k+1} - g_k|/\delta`
    for k = j - 1, j, j + 1 (the one-sided slopes of a kink inside the interval), exact to
    :math:`O(\delta^2)` for g piecewise smooth. The largest of these bounds is the safe constant
    :math:`L_0^+ \ge \hat L_0`; their relative gap is the grid's resolution. Then the largest
    :math:`|f''|/(L_0^+ + L_1|f'|)` over ``n_grid`` points of :math:`[-wR, wR]`, ``w = wide``,
    is at most 1 if :math:`L_0^+` holds where it was not fitted. ``L1`` defaults to the
    problem's. Returns ``{"L0", "L0_upper", "resolution", "max_ratio_wide", "argmax"}``.
    """
    check_positive("radius", radius)
    check_number("wide", wide, low=1.0, strict=True)
    check_int("n_grid", n_grid, 4)
    L1 = problem.L1 if L1 is None else check_positive("L1", L1)
    x = np.linspace(-radius, radius, n_grid)
    d = x[1] - x[0]
    g = np.abs(problem.hess(x)) - L1 * np.abs(problem.grad(x))
    i = int(np.argmax(g))
    L0 = float(max(0.0, g[i]))
    slope = np.abs(np.diff(g)) / d
    ell = np.maximum.reduce([slope, np.r_[slope[:1], slope[:-1]], np.r_[slope[1:], slope[-1:]]])
    L0_upper = float(max(L0, np.max((g[:-1] + g[1:] + ell * d) / 2)))
    xw = np.linspace(-wide * radius, wide * radius, n_grid)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(problem.hess(xw)) / (L0_upper + L1 * np.abs(problem.grad(xw)))
    return {
        "L0": L0,
        "L0_upper": L0_upper,
        "resolution": (L0_upper - L0) / L0_upper if L0_upper > 0 else 0.0,
        "max_ratio_wide": float(np.nanmax(ratio)),
        "argmax": float(x[i]),
    }


def max_curvature(problem: ScalarProblem, radii, n_points: int = 4001) -> np.ndarray:
    r""":math:`\max_{|x| \le R}|f''(x)|` for each R of ``radii`` (on ``n_points`` grid points each):
    bounded in R for an L-smooth function, growing for one that is not."""
    check_int("n_points", n_points, 2)
    radii = np.asarray(radii, np.float64)
    if radii.ndim != 1 or np.any(~np.isfinite(radii)) or np.any(radii <= 0):
        raise invalid("radii", radii, "need a 1-D array of finite values > 0")
    return np.array([np.max(np.abs(problem.hess(np.linspace(-r, r, n_points)))) for r in radii])


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
