r"""Step sizes, parameter choices and iteration bounds of Zhang, He, Sra, Jadbabaie (ICLR 2020).

Pure functions of the problem constants: L0, L1 ((L0, L1)-smoothness, Definition 1),
M (largest gradient norm on the initial sublevel set), tau (almost-sure bound on the
gradient noise), delta = f(x0) - f*, eps (target gradient norm) and T (horizon), and the
step sizes of clipped and normalized GD (Section 3). A *step size* here is the scalar
:math:`h` of an update :math:`x^+ = x - h g`; the optimizer updates themselves live in
:mod:`clipcore.functional` (oracle: :mod:`clipcore.reference`).

Constants tagged *transcribed* come from a secondary transcription of the paper's appendix,
not from the printed statements; the book checks every such bound numerically rather than
trusting it. :math:`T_\epsilon` (:func:`hitting_time`) counts from 0.
"""

from __future__ import annotations

import math

import numpy as np

from .validation import check_choice, check_int, check_open_unit, check_positive, invalid

__all__ = [
    "clipped_gd_step_size",
    "normalized_gd_step_size",
    "clipped_gd_parameters",
    "clipped_gd_bound",
    "gd_step_size",
    "gd_upper_bound",
    "gd_lower_bound",
    "FB_LEVEL",
    "wall_pair_lower_bound",
    "largest_below",
    "upper_bound_status",
    "THEOREM7_READINGS",
    "clipped_sgd_parameters",
    "clipped_sgd_step_size",
    "clipped_sgd_bound",
    "sgd_step_size",
    "sgd_bound",
    "hitting_time",
    "stochastic_hitting_time",
]


def _positive(**values):
    """:func:`~clipcore.validation.check_positive` for each named value."""
    for name, v in values.items():
        check_positive(name, v)


# ---------------------------------------------------------------- step sizes (Section 3)


def clipped_gd_step_size(grad_norm, eta_c, gamma):
    r"""Clipped GD's step :math:`h_c = \min\{\eta_c, \gamma\eta_c/\|g\|\}` (Section 3, exact: no
    epsilon; :math:`\|g\| = 0` gives :math:`\eta_c`). Array-friendly in ``grad_norm``."""
    grad_norm = np.asarray(grad_norm, np.float64)
    with np.errstate(divide="ignore", over="ignore"):
        return np.minimum(eta_c, gamma * eta_c / grad_norm)


def normalized_gd_step_size(grad_norm, eta_n, beta):
    r"""Normalized GD's step :math:`h_n = \eta_n / (\|g\| + \beta)` (Section 3)."""
    return eta_n / (np.asarray(grad_norm, np.float64) + beta)


# ---------------------------------------------------------------- deterministic (Thms 3, 4, 6)


def clipped_gd_parameters(L0: float, L1: float) -> tuple[float, float]:
    r"""Theorem 3: :math:`\eta_c = 1/(10L_0)`, :math:`\gamma = \min\{1/\eta_c, 1/(10 L_1\eta_c)\}`.

    The clipped step length is then :math:`\gamma\eta_c = \min\{1, 1/(10L_1)\}`.
    Returns ``(eta_c, gamma)``.
    """
    _positive(L0=L0, L1=L1)
    eta_c = 1.0 / (10.0 * L0)
    gamma = min(1.0 / eta_c, 1.0 / (10.0 * L1 * eta_c))
    return eta_c, gamma


def clipped_gd_bound(L0: float, L1: float, delta: float, eps: float) -> float:
    r"""Theorem 3 (transcribed): :math:`T_\epsilon \le 20L_0\Delta/\epsilon^2 + 20\max\{1, L_1^2\}\Delta/L_0`.

    Independent of M: clipping does not pay for a poor initialisation.
    """
    _positive(L0=L0, L1=L1, delta=delta, eps=eps)
    return 20.0 * L0 * delta / eps**2 + 20.0 * max(1.0, L1**2) * delta / L0


