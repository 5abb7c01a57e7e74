"""Tests for clipcore.stats: rank correlation, its bootstrap interval, the claim's verdicts
and log-log slopes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clipcore.stats import bootstrap_ci, claim_verdicts, loglog_slope, rank_correlation

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


def _row(run, est, rho, lo):
    return dict(run=run, estimator=est, rho=rho, lo=lo, hi=1.0, n=10, L0=0.0, L1=0.0)


def test_claim_verdicts_apply_the_stated_criterion():
    table = [
        _row("a", "fixed", 0.9, 0.6),
        _row("b", "fixed", 0.5, 0.1),
        _row("c", "fixed", 0.7, 0.3),
        _row("a", "hessian", 0.9, 0.4),
        _row("b", "hessian", 0.1, -0.3),
        _row("c", "hessian", 0.2, -0.2),
        _row("a", "faithful", 0.8, 0.55),
        _row("b", "faithful", 0.61, 0.2),
        _row("c", "faithful", float("nan"), 0.0),
    ]
    v = claim_verdicts(table, "a", ["b", "c"], min_lower=0.5, min_gap=0.2)
    assert v["fixed"]["ok"] and v["fixed"]["gap"] == pytest.approx(0.2) and v["fixed"]["max_weak"] == 0.7
    assert not v["hessian"]["ok"] and v["hessian"]["gap_ok"] and not v["hessian"]["lower_ok"]
    assert not v["faithful"]["ok"] and v["faithful"]["lower_ok"] and math.isnan(v["faithful"]["max_weak"])
    # the gap alone: a lower margin flips the fixed verdict
    assert not claim_verdicts(table, "a", ["b", "c"], min_gap=0.21)["fixed"]["ok"]
    with pytest.raises(ValueError, match="'z'"):
        claim_verdicts(table, "a", ["z"])
    with pytest.raises(ValueError, match="weak"):
        claim_verdicts(table, "a", [])


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
