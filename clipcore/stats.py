r"""Statistics the verdicts are computed from: rank correlation, its bootstrap interval,
the pre-declared correlation criterion, and log-log slopes.

Zhang, He, Sra, Jadbabaie (ICLR 2020), Figs. 2-3, claim "strong positive correlation in (a),
much weaker in (b) and (c)": :func:`rank_correlation` measures it, :func:`bootstrap_ci` puts
an interval on it, :func:`trajectory_correlation` does both for the time-ordered, autocorrelated
points of one run (moving-block bootstrap; the correlation with the step trend removed beside
the raw one) and :func:`claim_verdicts` decides the claim by a criterion fixed in advance, with
``inconclusive`` where the intervals cannot decide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Mapping, Sequence

import numpy as np

from .claims import combine_statuses, from_interval
from .validation import check_number, invalid

__all__ = [
    "rank_correlation",
    "bootstrap_ci",
    "default_block_length",
    "block_counts",
    "TrajectoryCorrelation",
    "trajectory_correlation",
    "claim_verdicts",
    "block_mean_difference",
    "tail_mean_difference",
    "mean_interval",
    "increase_check",
    "loglog_slope",
]


def _paired(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x has {x.size} values but y has {y.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2:
        raise ValueError(f"need at least 2 finite pairs, got {x.size}")
    return x, y


def rank_correlation(x, y) -> float:
    r"""Spearman's :math:`\rho`: the Pearson correlation of the ranks (ties averaged).

    Pairs with a non-finite value are dropped; nan when either side is constant.
    """
    x, y = _paired(x, y)
    return float(_spearman_counts(x, y, np.ones((1, x.size), dtype=np.int64))[0])


def _resampled_ranks(v: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Average ranks of the original points inside each resample, from multiplicities.

    ``counts[b, i]`` is how often point i occurs in resample b. Sorting is done once: a tie
    group of total multiplicity c preceded by p values has average rank p + (c + 1)/2.
    """
    n = v.size
    order = np.argsort(v, kind="stable")
    sv = v[order]
    starts = np.flatnonzero(np.r_[True, sv[1:] != sv[:-1]])
    per_group = np.add.reduceat(counts[:, order], starts, axis=1)
    rank_group = np.cumsum(per_group, axis=1) - per_group + (per_group + 1) / 2.0
    group = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, n]))
    ranks = np.empty(counts.shape, dtype=float)
    ranks[:, order] = rank_group[:, group]
    return ranks


