"""Float64 NumPy versions of the clippers: the test oracle of :mod:`clipcore.clipping`.

Each function or class here has the name and meaning of its counterpart there, takes lists
of arrays and returns new arrays (nothing in place) with the pre-clip global norm. Written
for clarity, one array and one step at a time, with plain Python floats for the statistics
and no code shared with :mod:`clipcore.clipping`, so that agreement between the two means
something.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CLIP_EPS",
    "global_norm",
    "clip_by_global_norm",
    "unitwise_norm",
    "adaptive_clip",
    "AutoClip",
    "ZClip",
]

CLIP_EPS = 1e-6


def _f64(arrays):
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def global_norm(arrays) -> float:
    return float(np.sqrt(sum(float(np.sum(a * a)) for a in _f64(arrays))))


def _scaled(grads, norm: float, threshold: float):
    """``clip_grad_norm_``'s rule: multiply by ``min(1, threshold / (norm + 1e-6))``."""
    c = min(1.0, threshold / (norm + CLIP_EPS))
    return [np.asarray(c * g) for g in _f64(grads)]


def clip_by_global_norm(grads, max_norm: float):
    """Returns ``(clipped_grads, pre_clip_norm)``."""
    norm = global_norm(grads)
    return _scaled(grads, norm, max_norm), norm


def unitwise_norm(x) -> np.ndarray:
    """Row norms (all axes but 0) for ndim > 1, kept broadcastable; the norm for ndim <= 1."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim <= 1:
        return np.asarray(np.sqrt(np.sum(x * x)))
    axes = tuple(range(1, x.ndim))
    return np.sqrt(np.sum(x * x, axis=axes, keepdims=True))


def adaptive_clip(params, grads, clipping: float, eps: float = 1e-3):
    """AGC, unit by unit: ``G_i`` unchanged if ``|G_i| < t_i = clipping * max(|W_i|, eps)``, else
    ``t_i G_i / max(|G_i|, 1e-6)``. Returns ``(clipped_grads, pre_clip_global_norm)``."""
    norm = global_norm(grads)
    out = []
    for w, g in zip(_f64(params), _f64(grads)):
        t = clipping * np.maximum(unitwise_norm(w), eps)
        n = unitwise_norm(g)
        out.append(np.where(n < t, g, g * (t / np.maximum(n, 1e-6))))
    return out, norm


class AutoClip:
    """A list of every norm (or the last ``history``), ``np.percentile`` of it including this
    step's norm, then :func:`clip_by_global_norm` to that value."""

    def __init__(self, percentile: float, history: int | None = None):
        self.percentile = percentile
        self.history = history
        self.norms: list[float] = []
        self.threshold: float | None = None

    def __call__(self, grads):
        norm = global_norm(grads)
        self.norms.append(norm)
        if self.history is not None:
            self.norms = self.norms[-self.history :]
        self.threshold = float(np.percentile(self.norms, self.percentile))
        return _scaled(grads, norm, self.threshold), norm


class ZClip:
    """ZClip step by step (see :class:`clipcore.clipping.ZClip` for the equations)."""

    def __init__(self, alpha=0.97, z_thresh=2.5, warmup_steps=25, mode="reciprocal", eps=1e-6, max_norm=None):
        self.alpha, self.z_thresh, self.warmup_steps = alpha, z_thresh, warmup_steps
        self.mode, self.eps, self.max_norm = mode, eps, max_norm
        self.buffer: list[float] = []
        self.mean: float | None = None
        self.var: float | None = None
        self.step = 0

    def target(self, norm: float) -> float:
        """The clipped norm g* for ``norm`` against the current statistics."""
        std = self.var**0.5
        z = (norm - self.mean) / (std + self.eps)
        if z <= self.z_thresh:
            return norm
        if self.mode == "reciprocal":
            return self.mean + (self.z_thresh**2 / z) * std
        if self.mode == "mean":
            return self.mean
        return self.mean + self.z_thresh * std

    def __call__(self, grads):
        norm = global_norm(grads)
        grads = _f64(grads)
        self.step += 1
        if self.mean is None:
            self.buffer.append(norm)
            if len(self.buffer) == self.warmup_steps:
                self.mean = sum(self.buffer) / len(self.buffer)
                self.var = sum((b - self.mean) ** 2 for b in self.buffer) / len(self.buffer)
                self.buffer = []
            if self.max_norm is not None:
                return _scaled(grads, norm, self.max_norm), norm
            return grads, norm
        g_star = self.target(norm)
        cap = g_star if self.max_norm is None else min(g_star, self.max_norm)
        coef = cap / (norm + CLIP_EPS) if norm > cap else 1.0
        self.mean = self.alpha * self.mean + (1 - self.alpha) * g_star
        self.var = self.alpha * self.var + (1 - self.alpha) * (g_star - self.mean) ** 2
        return [np.asarray(coef * g) for g in grads], norm
