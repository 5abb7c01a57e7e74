r"""Statistics the verdicts are computed from: rank correlation, its bootstrap interval,
the pre-declared correlation criterion, and log-log slopes.

Zhang, He, Sra, Jadbabaie (ICLR 2020), Figs. 2-3, claim "strong positive correlation in (a),
much weaker in (b) and (c)": :func:`rank_correlation` measures it, :func:`bootstrap_ci` puts
an interval on it and :func:`claim_verdicts` decides it by a criterion fixed in advance.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["rank_correlation", "bootstrap_ci", "claim_verdicts", "loglog_slope"]


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


def claim_verdicts(
    table: Sequence[dict], strong: str, weak: Sequence[str], *, min_lower: float = 0.5, min_gap: float = 0.2
) -> dict:
    r"""Per estimator, whether "strong positive correlation in run ``strong``, much weaker in
    the ``weak`` runs" holds, by the pre-declared criterion

    .. math::
        \mathrm{lo}_{s} > \text{min\_lower} \quad\text{and}\quad
        \rho_{s} - \max_{w}\rho_{w} \ge \text{min\_gap}.

    Returns ``{estimator: {ok, lower_ok, gap_ok, rho, lo, max_weak, gap}}``; a nan anywhere
    makes the part it enters false.
    """
    if not weak:
        raise ValueError("Invalid weak: empty (name at least one run to compare with)")
    by = {(r["run"], r["estimator"]): r for r in table}
    estimators = list(dict.fromkeys(r["estimator"] for r in table))
    out = {}
    for est in estimators:
        missing = [run for run in (strong, *weak) if (run, est) not in by]
        if missing:
            raise ValueError(f"Invalid table: no row for run(s) {missing} with estimator {est!r}")
        s = by[(strong, est)]
        max_weak = max(by[(w, est)]["rho"] for w in weak)
        if any(math.isnan(by[(w, est)]["rho"]) for w in weak):
            max_weak = math.nan
        gap = s["rho"] - max_weak
        lower_ok = bool(s["lo"] > min_lower)  # nan compares false
        gap_ok = bool(gap >= min_gap)
        out[est] = dict(
            ok=lower_ok and gap_ok,
            lower_ok=lower_ok,
            gap_ok=gap_ok,
            rho=s["rho"],
            lo=s["lo"],
            max_weak=max_weak,
            gap=gap,
        )
    return out


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x over the finite, positive points (nan
    below two)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if keep.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])
