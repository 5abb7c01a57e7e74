"""Tests for clipcore.runtime: the one device choice and the one seeding."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from clipcore.runtime import resolve_device, seed_everything


def test_resolve_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            resolve_device("cuda")


def test_resolve_device_defaults_and_accepted_forms():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device().type == expected
    assert resolve_device(None) == resolve_device("auto")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda:1"):
            resolve_device("cuda:1")


@pytest.mark.parametrize("bad", ["gpu", "GPU", "", "cuda:", "cuda:x", "cpu ", "tpu", "auto:0", 0, 1.5])
def test_resolve_device_rejects_bad_devices_naming_them(bad):
    with pytest.raises(ValueError, match="device"):
        resolve_device(bad)


def test_seed_everything_returns_a_generator_and_seeds_every_library():
    rng = seed_everything(7)
    assert isinstance(rng, np.random.Generator)
    draws = (rng.random(3), random.random(), np.random.random(), torch.rand(2))
    again = seed_everything(7)
    np.testing.assert_array_equal(again.random(3), draws[0])
    assert random.random() == draws[1] and np.random.random() == draws[2]
    assert torch.equal(torch.rand(2), draws[3])
    np.testing.assert_array_equal(seed_everything(7).random(3), np.random.default_rng(7).random(3))
    assert not np.array_equal(seed_everything(8).random(3), draws[0])
    assert isinstance(seed_everything(np.int64(3)), np.random.Generator)
    seed_everything(2**63 - 1)  # the largest seed torch takes


@pytest.mark.parametrize("bad", [True, False, -1, 1.0, 2.5, "1", None, 2**63, 2**64])
def test_seed_everything_rejects_bad_seeds_naming_them(bad):
    with pytest.raises(ValueError, match="seed"):
        seed_everything(bad)