def gd_step_size(L0: float, L1: float, M: float) -> float:
    r"""Theorem 6: the fixed step :math:`h = 1/(2(ML_1 + L_0))`."""
    _positive(L0=L0, L1=L1, M=M)
    return 1.0 / (2.0 * (M * L1 + L0))


def gd_upper_bound(L0: float, L1: float, M: float, delta: float, eps: float) -> float:
    r"""Theorem 6 (transcribed): GD with :func:`gd_step_size` has :math:`T_\epsilon \le 4(ML_1 + L_0)\Delta/\epsilon^2`."""
    _positive(L0=L0, L1=L1, M=M, delta=delta, eps=eps)
    return 4.0 * (M * L1 + L0) * delta / eps**2


def gd_lower_bound(L1: float, M: float, delta: float, eps: float) -> float:
    r"""Theorem 4 (transcribed): for every fixed step,
    :math:`T_\epsilon \ge L_1 M(\Delta - 5\epsilon/8) / (8\epsilon^2(\log M + 1))`.

    Stated for :math:`L_1 \ge 1` and :math:`M > 1`. Returns 0 when
    :math:`\Delta \le 5\epsilon/8` (the bound is then vacuous).
    """
    _positive(L1=L1, M=M, delta=delta, eps=eps)
    if L1 < 1.0:
        raise invalid("L1", L1, "the theorem needs L1 >= 1")
    if M <= 1.0:
        raise invalid("M", M, "Theorem 4 needs M > 1")
    return max(0.0, L1 * M * (delta - 5.0 * eps / 8.0) / (8.0 * eps**2 * (math.log(M) + 1.0)))


# f_B = 4 eps^2 log cosh(x / (2 eps)) at |f_B'| = eps (tanh = 1/2), in units of eps^2: 2 log(4/3).
FB_LEVEL = 2.0 * math.log(4.0 / 3.0)


def wall_pair_lower_bound(L0: float, L1: float, M: float, delta: float, eps: float) -> float:
    r"""The iteration count that the book's hard pair certifies for every fixed step (derived).

    The pair is the exponential wall :math:`f_W` (:class:`clipcore.scalar_problems.ExponentialWall`,
    :math:`(L_0, L_1)`-smooth, gradient M at :math:`x_0 = \log(1 + L_1M/L_0)/L_1`) and
    :math:`f_B = 4\epsilon^2\log\cosh(x/(2\epsilon))` started at gap :math:`\Delta`. A step
    :math:`h > h^* = 2x_0/M` never converges on :math:`f_W`; a step :math:`h \le h^*` lowers
    :math:`f_B` by less than :math:`4h\epsilon^2` per iteration (convexity and
    :math:`|f_B'| < 2\epsilon`), and :math:`|f_B'| \le \epsilon` needs
    :math:`f_B \le c\epsilon^2`, :math:`c =` :data:`FB_LEVEL`. So
    :math:`\min_h \max\{T(f_W), T(f_B)\} \ge (\Delta - c\epsilon^2)/(4h^*\epsilon^2)
    = L_1M(\Delta - c\epsilon^2)/(8\epsilon^2\log(1 + L_1M/L_0))`: Theorem 4's shape with
    :math:`\log(1 + L_1M/L_0)` in place of :math:`\log M + 1`. It is at least
    :func:`gd_lower_bound` when :math:`c\epsilon^2 \le 5\epsilon/8` and
    :math:`1 + L_1M/L_0 \le eM`, e.g. for :math:`L_0 \ge L_1`, but not for :math:`L_0 = 1` and
    large :math:`L_1`. Returns 0 when :math:`\Delta \le c\epsilon^2`.
    """
    _positive(L0=L0, L1=L1, M=M, delta=delta, eps=eps)
    h_star = 2.0 * math.log1p(L1 * M / L0) / (L1 * M)
    return max(0.0, (delta - FB_LEVEL * eps**2) / (4.0 * h_star * eps**2))


