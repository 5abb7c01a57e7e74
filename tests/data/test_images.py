"""Tests of clipcore.data.images: which data a run gets, and scikit-learn's digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clipcore.data import (
    image_data,
    load_digits_images,
    load_image_data,
)

cuda = pytest.mark.cuda
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_load_image_data_nothing_available(tmp_path, monkeypatch):
    monkeypatch.setattr(image_data, "FASHION_MNIST_DIR", tmp_path / "no-system-copy")
    with pytest.raises(FileNotFoundError) as e:
        load_image_data(None)
    msg = str(e.value)
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "cifar-10-batches-py" in msg and "no-system-copy" in msg


@pytest.mark.parametrize("exists", [False, True])
def test_a_data_dir_without_images_is_an_error_not_the_stand_in(tmp_path, exists):
    # The system stand-in may well be installed: a given directory must still be used or refused.
    bad = tmp_path / "my-cifar"
    if exists:
        bad.mkdir()
        (bad / "ptb.train.txt").write_text("a b\n")
    with pytest.raises(FileNotFoundError, match=rf"Invalid data_dir: '{bad}' (does not exist|holds neither)"):
        load_image_data(bad)


# --------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------


def test_digits_images():
    from sklearn.datasets import load_digits

    ds = load_digits_images()
    assert ds.train_x.shape == (1500, 3, 32, 32) and ds.test_x.shape == (297, 3, 32, 32)
    assert ds.is_standin and "stand-in" in ds.name
    x = ds.train_x.numpy()
    # Every 4x4 block is constant and the 8x8 block image matches sklearn's scaled pixels.
    small = x[:, 0, ::4, ::4]
    assert np.array_equal(np.repeat(np.repeat(small, 4, 1), 4, 2), x[:, 0])
    assert np.array_equal(x[:, 0], x[:, 1])
    ref = load_digits()
    scaled = np.rint(ref.images * 255 / 16).astype(np.uint8)
    perm = np.random.default_rng(0).permutation(1797)
    assert np.array_equal(small, scaled[perm[:1500]])
    assert np.array_equal(ds.test_y.numpy(), ref.target[perm[1500:]])
    assert x.max() == 255 and x.min() == 0
    again = load_digits_images.__wrapped__()
    assert torch.equal(again.train_x, ds.train_x) and torch.equal(again.test_y, ds.test_y)
    with pytest.raises(ValueError, match="n_test"):
        load_digits_images(0)
