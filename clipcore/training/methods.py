r"""The clipping methods of a :class:`~clipcore.training.config.TrainConfig` as the training loop
runs them: the clippers applied between ``backward()`` and ``step()``, and, for every method,
whether a step was clipped and at which threshold.

**Clipped, for every method.** A step is *clipped* when the method's threshold rule shortened
its update; the threshold is logged beside it (``clip_threshold``, nan where the method has
no threshold on a norm):

============================  ===========================================  ========================
method                        clipped when                                 ``clip_threshold``
============================  ===========================================  ========================
``sgd``, ``normalized_sgd``   never                                        nan
``clipped_sgd``               :math:`\|g\| > \gamma`                       :math:`\gamma`
``mixed_clipped_sgd``         :math:`\|m\| > \gamma` (:math:`\nu > 0`) or  :math:`\gamma`
                              :math:`\|g\| > \gamma` (:math:`\nu < 1`)
``smoothed_clipped_sgd``      :math:`\|g\| > L_0/L_1` (the step nearer     :math:`L_0/L_1`
                              :math:`\eta/L_1` than :math:`\eta\|g\|/L_0`)
``normalized_momentum_sgd``   :math:`\|m\| > 0` (every step normalised)    0
``agc``                       some unit's gradient norm exceeds its        nan (one per unit)
                              threshold :math:`\lambda\max\{\|W_i\|, \epsilon\}`
``autoclip``                  :math:`\|g\|` above the percentile           the percentile
``zclip``                     :math:`z > z_{\mathrm{thres}}`, i.e.         :math:`\mu + z_{\mathrm{thres}}(\sigma + \epsilon)`
                              :math:`\|g\| > \mu + z_{\mathrm{thres}}(\sigma+\epsilon)`  (nan in the warm-up)
============================  ===========================================  ========================

**Mixed clipping's threshold.** :class:`clipcore.optim.MixedClippedSGD` takes
:math:`\min\{\eta, \gamma'/\|v\|\}` with :math:`\gamma'` a bound on the step *length*; the loop's
:class:`LoopMixedClippedSGD` sets :math:`\gamma' = \eta_t\gamma` at every step, so
``max_norm`` is a threshold on the norm, as for clipped SGD (the step of each part is
:math:`\eta_t\min\{1, \gamma/\|v\|\}v`, and with :math:`\nu = 0` it is clipped SGD), and the
learning-rate schedule scales both together.

Every decision is a device-side tensor (no host sync).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..clipping import AutoClip, ZClip, adaptive_clip_, unitwise_norm
from ..optim import MixedClippedSGD, NormalizedMomentumSGD, SmoothedClippedSGD

__all__ = [
    "ClipResult",
    "LoopMixedClippedSGD",
    "make_clipper",
    "attach_clipper",
    "clipper_of",
    "clip_hook",
    "clipper_state",
    "load_clipper_state",
    "step_decision",
    "closed_form_step_length",
    "needs_snapshot",
]

_ATTR = "_clipcore_clipper"
_HOOK = "_clipcore_clip_hook"


@dataclass(frozen=True)
class ClipResult:
    """What a clipper did to one step's gradient: its pre-clip global ``norm``, the
    ``threshold`` used (nan where none) and whether it ``clipped`` (0-dim device tensors)."""

    norm: Tensor
    threshold: Tensor
    clipped: Tensor


class LoopMixedClippedSGD(MixedClippedSGD):
    r""":class:`~clipcore.optim.MixedClippedSGD` with ``threshold`` a bound on the *norm*: each
    step uses the length bound :math:`\gamma' = \eta_t\cdot` ``threshold`` at its own learning
    rate :math:`\eta_t` (see the module docstring)."""

    def __init__(self, params, lr, threshold, beta=0.9, nu=1.0, **kw):
        super().__init__(params, lr, lr * threshold, beta=beta, nu=nu, **kw)
        for group in self.param_groups:
            group["threshold"] = float(threshold)

    def _update(self, groups, norms, found_inf):
        for group, _, _ in groups:
            group["max_norm"] = group["lr"] * group["threshold"]
        super()._update(groups, norms, found_inf)


def _nan_like(norm: Tensor) -> Tensor:
    return torch.full_like(norm, math.nan)


class _AGC:
    """Unit-wise AGC; ``clipped`` when any unit's gradient norm exceeds its threshold."""

    def __init__(self, clipping: float, eps: float = 1e-3):
        self.clipping, self.eps = clipping, eps

    def __call__(self, params) -> ClipResult:
        params = [p for p in params if p.grad is not None]
        # The unit decisions of adaptive_clip_, taken before it scales the gradients.
        flags = [
            (
                unitwise_norm(p.grad, torch.float64)
                > self.clipping * unitwise_norm(p.detach(), torch.float64).clamp(min=self.eps)
            ).any()
            for p in params
        ]
        norm = adaptive_clip_(params, self.clipping, self.eps)
        clipped = torch.stack(flags).any() if flags else torch.zeros((), dtype=torch.bool)
        return ClipResult(norm, _nan_like(norm), clipped.to(norm.device))

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class _AutoClip:
    """AutoClip; the threshold is this step's percentile of the norm history."""

    def __init__(self, percentile: float):
        self.inner = AutoClip(percentile)

    def __call__(self, params) -> ClipResult:
        norm = self.inner(params)
        threshold = self.inner.threshold if self.inner.threshold is not None else _nan_like(norm)
        threshold = threshold.to(norm)
        return ClipResult(norm, threshold, norm > threshold)

    def state_dict(self) -> dict:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state)


