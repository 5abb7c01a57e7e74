"""Pure tensor update rules for clipped and normalized SGD.

Every function here works on lists of tensors, updates parameters in place where it says
so, and never moves a value from the device to the host: norms and clip coefficients stay
0-dim tensors, so a CUDA step is queued without a synchronisation. Each step returns the
pre-clip gradient norm, the quantity the paper plots on its x-axis.

Conventions follow ``torch.nn.utils.clip_grad_norm_``: the clip coefficient is
``min(1, max_norm / (norm + eps))`` with ``eps = 1e-6``, so a clipped step here equals
``clip_grad_norm_`` followed by ``torch.optim.SGD`` (the tests check this to 1e-10 in float64).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

# torch.nn.utils.clip_grad_norm_ adds this to the norm before dividing.
CLIP_EPS = 1e-6


def global_norm(tensors: Sequence[Tensor]) -> Tensor:
    """L2 norm of all ``tensors`` concatenated, as a 0-dim tensor (no host sync)."""
    tensors = [t for t in tensors if t is not None]
    if not tensors:
        return torch.tensor(0.0)
    norms = torch._foreach_norm(tensors, 2.0)
    return torch.linalg.vector_norm(torch.stack(norms), 2.0)


def clip_coefficient(total_norm: Tensor, max_norm: float | None, eps: float = CLIP_EPS) -> Tensor:
    """``min(1, max_norm / (total_norm + eps))``; exactly 1 when ``max_norm`` is None."""
    if max_norm is None:
        return torch.ones_like(total_norm)
    return torch.clamp(max_norm / (total_norm + eps), max=1.0)


def clipped_sgd_step(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    momentum_buffers: list[Tensor | None],
    *,
    lr: float,
    max_norm: float | None,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    total_norm: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    r"""One step of SGD on globally clipped gradients, in place.

    .. math::
        c = \min\{1, \gamma / (\|g\| + \epsilon)\},\quad d = c\,g + \lambda x,\quad
        m \leftarrow \mu m + d,\quad x \leftarrow x - \eta m

    ``momentum_buffers`` is updated in place (``None`` entries are created on the first
    step, as torch.optim.SGD does). ``total_norm`` may be passed when the caller already
    computed it. Returns ``(pre_clip_norm, clip_coefficient)`` as 0-dim tensors.
    """
    if total_norm is None:
        total_norm = global_norm(grads)
    coef = clip_coefficient(total_norm, max_norm)
    if max_norm is None:
        d_p = list(grads)
    else:
        d_p = torch._foreach_mul(grads, coef.to(grads[0].dtype))
    if weight_decay != 0.0:
        d_p = torch._foreach_add(d_p, params, alpha=weight_decay)
    if momentum != 0.0:
        for i, buf in enumerate(momentum_buffers):
            if buf is None:
                momentum_buffers[i] = torch.clone(d_p[i]).detach()
            else:
                buf.mul_(momentum).add_(d_p[i])
        d_p = [b for b in momentum_buffers]
    torch._foreach_add_(params, d_p, alpha=-lr)
    return total_norm, coef


def normalized_sgd_step(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    *,
    lr: float,
    beta: float,
    total_norm: Tensor | None = None,
) -> Tensor:
    r"""One normalized-gradient step in place, :math:`x \leftarrow x - \eta g / (\|g\| + \beta)`.

    Returns the pre-step gradient norm as a 0-dim tensor.
    """
    if total_norm is None:
        total_norm = global_norm(grads)
    scale = (-lr / (total_norm + beta)).to(grads[0].dtype)
    torch._foreach_add_(params, torch._foreach_mul(grads, scale))
    return total_norm


def mixed_clipped_sgd_step(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    exp_avgs: Sequence[Tensor],
    *,
    lr: float,
    max_norm: float,
    beta: float,
    nu: float,
) -> tuple[Tensor, Tensor]:
    r"""Momentum / mixed clipping (Zhang, Jin, Fang, Wang, NeurIPS 2020), in place.

    .. math::
        m \leftarrow \beta m + (1-\beta) g,\qquad
        x \leftarrow x - \bigl[\nu\min\{\eta, \gamma/\|m\|\}\,m + (1-\nu)\min\{\eta, \gamma/\|g\|\}\,g\bigr]

    ``nu = 0`` is clipped SGD, ``nu = 1`` momentum clipping. ``exp_avgs`` (the m's, started at
    zero by the caller) are updated in place. A zero norm gives the step ``eta`` (no division
    by zero reaches the parameters). Returns ``(||g||, ||m||)`` as 0-dim tensors.
    """
    torch._foreach_mul_(exp_avgs, beta)
    torch._foreach_add_(exp_avgs, grads, alpha=1.0 - beta)
    g_norm, m_norm = global_norm(grads), global_norm(exp_avgs)
    dtype = grads[0].dtype
    h_m = torch.clamp(max_norm / m_norm, max=lr).to(dtype) * (-nu)
    h_g = torch.clamp(max_norm / g_norm, max=lr).to(dtype) * (-(1.0 - nu))
    torch._foreach_add_(params, torch._foreach_mul(exp_avgs, h_m))
    torch._foreach_add_(params, torch._foreach_mul(grads, h_g))
    return g_norm, m_norm
