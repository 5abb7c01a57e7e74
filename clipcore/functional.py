r"""Pure tensor update rules for clipped, normalized and smoothed-clipped SGD.

Every function here works on lists of tensors, updates them in place where it says so, and
never moves a value from the device to the host: norms, coefficients and the skip flag stay
0-dim device tensors, so a CUDA step is queued without a synchronisation. Each method's step
returns the pre-step gradient norm, the quantity the paper plots on its x-axis.

Conventions follow ``torch.nn.utils.clip_grad_norm_``: the clip coefficient is
``min(1, max_norm / (norm + eps))`` with ``eps = 1e-6``, so a clipped step here equals
``clip_grad_norm_`` followed by ``torch.optim.SGD`` (the tests check this to 1e-10 in float64),
and like ``clip_grad_norm_`` the SGD-type steps leave ``.grad`` scaled by the step's coefficient.

Three implementations of each update, chosen per (device, dtype) bucket by ``impl``:

``"fused"``
    torch's fused SGD kernel, one pass over memory for the whole update. Its ``grad_scale``
    argument divides the gradient before weight decay and momentum -- exactly a clip
    coefficient -- and its ``found_inf`` flag skips the update on the device.
``"foreach"``
    ``torch._foreach_*`` in-place ops, no temporaries the size of a gradient.
``"loop"``
    the same in-place ops one tensor at a time, for tensors the other two do not take.

``"auto"`` takes the fused kernel for contiguous floating-point tensors on CUDA and for float32
and float64 ones on the CPU (whose kernel mishandles float16/bfloat16), ``foreach`` elsewhere.
FSDP2's DTensor parameters are updated through their local shards; their norms are reduced
over the mesh (a collective, not a host sync).

The update primitives are :func:`scaled_sgd_step_` (SGD on :math:`c\,g`), :func:`ema_` and
:func:`sub_scaled_`; the methods (:func:`clipped_sgd_step` ... :func:`mixed_clipped_sgd_step`)
are compositions of them.
"""

from __future__ import annotations

import sys
from typing import Sequence

import torch
from torch import Tensor

__all__ = [
    "CLIP_EPS",
    "IMPLS",
    "global_norm",
    "clip_coefficient",
    "smoothed_coefficient",
    "normalized_step_size",
    "mixed_step_sizes",
    "scaled_sgd_step_",
    "ema_",
    "sub_scaled_",
    "clipped_sgd_step",
    "normalized_sgd_step",
    "smoothed_clipped_sgd_step",
    "normalized_momentum_sgd_step",
    "mixed_clipped_sgd_step",
]

# torch.nn.utils.clip_grad_norm_ adds this to the norm before dividing.
CLIP_EPS = 1e-6

IMPLS = ("auto", "fused", "foreach", "loop")
_FUSED_DEVICE_TYPES = ("cpu", "cuda")
_PLAIN = frozenset((Tensor, torch.nn.Parameter))
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _dtensor_class():
    """``DTensor`` if ``torch.distributed.tensor`` is loaded, else None.

    No tensor can be a DTensor before that module is imported, so clipcore never imports it
    itself (it costs a second at start-up).
    """
    module = sys.modules.get("torch.distributed.tensor")
    return getattr(module, "DTensor", None)


# ---------------------------------------------------------------------------------------------
# Norms and coefficients
# ---------------------------------------------------------------------------------------------


def _norm_of(tensors: list[Tensor], dtypes: set[torch.dtype]) -> Tensor:
    """The L2 norm of ``tensors`` (one device), accumulated in float32 or, with float64, float64."""
    acc = torch.float64 if torch.float64 in dtypes else torch.float32
    if dtypes == {acc}:
        norms = torch._foreach_norm(tensors, 2.0)
    else:  # float16/bfloat16 (or mixed): per-tensor norms accumulated and returned in acc
        norms = torch._foreach_norm(tensors, 2.0, dtype=acc)
    # The same two steps as clip_grad_norm_, so its norm and ours agree to the last bit.
    return torch.linalg.vector_norm(torch.stack(norms), 2.0)


