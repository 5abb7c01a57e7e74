r"""Analytic objectives with exact derivatives and certified (L0, L1) constants.

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


def _xp(x):
    return torch if isinstance(x, torch.Tensor) else np


def _check_positive(name, v):
    if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
        raise ValueError(f"Invalid {name}: {v!r} (must be a finite number > 0)")


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
        if not (isinstance(self.p, int) and self.p >= 2):
            raise ValueError(f"Invalid p: {self.p!r} (must be an integer >= 2)")
        _check_positive("L1", self.L1)

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
        _check_positive("M", M)
        return (M / self.p) ** (1.0 / (self.p - 1))


@dataclass(frozen=True)
class Exponential(ScalarProblem):
    r""":math:`f(x) = e^{ax}`: :math:`f'' = a f'`, so it is :math:`(\delta, |a|)`-smooth for any
    :math:`\delta > 0` and not L-smooth. Bounded below by 0 (not attained)."""

    a: float = 1.0
    delta: float = 1e-3

    def __post_init__(self):
        if not (isinstance(self.a, (int, float)) and math.isfinite(self.a) and self.a != 0):
            raise ValueError(f"Invalid a: {self.a!r} (must be a finite non-zero number)")
        _check_positive("delta", self.delta)

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
        _check_positive("M", M)
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
        _check_positive("L1", self.L1)

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
        _check_positive("M", M)
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
        _check_positive("eps", self.eps)

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
        _check_positive("delta", delta)
        # cosh(z) = e^u  =>  z = arccosh(e^u) = u + log(1 + sqrt(1 - e^{-2u})), stable for any u > 0.
        u = delta / (4 * self.eps**2)
        z = u + math.log1p(math.sqrt(-math.expm1(-2 * u)))
        return 2 * self.eps * z


def max_envelope_ratio(problem: ScalarProblem, x) -> float:
    r"""Largest :math:`|f''(x)| / (L_0 + L_1|f'(x)|)` over the points ``x`` (<= 1 certifies)."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.max(np.abs(problem.hess(x)) / problem.envelope(np.abs(problem.grad(x)))))


# ---------------------------------------------------------------------------------------------
# Finite sums (Qian et al., AISTATS 2021): per-example gradients for incremental methods.
# ---------------------------------------------------------------------------------------------


def _check_int(name, v, low):
    if not (isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= low):
        raise ValueError(f"Invalid {name}: {v!r} (must be an integer >= {low})")


