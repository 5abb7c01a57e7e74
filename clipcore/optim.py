r"""``torch.optim.Optimizer`` classes over :mod:`clipcore.functional`.

The classes validate their hyper-parameters (``ValueError`` naming the bad value) and run one
step over all parameter groups. A drop-in for ``clip_grad_norm_`` + ``torch.optim.SGD``::

    # before                                              # after
    opt = torch.optim.SGD(model.parameters(), lr=0.1,     opt = ClippedSGD(model.parameters(), lr=0.1,
                          momentum=0.9)                                    max_norm=1.0, momentum=0.9)
    loss.backward()                                       loss.backward()
    clip_grad_norm_(model.parameters(), 1.0)              opt.step()
    opt.step()

**One global norm.** The gradient norm is that of all parameter groups together, as
``clip_grad_norm_(model.parameters())`` computes it, so one step moves at most
:math:`\eta\gamma` whatever the grouping. ``per_group=True`` measures (and clips, normalises)
each group by its own norm instead. After ``step()``: ``last_grad_norm`` (the pre-step norm
of all gradients, a 0-dim device tensor), ``last_group_norms`` (one per group, only with
``per_group``) and, for the SGD-type classes, ``last_clip_coef`` (the factor :math:`c` of
:math:`x \leftarrow x - \eta c g`: 0-dim in the global mode, one per group otherwise).
Like ``clip_grad_norm_``, the SGD-type classes leave ``.grad`` scaled by :math:`c`.

**No host-device synchronisation.** A step is queued without waiting for the device, in each
``nonfinite`` mode but ``"raise"``:

``"skip"`` (default)
    a non-finite gradient norm skips the update on the device (a found-inf flag read by the
    update kernel) and adds 1 to ``skipped_steps``, a 0-dim int64 device tensor
    (``int(opt.skipped_steps)`` reads it, which synchronises); it survives ``state_dict()``.
``"raise"``
    raises ``FloatingPointError`` on a non-finite norm: the one mode that synchronises
    (once per step, to decide).
``"ignore"``
    no check: a non-finite gradient reaches the parameters.

**Mixed precision.** With ``torch.amp.GradScaler``, call ``scaler.unscale_(opt)`` before
reading norms yourself, then ``scaler.step(opt)``; the classes take the scaler's found-inf
flag on the device (an overflowing step is skipped and counted) instead of the scaler
synchronising to decide. Norms of float16/bfloat16 gradients are accumulated in float32.

**Distributed.** Under DDP the gradients are already averaged; under FSDP2
(``fully_shard``) parameters and gradients are DTensor shards, whose norm is reduced over the
mesh and whose update runs on the local shards: both give the step of one process on the
whole batch.

``impl`` picks the update kernels (:data:`clipcore.functional.IMPLS`): ``"auto"`` (the fused
kernel where it applies), ``"fused"``, ``"foreach"`` or ``"loop"``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import functional as F
from .validation import check_number

__all__ = [
    "ClippedSGD",
    "NormalizedSGD",
    "SmoothedClippedSGD",
    "NormalizedMomentumSGD",
    "MixedClippedSGD",
    "NONFINITE_MODES",
]

NONFINITE_MODES = ("skip", "raise", "ignore")


def _check_fraction(name: str, v) -> float:
    """A number in [0, 1)."""
    v = check_number(name, v, low=0.0)
    if v >= 1.0:
        raise ValueError(f"Invalid {name}: {v!r} (must be in [0, 1))")
    return v


class _GlobalNormOptimizer(torch.optim.Optimizer):
    """Shared step: gradients of all groups, one norm, the non-finite policy, the skip count."""

    # GradScaler.step() hands such optimizers its found-inf flag (and scale, if the gradients
    # are still scaled) as attributes instead of synchronising to decide whether to step.
    _step_supports_amp_scaling = True

    def __init__(self, params, defaults, *, nonfinite: str, per_group: bool, impl: str):
        if nonfinite not in NONFINITE_MODES:
            raise ValueError(f"Invalid nonfinite: {nonfinite!r} (choose from {NONFINITE_MODES})")
        if not isinstance(per_group, bool):
            raise ValueError(f"Invalid per_group: {per_group!r} (must be True or False)")
        F._check_impl(impl)
        super().__init__(params, defaults)
        self.nonfinite = nonfinite
        self.per_group = per_group
        self.impl = impl
        first = next((p for g in self.param_groups for p in g["params"]), None)
        device = first.device if first is not None else torch.device("cpu")
        self.skipped_steps = torch.zeros((), dtype=torch.int64, device=device)
        self.last_grad_norm: Tensor | None = None
        self.last_group_norms: Tensor | None = None

    # -- state ----------------------------------------------------------------------------------

    def state_dict(self):
        state = super().state_dict()
        state["skipped_steps"] = self.skipped_steps.detach().clone()
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        skipped = state_dict.pop("skipped_steps", 0)  # absent in checkpoints of older versions
        super().load_state_dict(state_dict)
        self.skipped_steps.copy_(torch.as_tensor(skipped, dtype=torch.int64))

    def _buffers(self, params, key: str) -> list[Tensor]:
        """``state[p][key]`` for each parameter, created as zeros on first use."""
        out = []
        for p in params:
            state = self.state[p]
            buf = state.get(key)
            if buf is None:
                buf = state[key] = torch.zeros_like(p, memory_format=torch.preserve_format)
            out.append(buf)
        return out

    # -- the step -------------------------------------------------------------------------------

    def _gather(self):
        groups = []
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if any(g.is_sparse for g in grads):
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            groups.append((group, params, grads))
        return groups

    def _found_inf(self, norm: Tensor) -> Tensor | None:
        """The skip flag (float 0/1 on the device), or None when every step goes ahead."""
        overflow = getattr(self, "found_inf", None)  # set by GradScaler.step()
        if overflow is not None:
            overflow = overflow.to(norm.device) > 0
        bad = None if self.nonfinite == "ignore" else ~torch.isfinite(norm)
        if self.nonfinite == "raise":
            unexplained = bad if overflow is None else bad & ~overflow
            if bool(unexplained):  # SYNC: the one mode that waits for the device
                raise FloatingPointError(
                    f"non-finite gradient norm {float(norm)} in {type(self).__name__}.step(); "
                    "pass nonfinite='skip' to skip such steps on the device instead"
                )
            bad = overflow
        elif overflow is not None:
            bad = overflow if bad is None else bad | overflow
        if bad is None:
            return None
        if self.skipped_steps.device != bad.device:
            self.skipped_steps = self.skipped_steps.to(bad.device)
        self.skipped_steps.add_(bad)
        return bad.to(torch.float32)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        groups = self._gather()
        if not groups:
            return loss
        scale = getattr(self, "grad_scale", None)  # GradScaler.step() without unscale_() first
        if scale is not None:
            for _, _, grads in groups:
                torch._foreach_div_(grads, scale.to(grads[0].device))
        if self.per_group:
            group_norms = [F.global_norm(grads) for _, _, grads in groups]
            device = group_norms[0].device
            norm = torch.linalg.vector_norm(torch.stack([n.to(device) for n in group_norms]), 2.0)
            self.last_group_norms = torch.stack([n.to(device) for n in group_norms])
        else:
            norm = F.global_norm([g for _, _, grads in groups for g in grads])
            group_norms = [norm] * len(groups)
        self.last_grad_norm = norm
        self._update(groups, group_norms, self._found_inf(norm))
        return loss

    def _update(self, groups, norms, found_inf):  # pragma: no cover - abstract
        raise NotImplementedError


class _ScaledSGD(_GlobalNormOptimizer):
    """SGD on :math:`c(\\|g\\|)\\,g`, with momentum and weight decay as ``torch.optim.SGD``."""

    _coef_keys: tuple[str, ...] = ()

    def _coefficient(self, norm: Tensor, group) -> Tensor | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _update(self, groups, norms, found_inf):
        coefs, cache = [], {}
        for (group, params, grads), norm in zip(groups, norms):
            key = (id(norm),) + tuple(group[k] for k in self._coef_keys)
            if key not in cache:
                cache[key] = self._coefficient(norm, group)
            coef = cache[key]
            momentum = group.get("momentum", 0.0)
            F.scaled_sgd_step_(
                params,
                grads,
                self._buffers(params, "momentum_buffer") if momentum != 0.0 else None,
                coef,
                lr=group["lr"],
                momentum=momentum,
                weight_decay=group.get("weight_decay", 0.0),
                found_inf=found_inf,
                impl=self.impl,
            )
            coefs.append(torch.ones_like(norm) if coef is None else coef)
        self.last_clip_coef = coefs[0] if len(cache) == 1 and not self.per_group else torch.stack(coefs)


class ClippedSGD(_ScaledSGD):
    r"""SGD on gradients clipped to global L2 norm ``max_norm``.

    .. math::
        x_{k+1} = x_k - \eta_c \min\Bigl\{1, \frac{\gamma}{\|g_k\| + \epsilon}\Bigr\} g_k

    This is clipped GD of Zhang et al. (ICLR 2020, Section 3, the step
    :math:`h_c = \min\{\eta_c, \gamma\eta_c/\|\nabla f(x)\|\}`), with optional heavy-ball
    momentum and weight decay applied after clipping exactly as
    ``clip_grad_norm_(params, max_norm)`` + ``torch.optim.SGD(params, lr, momentum,
    weight_decay)`` do (:math:`\epsilon = 10^{-6}` as there), in one fused pass.
    ``max_norm=None`` disables clipping. :math:`\|g_k\|` is the norm of all parameter groups
    together; ``per_group=True`` clips each group by its own norm. Non-finite steps, mixed
    precision and FSDP2: see :mod:`clipcore.optim`.
    """

    _coef_keys = ("max_norm",)

    def __init__(
        self,
        params,
        lr,
        max_norm=None,
        momentum=0.0,
        weight_decay=0.0,
        *,
        nonfinite="skip",
        per_group=False,
        impl="auto",
    ):
        check_number("learning rate", lr, low=0.0, strict=True)
        check_number("max_norm", max_norm, low=0.0, strict=True, allow_none=True)
        _check_fraction("momentum", momentum)
        check_number("weight_decay", weight_decay, low=0.0)
        defaults = dict(lr=lr, max_norm=max_norm, momentum=momentum, weight_decay=weight_decay)
        super().__init__(params, defaults, nonfinite=nonfinite, per_group=per_group, impl=impl)
        self.last_clip_coef: Tensor | None = None

    def _coefficient(self, norm, group):
        if group["max_norm"] is None:
            return None
        return F.clip_coefficient(norm, group["max_norm"])


class NormalizedSGD(_ScaledSGD):
    r"""Normalized gradient descent, :math:`x_{k+1} = x_k - \frac{\eta_n}{\|g_k\| + \beta} g_k`.

    Zhang et al. (ICLR 2020, Section 3, step :math:`h_n`). With :math:`\gamma\eta_c = \eta_n`
    and :math:`\gamma = \beta` its step lies in :math:`[h_c/2, h_c]` of clipped GD.
    :math:`\|g_k\|` is the norm of all parameter groups together (``per_group=True``: each
    group's own).
    """

    _coef_keys = ("beta",)

    def __init__(self, params, lr, beta, *, nonfinite="skip", per_group=False, impl="auto"):
        check_number("learning rate", lr, low=0.0, strict=True)
        check_number("beta", beta, low=0.0, strict=True)
        super().__init__(params, dict(lr=lr, beta=beta), nonfinite=nonfinite, per_group=per_group, impl=impl)
        self.last_clip_coef: Tensor | None = None

    def _coefficient(self, norm, group):
        return 1.0 / (norm + group["beta"])


class SmoothedClippedSGD(_ScaledSGD):
    r"""Smoothed clipping, :math:`x_{k+1} = x_k - \frac{\eta}{L_0 + L_1\|g_k\|} g_k`.

    The step of gradient descent for :math:`(L_0, L_1)`-smooth functions (Gorbunov et al.,
    2024, *Methods for convex (L0,L1)-smooth optimization: clipping, acceleration, and
    adaptivity*; Vankov et al., 2024, *Optimizing (L0,L1)-smooth functions by gradient
    methods*): without momentum its length :math:`\eta\|g\|/(L_0 + L_1\|g\|)` is at most
    :math:`\eta/L_1` and about :math:`\eta\|g\|/L_0` for small gradients, a smooth version of
    :math:`\min\{\eta\|g\|/L_0, \eta/L_1\}`. ``L0 = 0`` is normalized GD (no step at
    :math:`g = 0`). Optional momentum and weight decay act on the scaled gradient as in
    :class:`ClippedSGD`; :math:`\|g_k\|` is the norm of all groups together (``per_group``).
    """

    _coef_keys = ("L0", "L1")

    def __init__(
        self,
        params,
        lr,
        L0,
        L1,
        momentum=0.0,
        weight_decay=0.0,
        *,
        nonfinite="skip",
        per_group=False,
        impl="auto",
    ):
        check_number("learning rate", lr, low=0.0, strict=True)
        check_number("L0", L0, low=0.0)
        check_number("L1", L1, low=0.0)
        if L0 == 0 and L1 == 0:
            raise ValueError(f"Invalid L1: {L1!r} (L0 and L1 cannot both be 0)")
        _check_fraction("momentum", momentum)
        check_number("weight_decay", weight_decay, low=0.0)
        defaults = dict(lr=lr, L0=L0, L1=L1, momentum=momentum, weight_decay=weight_decay)
        super().__init__(params, defaults, nonfinite=nonfinite, per_group=per_group, impl=impl)
        self.last_clip_coef: Tensor | None = None

    def _coefficient(self, norm, group):
        return F.smoothed_coefficient(norm, group["L0"], group["L1"])


class _MomentumNormOptimizer(_GlobalNormOptimizer):
    """Methods that normalise or clip an average :math:`m \\leftarrow \\beta m + (1-\\beta) g`."""

    def _averages(self, groups, found_inf):
        avgs = []
        for group, params, grads in groups:
            m = self._buffers(params, "exp_avg")
            F.ema_(m, grads, group["beta"], found_inf=found_inf, impl=self.impl)
            avgs.append(m)
        if self.per_group:
            m_norms = [F.global_norm(m) for m in avgs]
            device = m_norms[0].device
            self.last_momentum_norm = torch.linalg.vector_norm(torch.stack([n.to(device) for n in m_norms]))
        else:
            self.last_momentum_norm = F.global_norm([t for m in avgs for t in m])
            m_norms = [self.last_momentum_norm] * len(groups)
        return avgs, m_norms


class NormalizedMomentumSGD(_MomentumNormOptimizer):
    r"""Normalized SGD with momentum (Cutkosky & Mehta, ICML 2020, *Momentum improves
    normalized SGD*, Algorithm 1):

    .. math::
        m_t = \beta\, m_{t-1} + (1-\beta)\, g_t,\qquad
        x_{t+1} = x_t - \eta\, \frac{m_t}{\|m_t\|},\qquad m_0 = 0,

    so every step has length exactly :math:`\eta` (none while :math:`m_t = 0`). :math:`\|m_t\|`
    is the norm over all parameter groups together, so with one learning rate the whole step
    has length :math:`\eta`; ``per_group=True`` normalises each group by its own norm, so each
    group moves its own learning rate. After ``step()``, ``last_momentum_norm`` holds
    :math:`\|m_t\|` (of all groups).
    """

    def __init__(self, params, lr, beta=0.9, *, nonfinite="skip", per_group=False, impl="auto"):
        check_number("learning rate", lr, low=0.0, strict=True)
        _check_fraction("beta", beta)
        super().__init__(params, dict(lr=lr, beta=beta), nonfinite=nonfinite, per_group=per_group, impl=impl)
        self.last_momentum_norm: Tensor | None = None

    def _update(self, groups, norms, found_inf):
        avgs, m_norms = self._averages(groups, found_inf)
        for (group, params, _), m, m_norm in zip(groups, avgs, m_norms):
            step = F.normalized_step_size(group["lr"], m_norm)
            F.sub_scaled_(params, m, step, found_inf=found_inf, impl=self.impl)


class MixedClippedSGD(_MomentumNormOptimizer):
    r"""Momentum / mixed clipping of Zhang, Jin, Fang, Wang (NeurIPS 2020).

    .. math::
        m_{k+1} = \beta m_k + (1-\beta) g_k,\quad
        x_{k+1} = x_k - \bigl[\nu\min\{\eta, \tfrac{\gamma}{\|m_{k+1}\|}\}m_{k+1}
                  + (1-\nu)\min\{\eta, \tfrac{\gamma}{\|g_k\|}\}g_k\bigr]

    ``nu=0`` is clipped SGD (with the paper's exact ``min``, no eps), ``nu=1`` momentum clipping;
    ``m`` starts at zero. Its rates, :math:`O(\Delta L_0\epsilon^{-2})` deterministic and
    :math:`O(\Delta L_0\sigma^2\epsilon^{-4})` stochastic, have a leading term free of :math:`L_1`.
    Both norms are over all parameter groups together (``per_group=True``: each group's own).
    """

    def __init__(
        self, params, lr, max_norm, beta=0.9, nu=1.0, *, nonfinite="skip", per_group=False, impl="auto"
    ):
        check_number("learning rate", lr, low=0.0, strict=True)
        check_number("max_norm", max_norm, low=0.0, strict=True)
        _check_fraction("beta", beta)
        check_number("nu", nu, low=0.0)
        if nu > 1.0:
            raise ValueError(f"Invalid nu: {nu!r} (must be in [0, 1])")
        defaults = dict(lr=lr, max_norm=max_norm, beta=beta, nu=nu)
        super().__init__(params, defaults, nonfinite=nonfinite, per_group=per_group, impl=impl)
        self.last_momentum_norm: Tensor | None = None

    def _update(self, groups, norms, found_inf):
        avgs, m_norms = self._averages(groups, found_inf)
        for (group, params, grads), m, g_norm, m_norm in zip(groups, avgs, norms, m_norms):
            lr, max_norm, nu = group["lr"], group["max_norm"], group["nu"]
            if nu != 0.0:
                F.sub_scaled_(
                    params,
                    m,
                    nu * F.mixed_step_sizes(lr, max_norm, m_norm),
                    found_inf=found_inf,
                    impl=self.impl,
                )
            if nu != 1.0:
                h_g = (1.0 - nu) * F.mixed_step_sizes(lr, max_norm, g_norm)
                F.sub_scaled_(params, grads, h_g, found_inf=found_inf, impl=self.impl)