def global_norm(tensors: Sequence[Tensor | None]) -> Tensor:
    """L2 norm of all ``tensors`` concatenated, as a 0-dim tensor (no host sync).

    Accumulated in float32 (float64 if any tensor is float64), so the norm of finite
    float16/bfloat16 tensors is finite however large. DTensors (FSDP2 shards) contribute the
    norm of their full tensors: their partial norms are reduced over the mesh.
    """
    tensors = [t for t in tensors if t is not None]
    if not tensors:
        return torch.tensor(0.0)
    dtypes = {t.dtype for t in tensors}
    dtensor = _dtensor_class()
    if dtensor is None and len({t.device for t in tensors}) == 1:
        return _norm_of(tensors, dtypes)  # the common case, without per-tensor Python work
    by_place: dict[tuple, list[Tensor]] = {}
    for t in tensors:
        mesh = t.device_mesh if dtensor is not None and isinstance(t, dtensor) else None
        by_place.setdefault((mesh, t.device), []).append(t)
    parts = []
    for (mesh, _), ts in by_place.items():
        part = _norm_of(ts, dtypes)
        if mesh is not None:
            # DTensor ops reduce the shards' partial norms in one all-reduce over the mesh (a
            # collective queued on the device, not a host sync); this unwraps the replicated result.
            part = part.full_tensor()
        parts.append(part)
    if len(parts) == 1:
        return parts[0]
    device = parts[0].device
    return torch.linalg.vector_norm(torch.stack([p.to(device) for p in parts]), 2.0)


def clip_coefficient(total_norm: Tensor, max_norm: float | None, eps: float = CLIP_EPS) -> Tensor:
    """``min(1, max_norm / (total_norm + eps))``; exactly 1 when ``max_norm`` is None."""
    if max_norm is None:
        return torch.ones_like(total_norm)
    # clamp instead of `if coef < 1`: a comparison on the host would synchronise.
    return torch.clamp(max_norm / (total_norm + eps), max=1.0)


def smoothed_coefficient(total_norm: Tensor, L0: float, L1: float) -> Tensor:
    """``1 / (L0 + L1 * total_norm)``; 0 when the denominator is 0 (then the gradient is 0)."""
    denom = L0 + L1 * total_norm
    return torch.where(denom > 0, 1.0 / denom, torch.zeros_like(denom))


# ---------------------------------------------------------------------------------------------
# Buckets and the three implementations
# ---------------------------------------------------------------------------------------------

_fused_works: dict[str, bool] = {}


def _fused_available(device: torch.device) -> bool:
    """Whether this torch has the fused SGD kernel (tensor lr included) on ``device``'s type."""
    if device.type not in _FUSED_DEVICE_TYPES:
        return False
    if device.type not in _fused_works:
        x, g = torch.zeros(2, device=device), torch.zeros(2, device=device)
        lr = torch.zeros((), device=device)
        try:
            torch._fused_sgd_(
                [x], [g], [], weight_decay=0.0, momentum=0.0, lr=lr, dampening=0.0,
                nesterov=False, maximize=False, is_first_step=False,
            )  # fmt: skip
            _fused_works[device.type] = True
        except (RuntimeError, NotImplementedError, TypeError):
            _fused_works[device.type] = False
    return _fused_works[device.type]


def _check_impl(impl: str) -> str:
    if impl not in IMPLS:
        raise ValueError(f"Invalid impl: {impl!r} (choose from {IMPLS})")
    return impl


def _buckets(impl: str, *lists: Sequence[Tensor], tensor_lr: bool = False):
    """Yield ``(device, how, lists)`` per (device, dtype), DTensors replaced by their shards.

    ``how`` is the implementation for that bucket. ``tensor_lr``: the update passes a device
    learning rate to the fused kernel, which CUDA reads as float32 -- too coarse for float64.
    The i-th tensors of all lists share a device and dtype (as parameter, gradient, state do).
    """
    _check_impl(impl)
    dtensor = _dtensor_class()
    if dtensor is not None:
        lists = [[t.to_local() if isinstance(t, dtensor) else t for t in ts] for ts in lists]
    lists = [list(ts) for ts in lists]
    keys = [(t.device, t.dtype) for t in lists[0]]
    if len(set(keys)) == 1:
        groups = {keys[0]: lists}
    else:
        groups = {}
        for i, key in enumerate(keys):
            bucket = groups.get(key)
            if bucket is None:
                bucket = groups[key] = [[] for _ in lists]
            for out, ts in zip(bucket, lists):
                out.append(ts[i])
    for (device, dtype), bucket in groups.items():
        yield device, _implementation(impl, device, dtype, bucket, tensor_lr), bucket