def _spearman_counts(x: np.ndarray, y: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Spearman's rho of every resample (row of multiplicities ``counts``) at once."""
    n = int(counts[0].sum())
    mid = (n + 1) / 2.0  # the mean rank of any n values
    rx = _resampled_ranks(x, counts) - mid
    ry = _resampled_ranks(y, counts) - mid
    cov = np.sum(counts * rx * ry, axis=1)
    den = np.sqrt(np.sum(counts * rx * rx, axis=1) * np.sum(counts * ry * ry, axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, cov / den, np.nan)


def bootstrap_ci(x, y, stat=rank_correlation, n_boot: int = 1000, level: float = 0.95, seed: int = 0):
    r"""Percentile bootstrap interval for ``stat(x, y)`` over resampled pairs.

    Draws ``n_boot`` resamples of the n finite pairs with replacement (``seed`` seeds
    ``numpy.random.default_rng``) and returns the :math:`(1 - \text{level})/2` and
    :math:`(1 + \text{level})/2` quantiles of the statistic; resamples where it is undefined
    (a constant side) are dropped. For the default statistic all resamples are computed at
    once from the points' multiplicities (no per-resample sort); any other ``stat`` is
    called once per resample.
    """
    if not (isinstance(n_boot, (int, np.integer)) and n_boot >= 1):
        raise ValueError(f"n_boot must be an int >= 1, got {n_boot!r}")
    if not (0.0 < float(level) < 1.0):
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    x, y = _paired(x, y)
    n = x.size
    rng = np.random.default_rng(seed)
    stats = np.empty(int(n_boot))
    block = max(1, 1_000_000 // n)
    for s in range(0, int(n_boot), block):
        b = min(block, int(n_boot) - s)
        idx = rng.integers(0, n, size=(b, n))
        if stat is rank_correlation:
            # Multiplicities: resample statistics in O(n) each, without sorting.
            counts = np.bincount((idx + n * np.arange(b)[:, None]).ravel(), minlength=b * n)
            stats[s : s + b] = _spearman_counts(x, y, counts.reshape(b, n))
        else:
            stats[s : s + b] = [stat(x[k], y[k]) for k in idx]
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def default_block_length(n: int) -> int:
    """The moving-block length for n time-ordered points: :math:`\\lceil n^{1/3}\rceil` (the
    order that balances the bias and variance of a block-bootstrap variance estimate)."""
    return max(1, math.ceil(n ** (1 / 3)))


def block_counts(n: int, n_boot: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """Multiplicities ``[n_boot, n]`` of a moving-block bootstrap of n time-ordered points:
    each resample concatenates :math:`\\lceil n/b\rceil` blocks of ``block`` consecutive
    points, started uniformly in :math:`[0, n - b]`, cut to n points. ``block = 1`` is the
    ordinary bootstrap."""
    block = min(max(1, int(block)), n)
    k = math.ceil(n / block)
    starts = rng.integers(0, n - block + 1, size=(n_boot, k))
    idx = (starts[:, :, None] + np.arange(block)).reshape(n_boot, -1)[:, :n]
    flat = (idx + n * np.arange(n_boot)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n)


def _partial_from(rxy, rxt, ryt):
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rxy - rxt * ryt) / np.sqrt((1 - rxt**2) * (1 - ryt**2))


@dataclass(frozen=True)
class TrajectoryCorrelation:
    r"""Spearman's :math:`\rho(x, y)` of points along one run, with moving-block bootstrap
    intervals (the points are time-ordered and autocorrelated), and the partial rank
    correlation given the step :math:`t` (both axes may just trend with the iteration):

    .. math::
        \rho_{xy\cdot t} = \frac{\rho_{xy} - \rho_{xt}\rho_{yt}}{\sqrt{(1-\rho_{xt}^2)(1-\rho_{yt}^2)}}.

    ``samples`` / ``samples_detrended`` are the bootstrap replicates (nan where undefined),
    kept to put intervals on differences between runs."""

    n: int
    block: int
    rho: float
    lo: float
    hi: float
    rho_detrended: float
    lo_detrended: float
    hi_detrended: float
    samples: np.ndarray
    samples_detrended: np.ndarray


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    ok = samples[np.isfinite(samples)]
    if ok.size == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(ok, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def trajectory_correlation(
    x, y, t, *, n_boot: int = 2000, level: float = 0.95, block: int | None = None, seed: int = 0
) -> TrajectoryCorrelation:
    """:class:`TrajectoryCorrelation` of the points ``(x_i, y_i)`` at steps ``t_i`` (finite
    triples only, taken in step order). ``block`` defaults to :func:`default_block_length`.
    Fewer than 3 points give nan everywhere."""
    if not (isinstance(n_boot, (int, np.integer)) and n_boot >= 1):
        raise ValueError(f"Invalid n_boot: {n_boot!r} (must be an integer >= 1)")
    if not (0.0 < float(level) < 1.0):
        raise ValueError(f"Invalid level: {level!r} (must be in (0, 1))")
    x, y, t = (np.asarray(a, dtype=float).ravel() for a in (x, y, t))
    if not (x.shape == y.shape == t.shape):
        raise ValueError(f"Invalid points: x, y, t have {x.size}, {y.size}, {t.size} values")
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(t)
    order = np.argsort(t[ok], kind="stable")
    x, y, t = x[ok][order], y[ok][order], t[ok][order]
    n = x.size
    b = default_block_length(n) if block is None else int(block)
    if n < 3:
        nan, empty = math.nan, np.full(int(n_boot), math.nan)
        return TrajectoryCorrelation(n, b, nan, nan, nan, nan, nan, nan, empty, empty)
    one = np.ones((1, n), dtype=np.int64)
    rxy, rxt, ryt = (float(_spearman_counts(a, c, one)[0]) for a, c in ((x, y), (x, t), (y, t)))
    counts = block_counts(n, int(n_boot), b, np.random.default_rng(seed))
    sxy, sxt, syt = (_spearman_counts(a, c, counts) for a, c in ((x, y), (x, t), (y, t)))
    sd = _partial_from(sxy, sxt, syt)
    lo, hi = _interval(sxy, level)
    lo_d, hi_d = _interval(sd, level)
    return TrajectoryCorrelation(n, b, rxy, lo, hi, float(_partial_from(rxy, rxt, ryt)), lo_d, hi_d, sxy, sd)


def claim_verdicts(
    correlations: Mapping[str, Mapping[str, TrajectoryCorrelation]],
    strong: str,
    weak: Sequence[str],
    *,
    min_lower: float = 0.5,
    min_gap: float = 0.2,
    min_points: int = 10,
    level: float = 0.95,
) -> dict:
    r"""Per estimator, the status of "strong positive correlation in run ``strong``, much
    weaker in the ``weak`` runs" (``correlations[run][estimator]``), by a criterion fixed in
    advance, on the raw and on the detrended (partial given the step) correlation:

    - *strong*: :math:`\rho_s > \text{min\_lower}`, decided by its block-bootstrap interval;
    - *much weaker elsewhere*: :math:`\rho_s - \max_w \rho_w \ge \text{min\_gap}`, decided by
      the interval of that gap over independent bootstrap replicates of the runs.

    Each part holds when its whole interval is on the claimed side, fails when it is all on
    the other side, and is inconclusive when the interval straddles the threshold; the claim
    fails if a part fails, holds if both hold, else is inconclusive -- as it is when any run
    has fewer than ``min_points`` points. Returns ``{estimator: {status, strong, weaker,
    rho, lo, hi, max_weak, gap, gap_lo, gap_hi, n_min, and the same with _detrended}}``.
    """
    if isinstance(weak, str) or not weak:
        raise ValueError(f"Invalid weak: {weak!r} (name at least one run to compare with)")
    runs = (strong, *weak)
    estimators = list(dict.fromkeys(e for r in correlations.values() for e in r))
    out = {}
    for est in estimators:
        missing = [r for r in runs if est not in correlations.get(r, {})]
        if missing:
            raise ValueError(f"Invalid correlations: no entry for run(s) {missing} with estimator {est!r}")
        c = {r: correlations[r][est] for r in runs}
        n_min = min(c[r].n for r in runs)
        v = dict(n_min=n_min)
        for suffix, rho_of, samples_of, lo_of, hi_of in (
            ("", lambda k: k.rho, lambda k: k.samples, lambda k: k.lo, lambda k: k.hi),
            (
                "_detrended",
                lambda k: k.rho_detrended,
                lambda k: k.samples_detrended,
                lambda k: k.lo_detrended,
                lambda k: k.hi_detrended,
            ),
        ):
            s = c[strong]
            max_weak = max(rho_of(c[w]) for w in weak)
            gap_samples = samples_of(s) - np.max([samples_of(c[w]) for w in weak], axis=0)
            gap_lo, gap_hi = _interval(gap_samples, level)
            part_strong = from_interval(lo_of(s), hi_of(s), min_lower)
            part_weaker = from_interval(gap_lo, gap_hi, min_gap)
            status = combine_statuses([part_strong, part_weaker]) if n_min >= min_points else "inconclusive"
            v.update(
                {
                    "status" + suffix: status,
                    "strong" + suffix: part_strong,
                    "weaker" + suffix: part_weaker,
                    "rho" + suffix: rho_of(s),
                    "lo" + suffix: lo_of(s),
                    "hi" + suffix: hi_of(s),
                    "max_weak" + suffix: max_weak,
                    "gap" + suffix: rho_of(s) - max_weak,
                    "gap_lo" + suffix: gap_lo,
                    "gap_hi" + suffix: gap_hi,
                }
            )
        out[est] = v
    return out


def block_mean_difference(
    x, y, *, n_boot: int = 2000, level: float = 0.95, block: int | None = None, seed: int = 0
) -> tuple[float, float, float]:
    """``mean(x) - mean(y)`` of two time series (e.g. per-step training losses of two runs)
    and its ``level`` interval from independent moving-block bootstraps of each series
    (blocks of :func:`default_block_length` points unless ``block``)."""
    x, y = (np.asarray(a, dtype=float).ravel() for a in (x, y))
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if x.size < 2 or y.size < 2:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = []
    for v in (x, y):
        b = default_block_length(v.size) if block is None else int(block)
        c = block_counts(v.size, int(n_boot), b, rng)
        means.append(c @ v / v.size)
    lo, hi = _interval(means[0] - means[1], level)
    return float(x.mean() - y.mean()), lo, hi


def tail_mean_difference(x, y, k: int, *, level: float = 0.95, noise_x: float = 0.0, noise_y: float = 0.0):
    r"""``mean`` of the last ``k`` values of ``x`` minus that of ``y`` (e.g. a metric at the
    last k epochs of two runs) and a normal-approximation ``level`` interval: the standard
    error combines each tail's spread (sample variance / k) with a per-value measurement
    variance ``noise`` / k (e.g. the binomial variance of a test accuracy). Fewer than two
    values in a tail give nan bounds (the spread cannot be estimated)."""
    x, y = (np.asarray(a, dtype=float).ravel()[-int(k) :] for a in (x, y))
    diff = float(x.mean() - y.mean()) if x.size and y.size else math.nan
    if x.size < 2 or y.size < 2:
        return diff, math.nan, math.nan
    se = math.sqrt((x.var(ddof=1) + noise_x) / x.size + (y.var(ddof=1) + noise_y) / y.size)
    z = NormalDist().inv_cdf((1 + level) / 2)
    return diff, diff - z * se, diff + z * se


def mean_interval(values, *, level: float = 0.95, n_boot: int = 2000, seed: int = 0):
    r"""The mean of the finite ``values`` and its percentile-bootstrap interval at ``level``
    (resampling the values with replacement, ``seed`` seeds the generator): ``(mean, lo, hi)``,
    all nan with fewer than two finite values."""
    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    if not 0 < float(level) < 1:
        raise ValueError(f"Invalid level: {level!r} (must be in (0, 1))")
    if not (isinstance(n_boot, (int, np.integer)) and n_boot >= 1):
        raise ValueError(f"Invalid n_boot: {n_boot!r} (must be an integer >= 1)")
    if v.size < 2:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(v.mean()), float(lo), float(hi)


def increase_check(means, se, *, level: float = 0.95) -> str:
    r"""Does the mean rise at every step of a sequence (e.g. the mean cosine against the batch
    size)? Each consecutive difference gets the interval :math:`\Delta \pm
    z\sqrt{\mathrm{se}_k^2 + \mathrm{se}_{k+1}^2}` (independent means); ``holds`` when every
    interval is above 0, ``fails`` when some interval is all at or below 0, else
    ``inconclusive``."""
    if not 0 < check_number("level", level) < 1:
        raise invalid("level", level, "must be in (0, 1)")
    m, e = np.asarray(means, np.float64).ravel(), np.asarray(se, np.float64).ravel()
    if m.shape != e.shape or m.size < 2:
        raise invalid("means", m.shape, "need at least two means, one se each")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    diff = np.diff(m)
    half = z * np.sqrt(e[1:] ** 2 + e[:-1] ** 2)
    return combine_statuses(from_interval(d - h, d + h, 0.0, above=True) for d, h in zip(diff, half))


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x over the finite, positive points (nan
    below two)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if keep.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])
