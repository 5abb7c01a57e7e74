r"""The container every image loader returns (:class:`ImageData`: uint8 ``[N, 3, 32, 32]``
tensors and their channel statistics), and where image data is looked for."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "ImageData",
    "make_image_data",
    "as_tensor",
    "CIFAR10_DIRNAME",
    "FASHION_MNIST_DIR",
    "IMAGES_HOWTO",
]


CIFAR10_DIRNAME = "cifar-10-batches-py"
CIFAR10_FILES = tuple(f"data_batch_{k}" for k in range(1, 6)) + ("test_batch", "batches.meta")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
IMAGES_HOWTO = (
    "To provide images: pass data_dir pointing at an unpacked CIFAR-10 python archive "
    f"(the '{CIFAR10_DIRNAME}' directory, or its parent), or install the Fashion-MNIST "
    f"stand-in with 'apt-get install dataset-fashion-mnist' (idx files under {FASHION_MNIST_DIR})."
)


@dataclass(frozen=True, repr=False)
class ImageData:
    """A 10-class image classification data set as uint8 ``[N, 3, 32, 32]`` tensors.

    ``mean``/``std`` are per-channel statistics of ``train_x / 255`` (population std),
    the constants :func:`normalize` expects. ``is_standin`` is True for every data set
    other than CIFAR-10 itself, and ``name`` then says so; plots must show ``name``.
    """

    name: str
    is_standin: bool
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    classes: list[str]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (
            f"ImageData(name={self.name!r}, train={tuple(self.train_x.shape)}, "
            f"test={tuple(self.test_x.shape)}, classes={self.num_classes}, "
            f"source={self.source!r})"
        )


def _channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    r"""Exact per-channel mean and population std of ``x / 255`` for uint8 ``[N, C, H, W]``.

    From the 256-bin histogram :math:`n_v` of each channel:
    :math:`\mu = \sum_v n_v v / (255 n)`, :math:`\sigma^2 = \sum_v n_v (v/255 - \mu)^2 / n`,
    in float64 without ever materialising a float copy of the images.
    """
    values = np.arange(256, dtype=np.float64) / 255.0
    xt = as_tensor(x)
    means, stds = [], []
    for c in range(x.shape[1]):
        # torch.bincount counts uint8 directly (numpy's widens to int64 first: 2x slower).
        counts = torch.bincount(xt[:, c].reshape(-1), minlength=256).numpy().astype(np.float64)
        n = counts.sum()
        mu = float(counts @ values / n)
        var = float(counts @ (values - mu) ** 2 / n)
        means.append(mu)
        stds.append(math.sqrt(var))
    return tuple(means), tuple(stds)


def as_tensor(a: np.ndarray) -> Tensor:
    # torch.from_numpy warns on read-only arrays (e.g. views of bytes); copy those.
    a = np.ascontiguousarray(a)
    return torch.from_numpy(a if a.flags.writeable else a.copy())


def make_image_data(name, is_standin, train_x, train_y, test_x, test_y, classes, source):
    """Validate numpy arrays and wrap them as an :class:`ImageData`."""
    for what, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (3, 32, 32):
            raise ValueError(f"{source}: {what} images have shape {x.shape}, dtype {x.dtype}")
        if y.shape != (x.shape[0],):
            raise ValueError(f"{source}: {len(y)} {what} labels for {x.shape[0]} images")
        if len(y) and (y.min() < 0 or y.max() >= len(classes)):
            raise ValueError(
                f"{source}: {what} labels outside [0, {len(classes)}): min {y.min()}, max {y.max()}"
            )
    mean, std = _channel_stats(train_x)
    return ImageData(
        name=name,
        is_standin=is_standin,
        train_x=as_tensor(train_x),
        train_y=as_tensor(np.asarray(train_y, dtype=np.int64)),
        test_x=as_tensor(test_x),
        test_y=as_tensor(np.asarray(test_y, dtype=np.int64)),
        classes=list(classes),
        mean=mean,
        std=std,
        source=source,
    )