def largest_below(fn, limit: float, lo: float, hi: float, rtol: float = 1e-10) -> float:
    r"""The largest x in ``[lo, hi]`` with ``fn(x) <= limit``, for ``fn`` increasing (bisection in
    log x, to relative precision ``rtol``): e.g. the largest M at which a bound that grows with
    M stays below a step cap, i.e. where a capped run could still show the bound failing.
    Returns ``hi`` if ``fn(hi) <= limit`` and nan if ``fn(lo) > limit``."""
    _positive(lo=lo, hi=hi, rtol=rtol)
    if not lo < hi:
        raise invalid("interval", (lo, hi), "need lo < hi")
    if fn(hi) <= limit:
        return float(hi)
    if fn(lo) > limit:
        return float("nan")
    a, b = math.log(lo), math.log(hi)
    while b - a > rtol:
        m = 0.5 * (a + b)
        a, b = (m, b) if fn(math.exp(m)) <= limit else (a, m)
    return math.exp(a)


def upper_bound_status(counts, bounds, cap: int) -> tuple[str, dict]:
    r"""The verdict on "count <= bound" over runs capped at ``cap`` iterations.

    ``counts`` holds each run's :math:`T_\epsilon` (``inf``: not reached within ``cap``),
    ``bounds`` the bound for it. A finite count is a pass or a failure; a capped run is a
    failure where ``bound <= cap`` (it needed more than the bound) and undecided where
    ``bound > cap``. Only runs with ``bound <= cap`` could show a failure at all, so "holds"
    needs at least one of them: the status is ``fails`` if any run fails, else ``inconclusive``
    if any is undecided, else ``holds`` if some run was testable, else ``not-testable``.
    Returns ``(status, {"n_pass", "n_fail", "n_undecided", "n_testable"})``.
    """
    check_int("cap", cap, 0)
    t, b = np.broadcast_arrays(np.asarray(counts, np.float64), np.asarray(bounds, np.float64))
    if np.any(np.isnan(t)) or np.any(~np.isfinite(b)):
        raise invalid("counts or bounds", (counts, bounds), "counts may be inf but not nan; bounds finite")
    done = np.isfinite(t)
    testable = b <= cap
    fail = (done & (t > b)) | (~done & testable)
    undecided = ~done & ~testable
    n = {
        "n_pass": int(np.sum(done & (t <= b))),
        "n_fail": int(fail.sum()),
        "n_undecided": int(undecided.sum()),
        "n_testable": int(testable.sum()),
    }
    if n["n_fail"]:
        return "fails", n
    if n["n_undecided"]:
        return "inconclusive", n
    return ("holds" if n["n_testable"] else "not-testable"), n


# ---------------------------------------------------------------- stochastic (Thms 7, 8)

THEOREM7_READINGS = ("printed", "intended")


def clipped_sgd_parameters(L0: float, L1: float, tau: float, T: int) -> float:
    r"""Theorem 7: :math:`\eta = \min\{1/(20L_0), 1/(128L_1\tau), 1/\sqrt{T}\}`."""
    _positive(L0=L0, L1=L1, tau=tau, T=T)
    return min(1.0 / (20.0 * L0), 1.0 / (128.0 * L1 * tau), 1.0 / math.sqrt(T))


def clipped_sgd_step_size(grad_norm, eta: float, L1: float, tau: float, reading: str = "intended"):
    r"""Theorem 7's step for a stochastic gradient of norm ``grad_norm`` (array-friendly).

    - ``"printed"``: :math:`h = \min\{1/(16\eta L_1(\|g\|+\tau)), \eta\}`, as printed; its first
      term is dimensionless, which is why it is believed to be a typo.
    - ``"intended"``: :math:`h = \min\{\eta, 1/(16L_1(\|g\|+\tau))\}`, a clipped step with
      threshold :math:`\approx 1/(16L_1\eta)`.
    """
    _positive(eta=eta, L1=L1, tau=tau)
    check_choice("reading", reading, THEOREM7_READINGS)
    g = np.asarray(grad_norm, dtype=np.float64)
    if reading == "printed":
        return np.minimum(1.0 / (16.0 * eta * L1 * (g + tau)), eta)
    return np.minimum(eta, 1.0 / (16.0 * L1 * (g + tau)))


