"""Tests for clipcore.envelope: the (L0, L1) envelope fit, against linear programs and vertex
enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from clipcore.envelope import fit_envelope

scipy_optimize = pytest.importorskip("scipy.optimize")


def _linprog_envelope(g, L):
    res = scipy_optimize.linprog(
        [1.0, g.mean()],
        A_ub=-np.c_[np.ones_like(g), g],
        b_ub=-L,
        bounds=[(0, None), (0, None)],
        method="highs",
    )
    assert res.success
    return res.fun


def test_envelope_recovers_a_known_line():
    rng = np.random.default_rng(0)
    L0, L1 = 2.0, 3.0
    g = rng.uniform(0.1, 10.0, size=500)
    L = (L0 + L1 * g) * rng.uniform(0.2, 1.0, size=g.size)
    # Points on the line at both ends pin the optimum to the line itself.
    g = np.r_[g, 0.05, 12.0]
    L = np.r_[L, L0 + L1 * 0.05, L0 + L1 * 12.0]
    f0, f1 = fit_envelope(g, L)
    assert f0 == pytest.approx(L0, rel=1e-9)
    assert f1 == pytest.approx(L1, rel=1e-9)
    line = f0 + f1 * g
    assert np.all(line >= L - 1e-9)
    assert np.min(line - L) == pytest.approx(0.0, abs=1e-9)  # touches


@pytest.mark.parametrize("seed", range(5))
def test_envelope_is_the_lp_optimum(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 200))
    g = rng.exponential(size=n) * 10.0 ** rng.uniform(-3, 3)
    L = (rng.normal(size=n) + rng.uniform(0, 5) * g / g.mean()) * 10.0 ** rng.uniform(-3, 3)
    if seed == 0:
        g[:3] = 0.0  # points at g = 0 are allowed
    f0, f1 = fit_envelope(g, L)
    assert f0 >= 0 and f1 >= 0
    assert np.all(f0 + f1 * g >= L - 1e-9 * np.abs(L).max())
    best = _linprog_envelope(g, L)
    assert f0 + f1 * g.mean() == pytest.approx(best, rel=1e-8, abs=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_envelope_quantile_is_exact(seed):
    # Reference: the LP over every subset of ceil(q n) points, the cheapest of them.
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(4, 10))
    g = rng.exponential(size=n)
    L = rng.normal(size=n) + 2 * g
    q = [0.5, 0.7, 0.8, 0.9][seed % 4]
    m = math.ceil(q * n)
    best = min(_subset_objective(g, L, list(S)) for S in itertools.combinations(range(n), m))
    f0, f1 = fit_envelope(g, L, quantile=q)
    assert f0 + f1 * g.mean() == pytest.approx(best, rel=1e-9, abs=1e-12)
    assert np.sum(f0 + f1 * g >= L - 1e-12) >= m


def _subset_objective(g, L, S):
    # Constraints on the subset, objective the mean over all points.
    res = scipy_optimize.linprog(
        [1.0, g.mean()],
        A_ub=-np.c_[np.ones(len(S)), g[S]],
        b_ub=-L[S],
        bounds=[(0, None), (0, None)],
        method="highs",
    )
    return res.fun


def test_envelope_quantile_large_sample_matches_vertex_enumeration():
    rng = np.random.default_rng(7)
    n = 300
    g = rng.exponential(size=n)
    L = g * (1 + 0.3 * rng.normal(size=n)) + 1
    for q in (0.5, 0.9, 0.97):
        m = math.ceil(q * n)
        i, j = np.triu_indices(n, 1)
        with np.errstate(all="ignore"):
            s = np.r_[0.0, (L[j] - L[i]) / (g[j] - g[i]), L / g]
        s = s[np.isfinite(s) & (s >= 0)]
        r = L[None] - s[:, None] * g[None]
        brute = (np.maximum(np.partition(r, m - 1, axis=1)[:, m - 1], 0) + s * g.mean()).min()
        f0, f1 = fit_envelope(g, L, quantile=q)
        assert f0 + f1 * g.mean() == pytest.approx(brute, rel=1e-12)
    # Covering fewer points never costs more.
    cost = {q: fit_envelope(g, L, q)[0] + fit_envelope(g, L, q)[1] * g.mean() for q in (0.5, 0.9, 1.0)}
    assert cost[0.5] <= cost[0.9] <= cost[1.0]


def test_envelope_through_the_origin_has_exactly_zero_intercept():
    """Rounding in the residuals must not leave a tiny positive L0 (it printed as 4.44e-16).
    Seed 23 gave L0 = 8.9e-16 before the snap."""
    rng = np.random.default_rng(23)
    g = rng.lognormal(0, 1, 20)
    L = g * rng.uniform(0.2, 1, 20) * 2.26
    L0, L1 = fit_envelope(g, L)
    assert L0 == 0.0
    assert L1 == pytest.approx(np.max(L / g), rel=1e-12)  # the steepest ray from the origin
    assert np.all(L <= L0 + L1 * g * (1 + 1e-12))


def test_envelope_ignores_nonfinite_and_validates():
    g = np.array([1.0, 2.0, 3.0, 4.0])
    L = np.array([2.0, 1.0, 5.0, 4.0])
    ref = fit_envelope(g, L)
    assert fit_envelope(np.r_[g, np.nan, 1.0], np.r_[L, 1.0, np.inf]) == ref
    with pytest.raises(ValueError, match="4 values but smoothness has 3"):
        fit_envelope(g, L[:3])
    with pytest.raises(ValueError, match="got 1"):
        fit_envelope([1.0, np.nan], [1.0, 2.0])
    for q in (0.0, 1.5, -1):
        with pytest.raises(ValueError, match=str(q)):
            fit_envelope(g, L, quantile=q)
    with pytest.raises(ValueError, match="-1.0"):
        fit_envelope([-1.0, 1.0], [1.0, 1.0])