def _implementation(impl: str, device: torch.device, dtype: torch.dtype, bucket, tensor_lr: bool) -> str:
    plain = all(set(map(type, ts)) <= _PLAIN for ts in bucket)
    fusable = (
        plain
        and dtype.is_floating_point
        # torch's CPU kernel gets float16/bfloat16 wrong (momentum and parameters; torch 2.13)
        and not (device.type == "cpu" and dtype in _LOW_PRECISION)
        and not (tensor_lr and dtype == torch.float64 and device.type != "cpu")
        and _fused_available(device)
        and all(all(map(Tensor.is_contiguous, ts)) for ts in bucket)
    )
    if impl == "fused" and not fusable:
        raise RuntimeError(
            f"impl='fused' was passed, but the fused kernel does not take these {dtype} tensors "
            f"on {device} (needs contiguous plain floating-point tensors on {_FUSED_DEVICE_TYPES}, "
            "float32 or float64 on the CPU)"
        )
    if impl != "auto":
        return impl
    return "fused" if fusable else "foreach" if plain else "loop"


def _fused(params, grads, bufs, *, lr, momentum=0.0, weight_decay=0.0, grad_scale=None, found_inf=None):
    """``x -= lr * m`` with ``m = momentum * m + grad / grad_scale + weight_decay * x`` in one pass.

    With ``grad_scale`` the kernel also writes ``grad / grad_scale`` back into ``grads``; with
    ``found_inf == 1`` it returns before touching anything.
    """
    torch._fused_sgd_(
        params,
        grads,
        bufs if momentum != 0.0 else [],
        weight_decay=weight_decay,
        momentum=momentum,
        lr=lr,
        dampening=0.0,
        nesterov=False,
        maximize=False,
        is_first_step=False,  # buffers start at zero, so mu * 0 + d == d: no first-step branch
        grad_scale=grad_scale,
        found_inf=found_inf,
    )


def _on(t: Tensor | None, device: torch.device, dtype: torch.dtype) -> Tensor | None:
    return None if t is None else t.to(device=device, dtype=dtype)


def _unless(found: Tensor | None, value, skipped_value, like: Tensor):
    """``value`` on a taken step, ``skipped_value`` on a skipped one (a device select)."""
    if found is None:
        return value
    if not isinstance(value, Tensor):
        value = torch.full_like(like, value)  # a fill on the device, not a host-to-device copy
    return torch.where(found.bool(), torch.full_like(value, skipped_value), value)


def _zero_nonfinite_(tensors: list[Tensor]) -> None:
    """Set inf/nan entries to 0 in place, so 0 * entry is 0 on a skipped step (finite ones kept)."""
    for t in tensors:
        torch.nan_to_num_(t, nan=0.0, posinf=0.0, neginf=0.0)


def _mul_(ts, s, foreach: bool) -> None:
    if foreach:
        torch._foreach_mul_(ts, s)
    else:
        for t in ts:
            t.mul_(s)


def _add_(ts, others, alpha: float, foreach: bool) -> None:
    if foreach:
        torch._foreach_add_(ts, others, alpha=alpha)
    else:
        for t, o in zip(ts, others):
            t.add_(o, alpha=alpha)


def _axpy_(ts, others, a, foreach: bool) -> None:
    """``t += a * other`` for a Python number or a 0-dim tensor ``a``, no temporaries."""
    if not isinstance(a, Tensor):
        _add_(ts, others, a, foreach)
    elif foreach:
        torch._foreach_addcmul_(ts, others, [a] * len(ts))
    else:
        for t, o in zip(ts, others):
            t.addcmul_(o, a)