class FiniteSum:
    r"""A finite sum over N examples in :math:`\mathbb{R}^d`.

    The *mean* objective is :math:`\bar F(x) = \frac1N\sum_{i=1}^N \ell_i(x)`. Incremental
    methods (:mod:`clipcore.incremental`) group the examples into :math:`n = N/B` batches
    :math:`S_1, \dots, S_n` of size B and take as components the batch means
    :math:`f_j = \frac1B\sum_{i\in S_j}\ell_i`, so that :math:`F = \sum_j f_j = \frac{N}{B}\bar F`
    for every B: the components sum to F exactly, as Qian et al.'s analysis assumes.

    ``x`` may be a vector ``[d]`` or a stack of runs ``[R, d]``; ``idx`` (examples) is then
    ``[k]`` or ``[R, k]``. NumPy arrays and torch tensors are both accepted (the result has
    the type, dtype and device of ``x``), so per-example gradients can be checked against
    autograd.
    """

    name: str = "finite sum"
    N: int
    dim: int

    # Subclasses implement the two per-example primitives over the selected examples.
    def _losses(self, xp, data, x, idx):  # pragma: no cover - interface
        raise NotImplementedError

    def _grads(self, xp, data, x, idx):  # pragma: no cover - interface
        raise NotImplementedError

    def _arrays(self) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def _data(self, x):
        """The problem's arrays in the namespace (and dtype/device) of ``x``."""
        arrays = self._arrays()
        if isinstance(x, torch.Tensor):
            return torch, {k: torch.as_tensor(v, dtype=x.dtype, device=x.device) for k, v in arrays.items()}
        return np, arrays

    def _check_x(self, x):
        if x.shape[-1] != self.dim or x.ndim not in (1, 2):
            raise ValueError(f"Invalid x shape: {tuple(x.shape)} (expected ({self.dim},) or (R, {self.dim}))")

    def _select(self, xp, data, x, idx):
        """Rows of every data array for the examples ``idx`` (all when None), batched like x."""
        if idx is None:
            return data
        if xp is torch:
            idx = torch.as_tensor(np.asarray(idx) if not isinstance(idx, torch.Tensor) else idx,
                                  device=x.device, dtype=torch.long)
        return {k: v[idx] for k, v in data.items()}

    def example_losses(self, x, idx=None):
        r""":math:`\ell_i(x)` for the examples ``idx``: shape ``[..., k]`` (``k = N`` when None)."""
        x = x if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)
        self._check_x(x)
        xp, data = self._data(x)
        return self._losses(xp, self._select(xp, data, x, idx), x, idx)

    def example_grads(self, x, idx=None):
        r""":math:`\nabla\ell_i(x)` for the examples ``idx``: shape ``[..., k, d]``."""
        x = x if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)
        self._check_x(x)
        xp, data = self._data(x)
        return self._grads(xp, self._select(xp, data, x, idx), x, idx)

    def loss(self, x):
        r""":math:`\bar F(x) = \frac1N\sum_i \ell_i(x)` (shape ``[...]``)."""
        return self.example_losses(x).mean(-1)

    def grad(self, x):
        r""":math:`\nabla\bar F(x)`, the mean gradient (shape ``[..., d]``)."""
        return self.example_grads(x).mean(-2)

    def batch_grads(self, x, batches):
        r"""Batch-mean gradients :math:`\nabla f_j = \frac1B\sum_{i\in S_j}\nabla\ell_i`.

        ``batches`` is an integer array ``[..., n, B]`` of example indices (leading dims
        matching those of ``x``); returns ``[..., n, d]``.
        """
        b = batches if isinstance(batches, torch.Tensor) else np.asarray(batches)
        lead = tuple(b.shape[:-2])
        n, B = b.shape[-2], b.shape[-1]
        flat = b.reshape(*lead, n * B)
        g = self.example_grads(x, flat)
        return g.reshape(*lead, n, B, self.dim).mean(-2)


def _student_t(rng, df, size):
    if not (isinstance(df, (int, float)) and df > 0):
        raise ValueError(f"Invalid df: {df!r} (must be > 0)")
    return rng.standard_t(df, size=size)


@dataclass(frozen=True, eq=False)
class LeastSquaresSum(FiniteSum):
    r"""Least squares :math:`\ell_i(x) = \tfrac12(a_i^\top x - b_i)^2`,
    :math:`\nabla\ell_i(x) = (a_i^\top x - b_i)\,a_i`.

    :math:`\bar F` is a quadratic with Hessian :math:`A^\top A/N`; its minimiser is the
    least-squares solution (:meth:`minimizer`), where the per-example gradients sum to zero
    but are individually non-zero when the targets are noisy (no interpolation).
    """

    A: np.ndarray
    b: np.ndarray
    name: str = "least squares"

    def __post_init__(self):
        A, b = np.asarray(self.A, np.float64), np.asarray(self.b, np.float64)
        if A.ndim != 2 or b.shape != (A.shape[0],) or A.shape[0] < 1:
            raise ValueError(f"Invalid shapes: A {A.shape}, b {b.shape} (need A [N, d], b [N])")
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "b", b)

    @property
    def N(self):
        return self.A.shape[0]

    @property
    def dim(self):
        return self.A.shape[1]

    def _arrays(self):
        return {"A": self.A, "b": self.b}

    @staticmethod
    def _residual(data, x):
        # works for x [d] with rows [k, d] and for x [R, d] with rows [N, d] or [R, k, d]
        return (data["A"] * x[..., None, :]).sum(-1) - data["b"]

    def _losses(self, xp, data, x, idx):
        return 0.5 * self._residual(data, x) ** 2

    def _grads(self, xp, data, x, idx):
        return self._residual(data, x)[..., None] * data["A"]

    def grad(self, x):
        # A^T (A x - b) / N without forming the [N, d] matrix.
        x = x if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)
        self._check_x(x)
        xp, data = self._data(x)
        return (data["A"] @ x[..., None])[..., 0] @ data["A"] / self.N - data["b"] @ data["A"] / self.N

    def minimizer(self) -> np.ndarray:
        """The least-squares solution (minimum-norm if A is rank deficient)."""
        return np.linalg.lstsq(self.A, self.b, rcond=None)[0]


