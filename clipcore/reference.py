"""Float64 NumPy versions of the update rules: the test oracle.

Written for clarity, one array at a time, with no shared code with
:mod:`clipcore.functional`, so that agreement between the two means something.
"""

from __future__ import annotations

import numpy as np

CLIP_EPS = 1e-6


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
    return [np.asarray(x, np.float64) - lr / (norm + beta) * np.asarray(g, np.float64)
            for x, g in zip(params, grads)], norm


def clipped_step_size(grad_norm, eta_c, gamma):
    r"""The paper's exact clipped step :math:`h_c = \min\{\eta_c, \gamma\eta_c/\|g\|\}` (no eps)."""
    grad_norm = np.asarray(grad_norm, np.float64)
    with np.errstate(divide="ignore", over="ignore"):
        return np.minimum(eta_c, gamma * eta_c / grad_norm)


def normalized_step_size(grad_norm, eta_n, beta):
    r""":math:`h_n = \eta_n / (\|g\| + \beta)`."""
    return eta_n / (np.asarray(grad_norm, np.float64) + beta)


def mixed_clipped_sgd_step(params, grads, exp_avgs, *, lr, max_norm, beta, nu):
    """Mixed clipping; returns ``(new_params, new_exp_avgs, grad_norm)``."""
    m = [beta * np.asarray(a, np.float64) + (1 - beta) * np.asarray(g, np.float64) for a, g in zip(exp_avgs, grads)]
    gn, mn = global_norm(grads), global_norm(m)
    h_m = lr if mn == 0 else min(lr, max_norm / mn)
    h_g = lr if gn == 0 else min(lr, max_norm / gn)
    new = [np.asarray(x, np.float64) - (nu * h_m * mi + (1 - nu) * h_g * np.asarray(g, np.float64))
           for x, mi, g in zip(params, m, grads)]
    return new, m, gn