def clipped_sgd_bound(L0: float, L1: float, tau: float, delta: float, eps: float) -> float:
    r"""Theorem 7 (transcribed, low confidence):
    :math:`T \le \Delta'\max\{128L_1/\epsilon, 4\Delta'/\epsilon^4, 80L_0/\epsilon^2, 512L_1\tau/\epsilon^2\}`
    with :math:`\Delta' = \Delta + (5L_0 + 2L_1\tau)\tau^2 + 9\tau L_0^2/L_1`. Robust facts: it is
    :math:`O(\epsilon^{-4})` and free of M.
    """
    _positive(L0=L0, L1=L1, tau=tau, delta=delta, eps=eps)
    dp = delta + (5.0 * L0 + 2.0 * L1 * tau) * tau**2 + 9.0 * tau * L0**2 / L1
    return dp * max(128.0 * L1 / eps, 4.0 * dp / eps**4, 80.0 * L0 / eps**2, 512.0 * L1 * tau / eps**2)


def sgd_step_size(L1: float, M: float, tau: float, T: int) -> float:
    r"""Theorem 8: :math:`h = \min\{1/\sqrt{T}, 1/(L_1(M+\tau))\}`."""
    _positive(L1=L1, M=M, tau=tau, T=T)
    return min(1.0 / math.sqrt(T), 1.0 / (L1 * (M + tau)))


def sgd_bound(L1: float, M: float, tau: float, delta: float, eps: float) -> float:
    r"""Theorem 8's order, :math:`\Delta\max\{\Delta/\epsilon^4, L_1(M+\tau)/\epsilon^2\}`, with unit constants.

    The paper states only the order (with a :math:`\Delta''` whose constants were not
    recovered); this is the *shape* of the bound, used to show its growth in M, not a
    certified count.
    """
    _positive(L1=L1, M=M, tau=tau, delta=delta, eps=eps)
    return delta * max(delta / eps**4, L1 * (M + tau) / eps**2)


# ---------------------------------------------------------------- counting iterations


def hitting_time(grad_norms, eps: float) -> int | None:
    r""":math:`T_\epsilon` of a recorded trace: the first index ``t`` with ``grad_norms[t] <= eps``,
    or None if never (to run a descent until then, see
    :func:`clipcore.deterministic_descent.iterations_to_eps`)."""
    check_positive("eps", eps)
    g = np.asarray(grad_norms, dtype=np.float64)
    if g.ndim != 1:
        raise invalid("grad_norms shape", g.shape, "must be one-dimensional")
    hit = np.flatnonzero(g <= eps)  # NaN compares False: a diverged run never counts
    return int(hit[0]) if hit.size else None


def stochastic_hitting_time(grad_norms, eps: float, prob: float = 0.5) -> int | None:
    r"""Random-iterate :math:`T_\epsilon`: the first ``t`` at which the fraction of runs with
    :math:`\|\nabla f(x_k)\| \ge \epsilon` for every :math:`k \le t` is at most ``prob``.

    ``grad_norms`` has shape ``(runs, steps)``; returns None when that never happens.
    """
    check_positive("eps", eps)
    check_open_unit("prob", prob)
    g = np.asarray(grad_norms, dtype=np.float64)
    if g.ndim != 2:
        raise invalid("grad_norms shape", g.shape, "must be (runs, steps)")
    # ~(g < eps) rather than g >= eps: a diverged (NaN) run has not reached eps.
    never_below = np.logical_and.accumulate(~(g < eps), axis=1)
    frac = never_below.mean(axis=0)
    hit = np.flatnonzero(frac <= prob)
    return int(hit[0]) if hit.size else None
