r"""Gradient clippers for any torch optimizer: global norm, AGC, AutoClip and ZClip.

Each one is called between ``loss.backward()`` and ``optimizer.step()``, rewrites the
parameters' ``.grad`` in place and returns the *pre-clip* global gradient norm as a 0-dim
tensor on the gradients' device (the first gradient's device when they are spread over
several)::

    norm = clip_by_global_norm_(model.parameters(), 1.0)   # the papers' clipping
    norm = adaptive_clip_(model.parameters(), 0.01)        # unit-wise AGC
    clipper = ZClip()                                      # or AutoClip(10.0)
    norm = clipper(model.parameters())
    optimizer.step()

Norms are accumulated in float32, or in float64 where a gradient is float64 or bfloat16
(bfloat16 spans float32's range, so its squares need float64; no finite float16 tensor can
overflow a float32 sum of squares): a finite low-precision gradient never reads as ``inf``.
Nothing here moves a value from the device to the host: every decision ("clip or not",
"is this a spike") is a device-side tensor operation (a clamp or a ``torch.where``), as in
``torch.nn.utils.clip_grad_norm_``, so a CUDA step is queued without a synchronisation. The
stateful clippers keep their state in :meth:`state_dict` (tensors, ints and None only, so
``torch.load(weights_only=True)`` reads it back). Their float64 NumPy oracle is
:mod:`clipcore.clipping_reference`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable

import torch
from torch import Tensor

from .validation import check_choice, check_int, check_nonnegative, check_number, check_positive, invalid

__all__ = [
    "CLIP_EPS",
    "global_norm",
    "clip_with_norm_",
    "clip_by_global_norm_",
    "unitwise_norm",
    "adaptive_clip_",
    "AutoClip",
    "ZClip",
    "ZCLIP_MODES",
]

# torch.nn.utils.clip_grad_norm_ adds this to the norm before dividing.
CLIP_EPS = 1e-6

_WIDE = (torch.float64, torch.bfloat16)


def _grads(parameters) -> list[Tensor]:
    """The ``.grad`` of every parameter that has one (a single tensor is one parameter)."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = []
    for p in parameters:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            raise invalid("gradient", "sparse", "the clippers take dense gradients")
        grads.append(p.grad)
    return grads


def _with_grads(parameters) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def _accumulation_dtype(tensors: Iterable[Tensor]) -> torch.dtype:
    """float64 if any tensor is float64 or bfloat16, else float32."""
    return torch.float64 if any(t.dtype in _WIDE for t in tensors) else torch.float32


def _groups(tensors: list[Tensor]) -> dict:
    """``{(device, dtype): [tensors]}``: what one foreach kernel can take."""
    groups = defaultdict(list)
    for t in tensors:
        groups[(t.device, t.dtype)].append(t)
    return groups


def _foreach_ok(device: torch.device) -> bool:
    # The fused foreach kernels run on CUDA (and other accelerators); on the CPU they loop
    # in Python-free C++ anyway, so the per-tensor path is as fast and simpler to read.
    return device.type != "cpu"


def global_norm(tensors: Iterable[Tensor]) -> Tensor:
    """L2 norm of ``tensors`` concatenated, accumulated in float32 or wider (see the module
    docstring), as a 0-dim tensor on the first tensor's device; ``tensor(0.)`` for none.

    Like ``torch.nn.utils.get_total_norm``: one norm per tensor (one foreach launch per
    device and dtype off the CPU), then the norm of those norms. No host sync."""
    tensors = [t for t in tensors if t is not None]
    if not tensors:
        return torch.tensor(0.0)
    acc = _accumulation_dtype(tensors)
    first = tensors[0].device
    norms = []
    for (device, _), group in _groups(tensors).items():
        if _foreach_ok(device):
            group_norms = torch._foreach_norm(group, 2.0, dtype=acc)
        else:
            group_norms = [torch.linalg.vector_norm(t, 2.0, dtype=acc) for t in group]
        norms.extend(n.to(first) for n in group_norms)
    return torch.linalg.vector_norm(torch.stack(norms), 2.0)


