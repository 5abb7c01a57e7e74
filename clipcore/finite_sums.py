r"""Finite sums with per-example gradients, for the incremental methods of Qian, Wu, Zhuang,
Wang, Xiao (AISTATS 2021).

A :class:`FiniteSum` holds N examples in :math:`\mathbb{R}^d` and evaluates per-example losses
and gradients on NumPy arrays or torch tensors alike (so they are checked against autograd);
its batch-mean components are what :mod:`clipcore.incremental_methods` clips. The concrete sums are
least squares and logistic regression with heavy-tailed data, a two-component
counterexample to convergence of clipped methods (Qian et al.'s claim C1), and an
interpolating least-squares sum with an isotropic design on which Qian et al.'s sufficient
condition provably holds at every point for batches of at least d examples (claim C2;
:func:`interpolating_least_squares`, :func:`kappa_certificate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .validation import (
    check_int,
    check_nonnegative,
    check_number,
    check_positive,
    invalid,
    is_integer,
    is_number,
)

__all__ = [
    "FiniteSum",
    "LeastSquaresSum",
    "LogisticSum",
    "QianCounterexample",
    "heavy_tailed_least_squares",
    "heavy_tailed_logistic",
    "interpolating_least_squares",
    "kappa_certificate",
]


class FiniteSum:
    r"""A finite sum over N examples in :math:`\mathbb{R}^d`.

    The *mean* objective is :math:`\bar F(x) = \frac1N\sum_{i=1}^N \ell_i(x)`. Incremental
    methods (:mod:`clipcore.incremental_methods`) group the examples into :math:`n = N/B` batches
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
    def check_batch_size(self, batch_size) -> int:
        """``batch_size`` if it divides N (so the batch components sum to F exactly), else an
        error naming it."""
        if not (is_integer(batch_size) and 1 <= batch_size <= self.N and self.N % batch_size == 0):
            raise invalid(
                "batch_size",
                batch_size,
                f"must divide N = {self.N}, so that the batch components sum to F exactly",
            )
        return int(batch_size)

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
            raise invalid("x shape", tuple(x.shape), f"expected ({self.dim},) or (R, {self.dim})")

    def _select(self, xp, data, x, idx):
        """Rows of every data array for the examples ``idx`` (all when None), batched like x."""
        if idx is None:
            return data
        if xp is torch:
            idx = torch.as_tensor(
                np.asarray(idx) if not isinstance(idx, torch.Tensor) else idx,
                device=x.device,
                dtype=torch.long,
            )
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
    check_positive("df", df)
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
            raise invalid("shapes", (A.shape, b.shape), "need A [N, d], b [N]")
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

    def max_curvature(self) -> float:
        r"""The smoothness constant of :math:`\bar F`: the largest eigenvalue of its Hessian
        :math:`A^\top A/N`."""
        return float(np.linalg.eigvalsh(self.A.T @ self.A / self.N)[-1])


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
            raise invalid("shapes", (A.shape, y.shape), "need A [N, d], y [N]")
        if not np.all(np.abs(y) == 1):
            raise invalid("y", self.y, "labels must be -1 or +1")
        check_nonnegative("lam", self.lam)
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


def heavy_tailed_least_squares(
    N: int = 512,
    dim: int = 20,
    *,
    df: float = 2.5,
    noise: float = 1.0,
    skew: float = 1.0,
    intercept: bool = True,
    seed: int = 0,
) -> LeastSquaresSum:
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
    check_int("N", N, 1)
    check_int("dim", dim, 1)
    check_nonnegative("noise", noise)
    if not 0 <= check_number("skew", skew) <= 5:
        raise invalid("skew", skew, "must be in [0, 5]")
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


def heavy_tailed_logistic(
    N: int = 512, dim: int = 20, *, df: float = 2.5, flip: float = 0.1, lam: float = 1e-2, seed: int = 0
) -> LogisticSum:
    r"""Logistic regression with Student-t(``df``) features and labels
    :math:`y_i = \mathrm{sign}(a_i^\top x_\text{true})`, each flipped with probability
    ``flip`` (so the data are not separable and the minimiser is finite). Seeded."""
    check_int("N", N, 1)
    check_int("dim", dim, 1)
    if not 0 <= check_number("flip", flip) < 0.5:
        raise invalid("flip", flip, "must be in [0, 0.5)")
    rng = np.random.default_rng(seed)
    A = _student_t(rng, df, (N, dim))
    x_true = rng.standard_normal(dim)
    y = np.where(A @ x_true >= 0, 1.0, -1.0)
    y = np.where(rng.random(N) < flip, -y, y)
    return LogisticSum(A, y, lam)


