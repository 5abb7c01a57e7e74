"""Which image data a run gets: CIFAR-10 when the user has it, else the Fashion-MNIST
stand-in; scikit-learn's 8x8 digits for fast tests."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from . import image_data
from .cifar10 import holds_cifar10, load_cifar10
from .fashion_mnist import holds_fashion_mnist, load_fashion_mnist
from .image_data import CIFAR10_DIRNAME, IMAGES_HOWTO, ImageData, make_image_data

__all__ = ["load_digits_images", "load_image_data"]


@functools.lru_cache(maxsize=1)
def load_digits_images(n_test: int = 297) -> ImageData:
    """scikit-learn's 1,797 8x8 digits as a tiny CIFAR-shaped data set for fast tests.

    Pixel values 0..16 are scaled to ``round(255 v / 16)``; each 8x8 image is upsampled 4x
    by pixel replication (nearest neighbour) to fill 32x32 and repeated to 3 channels.
    Fixed split: a permutation drawn with ``numpy.random.default_rng(0)``; the last
    ``n_test`` images of it are the test set (1,500 train / 297 test by default).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - scikit-learn is a test dependency
        raise FileNotFoundError("load_digits_images needs scikit-learn (pip install scikit-learn)") from err
    digits = load_digits()
    n = len(digits.target)
    if not isinstance(n_test, int) or not 0 < n_test < n:
        raise ValueError(f"Invalid n_test: {n_test!r} (must be an integer in (0, {n}))")
    x = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)  # [N, 8, 8]
    x = x.repeat(4, axis=1).repeat(4, axis=2)  # [N, 32, 32], each pixel a 4x4 block
    x = np.repeat(x[:, None], 3, axis=1)
    y = digits.target.astype(np.int64)
    perm = np.random.default_rng(0).permutation(n)
    tr, te = perm[:-n_test], perm[-n_test:]
    return make_image_data(
        "digits (scikit-learn, stand-in for CIFAR-10)",
        True,
        x[tr],
        y[tr],
        x[te],
        y[te],
        [str(k) for k in range(10)],
        "sklearn.datasets.load_digits",
    )


def load_image_data(data_dir: str | Path | None = None) -> ImageData:
    """CIFAR-10 or Fashion-MNIST from ``data_dir``; without one, the installed Fashion-MNIST
    stand-in.

    With ``data_dir``: CIFAR-10 there (the ``cifar-10-batches-py`` directory itself or its
    parent; a partial or corrupt one is an error, not silently replaced), else Fashion-MNIST
    idx files in ``data_dir`` or ``data_dir/fashion-mnist``; a directory that does not exist
    or holds neither is a ``FileNotFoundError`` naming it -- never a silent fall-back to the
    stand-in. Without ``data_dir``: the system directory ``/usr/share/datasets/fashion-mnist``.
    One directory may hold PTB's text files and CIFAR-10 side by side.
    """
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"Invalid data_dir: {str(path)!r} does not exist. " + IMAGES_HOWTO)
        if holds_cifar10(path):
            return load_cifar10(path)
        for candidate in (path, path / "fashion-mnist"):
            if holds_fashion_mnist(candidate):
                return load_fashion_mnist(candidate)
        raise FileNotFoundError(
            f"Invalid data_dir: {str(path)!r} holds neither {CIFAR10_DIRNAME} nor the Fashion-MNIST "
            "idx files. " + IMAGES_HOWTO
        )
    if holds_fashion_mnist(image_data.FASHION_MNIST_DIR):
        return load_fashion_mnist(image_data.FASHION_MNIST_DIR)
    raise FileNotFoundError(
        f"No image data found: {str(image_data.FASHION_MNIST_DIR)!r} holds no Fashion-MNIST idx files "
        "and no data_dir was given. " + IMAGES_HOWTO
    )
