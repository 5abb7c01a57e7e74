"""Float64 NumPy versions of the optimizer updates: the test oracle of :mod:`clipcore.functional`.

Each function here has the name and meaning of its counterpart there (``clipped_sgd_step``,
``normalized_sgd_step``, ``smoothed_clipped_sgd_step``, ``normalized_momentum_sgd_step``,
``mixed_clipped_sgd_step``, ``global_norm``, ``clip_coefficient``). Written for clarity, one
array at a time, with no shared code with :mod:`clipcore.functional`, so that agreement
between the two means something. Where an optimizer measures one norm across several
parameter groups, the caller passes that norm (``norm=``, ``m_norm=``) and calls the step
once per group. The papers' scalar step sizes (:math:`h_c`, :math:`h_n`) are formulas, not
updates: they live in :mod:`clipcore.theory`.
"""

from __future__ import annotations

import numpy as np

CLIP_EPS = 1e-6

__all__ = [
    "CLIP_EPS",
    "global_norm",
    "clip_coefficient",
    "ema",
    "clipped_sgd_step",
    "normalized_sgd_step",
    "smoothed_clipped_sgd_step",
    "normalized_momentum_sgd_step",
    "mixed_clipped_sgd_step",
]


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def global_norm(arrays) -> float:
    return float(np.sqrt(sum(float(np.sum(_f64(a) ** 2)) for a in arrays)))


def clip_coefficient(norm: float, max_norm: float | None, eps: float = CLIP_EPS) -> float:
    if max_norm is None:
        return 1.0
    return min(1.0, max_norm / (norm + eps))


def ema(averages, values, beta):
    """``beta * m + (1 - beta) * v`` for each pair."""
    return [beta * _f64(m) + (1 - beta) * _f64(v) for m, v in zip(averages, values)]


def _sgd_on_scaled(params, grads, bufs, c, lr, momentum, weight_decay):
    """SGD (torch.optim.SGD's update) on the gradients ``c * g``; ``bufs`` entries may be None."""
    new_params, new_bufs = [], []
    for x, g, b in zip(params, grads, bufs):
        d = c * _f64(g) + weight_decay * _f64(x)
        if momentum != 0.0:
            b = d.copy() if b is None else momentum * b + d
            d = b
        new_params.append(_f64(x) - lr * d)
        new_bufs.append(b)
    return new_params, new_bufs


def clipped_sgd_step(
    params, grads, bufs, *, lr, max_norm, momentum=0.0, weight_decay=0.0, eps=CLIP_EPS, norm=None
):
    """Returns ``(new_params, new_bufs, pre_clip_norm)``; ``bufs`` entries may be None."""
    norm = global_norm(grads) if norm is None else norm
    c = clip_coefficient(norm, max_norm, eps)
    new_params, new_bufs = _sgd_on_scaled(params, grads, bufs, c, lr, momentum, weight_decay)
    return new_params, new_bufs, norm


def normalized_sgd_step(params, grads, *, lr, beta, norm=None):
    """``x - lr / (||g|| + beta) * g``; returns ``(new_params, norm)``."""
    norm = global_norm(grads) if norm is None else norm
    return [_f64(x) - lr / (norm + beta) * _f64(g) for x, g in zip(params, grads)], norm


def smoothed_clipped_sgd_step(params, grads, bufs, *, lr, L0, L1, momentum=0.0, weight_decay=0.0, norm=None):
    """``x - lr / (L0 + L1 ||g||) * g`` (then momentum, weight decay as in SGD).

    Returns ``(new_params, new_bufs, norm)``; a zero denominator (``L0 = 0``, ``g = 0``) is no step.
    """
    norm = global_norm(grads) if norm is None else norm
    denom = L0 + L1 * norm
    c = 1.0 / denom if denom > 0 else 0.0
    new_params, new_bufs = _sgd_on_scaled(params, grads, bufs, c, lr, momentum, weight_decay)
    return new_params, new_bufs, norm


def normalized_momentum_sgd_step(params, grads, exp_avgs, *, lr, beta, m_norm=None):
    """``m = beta m + (1 - beta) g``, ``x - lr m / ||m||`` (no step when ``m = 0``).

    Returns ``(new_params, new_exp_avgs, grad_norm)``.
    """
    m = ema(exp_avgs, grads, beta)
    mn = global_norm(m) if m_norm is None else m_norm
    step = 0.0 if mn == 0 else lr / mn
    return [_f64(x) - step * mi for x, mi in zip(params, m)], m, global_norm(grads)


def mixed_clipped_sgd_step(params, grads, exp_avgs, *, lr, max_norm, beta, nu, norm=None, m_norm=None):
    """Mixed clipping; returns ``(new_params, new_exp_avgs, grad_norm)``."""
    m = ema(exp_avgs, grads, beta)
    gn = global_norm(grads) if norm is None else norm
    mn = global_norm(m) if m_norm is None else m_norm
    h_m = lr if mn == 0 else min(lr, max_norm / mn)
    h_g = lr if gn == 0 else min(lr, max_norm / gn)
    new = [_f64(x) - (nu * h_m * mi + (1 - nu) * h_g * _f64(g)) for x, mi, g in zip(params, m, grads)]
    return new, m, gn