@dataclass(frozen=True, eq=False)
class LogisticSum(FiniteSum):
    r"""L2-regularised logistic regression, labels :math:`y_i \in \{-1, +1\}`:
    :math:`\ell_i(x) = \log(1 + e^{-y_i a_i^\top x}) + \tfrac\lambda2\|x\|^2`,
    :math:`\nabla\ell_i(x) = -y_i\,s(-y_i a_i^\top x)\,a_i + \lambda x` with s the logistic
    sigmoid. Per-example gradient norms are at most :math:`\|a_i\| + \lambda\|x\|`, so
    heavy-tailed features give heavy-tailed gradients.
    """

    A: np.ndarray
    y: np.ndarray
    lam: float = 1e-2
    name: str = "logistic regression"

    def __post_init__(self):
        A, y = np.asarray(self.A, np.float64), np.asarray(self.y, np.float64)
        if A.ndim != 2 or y.shape != (A.shape[0],) or A.shape[0] < 1:
            raise ValueError(f"Invalid shapes: A {A.shape}, y {y.shape} (need A [N, d], y [N])")
        if not np.all(np.abs(y) == 1):
            raise ValueError("Invalid y: labels must be -1 or +1")
        if not (isinstance(self.lam, (int, float)) and self.lam >= 0):
            raise ValueError(f"Invalid lam: {self.lam!r} (must be >= 0)")
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "y", y)

    @property
    def N(self):
        return self.A.shape[0]

    @property
    def dim(self):
        return self.A.shape[1]

    def _arrays(self):
        return {"A": self.A, "y": self.y}

    def _margin(self, data, x):
        return data["y"] * (data["A"] * x[..., None, :]).sum(-1)

    def _losses(self, xp, data, x, idx):
        m = self._margin(data, x)
        # log(1 + e^{-m}) = softplus(-m), stable for large |m|
        soft = xp.logaddexp(0.0 * m, -m) if xp is np else torch.nn.functional.softplus(-m)
        return soft + 0.5 * self.lam * (x * x).sum(-1)[..., None]

    def _grads(self, xp, data, x, idx):
        m = self._margin(data, x)
        s = 1.0 / (1.0 + xp.exp(m))  # sigmoid(-m)
        return (-data["y"] * s)[..., None] * data["A"] + self.lam * x[..., None, :]


