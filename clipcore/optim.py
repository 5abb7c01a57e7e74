"""``torch.optim.Optimizer`` classes over :mod:`clipcore.functional`.

The classes validate their hyper-parameters (``ValueError`` naming the bad value), run one
functional step per parameter group, and keep the last pre-clip gradient norm readable
after ``step()`` as ``optimizer.last_grad_norm`` (a 0-dim tensor, still on the device).

Non-finite gradients: ``nonfinite="raise"`` (default) raises ``FloatingPointError``;
``"skip"`` leaves the parameters untouched and counts the step in ``skipped_steps``;
``"ignore"`` does no check at all and so never synchronises with the device.
"""

from __future__ import annotations

import torch

from . import functional as F
from .validation import check_number

_NONFINITE_MODES = ("raise", "skip", "ignore")


class _GlobalNormOptimizer(torch.optim.Optimizer):
    """Shared bookkeeping: gradient collection, the non-finite policy, last norm."""

    def __init__(self, params, defaults, nonfinite: str):
        if nonfinite not in _NONFINITE_MODES:
            raise ValueError(f"Invalid nonfinite: {nonfinite!r} (choose from {_NONFINITE_MODES})")
        super().__init__(params, defaults)
        self.nonfinite = nonfinite
        self.skipped_steps = 0
        self.last_grad_norm: torch.Tensor | None = None

    def _group_tensors(self, group):
        params = [p for p in group["params"] if p.grad is not None]
        if any(p.grad.is_sparse for p in params):
            raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
        return params, [p.grad for p in params]

    def _finite_or_skip(self, norm: torch.Tensor) -> bool:
        """True when the step should go ahead. Costs one host sync unless mode is 'ignore'."""
        if self.nonfinite == "ignore":
            return True
        if bool(torch.isfinite(norm)):
            return True
        if self.nonfinite == "raise":
            raise FloatingPointError(
                f"non-finite gradient norm {float(norm)} in {type(self).__name__}.step(); "
                "pass nonfinite='skip' to skip such steps instead"
            )
        self.skipped_steps += 1
        return False

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads = self._group_tensors(group)
            if not params:
                continue
            norm = F.global_norm(grads)
            self.last_grad_norm = norm
            if self._finite_or_skip(norm):
                self._apply(group, params, grads, norm)
        return loss


class ClippedSGD(_GlobalNormOptimizer):
    r"""SGD on gradients clipped to global L2 norm ``max_norm``.

    .. math::
        x_{k+1} = x_k - \eta_c \min\Bigl\{1, \frac{\gamma}{\|g_k\|}\Bigr\} g_k

    This is clipped GD of Zhang et al. (ICLR 2020, Section 3, the step
    :math:`h_c = \min\{\eta_c, \gamma\eta_c/\|\nabla f(x)\|\}`), with optional heavy-ball
    momentum and weight decay applied after clipping exactly as
    ``clip_grad_norm_`` + ``torch.optim.SGD`` do. ``max_norm=None`` disables clipping.
    With several parameter groups each group is clipped by its own norm.
    """

    def __init__(self, params, lr, max_norm=None, momentum=0.0, weight_decay=0.0, *, nonfinite="raise"):
        check_number("learning rate", lr, low=0.0, strict=True)
        check_number("max_norm", max_norm, low=0.0, strict=True, allow_none=True)
        check_number("momentum", momentum, low=0.0)
        if momentum >= 1.0:
            raise ValueError(f"Invalid momentum: {momentum!r} (must be in [0, 1))")
        check_number("weight_decay", weight_decay, low=0.0)
        defaults = dict(lr=lr, max_norm=max_norm, momentum=momentum, weight_decay=weight_decay)
        super().__init__(params, defaults, nonfinite)
        self.last_clip_coef: torch.Tensor | None = None

    def _apply(self, group, params, grads, norm):
        bufs = [self.state[p].get("momentum_buffer") for p in params]
        _, coef = F.clipped_sgd_step(
            params,
            grads,
            bufs,
            lr=group["lr"],
            max_norm=group["max_norm"],
            momentum=group["momentum"],
            weight_decay=group["weight_decay"],
            total_norm=norm,
        )
        if group["momentum"] != 0.0:
            for p, b in zip(params, bufs):
                self.state[p]["momentum_buffer"] = b
        self.last_clip_coef = coef


class NormalizedSGD(_GlobalNormOptimizer):
    r"""Normalized gradient descent, :math:`x_{k+1} = x_k - \frac{\eta_n}{\|g_k\| + \beta} g_k`.

    Zhang et al. (ICLR 2020, Section 3, step :math:`h_n`). With :math:`\gamma\eta_c = \eta_n`
    and :math:`\gamma = \beta` its step lies in :math:`[h_c/2, h_c]` of clipped GD.
    """

    def __init__(self, params, lr, beta, *, nonfinite="raise"):
        check_number("learning rate", lr, low=0.0, strict=True)
        check_number("beta", beta, low=0.0, strict=True)
        super().__init__(params, dict(lr=lr, beta=beta), nonfinite)

    def _apply(self, group, params, grads, norm):
        F.normalized_sgd_step(params, grads, lr=group["lr"], beta=group["beta"], total_norm=norm)


class MixedClippedSGD(_GlobalNormOptimizer):
    r"""Momentum / mixed clipping of Zhang, Jin, Fang, Wang (NeurIPS 2020).

    .. math::
        m_{k+1} = \beta m_k + (1-\beta) g_k,\quad
        x_{k+1} = x_k - \bigl[\nu\min\{\eta, \tfrac{\gamma}{\|m_{k+1}\|}\}m_{k+1}
                  + (1-\nu)\min\{\eta, \tfrac{\gamma}{\|g_k\|}\}g_k\bigr]

    ``nu=0`` is clipped SGD (with the paper's exact ``min``, no eps), ``nu=1`` momentum clipping;
    ``m`` starts at zero. Its rates, :math:`O(\Delta L_0\epsilon^{-2})` deterministic and
    :math:`O(\Delta L_0\sigma^2\epsilon^{-4})` stochastic, have a leading term free of :math:`L_1`.
    """

    def __init__(self, params, lr, max_norm, beta=0.9, nu=1.0, *, nonfinite="raise"):
        check_number("learning rate", lr, low=0.0, strict=True)
        check_number("max_norm", max_norm, low=0.0, strict=True)
        check_number("beta", beta, low=0.0)
        if beta >= 1.0:
            raise ValueError(f"Invalid beta: {beta!r} (must be in [0, 1))")
        check_number("nu", nu, low=0.0)
        if nu > 1.0:
            raise ValueError(f"Invalid nu: {nu!r} (must be in [0, 1])")
        super().__init__(params, dict(lr=lr, max_norm=max_norm, beta=beta, nu=nu), nonfinite)

    def _apply(self, group, params, grads, norm):
        avgs = []
        for p in params:
            state = self.state[p]
            if "exp_avg" not in state:
                state["exp_avg"] = torch.zeros_like(p)
            avgs.append(state["exp_avg"])
        F.mixed_clipped_sgd_step(
            params,
            grads,
            avgs,
            lr=group["lr"],
            max_norm=group["max_norm"],
            beta=group["beta"],
            nu=group["nu"],
        )
