"""Fashion-MNIST, the offline stand-in for CIFAR-10: LeCun's idx files (Debian's
``dataset-fashion-mnist``), each 28x28 image zero-padded to 32x32 and repeated to 3 channels."""

from __future__ import annotations

import functools
import gzip
import math
import struct
from pathlib import Path

import numpy as np

from . import image_data
from .image_data import IMAGES_HOWTO, ImageData, make_image_data

__all__ = [
    "load_fashion_mnist",
    "read_idx",
    "holds_fashion_mnist",
    "FASHION_MNIST_FILES",
    "FASHION_MNIST_CLASSES",
]


FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an idx file (LeCun's MNIST format), gzip-compressed or not.

    Header: two zero bytes, a type code (0x08 = uint8, ...), the number of dimensions
    ``d``, then ``d`` big-endian uint32 sizes; the data follow in C order. Compression is
    detected from the gzip magic bytes, not the file name.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"idx file {str(path)!r} is a corrupt gzip stream: {err}") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"idx file {str(path)!r} has a bad magic number {raw[:4].hex()}")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"idx file {str(path)!r} is truncated inside its header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(
            f"idx file {str(path)!r} has {len(raw)} bytes, expected {expected} for shape {shape}"
        )
    # astype: native byte order and a private writable copy (frombuffer is read-only).
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def _find_idx(path: Path, name: str) -> Path | None:
    for candidate in (path / name, path / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def holds_fashion_mnist(path: Path) -> bool:
    return all(_find_idx(path, n) is not None for n in FASHION_MNIST_FILES)


def _to_rgb32(images: np.ndarray, what: str) -> np.ndarray:
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{what}: expected uint8 images [N, 28, 28], got {images.shape} {images.dtype}")
    # 2 zero pixels on each side: 28 + 4 = 32; the three channels are equal copies.
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    return np.repeat(padded[:, None], 3, axis=1)


@functools.lru_cache(maxsize=2)
def _load_fashion_mnist_cached(resolved: str) -> ImageData:
    path = Path(resolved)
    if not path.is_dir():
        raise FileNotFoundError(
            f"Fashion-MNIST directory {resolved!r} does not exist; expected "
            f"{', '.join(FASHION_MNIST_FILES)} (each optionally .gz). " + IMAGES_HOWTO
        )
    files = {n: _find_idx(path, n) for n in FASHION_MNIST_FILES}
    missing = [n for n, p in files.items() if p is None]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST directory {resolved!r} lacks {', '.join(missing)} (each optionally "
            f".gz; expected {', '.join(FASHION_MNIST_FILES)}). " + IMAGES_HOWTO
        )
    arrays = {n: read_idx(p) for n, p in files.items()}
    tr_x, tr_y, te_x, te_y = (arrays[n] for n in FASHION_MNIST_FILES)
    for n, y in ((FASHION_MNIST_FILES[1], tr_y), (FASHION_MNIST_FILES[3], te_y)):
        if y.ndim != 1:
            raise ValueError(f"{str(files[n])!r}: labels must be 1-D, got shape {y.shape}")
    return make_image_data(
        "Fashion-MNIST (stand-in for CIFAR-10)",
        True,
        _to_rgb32(tr_x, str(files[FASHION_MNIST_FILES[0]])),
        tr_y.astype(np.int64),
        _to_rgb32(te_x, str(files[FASHION_MNIST_FILES[2]])),
        te_y.astype(np.int64),
        FASHION_MNIST_CLASSES,
        resolved,
    )


def load_fashion_mnist(data_dir: str | Path | None = None) -> ImageData:
    """Fashion-MNIST as a CIFAR-shaped stand-in: ``[N, 3, 32, 32]`` uint8, 60,000/10,000.

    Reads the four idx files (plain or ``.gz``) from ``data_dir`` (default
    ``/usr/share/datasets/fashion-mnist``, Debian package ``dataset-fashion-mnist``). Each
    28x28 image is zero-padded by 2 pixels on every side and repeated to 3 channels.
    """
    path = image_data.FASHION_MNIST_DIR if data_dir is None else Path(data_dir).expanduser()
    return _load_fashion_mnist_cached(str(path.resolve()))