# ---------------------------------------------------------------------------------------------
# The three update primitives
# ---------------------------------------------------------------------------------------------


def scaled_sgd_step_(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    momentum_buffers: Sequence[Tensor] | None,
    coef: Tensor | None,
    *,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    found_inf: Tensor | None = None,
    impl: str = "auto",
) -> None:
    r"""SGD on the scaled gradient :math:`c\,g`, in place, as ``torch.optim.SGD`` steps.

    .. math::
        d = c\,g + \lambda x,\quad m \leftarrow \mu m + d,\quad x \leftarrow x - \eta m

    (:math:`\mu = 0`: :math:`x \leftarrow x - \eta d`). ``coef`` is a 0-dim tensor (None: 1);
    ``grads`` are left holding :math:`c\,g`. ``momentum_buffers`` (one zero-initialised tensor
    per parameter; ignored when ``momentum == 0``) are updated in place. ``found_inf`` (0-dim,
    1.0 = skip) leaves parameters and buffers untouched on the device; the fallback paths then
    zero the gradients' non-finite entries.
    """
    lists = (params, grads, list(momentum_buffers)) if momentum != 0.0 else (params, grads)
    for device, how, bucket in _buckets(impl, *lists):
        xs, gs = bucket[0], bucket[1]
        ms = bucket[2] if momentum != 0.0 else []
        dtype = xs[0].dtype
        if how == "fused":
            scale = None
            if coef is not None:
                if dtype == torch.float64:
                    # The kernel's grad_scale is float32; scale float64 gradients exactly instead.
                    torch._foreach_mul_(gs, coef.to(device=device, dtype=dtype))
                else:
                    scale = (1.0 / coef).to(device=device, dtype=torch.float32)
            found = _on(found_inf, device, torch.float32)
            _fused(
                xs,
                gs,
                ms,
                lr=lr,
                momentum=momentum,
                weight_decay=weight_decay,
                grad_scale=scale,
                found_inf=found,
            )
            continue
        foreach = how == "foreach"
        found = _on(found_inf, device, dtype)
        if found is not None:
            _zero_nonfinite_(gs)
        c = (
            torch.ones((), device=device, dtype=dtype)
            if coef is None
            else coef.to(device=device, dtype=dtype)
        )
        if coef is not None or found is not None:
            _mul_(gs, _unless(found, c, 0.0, c), foreach)  # gradients now hold c*g (0 if skipped)
        if momentum != 0.0:
            _mul_(ms, _unless(found, momentum, 1.0, c), foreach)
            _add_(ms, gs, 1.0, foreach)
            if weight_decay != 0.0:
                _axpy_(ms, xs, _unless(found, weight_decay, 0.0, c), foreach)
            _axpy_(xs, ms, _unless(found, -lr, 0.0, c), foreach)
        else:
            if weight_decay != 0.0:
                _mul_(xs, _unless(found, 1.0 - lr * weight_decay, 1.0, c), foreach)
            _add_(xs, gs, -lr, foreach)


def ema_(
    averages: Sequence[Tensor],
    values: Sequence[Tensor],
    beta: float,
    *,
    found_inf: Tensor | None = None,
    impl: str = "auto",
) -> None:
    r"""Exponential moving average in place, :math:`m \leftarrow \beta m + (1-\beta) v`.

    Skipped on the device when ``found_inf`` is 1 (the fallback paths then zero the
    non-finite entries of ``values``).
    """
    for device, how, (ms, vs) in _buckets(impl, averages, values):
        dtype = ms[0].dtype
        if how == "fused":
            # beta*m + (1-beta)*v == m - lr*(v + wd*m) with lr = -(1-beta), wd = -1: one pass of
            # the fused SGD kernel (no grad_scale, so v is only read), skipped on found_inf.
            found = _on(found_inf, device, torch.float32)
            _fused(ms, vs, [], lr=-(1.0 - beta), weight_decay=-1.0, found_inf=found)
            continue
        foreach = how == "foreach"
        found = _on(found_inf, device, dtype)
        if found is not None:
            _zero_nonfinite_(vs)
        like = torch.zeros((), device=device, dtype=dtype)
        _mul_(ms, _unless(found, beta, 1.0, like), foreach)
        _axpy_(ms, vs, _unless(found, 1.0 - beta, 0.0, like), foreach)


