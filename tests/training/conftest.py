"""Fixtures shared by the tests of clipcore.training."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models gain nothing from intra-op threads, and on a loaded machine spinning
    # OpenMP workers make them many times slower; restore the setting afterwards.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
