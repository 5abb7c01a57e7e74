"""Small helpers the book's pages share: device choice, seeding, glued numbers and verdicts.

Pages glue every number their prose states with :func:`glue_number` or :func:`glue_verdict`,
and the prose pastes them with ``{glue:text}`` / ``{glue:md}``: a verdict is computed by the
run that produced the figure, never typed into the text.
"""

from __future__ import annotations

import random

import numpy as np
import torch

PROFILES = ("smoke", "ci", "paper")


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"Invalid profile: {profile!r} (choose from {PROFILES})")
    return profile


def resolve_device(device: str | None = "auto") -> torch.device:
    """``'auto'`` (or None) picks CUDA when present, else CPU; anything else is used as given."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"Invalid device: {device!r} (CUDA is not available on this machine)")
    return dev


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch; return a NumPy generator for the page's own draws."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"Invalid seed: {seed!r} (must be an integer)")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def _glue(key, value):
    from myst_nb import glue

    glue(key, value, display=False)


def glue_number(key: str, value) -> float:
    """Glue a number for ``{glue:text}`key:fmt```; returns it as a float."""
    value = float(value)
    _glue(key, value)
    return value


def glue_text(key: str, text: str) -> str:
    """Glue inline Markdown for ``{glue:md}`key```."""
    from IPython.display import Markdown

    _glue(key, Markdown(text))
    return text


def glue_verdict(key: str, ok: bool, yes: str, no: str) -> bool:
    """Glue the sentence fragment that matches the computed truth value ``ok``."""
    ok = bool(ok)
    glue_text(key, f"**{yes}**" if ok else f"**{no}**")
    return ok


def glue_claim_verdicts(prefix: str, verdicts) -> None:
    """Glue, per estimator ``est`` of ``verdicts`` (:func:`clipcore.experiments.claim_verdicts`),
    ``{prefix}_claim_{est}`` ("reproduced" / "not reproduced") and the numbers
    ``{prefix}_rho_{est}``, ``{prefix}_lo_{est}``, ``{prefix}_gap_{est}``."""
    for est, v in verdicts.items():
        glue_verdict(f"{prefix}_claim_{est}", v["ok"], "reproduced", "not reproduced")
        glue_number(f"{prefix}_rho_{est}", v["rho"])
        glue_number(f"{prefix}_lo_{est}", v["lo"])
        glue_number(f"{prefix}_gap_{est}", v["gap"])


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x over the finite, positive points."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if keep.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])
