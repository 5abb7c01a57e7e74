"""The one set of argument checks: each returns the value in canonical form or raises
``ValueError("Invalid <name>: <value> (<rule>)")``, so every bad input names itself."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = [
    "invalid",
    "is_number",
    "is_integer",
    "check_number",
    "check_positive",
    "check_nonnegative",
    "check_fraction",
    "check_unit_interval",
    "check_int",
    "check_choice",
    "check_positive_array",
    "check_threshold",
    "check_open_unit",
    "check_finite_array",
]


def invalid(name: str, value, why: str) -> ValueError:
    """The error every check raises: ``Invalid name: value (why)``."""
    return ValueError(f"Invalid {name}: {value!r} ({why})")


def is_number(v) -> bool:
    """A real scalar (Python or NumPy), not a bool."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def is_integer(v) -> bool:
    """A Python or NumPy integer, not a bool."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def check_number(name: str, v, *, low: float | None = None, strict: bool = False, allow_none: bool = False):
    """A finite number, ``> low`` (``strict``) or ``>= low``; returned as a float."""
    if v is None and allow_none:
        return None
    if not (is_number(v) and math.isfinite(v)):
        raise invalid(name, v, "must be a finite number")
    if low is not None and not (v > low if strict else v >= low):
        raise invalid(name, v, f"must be a finite number {'>' if strict else '>='} {low:g}")
    return float(v)


def check_positive(name: str, v, *, allow_none: bool = False):
    """A finite number > 0."""
    return check_number(name, v, low=0.0, strict=True, allow_none=allow_none)


def check_nonnegative(name: str, v, *, allow_none: bool = False):
    """A finite number >= 0."""
    return check_number(name, v, low=0.0, allow_none=allow_none)


def check_fraction(name: str, v):
    """A number in (0, 1]."""
    v = check_number(name, v)
    if not 0.0 < v <= 1.0:
        raise invalid(name, v, "must be in (0, 1]")
    return v


def check_unit_interval(name: str, v):
    """A number in [0, 1)."""
    v = check_number(name, v)
    if not 0.0 <= v < 1.0:
        raise invalid(name, v, "must be in [0, 1)")
    return v


def check_int(name: str, v, low: int | None = None, *, allow_none: bool = False):
    """An integer ``>= low``; returned as a Python int."""
    if v is None and allow_none:
        return None
    if not is_integer(v):
        raise invalid(name, v, "must be an integer")
    if low is not None and v < low:
        raise invalid(name, v, f"must be an integer >= {low}")
    return int(v)


def check_choice(name: str, v, choices: Sequence):
    """One of ``choices``."""
    if not isinstance(v, str) or v not in choices:
        raise invalid(name, v, "choose from " + ", ".join(map(str, choices)))
    return v


def check_positive_array(name: str, v) -> np.ndarray:
    """A non-empty float64 array of finite values > 0."""
    a = np.asarray(v, np.float64)
    if a.size == 0 or not np.all(np.isfinite(a)) or not np.all(a > 0):
        raise invalid(name, v, "must be finite and > 0")
    return a


def check_threshold(name: str, v) -> np.ndarray:
    """Clipping thresholds: a non-empty float64 array of values > 0, where ``inf`` means no
    clipping."""
    g = np.asarray(v, np.float64)
    if g.size == 0 or np.any(np.isnan(g)) or np.any(g <= 0):
        raise invalid(name, v, "must be > 0; inf means no clipping")
    return g


def check_open_unit(name: str, v) -> float:
    """A number in (0, 1), e.g. a probability level."""
    v = check_number(name, v)
    if not 0.0 < v < 1.0:
        raise invalid(name, v, "must be in (0, 1)")
    return v


def check_finite_array(name: str, a) -> np.ndarray:
    """A float64 NumPy copy of ``a`` (an array, a list or a torch tensor on any device) whose
    values are all finite."""
    if hasattr(a, "detach"):  # a torch tensor
        a = a.detach().cpu().numpy()
    a = np.asarray(a, np.float64)
    if not np.all(np.isfinite(a)):
        raise invalid(name, a, "contains non-finite values")
    return a
