"""The stochastic bias floor of clipped SGD on a quadratic (Koloskova, Hendrikx, Stich, ICML 2023):
noise laws, the fixed point of the clipped mean field and the simulated plateaus."""

import math

import numpy as np
import pytest

from clipcore.bias_floor import (
    DiscreteNoise,
    QuadraticSGDRun,
    clipped_drift,
    clipped_fixed_point,
    clipped_sgd_quadratic,
    floor_noise,
    plateau_difference,
    plateau_interval,
    plateau_ratio,
    slope_interval,
    two_point_noise,
)


@pytest.mark.parametrize("sigma,p", [(1.0, 0.5), (2.0, 0.1), (0.5, 0.01)])
def test_two_point_noise_moments(sigma, p):
    nz = two_point_noise(sigma, p)
    assert nz.values @ nz.probs == pytest.approx(0.0, abs=1e-14)
    assert nz.sigma == pytest.approx(sigma, rel=1e-14)


def _floor_closed_form(sigma, c):
    if c <= sigma:
        return sigma / math.sqrt(3) - c / 3
    p = sigma**2 / (4 * c**2)
    a = sigma * math.sqrt((1 - p) / p)
    return p * (a - c) / (1 - p)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 3.0])
def test_fixed_point_matches_closed_form_and_min_shape(sigma):
    for c in sigma * np.geomspace(0.01, 100, 25):
        nz = floor_noise(sigma, c)
        xbar = clipped_fixed_point(c, nz)
        assert abs(clipped_drift(xbar, c, nz)) < 1e-12
        assert xbar == pytest.approx(_floor_closed_form(sigma, c), rel=1e-9)
        assert 0.2 <= xbar / min(sigma, sigma**2 / c) <= 0.6  # Θ(min{σ, σ²/c})
    # a fixed bounded law has no bias once the threshold exceeds every |x + ξ| near 0
    nz = two_point_noise(sigma, 0.25)
    assert clipped_fixed_point(2 * nz.bound, nz) == pytest.approx(0.0, abs=1e-12)
    assert clipped_fixed_point(math.inf, nz) == 0.0


def test_clipped_sgd_quadratic_matches_a_loop_and_is_seeded():
    nz = two_point_noise(1.0, 0.2)
    run = clipped_sgd_quadratic([nz], [0.5], x0=2.0, lr=0.3, t0=10.0, steps=200, runs=1, seed=4, tail=0.5)
    rng = np.random.default_rng(4)
    x, acc = 2.0, 0.0
    for t in range(200):
        u = rng.random((1, 1))[0, 0]
        xi = nz.values[0] if u < nz.probs[0] else nz.values[1]
        x = x - 0.3 / (1 + t / 10.0) * np.clip(x + xi, -0.5, 0.5)
        if t >= 100:
            acc += x
    assert run.tail_mean[0, 0] == pytest.approx(acc / 100, rel=1e-12)
    again = clipped_sgd_quadratic([nz], [0.5], x0=2.0, lr=0.3, t0=10.0, steps=200, runs=1, seed=4)
    np.testing.assert_array_equal(run.mean_grad, again.mean_grad)


def test_clipped_sgd_settles_at_the_fixed_point_and_sgd_at_zero():
    sigma = 1.0
    cs = np.array([0.3, 1.0, 3.0, math.inf])
    laws = [floor_noise(sigma, c) if np.isfinite(c) else floor_noise(sigma, 1.0) for c in cs]
    run = clipped_sgd_quadratic(laws, cs, steps=6000, runs=200, seed=0)
    for k, c in enumerate(cs[:-1]):
        want = clipped_fixed_point(c, laws[k])
        assert abs(run.plateau[k] - want) <= 0.03 + 5 * run.plateau_se[k]
    assert np.all(np.diff(run.plateau[:-1]) < 0)  # larger threshold, lower floor
    assert run.plateau[-1] < 0.02  # unclipped SGD with the same steps: no floor


