"""How a batch of uint8 images becomes network input: per-channel normalisation and the
standard CIFAR augmentation (random crop with zero padding 4, random horizontal flip)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["normalize", "crop_flip", "augment"]


def normalize(
    x_uint8: Tensor,
    mean: tuple[float, ...] | list[float],
    std: tuple[float, ...] | list[float],
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    r"""Network input :math:`(x / 255 - \mu_c) / \sigma_c` per channel, on ``x``'s device.

    ``x_uint8`` is ``[N, C, H, W]`` or ``[C, H, W]`` uint8; ``mean``/``std`` are in the
    ``[0, 1]`` pixel scale (as :class:`ImageData` stores them).
    """
    if not isinstance(x_uint8, Tensor) or x_uint8.dtype != torch.uint8:
        got = getattr(x_uint8, "dtype", type(x_uint8))
        raise ValueError(f"normalize expects a uint8 tensor, got {got}")
    if x_uint8.dim() not in (3, 4):
        raise ValueError(f"normalize expects [N, C, H, W] or [C, H, W], got shape {tuple(x_uint8.shape)}")
    c = x_uint8.shape[-3]
    if len(mean) != c or len(std) != c:
        raise ValueError(f"mean {tuple(mean)} / std {tuple(std)} do not have {c} channels")
    if any(not (s > 0 and math.isfinite(s)) for s in std):
        raise ValueError(f"Invalid std: {tuple(std)} (every entry must be finite and > 0)")
    m = torch.tensor(mean, dtype=dtype, device=x_uint8.device).view(c, 1, 1)
    s = torch.tensor(std, dtype=dtype, device=x_uint8.device).view(c, 1, 1)
    return (x_uint8.to(dtype) / 255.0 - m) / s


def crop_flip(x: Tensor, top: Tensor, left: Tensor, flip: Tensor, padding: int = 4) -> Tensor:
    r"""Per-image crop of the zero-padded batch, then optional horizontal flip.

    With :math:`P` the batch zero-padded by ``padding`` pixels on every side,
    ``out[n, :, i, j] = P[n, :, top_n + i, left_n + j']`` where :math:`j' = W - 1 - j` if
    ``flip[n]`` else :math:`j`. ``top``/``left`` are integer tensors in ``[0, 2 padding]``
    (``padding`` = no shift); one gather, no Python loop over images.
    """
    if x.dim() != 4:
        raise ValueError(f"crop_flip expects [N, C, H, W], got shape {tuple(x.shape)}")
    n, _, h, w = x.shape
    dev = x.device
    top, left, flip = top.to(dev).long(), left.to(dev).long(), flip.to(dev).bool()
    padded = F.pad(x, (padding, padding, padding, padding))
    rows = top[:, None] + torch.arange(h, device=dev)  # [N, H]
    j = torch.arange(w, device=dev)
    cols = left[:, None] + torch.where(flip[:, None], w - 1 - j, j)  # [N, W]
    # Advanced indices on dims 0, 2, 3 separated by a slice: the result is [N, H, W, C].
    out = padded[torch.arange(n, device=dev)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def augment(x: Tensor, generator: torch.Generator, padding: int = 4) -> Tensor:
    """Standard CIFAR augmentation: random crop with zero padding 4, random horizontal flip.

    Per image: ``top, left ~ U{0, ..., 2 padding}`` and ``flip ~ Bernoulli(1/2)``, drawn in
    that order from ``generator`` (on the generator's device, then moved to ``x``'s), so a
    seeded generator gives the same batch on every run. Works on uint8 or float ``x`` of
    shape ``[N, C, H, W]`` and keeps its dtype and device.
    """
    if not isinstance(x, Tensor) or x.dim() != 4:
        raise ValueError(f"augment expects [N, C, H, W], got {getattr(x, 'shape', type(x))}")
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"Invalid padding: {padding!r} (must be an integer >= 0)")
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"augment needs a torch.Generator, got {type(generator).__name__}")
    n = x.shape[0]
    gdev = generator.device
    top = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=gdev)
    left = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=gdev)
    flip = torch.randint(0, 2, (n,), generator=generator, device=gdev).bool()
    return crop_flip(x, top, left, flip, padding=padding)
