r"""The stochastic bias floor of clipped SGD (Koloskova, Hendrikx, Stich, ICML 2023).

With unbiased noise :math:`\xi` and a threshold c, the mean clipped gradient
:math:`E\,\mathrm{clip}_c(\nabla f(x) + \xi)` differs from :math:`\nabla f(x)` when the noise is
asymmetric, so clipped SGD settles where the mean clipped gradient vanishes, however small its
steps: at a gradient norm of order :math:`\min\{\sigma, \sigma^2/c\}` (their lower bound). This
module builds the zero-mean discrete noise laws of that construction (:func:`floor_noise`),
finds the fixed point of the clipped mean field on :math:`f(x) = x^2/2`
(:func:`clipped_fixed_point`) and runs clipped SGD there (:func:`clipped_sgd_quadratic`). The
intervals over runs that the verdicts rest on are :func:`plateau_interval`,
:func:`plateau_difference`, :func:`plateau_ratio` and :func:`slope_interval`. It is the
stochastic counterpart of the deterministic bias of :mod:`clipcore.incremental_bias`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from .stats import loglog_slope
from .validation import (
    check_fraction,
    check_int,
    check_nonnegative,
    check_number,
    check_positive,
    check_threshold,
    invalid,
)

__all__ = [
    "DiscreteNoise",
    "two_point_noise",
    "floor_noise",
    "clipped_drift",
    "clipped_fixed_point",
    "QuadraticSGDRun",
    "clipped_sgd_quadratic",
    "plateau_interval",
    "plateau_difference",
    "plateau_ratio",
    "slope_interval",
]


@dataclass(frozen=True, eq=False)
class DiscreteNoise:
    """A zero-mean noise law on finitely many values (bounded by construction)."""

    values: np.ndarray
    probs: np.ndarray

    def __post_init__(self):
        v, p = np.asarray(self.values, np.float64), np.asarray(self.probs, np.float64)
        if v.ndim != 1 or v.shape != p.shape or v.size < 1:
            raise invalid("noise shapes", (v.shape, p.shape), "values and probs must be equal 1-D shapes")
        if np.any(p < 0) or abs(p.sum() - 1) > 1e-12:
            raise invalid("probs", p, "must be >= 0 and sum to 1")
        if abs(float(v @ p)) > 1e-12 * max(1.0, float(np.abs(v).max())):
            raise invalid("noise mean", float(v @ p), "must be 0")
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "probs", p)

    @property
    def sigma(self) -> float:
        return float(np.sqrt(self.probs @ self.values**2))

    @property
    def bound(self) -> float:
        return float(np.abs(self.values).max())


def two_point_noise(sigma: float, p: float) -> DiscreteNoise:
    r"""Zero-mean noise with variance :math:`\sigma^2`: :math:`+\sigma\sqrt{(1-p)/p}` with
    probability p and :math:`-\sigma\sqrt{p/(1-p)}` otherwise (asymmetric for p != 1/2)."""
    check_positive("sigma", sigma)
    if not 0 < check_number("p", p) < 1:
        raise invalid("p", p, "must be in (0, 1)")
    return DiscreteNoise(
        np.array([sigma * math.sqrt((1 - p) / p), -sigma * math.sqrt(p / (1 - p))]), np.array([p, 1 - p])
    )


def floor_noise(sigma: float, c: float, p_max: float = 0.25) -> DiscreteNoise:
    r"""The two-point law used for threshold c: :math:`p = \min\{p_\max, \sigma^2/(4c^2)\}`.

    Derived for this book after Koloskova et al.'s lower-bound construction (the law depends
    on c). For :math:`c \ge \sigma` the rare value is :math:`a \approx 2c > c` and gets clipped
    while the frequent one :math:`-b` does not; the fixed point of
    :math:`x \mapsto E\,\mathrm{clip}_c(x + \xi)` is then :math:`\bar x = \frac{p}{1-p}(a - c)
    \approx \sigma^2/(4c)`. For :math:`c \le \sigma` (with :math:`p_\max = 1/4`)
    :math:`\bar x = \sigma/\sqrt3 - c/3`. Both are :math:`\Theta(\min\{\sigma, \sigma^2/c\})`.
    """
    check_positive("c", c)
    return two_point_noise(sigma, min(p_max, sigma**2 / (4 * c**2)))


def clipped_drift(x, c: float, noise: DiscreteNoise):
    r""":math:`E\,\mathrm{clip}_c(x + \xi)`, the mean clipped gradient of :math:`f = x^2/2` at x."""
    x = np.asarray(x, np.float64)
    return (np.clip(x[..., None] + noise.values, -c, c) * noise.probs).sum(-1)


def clipped_fixed_point(c: float, noise: DiscreteNoise, iters: int = 200) -> float:
    r"""A root of :math:`x \mapsto E\,\mathrm{clip}_c(x + \xi)` by bisection (the drift is
    non-decreasing, -c far left and +c far right): where clipped SGD with vanishing steps on
    :math:`f = x^2/2` settles, so :math:`|\bar x| = |f'(\bar x)|` is the bias floor."""
    c = float(check_threshold("c", c))
    if math.isinf(c):
        return 0.0
    lo, hi = -noise.bound - c, noise.bound + c
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if clipped_drift(mid, c, noise) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass(frozen=True, eq=False)
class QuadraticSGDRun:
    r"""Clipped SGD on :math:`f(x) = x^2/2` for K laws/thresholds times R runs.

    ``t`` ``[T']`` are the logged iterations; ``mean_abs_grad`` ``[K, T']`` is
    :math:`E|f'(x_t)|` over runs; ``mean_grad`` ``[K, T']`` the run average of :math:`f'(x_t)`
    (its absolute value is :math:`|f'(E x_t)|`, the bias); ``tail_mean`` ``[K, R]`` each run's
    average iterate over the last ``tail`` fraction of the iterations; ``plateau`` ``[K]`` is
    :math:`|f'|` at the average of those (over runs), with standard error ``plateau_se``."""

    c: np.ndarray
    t: np.ndarray
    lr: np.ndarray
    mean_abs_grad: np.ndarray
    mean_grad: np.ndarray
    tail_mean: np.ndarray
    plateau: np.ndarray
    plateau_se: np.ndarray


def clipped_sgd_quadratic(
    noises,
    c,
    *,
    x0: float = 1.0,
    lr: float = 0.5,
    t0: float = 100.0,
    decay: float = 1.0,
    steps: int = 20000,
    runs: int = 200,
    tail: float = 0.5,
    n_log: int = 100,
    seed: int = 0,
) -> QuadraticSGDRun:
    r"""Clipped SGD :math:`x \leftarrow x - \eta_t\,\mathrm{clip}_{c_k}(x + \xi)` on
    :math:`f(x) = x^2/2` with shrinking steps :math:`\eta_t = \eta_0/(1 + t/t_0)^{\text{decay}}`,
    vectorised over K (noise law, threshold) pairs and R independent runs; ``c = inf`` is
    plain SGD with the same steps. Seeded."""
    noises = list(noises)
    c = check_threshold("c", c).reshape(-1)
    if len(noises) != c.size:
        raise invalid(
            "noises", f"{len(noises)} laws", f"one per threshold, and there are {c.size} thresholds"
        )
    for name, v in (("steps", steps), ("runs", runs), ("n_log", n_log)):
        check_int(name, v, 1)
    check_fraction("tail", tail)
    check_positive("lr", lr)
    check_positive("t0", t0)
    check_nonnegative("decay", decay)
    K, R = c.size, runs
    rng = np.random.default_rng(seed)
    # Two-point (or general discrete) laws: draw by inverse CDF from one uniform per step.
    m = max(n.values.size for n in noises)
    vals = np.zeros((K, m))
    cdf = np.ones((K, m))
    for k, nz in enumerate(noises):
        vals[k, : nz.values.size] = nz.values
        cdf[k, : nz.values.size] = np.cumsum(nz.probs)
    cdf[:, -1] = 1.0
    x = np.full((K, R), float(x0))
    log_t = np.unique(np.round(np.geomspace(1, steps, n_log)).astype(int))
    log_t = np.concatenate([[0], log_t])
    mean_abs, mean_x, lrs = [np.abs(x).mean(1)], [x.mean(1)], [lr]
    tail_start = steps - max(1, int(round(tail * steps)))
    acc = np.zeros((K, R))
    li = 1
    cc = c[:, None]
    for t in range(steps):
        eta = lr / (1.0 + t / t0) ** decay
        u = rng.random((K, R))
        j = (u[..., None] >= cdf[:, None, :]).sum(-1)  # index of the drawn value, [K, R]
        xi = np.take_along_axis(vals, j, axis=1)
        x = x - eta * np.clip(x + xi, -cc, cc)
        if t + 1 > tail_start:
            acc += x
        if li < log_t.size and t + 1 == log_t[li]:
            mean_abs.append(np.abs(x).mean(1))
            mean_x.append(x.mean(1))
            lrs.append(eta)
            li += 1
    tail_mean = acc / (steps - tail_start)
    avg = tail_mean.mean(1)
    se = tail_mean.std(1, ddof=1) / math.sqrt(R) if R > 1 else np.full(K, np.nan)
    return QuadraticSGDRun(
        c=c,
        t=log_t,
        lr=np.asarray(lrs),
        mean_abs_grad=np.stack(mean_abs, 1),
        mean_grad=np.stack(mean_x, 1),
        tail_mean=tail_mean,
        plateau=np.abs(avg),
        plateau_se=se,
    )


# ---------------------------------------------------------------- intervals over runs


def _z(level: float) -> float:
    if not 0 < check_number("level", level) < 1:
        raise invalid("level", level, "must be in (0, 1)")
    return NormalDist().inv_cdf(0.5 + level / 2)


def plateau_interval(run: QuadraticSGDRun, level: float = 0.95):
    r"""``(lo, hi)`` ``[K]``: the plateau :math:`\pm z\,\mathrm{se}` (normal interval over the
    independent runs, z the two-sided quantile of ``level``)."""
    h = _z(level) * run.plateau_se
    return run.plateau - h, run.plateau + h


def plateau_difference(a: QuadraticSGDRun, b: QuadraticSGDRun, level: float = 0.95):
    r"""``(diff, lo, hi)`` ``[K]``: plateau of ``a`` minus plateau of ``b`` with the interval
    :math:`\pm z\sqrt{\mathrm{se}_a^2 + \mathrm{se}_b^2}` (independent passes)."""
    d = a.plateau - b.plateau
    h = _z(level) * np.sqrt(a.plateau_se**2 + b.plateau_se**2)
    return d, d - h, d + h


def plateau_ratio(num: QuadraticSGDRun, den: QuadraticSGDRun, level: float = 0.95):
    r"""``(ratio, lo, hi)`` ``[K]``: plateau of ``num`` over plateau of ``den`` with a
    delta-method interval, relative standard error
    :math:`\sqrt{(\mathrm{se}_n/P_n)^2 + (\mathrm{se}_d/P_d)^2}` (independent passes); nan
    where a plateau is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = num.plateau / den.plateau
        rel = np.sqrt((num.plateau_se / num.plateau) ** 2 + (den.plateau_se / den.plateau) ** 2)
    r = np.where(np.isfinite(r) & (den.plateau > 0), r, np.nan)
    h = _z(level) * r * rel
    return r, r - h, r + h


def slope_interval(
    run: QuadraticSGDRun, rows, *, level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    r"""The log-log slope of the plateau against the threshold over the laws ``rows`` (at least
    two, finite thresholds) and its percentile-bootstrap interval over runs: each replicate
    resamples the R runs with replacement, recomputes every plateau
    :math:`|\mathrm{mean}_r\,\bar x_r|` and fits the slope (:func:`clipcore.stats.loglog_slope`).
    Returns ``(slope, lo, hi)``."""
    idx = np.atleast_1d(np.asarray(rows))
    if idx.size < 2:
        raise invalid("rows", rows, "need at least two thresholds for a slope")
    c = np.asarray(run.c, np.float64)[idx]
    if not np.all(np.isfinite(c) & (c > 0)):
        raise invalid("rows", rows, "every threshold must be finite and > 0")
    check_int("n_boot", n_boot, 1)
    _z(level)
    tm = np.asarray(run.tail_mean, np.float64)[idx]
    R = tm.shape[1]
    slope = loglog_slope(c, np.abs(tm.mean(1)))
    rng = np.random.default_rng(seed)
    boots = np.array([loglog_slope(c, np.abs(tm[:, rng.integers(0, R, R)].mean(1))) for _ in range(n_boot)])
    boots = boots[np.isfinite(boots)]
    if boots.size == 0:
        return slope, math.nan, math.nan
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return slope, float(lo), float(hi)
