r"""The (L0, L1) envelope: the tightest line :math:`L_0 + L_1 g` above measured points.

Definition 1 of Zhang, He, Sra, Jadbabaie (ICLR 2020) bounds the local smoothness by
:math:`L_0 + L_1\|\nabla f\|`; :func:`fit_envelope` finds the cheapest such line over the
probe points (gradient norm, smoothness estimate) of a run.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["fit_envelope"]


def _as_points(grad_norms, smoothness) -> tuple[np.ndarray, np.ndarray]:
    g = np.asarray(grad_norms, dtype=float).ravel()
    L = np.asarray(smoothness, dtype=float).ravel()
    if g.shape != L.shape:
        raise ValueError(f"grad_norms has {g.size} values but smoothness has {L.size}")
    ok = np.isfinite(g) & np.isfinite(L)
    return g[ok], L[ok]


def _upper_hull(g: np.ndarray, L: np.ndarray) -> np.ndarray:
    """Indices of the upper convex hull's vertices, left to right (Andrew's monotone chain)."""
    order = np.lexsort((L, g))
    hull: list[int] = []
    for i in order:
        # Equal g: only the highest point can be on the upper hull (it comes last).
        while hull and g[hull[-1]] == g[i]:
            hull.pop()
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # Pop b unless it lies strictly above the segment a -> i.
            cross = (g[b] - g[a]) * (L[i] - L[a]) - (L[b] - L[a]) * (g[i] - g[a])
            if cross >= 0:
                hull.pop()
            else:
                break
        hull.append(int(i))
    return np.asarray(hull, dtype=int)


def _cheapest(g: np.ndarray, L: np.ndarray, m: int, slopes: np.ndarray) -> tuple[float, float, float]:
    """Best (objective, L1, L0) over candidate slopes; for a slope L1 the cheapest L0 that
    covers m points is the m-th smallest residual L_i - L1 g_i (clipped at 0)."""
    n, gbar = g.size, float(g.mean())
    slopes = np.unique(slopes[np.isfinite(slopes) & (slopes >= 0)])
    best = (math.inf, math.nan, math.nan)
    block = max(1, 2_000_000 // n)
    for s0 in range(0, slopes.size, block):
        c = slopes[s0 : s0 + block]
        r = L[None, :] - c[:, None] * g[None, :]
        L0 = np.partition(r, m - 1, axis=1)[:, m - 1]
        # A line through the origin leaves rounding residue (e.g. 4e-16) in L0: snap it to 0.
        L0 = np.where(L0 <= 1e-12 * np.max(np.abs(L)), 0.0, L0)
        obj = L0 + c * gbar
        k = int(np.argmin(obj))  # ties: the smaller slope (slopes are sorted)
        if obj[k] < best[0]:
            best = (float(obj[k]), float(c[k]), float(L0[k]))
    return best


def _pivot_slope(g: np.ndarray, L: np.ndarray, m: int, c: float) -> float | None:
    r"""A slope :math:`L_1 \in [0, c/\bar g]` whose line through :math:`(\bar g, c)` (objective
    value c, :math:`L_0 = c - L_1 \bar g \ge 0`) lies on or above at least m points, or None.

    Point i lies below the line iff :math:`L_1 \ge (L_i - c)/(g_i - \bar g)` (for
    :math:`g_i > \bar g`), :math:`L_1 \le (c - L_i)/(\bar g - g_i)` (for :math:`g_i < \bar g`),
    or :math:`L_i \le c` (for :math:`g_i = \bar g`): the coverage is a sum of half-lines,
    maximised at an endpoint.
    """
    gbar = float(g.mean())
    hi_slope = c / gbar
    right, left = g > gbar, g < gbar
    always = int(np.count_nonzero(~right & ~left & (L <= c)))
    A = np.sort((L[right] - c) / (g[right] - gbar))
    B = np.sort((c - L[left]) / (gbar - g[left]))
    t = np.concatenate([A, B, [0.0, hi_slope]])
    t = t[(t >= 0) & (t <= hi_slope)]
    cover = always + np.searchsorted(A, t, "right") + (B.size - np.searchsorted(B, t, "left"))
    k = int(np.argmax(cover))
    return float(t[k]) if cover[k] >= m else None


def fit_envelope(grad_norms, smoothness, quantile: float = 1.0) -> tuple[float, float]:
    r"""The tightest (L0, L1)-smoothness line above the points (Zhang et al., Definition 1).

    Solves the linear programme

    .. math::
        \min_{L_0, L_1 \ge 0}\ \frac1n \sum_i (L_0 + L_1 g_i)
        \quad\text{s.t.}\quad L_0 + L_1 g_i \ge \hat L_i
        \text{ for at least } m = \lceil q n \rceil \text{ points,}

    over the finite points :math:`(g_i, \hat L_i)` (non-finite ones are ignored),
    q = ``quantile``. The objective is :math:`L_0 + L_1 \bar g`, and an optimum lies at a
    vertex: a line through two points, a horizontal line (:math:`L_1 = 0`) or a line through
    the origin (:math:`L_0 = 0`) through one point. For a slope :math:`L_1` the cheapest
    :math:`L_0` is the m-th smallest residual :math:`\hat L_i - L_1 g_i` (clipped at 0).

    - q = 1: the points on the optimal line are vertices of the upper convex hull, so the
      candidate slopes are the hull edges' (exact, :math:`O(n \log n + n h)`).
    - q < 1: whether some line of objective c covers m points is monotone in c and decided
      in :math:`O(n \log n)` (lines of objective c pivot about :math:`(\bar g, c)`), so c is
      bisected to machine precision; the vertex is then snapped exactly from the points
      nearest the line.

    Returns ``(L0, L1)``.
    """
    q = float(quantile)
    if not (0.0 < q <= 1.0):
        raise ValueError(f"quantile must be in (0, 1], got {quantile!r}")
    g, L = _as_points(grad_norms, smoothness)
    if g.size < 2:
        raise ValueError(f"need at least 2 finite points, got {g.size}")
    if np.any(g < 0):
        raise ValueError(f"grad_norms must be >= 0, got min {g.min()!r}")
    n = g.size
    m = max(1, math.ceil(q * n - 1e-9))  # points the line must cover
    gbar = float(g.mean())
    if gbar == 0.0:  # all g_i = 0: the slope costs nothing and changes nothing
        return float(max(0.0, np.partition(L, m - 1)[m - 1])), 0.0

    if m == n:
        on = _upper_hull(g, L)
        gi, gj, Li, Lj = g[on[:-1]], g[on[1:]], L[on[:-1]], L[on[1:]]
        pos = on[g[on] > 0]
        slopes = np.concatenate([[0.0], (Lj - Li) / (gj - gi), L[pos] / g[pos]])
        _, L1, L0 = _cheapest(g, L, m, slopes)
        return L0, L1

    lo, hi = 0.0, float(max(0.0, np.partition(L, m - 1)[m - 1]))  # hi: the best flat line
    if _pivot_slope(g, L, m, lo) is not None:
        return 0.0, 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if not (lo < mid < hi):
            break
        if _pivot_slope(g, L, m, mid) is None:
            lo = mid
        else:
            hi = mid
    slope = _pivot_slope(g, L, m, hi)
    # Snap to the exact vertex: pair up the points nearest the near-optimal line.
    resid = np.abs(L - (hi - slope * gbar) - slope * g)
    near = np.argsort(resid)[: min(n, 12)]
    ii, jj = np.triu_indices(near.size, k=1)
    a, b = near[ii], near[jj]
    with np.errstate(divide="ignore", invalid="ignore"):
        pair = (L[b] - L[a]) / (g[b] - g[a])
        origin = L[near] / g[near]
    _, L1, L0 = _cheapest(g, L, m, np.concatenate([[0.0, slope], pair, origin]))
    return L0, L1
