"""The growth lemma: ratio <= 1 for every certified problem, tight for e^x as L0 -> 0."""

import math

import numpy as np
import pytest

from clipcore.growth_lemma import (
    growth_ratio,
    growth_ratio_from_norms,
    sample_pairs,
    worst_growth_ratio,
    worst_ratio_by_distance,
)
from clipcore.scalar_problems import Exponential, ExponentialWall, HardInstanceA, HardInstanceB, Power
from clipcore.stochastic_descent import SeparableProblem

PROBLEMS = [
    Power(2, 1.0),
    Power(3, 1.0),
    Power(3, 0.2),
    Power(4, 1.0),
    Power(4, 3.0),
    Power(6, 0.5),
    Exponential(1.0),
    Exponential(-2.0, 0.5),
    HardInstanceA(1.0),
    HardInstanceA(4.0),
    HardInstanceB(0.1),
    HardInstanceB(1.0),
    ExponentialWall(1.0, 1.0),
    ExponentialWall(2.0, 0.5, 30.0),
]
TOL = 1e-12  # rounding where the lemma is tight


def _range(prob):
    if isinstance(prob, Exponential):
        return (-15.0 / abs(prob.a), 15.0 / abs(prob.a))
    return (-12.0, 12.0)


@pytest.mark.parametrize("prob", PROBLEMS, ids=lambda p: f"{p.name}-{p.L1}-{p.L0:.3g}")
def test_worst_ratio_at_most_one(prob):
    rng = np.random.default_rng(0)
    x, y = sample_pairs(rng, 200_000, _range(prob), r_max=4.0 / prob.L1)
    ratios = growth_ratio(prob, x, y)
    assert ratios.max() <= 1 + TOL
    assert ratios.min() > 0
    # the lemma is not vacuous on the sample: somewhere the gradient does grow between x and y
    gx, gy = np.abs(prob.grad(x)), np.abs(prob.grad(y))
    assert np.any(gy > 2 * gx + 1e-9)


def test_ratio_hand_value_for_exponential():
    prob = Exponential(1.0, delta=0.1)
    x, r = 0.3, 0.8
    expect = (math.exp(x + r) + 0.1) / (math.exp(r) * (math.exp(x) + 0.1))
    assert growth_ratio(prob, x, x + r) == pytest.approx(expect, rel=1e-14)
    # moving towards smaller gradients: ratio e^{-2r}-like, far below 1
    assert growth_ratio(prob, x, x - r) < math.exp(-r)
    assert growth_ratio(prob, x, x) == pytest.approx(1.0, rel=1e-15)


def test_tight_for_exponential_as_L0_vanishes():
    x = np.linspace(0.0, 8.0, 4001)
    r = np.array([0.1, 0.5, 1.0, 2.0, 3.0])
    worst = {d: worst_ratio_by_distance(Exponential(1.0, delta=d), x, r) for d in (1e-1, 1e-3, 1e-6, 1e-9)}
    for d, w in worst.items():
        assert np.all(w <= 1 + TOL)
        # (e^{x+r} + d) / (e^{x+r} + e^r d) >= 1 - d e^{-x} >= 1 - d on x >= 0
        assert np.all(w >= 1 - d * (1 + 1e-9))
    ds = sorted(worst, reverse=True)
    for big, small in zip(ds, ds[1:]):
        assert np.all(worst[small] >= worst[big])  # shrinking L0 tightens the lemma at every r
    assert worst[1e-9].min() > 1 - 1e-8


def test_loose_at_fixed_distance_for_x4():
    # for x^4 the lemma is not tight at a fixed r: the curvature envelope is touched at one point only
    x = np.linspace(-10.0, 10.0, 20001)
    w = worst_ratio_by_distance(Power(4, 1.0), x, np.array([1.0, 2.0, 4.0]))
    assert np.all(w < 0.99) and w[-1] < 0.5
    assert np.all(np.diff(w) < 0)  # looser the farther apart


def test_sharp_distance_beats_larger_r():
    # using r = |y - x| is the sharpest form: any r >= |y - x| gives a smaller ratio
    prob = HardInstanceA(1.0)
    x, y = np.array([2.0]), np.array([3.0])
    gx, gy = abs(prob.grad(x)), abs(prob.grad(y))
    assert growth_ratio_from_norms(gx, gy, 1.5, 1.0, 1.0) < growth_ratio(prob, x, y)


def test_dimension_free_form_on_separable_problem():
    prob = SeparableProblem(HardInstanceA(1.0), 5)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50_000, 5)) * 3
    y = x + rng.normal(size=(50_000, 5)) * rng.uniform(0, 1, (50_000, 1))
    rho = growth_ratio_from_norms(
        np.linalg.norm(prob.grad(x), axis=1),
        np.linalg.norm(prob.grad(y), axis=1),
        np.linalg.norm(y - x, axis=1),
        prob.L0,
        prob.L1,
    )
    assert rho.max() <= 1 + TOL


def test_worst_growth_ratio_and_overflow():
    prob = Power(4, 1.0)
    x, y = np.array([0.0, 1.0]), np.array([1.0, 3.0])
    assert worst_growth_ratio(prob, x, y) == pytest.approx(growth_ratio(prob, x, y).max())
    with pytest.raises(ValueError, match="overflows"):
        growth_ratio(Exponential(1.0), 800.0, 0.0)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: growth_ratio_from_norms(1.0, 1.0, 1.0, 0.0, 1.0), "L0"),
        (lambda: growth_ratio_from_norms(1.0, 1.0, 1.0, 1.0, float("nan")), "L1"),
        (lambda: growth_ratio_from_norms(1.0, 1.0, -1.0, 1.0, 1.0), "distances"),
        (lambda: sample_pairs(np.random.default_rng(0), 0, (0, 1), 1.0), "n"),
        (lambda: sample_pairs(np.random.default_rng(0), 5, (1, 0), 1.0), "x_range"),
        (lambda: sample_pairs(np.random.default_rng(0), 5, (0, 1), 0.0), "r_max"),
        (lambda: worst_ratio_by_distance(Power(4), np.zeros(3), np.array([0.0, 1.0])), "r_values"),
    ],
)
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_exponential_wall_meets_the_lemma_with_equality():
    # f_W'' = L0 + L1 |f_W'|: for pairs on one side of 0 moving outwards the lemma is an equality
    w = ExponentialWall(2.0, 3.0)
    x = np.linspace(0.0, 3.0, 301)
    for r in (0.1, 1.0, 2.0):
        np.testing.assert_allclose(growth_ratio(w, x, x + r), 1.0, rtol=1e-12)
        np.testing.assert_allclose(worst_ratio_by_distance(w, x, np.array([r])), 1.0, rtol=1e-12)
    assert np.all(growth_ratio(w, -x[1:], x[1:]) < 1.0)  # across the minimum it is strict
