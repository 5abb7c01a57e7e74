r"""Clipped versus normalized step sizes (Zhang et al., Section 3).

With :math:`\gamma\eta_c = \eta_n` and :math:`\gamma = \beta`,
:math:`h_n/h_c = \max\{\|g\|, \gamma\}/(\|g\| + \gamma) \in [1/2, 1]`: the paper prints
:math:`h_n \le 2h_c`; the tighter sandwich :math:`h_c/2 \le h_n \le h_c` holds.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clipcore.reference import clipped_step_size, normalized_step_size


def _ratio(g, eta_c, gamma):
    # matched normalized GD: eta_n = gamma * eta_c, beta = gamma
    with np.errstate(over="ignore"):  # gamma eta_c / ||g|| overflows for subnormal ||g||; min() drops it
        return normalized_step_size(g, gamma * eta_c, gamma) / clipped_step_size(g, eta_c, gamma)


positive = st.floats(min_value=1e-8, max_value=1e8, allow_nan=False, allow_infinity=False)
norms = st.one_of(st.floats(min_value=0.0, max_value=1e300, allow_nan=False, allow_infinity=False),
                  st.sampled_from([0.0, 5e-324, 1e-300, 1e-12, 1.0, 1e12, 1e300]))


@settings(max_examples=500, deadline=None, derandomize=True)
@given(g=norms, eta_c=positive, gamma=positive)
def test_sandwich_holds(g, eta_c, gamma):
    r = _ratio(g, eta_c, gamma)
    # relative slack covers the rounding of gamma * eta_c and of the divisions
    assert 0.5 * (1 - 1e-12) <= r <= 1 + 1e-12
    # closed form max(g, gamma) / (g + gamma)
    assert r == pytest.approx(max(g, gamma) / (g + gamma), rel=1e-12)


def test_seeded_random_inputs_and_tight_ends():
    rng = np.random.default_rng(0)
    g = 10 ** rng.uniform(-12, 12, 100_000)
    eta_c = 10 ** rng.uniform(-6, 2, 100_000)
    gamma = 10 ** rng.uniform(-6, 6, 100_000)
    r = _ratio(g, eta_c, gamma)
    assert r.min() >= 0.5 * (1 - 1e-12) and r.max() <= 1 + 1e-12
    # the lower end 1/2 is attained exactly at ||g|| = gamma ...
    assert _ratio(np.array([3.0]), 0.1, 3.0)[0] == pytest.approx(0.5, rel=1e-15)
    # ... and both ends are approached: tiny and huge gradients give ratios near 1
    assert _ratio(np.array([1e-12]), 0.1, 3.0)[0] == pytest.approx(1.0, abs=1e-12)
    assert _ratio(np.array([1e12]), 0.1, 3.0)[0] == pytest.approx(1.0, abs=1e-11)
    assert _ratio(np.array([0.0]), 0.1, 3.0)[0] == pytest.approx(1.0, rel=1e-15)  # both steps are eta_c


def test_paper_factor_two_is_loose():
    g = np.logspace(-6, 6, 2001)
    r = _ratio(g, 0.05, 2.0)
    assert r.max() <= 1 + 1e-15  # h_n <= h_c, a factor 2 better than the printed h_n <= 2 h_c
    assert r.min() == pytest.approx(0.5, abs=1e-3)


def test_unmatched_parameters_break_the_sandwich():
    # the sandwich needs both couplings: with beta != gamma the ratio leaves [1/2, 1]
    g = np.logspace(-3, 3, 101)
    eta_c, gamma = 0.1, 1.0
    r = normalized_step_size(g, gamma * eta_c, 10 * gamma) / clipped_step_size(g, eta_c, gamma)
    assert r.min() < 0.5