def sub_scaled_(
    params: Sequence[Tensor],
    directions: Sequence[Tensor],
    alpha: Tensor,
    *,
    found_inf: Tensor | None = None,
    impl: str = "auto",
) -> None:
    r""":math:`x \leftarrow x - \alpha d` in place for a 0-dim device tensor :math:`\alpha`.

    Skipped on the device when ``found_inf`` is 1 (the fallback paths then zero the
    non-finite entries of ``directions``).
    """
    for device, how, (xs, ds) in _buckets(impl, params, directions, tensor_lr=True):
        dtype = xs[0].dtype
        if how == "fused":
            # A device learning rate; CUDA reads it as float32 (float64 buckets go to foreach).
            lr = alpha.to(device=device, dtype=torch.float64 if device.type == "cpu" else torch.float32)
            _fused(xs, ds, [], lr=lr, found_inf=_on(found_inf, device, torch.float32))
            continue
        found = _on(found_inf, device, dtype)
        if found is not None:
            _zero_nonfinite_(ds)
        a = -alpha.to(device=device, dtype=dtype)
        _axpy_(xs, ds, _unless(found, a, 0.0, a), how == "foreach")


# ---------------------------------------------------------------------------------------------
# The methods
# ---------------------------------------------------------------------------------------------


def _zero_buffers(buffers: list[Tensor | None], params: Sequence[Tensor]) -> list[Tensor]:
    """Replace ``None`` entries (first step) by zeros, in place in the caller's list."""
    for i, (b, p) in enumerate(zip(buffers, params)):
        if b is None:
            buffers[i] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return buffers


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
    found_inf: Tensor | None = None,
    impl: str = "auto",
) -> tuple[Tensor, Tensor]:
    r"""One step of SGD on globally clipped gradients, in place.

    .. math::
        c = \min\{1, \gamma / (\|g\| + \epsilon)\},\quad d = c\,g + \lambda x,\quad
        m \leftarrow \mu m + d,\quad x \leftarrow x - \eta m

    ``clip_grad_norm_(max_norm)`` + ``torch.optim.SGD(lr, momentum, weight_decay)`` in one pass;
    like ``clip_grad_norm_`` it leaves ``grads`` clipped. ``momentum_buffers`` is updated in
    place (``None`` entries become zero buffers). ``total_norm`` may be passed when the caller
    already computed it (e.g. across parameter groups). Returns ``(pre_clip_norm,
    clip_coefficient)`` as 0-dim tensors.
    """
    if total_norm is None:
        total_norm = global_norm(grads)
    coef = clip_coefficient(total_norm, max_norm)
    bufs = _zero_buffers(momentum_buffers, params) if momentum != 0.0 else None
    scaled_sgd_step_(
        params,
        grads,
        bufs,
        None if max_norm is None else coef,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        found_inf=found_inf,
        impl=impl,
    )
    return total_norm, coef


def normalized_sgd_step(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    *,
    lr: float,
    beta: float,
    total_norm: Tensor | None = None,
    found_inf: Tensor | None = None,
    impl: str = "auto",
) -> Tensor:
    r"""One normalized-gradient step in place, :math:`x \leftarrow x - \eta g / (\|g\| + \beta)`.

    Leaves ``grads`` holding :math:`g / (\|g\| + \beta)`. Returns the pre-step gradient norm.
    """
    if total_norm is None:
        total_norm = global_norm(grads)
    scaled_sgd_step_(params, grads, None, 1.0 / (total_norm + beta), lr=lr, found_inf=found_inf, impl=impl)
    return total_norm


