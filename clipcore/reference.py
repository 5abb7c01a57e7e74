"""Float64 NumPy versions of the optimizer updates: the test oracle of :mod:`clipcore.functional`.

Each function here has the name and meaning of its counterpart there (``clipped_sgd_step``,
``normalized_sgd_step``, ``mixed_clipped_sgd_step``, ``global_norm``, ``clip_coefficient``). Written
for clarity, one array at a time, with no shared code with :mod:`clipcore.functional`, so that
agreement between the two means something. The papers' scalar step sizes (:math:`h_c`,
:math:`h_n`) are formulas, not updates: they live in :mod:`clipcore.theory`.
"""

from __future__ import annotations

import numpy as np

CLIP_EPS = 1e-6

__all__ = [
    "CLIP_EPS",
    "global_norm",
    "clip_coefficient",
    "clipped_sgd_step",
    "normalized_sgd_step",
    "mixed_clipped_sgd_step",
]


def global_norm(arrays) -> float:
    return float(np.sqrt(sum(float(np.sum(np.asarray(a, dtype=np.float64) ** 2)) for a in arrays)))


def clip_coefficient(norm: float, max_norm: float | None, eps: float = CLIP_EPS) -> float:
    if max_norm is None:
        return 1.0
    return min(1.0, max_norm / (norm + eps))


def clipped_sgd_step(params, grads, bufs, *, lr, max_norm, momentum=0.0, weight_decay=0.0, eps=CLIP_EPS):
    """Returns ``(new_params, new_bufs, pre_clip_norm)``; ``bufs`` entries may be None."""
    norm = global_norm(grads)
    c = clip_coefficient(norm, max_norm, eps)
    new_params, new_bufs = [], []
    for x, g, b in zip(params, grads, bufs):
        d = c * np.asarray(g, np.float64) + weight_decay * np.asarray(x, np.float64)
        if momentum != 0.0:
            b = d.copy() if b is None else momentum * b + d
            d = b
        new_params.append(np.asarray(x, np.float64) - lr * d)
        new_bufs.append(b)
    return new_params, new_bufs, norm


def normalized_sgd_step(params, grads, *, lr, beta):
    norm = global_norm(grads)
    return [
        np.asarray(x, np.float64) - lr / (norm + beta) * np.asarray(g, np.float64)
        for x, g in zip(params, grads)
    ], norm


def mixed_clipped_sgd_step(params, grads, exp_avgs, *, lr, max_norm, beta, nu):
    """Mixed clipping; returns ``(new_params, new_exp_avgs, grad_norm)``."""
    m = [
        beta * np.asarray(a, np.float64) + (1 - beta) * np.asarray(g, np.float64)
        for a, g in zip(exp_avgs, grads)
    ]
    gn, mn = global_norm(grads), global_norm(m)
    h_m = lr if mn == 0 else min(lr, max_norm / mn)
    h_g = lr if gn == 0 else min(lr, max_norm / gn)
    new = [
        np.asarray(x, np.float64) - (nu * h_m * mi + (1 - nu) * h_g * np.asarray(g, np.float64))
        for x, mi, g in zip(params, m, grads)
    ]
    return new, m, gn