def test_noise_validation():
    with pytest.raises(ValueError, match="mean"):
        DiscreteNoise(np.array([1.0, 2.0]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="probs"):
        DiscreteNoise(np.array([1.0, -1.0]), np.array([0.7, 0.7]))
    with pytest.raises(ValueError, match="p"):
        two_point_noise(1.0, 1.0)
    with pytest.raises(ValueError, match="sigma"):
        two_point_noise(0.0, 0.5)
    with pytest.raises(ValueError, match="c"):
        floor_noise(1.0, 0.0)
    with pytest.raises(ValueError, match="thresholds"):
        clipped_sgd_quadratic([two_point_noise(1.0, 0.5)], [1.0, 2.0])


# ---------------------------------------------------------------- intervals over runs

Z95 = 1.959963984540054


def _run(c, tail_mean):
    tm = np.asarray(tail_mean, float)
    R = tm.shape[1]
    return QuadraticSGDRun(
        c=np.asarray(c, float),
        t=np.array([0]),
        lr=np.array([1.0]),
        mean_abs_grad=np.zeros((len(c), 1)),
        mean_grad=np.zeros((len(c), 1)),
        tail_mean=tm,
        plateau=np.abs(tm.mean(1)),
        plateau_se=tm.std(1, ddof=1) / math.sqrt(R),
    )


def test_plateau_interval_difference_and_ratio():
    rng = np.random.default_rng(0)
    a = _run([1.0, 2.0], 0.5 + 0.1 * rng.standard_normal((2, 400)))
    b = _run([1.0, 2.0], 0.25 + 0.1 * rng.standard_normal((2, 400)))
    lo, hi = plateau_interval(a)
    np.testing.assert_allclose((hi - lo) / 2, Z95 * a.plateau_se)
    assert np.all(np.abs(a.plateau - 0.5) < 0.03) and np.all(lo < a.plateau) and np.all(a.plateau < hi)
    d, dlo, dhi = plateau_difference(a, b)
    np.testing.assert_allclose(d, a.plateau - b.plateau)
    np.testing.assert_allclose((dhi - dlo) / 2, Z95 * np.hypot(a.plateau_se, b.plateau_se))
    r, rlo, rhi = plateau_ratio(b, a)
    np.testing.assert_allclose(r, b.plateau / a.plateau)
    rel = np.hypot(a.plateau_se / a.plateau, b.plateau_se / b.plateau)
    np.testing.assert_allclose((rhi - rlo) / 2, Z95 * r * rel)
    assert np.all(np.abs(r - 0.5) < 0.05)
    # a zero plateau in the denominator: undefined
    zero = _run([1.0], [[1.0, -1.0, 1.0, -1.0]])
    assert np.isnan(plateau_ratio(zero, zero)[0]).all()
    with pytest.raises(ValueError, match="level"):
        plateau_interval(a, level=0.0)


def test_slope_interval():
    rng = np.random.default_rng(1)
    c = np.array([1.0, 2.0, 4.0, 8.0, np.inf])
    floors = np.append(0.25 / c[:-1], 0.0)
    run = _run(c, floors[:, None] * (1 + 0.05 * rng.standard_normal((5, 300))))
    slope, lo, hi = slope_interval(run, [0, 1, 2, 3], n_boot=400, seed=2)
    assert slope == pytest.approx(-1.0, abs=0.02) and lo < slope < hi and hi - lo < 0.05
    assert slope_interval(run, [0, 1, 2, 3], n_boot=400, seed=2) == (slope, lo, hi)  # seeded
    # a noisier run has a wider interval
    noisy = _run(c, floors[:, None] * (1 + 0.5 * rng.standard_normal((5, 300))))
    _, nlo, nhi = slope_interval(noisy, [0, 1, 2, 3], n_boot=400, seed=2)
    assert nhi - nlo > hi - lo
    with pytest.raises(ValueError, match="two thresholds"):
        slope_interval(run, [0])
    with pytest.raises(ValueError, match="finite"):
        slope_interval(run, [3, 4])
