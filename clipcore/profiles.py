"""The three scales every page and every training run comes in (declared once here)."""

from __future__ import annotations

__all__ = ["PROFILES", "DEFAULT_PROFILE", "check_profile"]

# name -> what it is for; the order is smallest to largest.
PROFILES = {
    "smoke": "seconds per page; the test suite executes every page with it",
    "ci": "the default: real data, small models, minutes per page on 2 CPU cores",
    "paper": "the papers' settings; the training pages want a GPU",
}
DEFAULT_PROFILE = "ci"


def check_profile(profile: str) -> str:
    """``profile`` if it is one of :data:`PROFILES`, else a ``ValueError`` naming it."""
    if not isinstance(profile, str) or profile not in PROFILES:
        raise ValueError(f"Invalid profile: {profile!r} (choose from {', '.join(PROFILES)})")
    return profile