class _ZClip:
    """ZClip; the threshold is the spike boundary of the statistics before this step."""

    def __init__(self, alpha: float, z_thresh: float, warmup_steps: int):
        self.inner = ZClip(alpha=alpha, z_thresh=z_thresh, warmup_steps=warmup_steps)

    def __call__(self, params) -> ClipResult:
        z = self.inner
        threshold = None
        if z.initialized:  # host-side: a count
            # z_t > z_thresh  <=>  ||g|| > mu + z_thresh (sigma + eps): the statistics of t - 1.
            threshold = z.mean + z.z_thresh * (z.var.sqrt() + z.eps)
        norm = z(params)
        if threshold is None:
            return ClipResult(norm, _nan_like(norm), torch.zeros((), dtype=torch.bool, device=norm.device))
        threshold = threshold.to(norm)
        return ClipResult(norm, threshold, norm > threshold)

    def state_dict(self) -> dict:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state)


def make_clipper(cfg):
    """The clipper of ``cfg.clipper`` (None for none): called on the parameters, it clips their
    gradients in place and returns a :class:`ClipResult`; ``state_dict``/``load_state_dict``
    for checkpoints."""
    if cfg.clipper is None:
        return None
    if cfg.clipper == "agc":
        return _AGC(cfg.agc_clipping)
    if cfg.clipper == "autoclip":
        return _AutoClip(cfg.autoclip_percentile)
    if cfg.clipper == "zclip":
        return _ZClip(cfg.zclip_alpha, cfg.zclip_z, cfg.zclip_warmup)
    raise AssertionError(cfg.clipper)  # pragma: no cover - the config validates the choice


def attach_clipper(optimizer, clipper):
    """Keep ``clipper`` with ``optimizer`` (the loop's step finds it there); returns the optimizer."""
    setattr(optimizer, _ATTR, clipper)
    return optimizer


def clipper_of(optimizer):
    """The clipper attached to ``optimizer``, or None."""
    return getattr(optimizer, _ATTR, None)


class _ClipHook:
    """A step pre-hook that runs the clipper on the optimizer's parameters; ``take()`` returns
    (and forgets) the last :class:`ClipResult`."""

    def __init__(self, optimizer, clipper):
        self.clipper, self.last = clipper, None
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        optimizer.register_step_pre_hook(self)

    def __call__(self, optimizer, args, kwargs):
        self.last = self.clipper(self.params)

    def take(self) -> ClipResult | None:
        last, self.last = self.last, None
        return last


