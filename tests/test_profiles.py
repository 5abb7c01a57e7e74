"""Tests for clipcore.profiles: the three scales, declared once."""

from __future__ import annotations

import pytest

from clipcore.profiles import DEFAULT_PROFILE, PROFILES, check_profile


def test_profiles_smallest_to_largest_and_the_default():
    assert list(PROFILES) == ["smoke", "ci", "paper"]
    assert all(isinstance(v, str) and v for v in PROFILES.values())
    assert DEFAULT_PROFILE == "ci"


def test_check_profile():
    for p in PROFILES:
        assert check_profile(p) == p
    for bad in ("huge", "CI", "", None, 1):
        with pytest.raises(ValueError, match="profile"):
            check_profile(bad)
    with pytest.raises(ValueError, match="huge"):
        check_profile("huge")
