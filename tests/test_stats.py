"""Tests for clipcore.stats: rank correlation, its bootstrap interval, the claim's verdicts
and log-log slopes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clipcore.stats import (
    TrajectoryCorrelation,
    block_counts,
    block_mean_difference,
    bootstrap_ci,
    claim_verdicts,
    default_block_length,
    loglog_slope,
    mean_interval,
    rank_correlation,
    tail_mean_difference,
    trajectory_correlation,
)

scipy_stats = pytest.importorskip("scipy.stats")


# ------------------------------------------------------------------------ rank correlation, bootstrap


@pytest.mark.parametrize("seed", range(4))
def test_rank_correlation_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=200)
    y = x + rng.normal(size=200)
    if seed % 2:  # heavy ties
        x, y = np.round(x), np.round(y, 1)
    ref = scipy_stats.spearmanr(x, y).statistic
    assert rank_correlation(x, y) == pytest.approx(ref, abs=1e-12)


def test_rank_correlation_edge_cases():
    assert rank_correlation([1, 2, 3, np.nan], [3, 2, 1, 7]) == pytest.approx(-1.0)
    assert math.isnan(rank_correlation([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="3 values but y has 2"):
        rank_correlation([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="got 1"):
        rank_correlation([1, np.nan], [1, 2])


def _true_spearman(rho):
    # Bivariate normal: rho_S = (6/pi) arcsin(rho/2).
    return 6 / math.pi * math.asin(rho / 2)


def test_bootstrap_ci_covers_truth_with_the_right_width():
    rng = np.random.default_rng(0)
    rho = 0.6
    cov = [[1, rho], [rho, 1]]
    widths = {}
    for n in (1000, 4000):
        x, y = rng.multivariate_normal([0, 0], cov, size=n).T
        lo, hi = bootstrap_ci(x, y, n_boot=1000, seed=1)
        rs = _true_spearman(rho)
        assert lo < rs < hi
        assert lo < rank_correlation(x, y) < hi
        # Large-sample standard error of Spearman's rho (Fieller et al. 1957).
        se = (1 - rs**2) * math.sqrt(1.06 / (n - 3))
        assert (hi - lo) / (2 * 1.96 * se) == pytest.approx(1.0, abs=0.3)
        widths[n] = hi - lo
    assert widths[4000] / widths[1000] == pytest.approx(0.5, abs=0.12)


def test_bootstrap_vectorised_equals_loop_and_is_seeded():
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=150), 1)
    y = x + np.round(rng.normal(size=150), 1)
    fast = bootstrap_ci(x, y, n_boot=300, seed=5)
    slow = bootstrap_ci(x, y, stat=lambda a, b: rank_correlation(a, b), n_boot=300, seed=5)
    assert fast == pytest.approx(slow, abs=1e-12)
    assert bootstrap_ci(x, y, n_boot=300, seed=5) == fast
    assert bootstrap_ci(x, y, n_boot=300, seed=6) != fast
    lo, hi = bootstrap_ci(x, y, stat=lambda a, b: float(np.mean(a - b)), n_boot=300, level=0.9)
    assert lo < float(np.mean(x - y)) < hi
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(x, y, level=1.0)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci(x, y, n_boot=0)


# ------------------------------------------------------------------------ the claim's verdicts


def _ar1(n, phi, rng):
    e = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = e[0]
    for k in range(1, n):
        x[k] = phi * x[k - 1] + e[k]
    return x


def test_block_counts_resample_whole_blocks_of_consecutive_points():
    rng = np.random.default_rng(0)
    c = block_counts(10, 500, 3, rng)
    assert c.shape == (500, 10) and np.all(c.sum(1) == 10)
    assert np.array_equal(block_counts(7, 3, 1, np.random.default_rng(1)).sum(1), [7, 7, 7])
    # with blocks of the whole series every resample is the series itself
    assert np.all(block_counts(6, 4, 6, rng) == 1)
    assert default_block_length(8) == 2 and default_block_length(1000) == 10


def test_block_bootstrap_covers_the_truth_on_autocorrelated_series_where_iid_does_not():
    """Two independent AR(1) series (phi = 0.9): the true rank correlation is 0. The iid
    bootstrap ignores the autocorrelation and its 90% intervals miss 0 far more often than
    10% of the time; the moving-block intervals are close to nominal."""
    rng = np.random.default_rng(7)
    miss_iid = miss_block = 0
    trials = 60
    for k in range(trials):
        x, y = _ar1(300, 0.9, rng), _ar1(300, 0.9, rng)
        t = np.arange(300.0)
        lo, hi = bootstrap_ci(x, y, n_boot=400, level=0.9, seed=k)
        miss_iid += not (lo <= 0 <= hi)
        c = trajectory_correlation(x, y, t, n_boot=400, level=0.9, block=20, seed=k)
        miss_block += not (c.lo <= 0 <= c.hi)
    assert miss_iid > 0.3 * trials
    assert miss_block < 0.25 * trials


def test_partial_correlation_removes_a_shared_trend():
    rng = np.random.default_rng(3)
    t = np.arange(400.0)
    x = t / 400 + 0.2 * rng.standard_normal(400)  # both trend with t, independent otherwise
    y = t / 400 + 0.2 * rng.standard_normal(400)
    c = trajectory_correlation(x, y, t, n_boot=300, seed=1)
    assert c.rho > 0.6 and c.lo > 0.5  # the raw correlation is the shared trend
    assert abs(c.rho_detrended) < 0.15 and c.lo_detrended < 0 < c.hi_detrended
    # the partial correlation equals the closed form on the ranks
    from scipy.stats import rankdata

    r = [rankdata(v) for v in (x, y, t)]
    p = np.corrcoef(r)
    ref = (p[0, 1] - p[0, 2] * p[1, 2]) / np.sqrt((1 - p[0, 2] ** 2) * (1 - p[1, 2] ** 2))
    assert c.rho_detrended == pytest.approx(ref, abs=1e-12)
    # points are taken in step order and non-finite triples dropped
    x2, y2, t2 = np.r_[x[::-1], np.nan], np.r_[y[::-1], 1.0], np.r_[t[::-1], 5.0]
    c2 = trajectory_correlation(x2, y2, t2, n_boot=300, seed=1)
    assert c2.n == 400 and c2.rho == c.rho and c2.lo == c.lo


def _corr(rho, lo, hi, n=50, spread=0.0):
    samples = np.linspace(lo, hi, 101)
    return TrajectoryCorrelation(n, 3, rho, lo, hi, rho, lo, hi, samples, samples)


def test_claim_verdicts_hold_fail_or_are_inconclusive_by_the_intervals():
    corr = {
        "a": {
            "fixed": _corr(0.9, 0.8, 0.95),
            "hessian": _corr(0.6, 0.3, 0.8),
            "faithful": _corr(0.9, 0.8, 0.95, n=5),
        },
        "b": {
            "fixed": _corr(0.1, 0.0, 0.2),
            "hessian": _corr(0.1, 0.0, 0.2),
            "faithful": _corr(0.1, 0.0, 0.2),
        },
        "c": {
            "fixed": _corr(0.2, 0.1, 0.3),
            "hessian": _corr(0.7, 0.6, 0.8),
            "faithful": _corr(0.2, 0.1, 0.3),
        },
    }
    v = claim_verdicts(corr, "a", ["b", "c"], min_lower=0.5, min_gap=0.2)
    # a clearly strong, clearly above the others: holds
    assert v["fixed"]["status"] == "holds" and v["fixed"]["gap"] == pytest.approx(0.7)
    assert v["fixed"]["gap_lo"] > 0.2 and v["fixed"]["max_weak"] == 0.2
    # a's interval straddles 0.5 and the gap to c is negative: the gap part fails, so the claim fails
    assert v["hessian"]["strong"] == "inconclusive" and v["hessian"]["weaker"] == "fails"
    assert v["hessian"]["status"] == "fails"
    # too few points: inconclusive whatever the numbers
    assert v["faithful"]["status"] == "inconclusive" and v["faithful"]["n_min"] == 5
    # straddling only: inconclusive
    wide = {"a": {"f": _corr(0.6, 0.4, 0.9)}, "b": {"f": _corr(0.1, 0.0, 0.2)}}
    assert claim_verdicts(wide, "a", ["b"])["f"]["status"] == "inconclusive"
    with pytest.raises(ValueError, match="'z'"):
        claim_verdicts(corr, "a", ["z"])
    with pytest.raises(ValueError, match="weak"):
        claim_verdicts(corr, "a", [])


# ------------------------------------------------------------------------ log-log slopes


def test_loglog_slope_of_a_power_law_ignores_unusable_points():
    x = np.geomspace(0.1, 100.0, 12)
    assert loglog_slope(x, 3.0 * x**-1.5) == pytest.approx(-1.5, rel=1e-12)
    assert loglog_slope(x, np.full_like(x, 2.0)) == pytest.approx(0.0, abs=1e-12)
    # non-finite and non-positive points are dropped, not propagated
    xs = np.r_[x, 0.0, -1.0, np.nan, 5.0]
    ys = np.r_[x**2, 1.0, 1.0, 1.0, np.inf]
    assert loglog_slope(xs, ys) == pytest.approx(2.0, rel=1e-12)
    assert math.isnan(loglog_slope([1.0], [2.0]))
    assert math.isnan(loglog_slope([1.0, 2.0, 0.0], [np.nan, 3.0, 4.0]))


def test_block_mean_difference_covers_the_true_difference():
    rng = np.random.default_rng(11)
    covered = 0
    for k in range(30):
        x, y = 1.0 + _ar1(400, 0.8, rng), _ar1(400, 0.8, rng)
        d, lo, hi = block_mean_difference(x, y, n_boot=400, level=0.9, seed=k)
        assert lo < d < hi
        covered += lo <= 1.0 <= hi
    assert covered >= 21  # nominal 90%: 27 of 30; well above what an iid bootstrap gives here
    assert all(math.isnan(v) for v in block_mean_difference([1.0], [2.0, 3.0]))


def test_tail_mean_difference_uses_the_last_k_values_and_their_spread():
    x, y = [0.0, 0.0, 0.5, 0.7, 0.6], [0.9, 0.1, 0.5, 0.5, 0.5]
    d, lo, hi = tail_mean_difference(x, y, 3, level=0.95)
    assert d == pytest.approx(0.1)
    se = math.sqrt(np.var([0.5, 0.7, 0.6], ddof=1) / 3)
    assert (hi - lo) / 2 == pytest.approx(1.959964 * se, rel=1e-5)
    _, lo2, hi2 = tail_mean_difference(x, y, 3, noise_x=0.01, noise_y=0.01)
    assert hi2 - lo2 > hi - lo
    assert math.isnan(tail_mean_difference(x, y, 1)[1])


def test_mean_interval():
    v = np.random.default_rng(1).standard_normal(400) + 2.0
    m, lo, hi = mean_interval(v, level=0.95, seed=3)
    assert m == pytest.approx(v.mean()) and lo < m < hi
    se = v.std() / math.sqrt(v.size)
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert mean_interval(v, seed=3) == (m, lo, hi)  # seeded
    assert mean_interval([1.0, np.nan, 2.0, np.inf])[0] == 1.5  # non-finite values dropped
    assert all(math.isnan(x) for x in mean_interval([1.0]))
    with pytest.raises(ValueError, match="level"):
        mean_interval(v, level=1.0)