def smoothed_clipped_sgd_step(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    momentum_buffers: list[Tensor | None] | None = None,
    *,
    lr: float,
    L0: float,
    L1: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    total_norm: Tensor | None = None,
    found_inf: Tensor | None = None,
    impl: str = "auto",
) -> tuple[Tensor, Tensor]:
    r"""One smoothed-clipping step in place, :math:`x \leftarrow x - \frac{\eta}{L_0 + L_1\|g\|} g`.

    Momentum and weight decay act on the scaled gradient as in :func:`clipped_sgd_step`.
    Returns ``(pre_step_norm, coefficient)`` with coefficient :math:`1/(L_0 + L_1\|g\|)`.
    """
    if total_norm is None:
        total_norm = global_norm(grads)
    coef = smoothed_coefficient(total_norm, L0, L1)
    bufs = _zero_buffers(momentum_buffers, params) if momentum != 0.0 else None
    scaled_sgd_step_(
        params,
        grads,
        bufs,
        coef,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        found_inf=found_inf,
        impl=impl,
    )
    return total_norm, coef


def normalized_step_size(lr: float, momentum_norm: Tensor) -> Tensor:
    """``lr / ||m||``, and 0 where ``||m|| == 0`` (a zero direction takes no step)."""
    return torch.where(momentum_norm > 0, lr / momentum_norm, torch.zeros_like(momentum_norm))


def normalized_momentum_sgd_step(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    exp_avgs: Sequence[Tensor],
    *,
    lr: float,
    beta: float,
    grad_norm: Tensor | None = None,
    found_inf: Tensor | None = None,
    impl: str = "auto",
) -> tuple[Tensor, Tensor]:
    r"""Normalized SGD with momentum (Cutkosky & Mehta, ICML 2020), in place.

    .. math::
        m_t = \beta m_{t-1} + (1-\beta) g_t,\qquad x_{t+1} = x_t - \eta\, m_t / \|m_t\|

    with :math:`m_0 = 0` (the caller's zero ``exp_avgs``) and no step while :math:`m_t = 0`.
    Returns ``(||g||, ||m_t||)`` as 0-dim tensors.
    """
    if grad_norm is None:
        grad_norm = global_norm(grads)
    ema_(exp_avgs, grads, beta, found_inf=found_inf, impl=impl)
    m_norm = global_norm(exp_avgs)
    sub_scaled_(params, exp_avgs, normalized_step_size(lr, m_norm), found_inf=found_inf, impl=impl)
    return grad_norm, m_norm


def mixed_step_sizes(lr: float, max_norm: float, norm: Tensor) -> Tensor:
    r""":math:`\min\{\eta, \gamma/\|v\|\}`; :math:`\eta` for a zero vector (no division by zero)."""
    return torch.clamp(max_norm / norm, max=lr)


def mixed_clipped_sgd_step(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    exp_avgs: Sequence[Tensor],
    *,
    lr: float,
    max_norm: float,
    beta: float,
    nu: float,
    grad_norm: Tensor | None = None,
    found_inf: Tensor | None = None,
    impl: str = "auto",
) -> tuple[Tensor, Tensor]:
    r"""Momentum / mixed clipping (Zhang, Jin, Fang, Wang, NeurIPS 2020), in place.

    .. math::
        m \leftarrow \beta m + (1-\beta) g,\qquad
        x \leftarrow x - \bigl[\nu\min\{\eta, \gamma/\|m\|\}\,m + (1-\nu)\min\{\eta, \gamma/\|g\|\}\,g\bigr]

    ``nu = 0`` is clipped SGD, ``nu = 1`` momentum clipping. ``exp_avgs`` (the m's, started at
    zero by the caller) are updated in place. A zero norm gives the step ``eta`` (no division
    by zero reaches the parameters). Returns ``(||g||, ||m||)`` as 0-dim tensors.
    """
    if grad_norm is None:
        grad_norm = global_norm(grads)
    ema_(exp_avgs, grads, beta, found_inf=found_inf, impl=impl)
    m_norm = global_norm(exp_avgs)
    if nu != 0.0:
        h_m = mixed_step_sizes(lr, max_norm, m_norm)
        sub_scaled_(params, exp_avgs, nu * h_m, found_inf=found_inf, impl=impl)
    if nu != 1.0:
        h_g = mixed_step_sizes(lr, max_norm, grad_norm)
        sub_scaled_(params, grads, (1.0 - nu) * h_g, found_inf=found_inf, impl=impl)
    return grad_norm, m_norm
