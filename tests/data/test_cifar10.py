"""Tests of clipcore.data.cifar10: the pickle directory on fake batches, missing and malformed files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from clipcore.data import (
    load_cifar10,
    load_image_data,
)

cuda = pytest.mark.cuda
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

# --------------------------------------------------------------------------------------
# CIFAR-10 directory
# --------------------------------------------------------------------------------------

LABEL_NAMES = [
    b"airplane",
    b"automobile",
    b"bird",
    b"cat",
    b"deer",
    b"dog",
    b"frog",
    b"horse",
    b"ship",
    b"truck",
]


def _write_fake_cifar(root: Path, seed: int = 0, rows: int = 3072) -> dict:
    """A tiny cifar-10-batches-py: batch k has k images (so order is checkable)."""
    rng = np.random.default_rng(seed)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    batches = {}
    for name, n in [(f"data_batch_{k}", k) for k in range(1, 6)] + [("test_batch", 3)]:
        x = rng.integers(0, 256, size=(n, rows), dtype=np.uint8)
        y = rng.integers(0, 10, size=n).tolist()
        batches[name] = (x, y)
        with open(d / name, "wb") as f:
            pickle.dump(
                {b"batch_label": name.encode(), b"data": x, b"labels": y, b"filenames": [b"f.png"] * n},
                f,
                protocol=2,
            )
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": LABEL_NAMES, b"num_vis": 3072}, f, protocol=2)
    return batches


def _ref_stats(x: np.ndarray):
    xf = x.astype(np.float64) / 255.0
    return xf.mean(axis=(0, 2, 3)), xf.std(axis=(0, 2, 3))


def test_fake_cifar_loads_with_layout_and_order(tmp_path):
    batches = _write_fake_cifar(tmp_path)
    ds = load_cifar10(tmp_path)
    assert load_cifar10(tmp_path / "cifar-10-batches-py") is ds  # parent or dir itself
    assert ds.name == "CIFAR-10" and ds.is_standin is False
    assert ds.train_x.shape == (15, 3, 32, 32) and ds.train_x.dtype == torch.uint8
    assert ds.test_x.shape == (3, 3, 32, 32)
    assert ds.train_y.dtype == torch.int64 and ds.train_y.shape == (15,)
    assert ds.classes == [c.decode() for c in LABEL_NAMES] and ds.num_classes == 10
    raw = np.concatenate([batches[f"data_batch_{k}"][0] for k in range(1, 6)])
    labels = sum((batches[f"data_batch_{k}"][1] for k in range(1, 6)), [])
    assert ds.train_y.tolist() == labels
    assert ds.test_y.tolist() == batches["test_batch"][1]
    # Channel-major rows: byte c*1024 + i*32 + j is pixel (i, j) of channel c.
    x = ds.train_x.numpy()
    for n, c, i, j in [(0, 0, 0, 0), (3, 1, 5, 7), (14, 2, 31, 31), (6, 2, 0, 31)]:
        assert x[n, c, i, j] == raw[n, c * 1024 + i * 32 + j]
    assert np.array_equal(ds.test_x.numpy().reshape(3, -1), batches["test_batch"][0])
    mean, std = _ref_stats(raw.reshape(-1, 3, 32, 32))
    np.testing.assert_allclose(ds.mean, mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ds.std, std, rtol=0, atol=1e-12)
    assert load_image_data(tmp_path) is ds
    assert "CIFAR-10" in repr(ds) and len(repr(ds)) < 300


def test_cifar_missing_and_malformed(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_cifar10(tmp_path / "absent")
    assert "absent" in str(e.value) and "data_batch_1" in str(e.value)

    _write_fake_cifar(tmp_path / "a")
    (tmp_path / "a" / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="lacks test_batch"):
        load_cifar10(tmp_path / "a")
    # A partial CIFAR-10 directory is an error, never silently replaced by the stand-in.
    with pytest.raises(FileNotFoundError, match="test_batch"):
        load_image_data(tmp_path / "a")

    _write_fake_cifar(tmp_path / "b", rows=3000)
    with pytest.raises(ValueError, match="3072"):
        load_cifar10(tmp_path / "b")

    _write_fake_cifar(tmp_path / "c")
    (tmp_path / "c" / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="data_batch_3"):
        load_cifar10(tmp_path / "c")

    _write_fake_cifar(tmp_path / "d")
    with open(tmp_path / "d" / "cifar-10-batches-py" / "data_batch_2", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8)}, f)
    with pytest.raises(ValueError, match="labels"):
        load_cifar10(tmp_path / "d")


def test_a_planted_batch_file_cannot_run_code(tmp_path):
    import os

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    _write_fake_cifar(tmp_path)
    root = tmp_path / "cifar-10-batches-py"
    (root / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil(), b"labels": [0]}))
    with pytest.raises(ValueError, match=r"data_batch_1.*not a valid pickle: global posix.system"):
        load_cifar10(tmp_path)
    assert not marker.exists()