def interpolating_least_squares(
    N: int = 512, dim: int = 20, *, df: float = math.inf, seed: int = 0
) -> LeastSquaresSum:
    r"""Least squares that interpolates, with an isotropic design: :math:`b = A x^*` exactly and
    :math:`A^\top A/N = I`.

    Rows are drawn i.i.d. (standard normal, or Student-t with ``df`` degrees of freedom when
    finite, for heavy-tailed gradient norms) and then whitened, :math:`A \leftarrow A\,
    (A^\top A/N)^{-1/2}`; :math:`x^* \sim N(0, I/d)`. Derived for this book: with
    :math:`e = x - x^*` a batch component has gradient :math:`\nabla f_j = H_j e`,
    :math:`H_j = \frac1B\sum_{i\in S_j} a_i a_i^\top`, and the full gradient is
    :math:`\frac NB e`, so :math:`\cos\theta_j = e^\top H_j e/(\|H_j e\|\|e\|) \ge
    1/\mathrm{cond}(H_j)`: whenever every batch Hessian is positive definite (B at least d, in
    general position) the sufficient condition :math:`\cos\theta_j \ge \kappa > 0` holds at
    *every* :math:`x \ne x^*`, with :math:`\kappa` of :func:`kappa_certificate`; and all
    components vanish at :math:`x^*`, so clipping only shortens the steps. Needs N >= dim.
    Seeded."""
    check_int("N", N, 1)
    check_int("dim", dim, 1)
    if N < dim:
        raise invalid("N", N, f"must be at least dim = {dim} (a full-rank design)")
    if not (is_number(df) and df > 0):
        raise invalid("df", df, "must be a number > 0 (inf: normal rows)")
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((N, dim)) if math.isinf(df) else _student_t(rng, df, (N, dim))
    w, V = np.linalg.eigh(A.T @ A / N)
    A = A @ (V / np.sqrt(w)) @ V.T
    x_star = rng.standard_normal(dim) / math.sqrt(dim)
    return LeastSquaresSum(A, A @ x_star, name="interpolating least squares")


def kappa_certificate(problem: LeastSquaresSum, batch_size: int) -> float:
    r"""A lower bound on :math:`\kappa = \min_j\cos\theta_j` that holds at every
    :math:`x \ne x^*`, for the fixed (cyclic) batches of size ``batch_size``:
    :math:`\min_j \lambda_{\min}(H_j)/\lambda_{\max}(H_j)`, valid for an interpolating sum
    with :math:`A^\top A/N \propto I` (:func:`interpolating_least_squares`; other sums are an
    error). 0 when some batch Hessian is singular (e.g. B < d): then the bound says nothing."""
    if not isinstance(problem, LeastSquaresSum):
        raise invalid("problem", problem, "must be a clipcore.finite_sums.LeastSquaresSum")
    B = problem.check_batch_size(batch_size)
    A, N = problem.A, problem.N
    H = A.T @ A / N
    h = float(np.trace(H) / problem.dim)
    if h <= 0 or np.linalg.norm(H - h * np.eye(problem.dim)) > 1e-8 * h:
        raise invalid("problem", problem.name, "the certificate needs an isotropic design, A^T A / N = h I")
    x_star = problem.minimizer()
    if np.linalg.norm(A @ x_star - problem.b) > 1e-8 * max(1.0, np.linalg.norm(problem.b)):
        raise invalid("problem", problem.name, "the certificate needs an interpolating sum, b = A x*")
    Ab = A.reshape(N // B, B, problem.dim)
    ev = np.linalg.eigvalsh(np.einsum("jbk,jbl->jkl", Ab, Ab) / B)
    lam_min = np.maximum(ev[:, 0], 0.0)
    return float(np.min(lam_min / ev[:, -1]))


@dataclass(frozen=True, eq=False)
class QianCounterexample(FiniteSum):
    r"""A two-component counterexample for clipped incremental methods (Qian et al., AISTATS
    2021, claim C1; derived for this book, proved by the tests in tests/test_finite_sums.py and
    tests/test_incremental_methods.py):
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