def _scale_(tensors: list[Tensor], coef: Tensor) -> None:
    """``t *= coef`` for every tensor, in place (``coef`` a 0-dim tensor; no host sync).

    ``coef`` keeps its (accumulation) dtype: cast to float16 first, a coefficient like
    1e-7 would fall among float16's subnormals and lose its digits."""
    for (device, _), group in _groups(tensors).items():
        c = coef.to(device=device)
        if _foreach_ok(device):
            torch._foreach_mul_(group, c)
        else:
            for t in group:
                t.mul_(c)


def clip_with_norm_(parameters, max_norm, total_norm: Tensor) -> Tensor:
    r"""Scale the gradients by :math:`\min\{1, \gamma/(\|g\| + 10^{-6})\}` given their
    pre-computed global norm (``torch.nn.utils.clip_grads_with_norm_``'s convention); returns
    the coefficient as a 0-dim tensor. ``max_norm`` may be a float or a 0-dim tensor."""
    grads = _grads(parameters)
    # A clamp rather than `if coef < 1:`, which would read the coefficient on the host
    # (a CPU <=> device synchronisation on CUDA).
    coef = torch.clamp(max_norm / (total_norm + CLIP_EPS), max=1.0)
    if grads:
        _scale_(grads, coef)
    return coef


def clip_by_global_norm_(parameters, max_norm: float) -> Tensor:
    r"""Clip the global gradient norm to ``max_norm`` in place: the clipping of Zhang et al.
    (ICLR 2020), :math:`g \leftarrow \min\{1, \gamma/(\|g\| + 10^{-6})\}\,g`.

    The same result as ``torch.nn.utils.clip_grad_norm_(parameters, max_norm)`` (to 1e-10 in
    float64, tested), with its eps = 1e-6, but with the norm accumulated in float32 or wider
    for low-precision gradients. Returns the pre-clip global norm (0-dim tensor)."""
    max_norm = check_nonnegative("max_norm", max_norm)
    grads = _grads(parameters)
    total = global_norm(grads)
    if grads:
        clip_with_norm_(parameters, max_norm, total)
    return total


