r"""General polynomials for Lemma 2 of Zhang, He, Sra, Jadbabaie (ICLR 2020): a univariate
polynomial of degree >= 3 is (L0, L1)-smooth for some constants but not L-smooth.

:class:`Polynomial` evaluates a polynomial and its derivatives and computes the exact
smallest L0 for a given L1 from the roots of the relevant polynomials;
:func:`random_polynomial` draws test cases with lower-order terms; :func:`envelope_check`
reads the envelope off a grid with a certified allowance for what the grid can miss and checks
it on a wider grid; :func:`max_curvature` shows that |f''| is unbounded (not L-smooth).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scalar_problems import ScalarProblem
from .validation import check_int, check_number, check_positive, invalid

__all__ = ["Polynomial", "random_polynomial", "envelope_check", "max_curvature"]


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