def clip_hook(optimizer) -> _ClipHook | None:
    """The step pre-hook that applies ``optimizer``'s clipper (None without one), registered on
    first use: after every hook registered before that, e.g. a data-parallel gradient average,
    so the clipper sees the gradient the optimizer steps on."""
    clipper = clipper_of(optimizer)
    if clipper is None:
        return None
    hook = getattr(optimizer, _HOOK, None)
    if hook is None:
        hook = _ClipHook(optimizer, clipper)
        setattr(optimizer, _HOOK, hook)
    return hook


def clipper_state(optimizer) -> dict | None:
    """The state of ``optimizer``'s clipper for a checkpoint (None without a clipper)."""
    clipper = clipper_of(optimizer)
    return None if clipper is None else clipper.state_dict()


def load_clipper_state(optimizer, state: dict | None) -> None:
    """Restore :func:`clipper_state` into ``optimizer``'s clipper."""
    clipper = clipper_of(optimizer)
    if clipper is None:
        return
    if state is None:
        raise ValueError("Invalid checkpoint: no clipper state for a run with a clipper")
    clipper.load_state_dict(state)


def step_decision(optimizer, norm: Tensor) -> tuple[Tensor, Tensor]:
    """``(clipped, threshold)`` of the step ``optimizer`` just took with pre-clip gradient norm
    ``norm`` (see the module docstring's table); call it after ``step()``."""
    group = optimizer.param_groups[0]
    if isinstance(optimizer, LoopMixedClippedSGD):
        gamma = torch.full_like(norm, group["threshold"])
        m = optimizer.last_momentum_norm.to(norm)
        nu = group["nu"]
        no = torch.zeros_like(norm, dtype=torch.bool)
        clipped = ((m > gamma) if nu > 0 else no) | ((norm > gamma) if nu < 1 else no)
        return clipped, gamma
    if isinstance(optimizer, SmoothedClippedSGD):
        L0, L1 = group["L0"], group["L1"]
        gamma = torch.full_like(norm, L0 / L1 if L1 > 0 else math.inf)
        return norm > gamma, gamma
    if isinstance(optimizer, NormalizedMomentumSGD):
        return optimizer.last_momentum_norm.to(norm) > 0, torch.zeros_like(norm)
    max_norm = group.get("max_norm")
    if max_norm is None:  # SGD, normalized SGD
        return torch.zeros_like(norm, dtype=torch.bool), _nan_like(norm)
    return norm > max_norm, torch.full_like(norm, max_norm)


def closed_form_step_length(cfg, lr: float, res: dict) -> Tensor | None:
    r""":math:`\|x_{t+1} - x_t\|` in closed form, for a step without momentum, weight decay or
    loss scaling (``res``: the loop's step result); None where there is none (mixed clipping
    with :math:`0 < \nu < 1`: two directions)."""
    norm = res["grad_norm"]
    if cfg.optimizer == "normalized_sgd":
        return lr * norm / (norm + cfg.beta)
    if cfg.optimizer == "normalized_momentum_sgd":
        return lr * (res["momentum_norm"] > 0).to(norm)
    if cfg.optimizer == "mixed_clipped_sgd":
        if 0 < cfg.nu < 1:
            return None
        v = res["momentum_norm"] if cfg.nu == 1 else norm
        return lr * torch.clamp(v, max=cfg.max_norm)
    # clipped, smoothed or plain SGD: lr * c * ||g||, the norm of the gradient it stepped on
    # (after a clipper, the clipped one).
    coef = res["coef"] if res["coef"] is not None else torch.ones_like(norm)
    return lr * coef * res.get("update_norm", norm)


def needs_snapshot(optimizer) -> bool:
    """Whether the step length must be measured (no closed form): mixed clipping with
    :math:`0 < \\nu < 1`."""
    return isinstance(optimizer, LoopMixedClippedSGD) and 0 < optimizer.param_groups[0]["nu"] < 1