def heavy_tailed_least_squares(N: int = 512, dim: int = 20, *, df: float = 2.5, noise: float = 1.0,
                               skew: float = 1.0, intercept: bool = True, seed: int = 0) -> LeastSquaresSum:
    r"""Least squares with heavy-tailed, skewed per-example gradients.

    Features :math:`a_{ik} \sim t_\nu` (Student-t, :math:`\nu` = ``df``), the first column set
    to 1 when ``intercept``; :math:`b = A x_\text{true} + \text{noise}\cdot\epsilon` with
    :math:`x_\text{true} \sim N(0, I/d)` and centred log-normal noise
    :math:`\epsilon_i = e^{s z_i} - e^{s^2/2}`, :math:`z_i \sim N(0, 1)`, s = ``skew``
    (``skew = 0`` uses symmetric :math:`t_\nu` noise instead). With :math:`\nu \le 4` the
    squared row norms have infinite variance, so the per-example gradient norms
    :math:`|r_i|\,\|a_i\|` are heavy tailed; the skewed noise makes clipping them biased in a
    systematic direction (the intercept), not only by sampling chance. Seeded.
    """
    _check_int("N", N, 1)
    _check_int("dim", dim, 1)
    if not (isinstance(noise, (int, float)) and noise >= 0):
        raise ValueError(f"Invalid noise: {noise!r} (must be >= 0)")
    if not (isinstance(skew, (int, float)) and 0 <= skew <= 5):
        raise ValueError(f"Invalid skew: {skew!r} (must be in [0, 5])")
    rng = np.random.default_rng(seed)
    A = _student_t(rng, df, (N, dim))
    if intercept:
        A[:, 0] = 1.0
    x_true = rng.standard_normal(dim) / math.sqrt(dim)
    if skew > 0:
        eps = np.exp(skew * rng.standard_normal(N)) - math.exp(skew**2 / 2)
    else:
        eps = _student_t(rng, df, N)
    return LeastSquaresSum(A, A @ x_true + noise * eps)


def heavy_tailed_logistic(N: int = 512, dim: int = 20, *, df: float = 2.5, flip: float = 0.1,
                          lam: float = 1e-2, seed: int = 0) -> LogisticSum:
    r"""Logistic regression with Student-t(``df``) features and labels
    :math:`y_i = \mathrm{sign}(a_i^\top x_\text{true})`, each flipped with probability
    ``flip`` (so the data are not separable and the minimiser is finite). Seeded."""
    _check_int("N", N, 1)
    _check_int("dim", dim, 1)
    if not (isinstance(flip, (int, float)) and 0 <= flip < 0.5):
        raise ValueError(f"Invalid flip: {flip!r} (must be in [0, 0.5))")
    rng = np.random.default_rng(seed)
    A = _student_t(rng, df, (N, dim))
    x_true = rng.standard_normal(dim)
    y = np.where(A @ x_true >= 0, 1.0, -1.0)
    y = np.where(rng.random(N) < flip, -y, y)
    return LogisticSum(A, y, lam)


@dataclass(frozen=True, eq=False)
class QianCounterexample(FiniteSum):
    r"""Qian et al.'s two-component counterexample (derived in PAPER.md):
    :math:`f_1(x) = 10x + x^2/2`, :math:`f_2(x) = -x + x^2/2` in one dimension.

    :math:`F = f_1 + f_2 = 9x + x^2` has :math:`F'(x) = 9 + 2x` and minimiser
    :math:`x^* = -4.5`. With threshold :math:`\gamma = 1`, the clipped direction
    :math:`d(x) = \mathrm{clip}_1(10 + x) + \mathrm{clip}_1(x - 1)` is 0 on the whole interval
    :math:`[-9, 0]` and equals x on [0, 2]: clipped full-batch descent from x > 0 converges to
    0, where :math:`F'(0) = 9`. As a :class:`FiniteSum`, N = 2 examples, so with B = 1 the
    components are exactly :math:`f_1, f_2` and :math:`F = 2\bar F`.
    """

    c: tuple = (10.0, -1.0)
    name: str = "Qian counterexample"

    @property
    def N(self):
        return len(self.c)

    dim = 1

    def _arrays(self):
        return {"c": np.asarray(self.c, np.float64)}

    def _losses(self, xp, data, x, idx):
        return data["c"] * x + 0.5 * x * x

    def _grads(self, xp, data, x, idx):
        return (data["c"] + x)[..., None]

    def F(self, x):
        """:math:`F = f_1 + f_2`."""
        return self.N * self.loss(x)

    def F_grad(self, x):
        """:math:`F' = 9 + 2x` (shape like ``x``'s leading dims plus ``[1]``)."""
        return self.N * self.grad(x)