def unitwise_norm(x: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """AGC's unit norms: one per row along dim 0 (the output unit, where PyTorch puts it)
    for ``x.ndim > 1``, kept broadcastable to ``x``; the whole tensor's norm for ndim <= 1."""
    if x.ndim <= 1:
        return torch.linalg.vector_norm(x, 2.0, dtype=dtype)
    return torch.linalg.vector_norm(x, 2.0, dim=tuple(range(1, x.ndim)), keepdim=True, dtype=dtype)


def adaptive_clip_(parameters, clipping: float, eps: float = 1e-3) -> Tensor:
    r"""Unit-wise adaptive gradient clipping (AGC; Brock, De, Smith, Simonyan 2021, "High-
    performance large-scale image recognition without normalization", Section 4), in place.

    For every unit i (see :func:`unitwise_norm`) with weight :math:`W_i` and gradient
    :math:`G_i`, and the threshold :math:`t_i = \lambda\max\{\|W_i\|, \epsilon\}`
    (:math:`\lambda` = ``clipping``):

    .. math::
        G_i \leftarrow \begin{cases} G_i & \|G_i\| < t_i \\
        t_i\,G_i/\max\{\|G_i\|, 10^{-6}\} & \text{otherwise,} \end{cases}

    which is timm's ``adaptive_clip_grad`` (the reference behaviour, unit for unit). Unit norms
    are taken in float32 or wider. Returns the pre-clip *global* gradient norm."""
    clipping = check_positive("clipping", clipping)
    eps = check_nonnegative("eps", eps)
    params = _with_grads(parameters)
    grads = _grads(params)
    total = global_norm(grads)
    acc = _accumulation_dtype([*params, *grads])
    for p, g in zip(params, grads):
        threshold = unitwise_norm(p.detach(), acc).clamp(min=eps) * clipping
        g_norm = unitwise_norm(g, acc)
        # torch.where, not a Python branch: the decision stays on the device.
        scale = torch.where(g_norm < threshold, torch.ones_like(g_norm), threshold / g_norm.clamp(min=1e-6))
        g.mul_(scale)  # computed in the accumulation dtype, rounded once into g's
    return total


class AutoClip:
    r"""AutoClip (Seetharaman, Wichern, Pardo, Le Roux 2020, "AutoClip: adaptive gradient
    clipping for source separation networks"): append this step's global norm to the history
    of every norm seen so far, then clip the global norm to the ``percentile``-th percentile of
    that history (the paper uses 10):

    .. math::
        \eta_t = \mathrm{percentile}_p(\{\|g_1\|, \dots, \|g_t\|\}),\qquad
        g_t \leftarrow \min\{1, \eta_t/(\|g_t\| + 10^{-6})\}\,g_t ,

    the percentile with NumPy's default (linear) interpolation and the clipping with
    :func:`clip_with_norm_`, as the authors' code does (``np.percentile`` then
    ``clip_grad_norm_``). ``history`` bounds the window to the last ``history`` norms (None:
    every norm). The norms live on the gradients' device, in a ring buffer when ``history`` is
    set and in a buffer that doubles as it fills otherwise; the percentile is a sort and a
    lerp at host-known indices, so no call synchronises. State: :meth:`state_dict`.
    """

    def __init__(self, percentile: float, history: int | None = None):
        self.percentile = check_number("percentile", percentile)
        if not 0.0 <= self.percentile <= 100.0:
            raise invalid("percentile", percentile, "must be in [0, 100]")
        self.history = check_int("history", history, 1, allow_none=True)
        self._buffer: Tensor | None = None
        self._count = 0  # norms appended (host-side: how many, never their values)
        self._last: Tensor | None = None

    def _stored(self) -> int:
        return self._count if self.history is None else min(self._count, self.history)

    def _place(self, norms: Tensor, count: int) -> None:
        """Rebuild the buffer holding ``norms`` (oldest first) as the last of ``count`` appends."""
        n = norms.numel()
        size = self.history if self.history is not None else max(16, 2 * n)
        self._buffer = torch.zeros(size, dtype=norms.dtype, device=norms.device)
        slots = torch.arange(count - n, count, device=norms.device)
        self._buffer[slots % size if self.history is not None else slots - (count - n)] = norms
        self._count = count if self.history is not None else n

    def _append(self, norm: Tensor) -> Tensor:
        """Store ``norm``; returns the stored window (in ring order once the ring is full)."""
        if self._buffer is None or self._buffer.device != norm.device or self._buffer.dtype != norm.dtype:
            self._place(self._ordered().to(norm), self._count)
        n = self._stored()
        if self.history is None and n == self._buffer.numel():
            grown = torch.zeros(2 * n, dtype=norm.dtype, device=norm.device)
            grown[:n] = self._buffer
            self._buffer = grown
        slot = self._count % self.history if self.history is not None else self._count
        self._buffer[slot] = norm
        self._count += 1
        return self._buffer[: self._stored()]

    def _ordered(self) -> Tensor:
        """The stored norms, oldest first."""
        n = self._stored()
        if self._buffer is None or n == 0:
            return torch.zeros(0)
        if self.history is None or self._count <= self.history:
            return self._buffer[:n].clone()
        start = self._count % self.history
        return torch.cat([self._buffer[start:], self._buffer[:start]])

    @staticmethod
    def percentile_of(values: Tensor, percentile: float) -> Tensor:
        """``np.percentile(values, percentile)`` (linear interpolation) on the device: the
        indices are known on the host, so no synchronisation."""
        n = values.numel()
        s = torch.sort(values).values
        virtual = percentile / 100.0 * (n - 1)
        lo = min(int(math.floor(virtual)), n - 1)
        hi = min(lo + 1, n - 1)
        t = virtual - lo
        a, b = s[lo], s[hi]
        # NumPy's lerp: from the nearer end, so t = 1 gives b exactly.
        return b - (b - a) * (1.0 - t) if t >= 0.5 else a + (b - a) * t

    @property
    def threshold(self) -> Tensor | None:
        """The threshold of the last call (a 0-dim tensor; None before the first call)."""
        return self._last

    def __call__(self, parameters) -> Tensor:
        grads = _grads(parameters)
        total = global_norm(grads)
        if not grads:
            return total
        window = self._append(total.detach())
        self._last = self.percentile_of(window, self.percentile)
        clip_with_norm_(parameters, self._last, total)
        return total

    def state_dict(self) -> dict:
        """``{"norms": the stored norms, oldest first (1-D tensor), "count": norms appended}``."""
        return {"norms": self._ordered(), "count": self._count}

    def load_state_dict(self, state: dict) -> None:
        """Load a :meth:`state_dict`; into a smaller window, the newest norms are kept."""
        norms, count = state["norms"], check_int("count", state["count"], 0)
        if not isinstance(norms, Tensor) or norms.ndim != 1 or norms.numel() > count:
            raise invalid("norms", norms, f"must be a 1-D tensor of at most count = {count} norms")
        if self.history is not None:
            norms = norms[-self.history :]
            if norms.numel() < min(count, self.history):  # saved with a smaller window
                count = norms.numel()
        self._buffer, self._count, self._last = None, 0, None
        if norms.numel():
            self._place(norms.detach().clone(), count)
        else:
            self._count = count if self.history is not None else 0


ZCLIP_MODES = ("reciprocal", "mean", "max")


class ZClip:
    r"""ZClip (Kumar, Owen, Roy Chowdhury, Güra 2025, "ZClip: adaptive spike mitigation for
    LLM pre-training", arXiv 2504.02507, Section 3): z-score spike detection on the global
    gradient norm :math:`g_t` against exponential moving averages of its mean and variance.

    - **Warm-up.** The first ``warmup_steps`` norms are collected without clipping; then
      :math:`\mu` and :math:`\sigma^2` are their mean and (population) variance.
    - **Detection.** :math:`z_t = (g_t - \mu_{t-1})/(\sigma_{t-1} + \epsilon)`; a spike is
      :math:`z_t > z_{\mathrm{thres}}`.
    - **Clipping.** On a spike the norm is clipped to
      :math:`g_t^* = \mu_{t-1} + \xi(z_t)\,\sigma_{t-1}`, else :math:`g_t^* = g_t`. The paper's
      Figure 3 shows three adjustments :math:`\xi`: ``"reciprocal"``,
      :math:`\xi(z) = z_{\mathrm{thres}}^2/z` (the paper's choice and the default: continuous
      at the threshold and harsher on larger outliers; the authors' code calls it
      ``mode="zscore", clip_option="adaptive_scaling"``); ``"mean"``, :math:`\xi = 0`; and
      ``"max"``, :math:`\xi = z_{\mathrm{thres}}` (the code's ``"percentile"`` mode). The
      gradients are scaled by :math:`g_t^*/(g_t + 10^{-6})` when :math:`g_t > g_t^*`.
    - **Update**, with the clipped norm: :math:`\mu_t = \alpha\mu_{t-1} + (1-\alpha)g_t^*`,
      then :math:`\sigma_t^2 = \alpha\sigma_{t-1}^2 + (1-\alpha)(g_t^* - \mu_t)^2` (the new mean,
      as the authors' code has it).

    Defaults are the paper's: :math:`\alpha = 0.97`, :math:`z_{\mathrm{thres}} = 2.5`, 25 warm-up
    steps, :math:`\epsilon = 10^{-6}`. ``max_norm`` (default None) adds a fixed cap
    :math:`\min\{g_t^*, \text{max\_norm}\}`, also during warm-up; the authors' code applies one
    of 1.0 by default, the paper's algorithm none. The statistics live on the gradients'
    device as 0-dim tensors and the spike test is a ``torch.where``: no call synchronises.
    The step counter is a host-side int. State: :meth:`state_dict`.
    """

    def __init__(
        self,
        alpha: float = 0.97,
        z_thresh: float = 2.5,
        warmup_steps: int = 25,
        mode: str = "reciprocal",
        eps: float = 1e-6,
        max_norm: float | None = None,
    ):
        self.alpha = check_number("alpha", alpha)
        if not 0.0 <= self.alpha < 1.0:
            raise invalid("alpha", alpha, "must be in [0, 1)")
        self.z_thresh = check_positive("z_thresh", z_thresh)
        self.warmup_steps = check_int("warmup_steps", warmup_steps, 1)
        self.mode = check_choice("mode", mode, ZCLIP_MODES)
        self.eps = check_nonnegative("eps", eps)
        self.max_norm = check_nonnegative("max_norm", max_norm, allow_none=True)
        self.step = 0
        self._warmup: Tensor | None = None
        self.mean: Tensor | None = None
        self.var: Tensor | None = None

    @property
    def initialized(self) -> bool:
        """Whether the warm-up is over (host-side: a count, not a value)."""
        return self.step >= self.warmup_steps

    def clip_value(self, norm: Tensor) -> Tensor:
        r""":math:`g_t^*` for a norm ``norm`` against the current statistics (no update)."""
        std = self.var.sqrt()
        z = (norm - self.mean) / (std + self.eps)
        spike = z > self.z_thresh
        if self.mode == "reciprocal":
            # z >= z_thresh where it is used; the clamp only keeps the other branch finite.
            xi = self.z_thresh**2 / torch.clamp(z, min=self.z_thresh)
            clipped = self.mean + xi * std
        elif self.mode == "mean":
            clipped = self.mean.clone()
        else:
            clipped = self.mean + self.z_thresh * std
        return torch.where(spike, clipped, norm)

    def __call__(self, parameters) -> Tensor:
        grads = _grads(parameters)
        total = global_norm(grads)
        if not grads:
            return total
        norm = total.detach()
        if not self.initialized:
            if self._warmup is None or self._warmup.device != norm.device:
                old = self._warmup
                self._warmup = torch.zeros(self.warmup_steps, dtype=norm.dtype, device=norm.device)
                if old is not None:
                    self._warmup[: self.step] = old[: self.step].to(norm)
            self._warmup[self.step] = norm
            self.step += 1
            if self.initialized:
                self.mean = self._warmup.mean()
                self.var = ((self._warmup - self.mean) ** 2).mean()
                self._warmup = None
            if self.max_norm is not None:
                clip_with_norm_(parameters, self.max_norm, total)
            return total
        self.mean, self.var = self.mean.to(norm), self.var.to(norm)
        target = self.clip_value(norm)
        cap = target if self.max_norm is None else torch.clamp(target, max=self.max_norm)
        # Scale only where the norm exceeds the cap (the authors' rule); a clamp of
        # cap / (norm + eps) would also shrink unclipped steps by norm / (norm + eps).
        coef = torch.where(norm > cap, cap / (norm + CLIP_EPS), torch.ones_like(norm))
        _scale_(grads, coef)
        self.mean = self.alpha * self.mean + (1.0 - self.alpha) * target
        self.var = self.alpha * self.var + (1.0 - self.alpha) * (target - self.mean) ** 2
        self.step += 1
        return total

    def state_dict(self) -> dict:
        """``{"step": int, "warmup_norms": 1-D tensor (the norms of the warm-up so far),
        "mean": 0-dim tensor or None, "var": 0-dim tensor or None}``."""
        warm = self._warmup[: self.step].clone() if self._warmup is not None else torch.zeros(0)
        return {
            "step": self.step,
            "warmup_norms": warm if not self.initialized else torch.zeros(0),
            "mean": None if self.mean is None else self.mean.clone(),
            "var": None if self.var is None else self.var.clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        step = check_int("step", state["step"], 0)
        warm, mean, var = state["warmup_norms"], state["mean"], state["var"]
        if step < self.warmup_steps:
            if not isinstance(warm, Tensor) or warm.shape != (step,):
                raise invalid("warmup_norms", warm, f"must be a tensor of the {step} warm-up norms")
            self._warmup = None
            if step:
                self._warmup = torch.zeros(self.warmup_steps, dtype=warm.dtype, device=warm.device)
                self._warmup[:step] = warm
            self.mean = self.var = None
        else:
            if not (isinstance(mean, Tensor) and isinstance(var, Tensor)):
                raise invalid("mean, var", (mean, var), "must be tensors once the warm-up is over")
            self._warmup = None
            self.mean, self.var = mean.clone(), var.clone()
        self.step = step
