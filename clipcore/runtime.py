"""Where and with which seeds a computation runs: the one device choice and the one seeding."""

from __future__ import annotations

import random
import re

import numpy as np
import torch

from .validation import check_int, invalid

__all__ = ["resolve_device", "seed_everything", "DEVICE_PATTERN"]

# auto | cpu | cuda | cuda:N | mps: the device strings a config, a page or the CLI accepts.
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` (or None) is CUDA when available, else the CPU; a device that is not here
    is an error naming it."""
    if device is None:
        device = "auto"
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str) or not DEVICE_PATTERN.match(device):
        raise invalid("device", device, "auto, cpu, cuda, cuda:N or mps")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise invalid("device", device, "CUDA is not available here")
    if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise invalid("device", device, "MPS is not available here")
    return torch.device(device)


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python's ``random``, NumPy's global generator and torch (every device); return a
    fresh ``numpy.random.default_rng(seed)`` for the caller's own draws."""
    seed = check_int("seed", seed, 0)
    if seed >= 2**63:
        # torch.manual_seed takes a signed 64-bit seed.
        raise invalid("seed", seed, "must be below 2**63")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)
