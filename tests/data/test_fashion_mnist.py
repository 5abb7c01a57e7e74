"""Tests of clipcore.data.fashion_mnist: idx files, padding to 32x32, missing files, the real data when installed."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from clipcore import data
from clipcore.data import (
    load_fashion_mnist,
    load_image_data,
    read_idx,
)

cuda = pytest.mark.cuda
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

# --------------------------------------------------------------------------------------
# idx / Fashion-MNIST
# --------------------------------------------------------------------------------------


def _ref_stats(x: np.ndarray):
    xf = x.astype(np.float64) / 255.0
    return xf.mean(axis=(0, 2, 3)), xf.std(axis=(0, 2, 3))


def _idx_bytes(a: np.ndarray) -> bytes:
    assert a.dtype == np.uint8
    return bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def _write_idx(path: Path, a: np.ndarray, gz: bool):
    raw = _idx_bytes(a)
    if gz:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.write_bytes(raw)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_roundtrip(tmp_path, gz):
    rng = np.random.default_rng(3)
    imgs = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=5).astype(np.uint8)
    _write_idx(tmp_path / "imgs", imgs, gz)
    _write_idx(tmp_path / "labs", labels, gz)
    suffix = ".gz" if gz else ""
    got = read_idx(tmp_path / f"imgs{suffix}")
    assert got.dtype == np.uint8 and np.array_equal(got, imgs)
    assert np.array_equal(read_idx(tmp_path / f"labs{suffix}"), labels)
    got.flags.writeable = True  # a private, writable copy (no torch read-only warning)


def test_read_idx_malformed(tmp_path):
    good = _idx_bytes(np.zeros((2, 3, 3), np.uint8))
    cases = {
        "magic": b"\x01\x00" + good[2:],
        "dtype": good[:2] + b"\x07" + good[3:],
        "short": good[:-1],
        "long": good + b"\x00",
        "header": good[:9],
    }
    for name, raw in cases.items():
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(ValueError, match=name):
            read_idx(tmp_path / name)
    (tmp_path / "badgz").write_bytes(b"\x1f\x8b" + b"\x00" * 20)
    with pytest.raises(ValueError, match="badgz"):
        read_idx(tmp_path / "badgz")


def _write_fake_fmnist(d: Path, n_train=6, n_test=4, seed=0):
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(1, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, size=n_train).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(1, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, size=n_test).astype(np.uint8),
    }
    for k, (name, a) in enumerate(arrays.items()):
        _write_idx(d / name, a, gz=bool(k % 2))  # a mix of plain and .gz files
    return arrays


def test_fake_fashion_mnist_padding_and_channels(tmp_path):
    arrays = _write_fake_fmnist(tmp_path / "fm")
    ds = load_fashion_mnist(tmp_path / "fm")
    assert ds.is_standin and "stand-in" in ds.name and "Fashion-MNIST" in ds.name
    assert ds.train_x.shape == (6, 3, 32, 32) and ds.test_x.shape == (4, 3, 32, 32)
    x = ds.train_x.numpy()
    assert np.array_equal(x[:, 0, 2:30, 2:30], arrays["train-images-idx3-ubyte"])
    assert np.array_equal(x[:, 0], x[:, 1]) and np.array_equal(x[:, 0], x[:, 2])
    border = np.ones((32, 32), bool)
    border[2:30, 2:30] = False
    assert (x[:, :, border] == 0).all()
    assert ds.train_y.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert ds.test_y.dtype == torch.int64
    mean, std = _ref_stats(x)
    np.testing.assert_allclose(ds.mean, mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ds.std, std, rtol=0, atol=1e-12)
    assert ds.classes[0] == "T-shirt/top" and len(ds.classes) == 10
    # load_image_data finds idx files in data_dir or in data_dir/fashion-mnist.
    assert load_image_data(tmp_path / "fm") is ds
    _write_fake_fmnist(tmp_path / "root" / "fashion-mnist", seed=1)
    assert load_image_data(tmp_path / "root").train_x.shape == (6, 3, 32, 32)


def test_fashion_mnist_missing(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_fashion_mnist(tmp_path / "none")
    msg = str(e.value)
    assert "none" in msg and "train-images-idx3-ubyte" in msg and "apt-get install" in msg
    _write_fake_fmnist(tmp_path / "part")
    (tmp_path / "part" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="lacks t10k-labels-idx1-ubyte"):
        load_fashion_mnist(tmp_path / "part")


@pytest.mark.skipif(
    not all(
        (data.FASHION_MNIST_DIR / f"{n}.gz").exists() or (data.FASHION_MNIST_DIR / n).exists()
        for n in data.FASHION_MNIST_FILES
    ),
    reason="Fashion-MNIST (Debian dataset-fashion-mnist) not installed",
)
def test_real_fashion_mnist():
    ds = load_fashion_mnist()
    assert ds.train_x.shape == (60_000, 3, 32, 32) and ds.test_x.shape == (10_000, 3, 32, 32)
    assert ds.train_x.dtype == torch.uint8
    assert int(ds.train_x[:, :, :2].max()) == 0 and int(ds.train_x[:, :, :, 30:].max()) == 0
    assert torch.bincount(ds.train_y).tolist() == [6000] * 10
    assert torch.bincount(ds.test_y).tolist() == [1000] * 10
    assert torch.equal(ds.train_x[:, 0], ds.train_x[:, 2])
    # Exact integer mean of the padded images vs the stored float statistic.
    mean = ds.train_x[:, 0].sum(dtype=torch.int64).item() / (60_000 * 1024 * 255)
    assert abs(ds.mean[0] - mean) < 1e-12
    assert 0.2 < ds.mean[0] < 0.25 and 0.3 < ds.std[0] < 0.36
    assert load_image_data() is ds  # no data_dir: the system stand-in
