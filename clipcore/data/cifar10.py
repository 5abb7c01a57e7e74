"""CIFAR-10 from the standard python-pickle directory ``cifar-10-batches-py`` (Zhang et al.
2020, Figs. 3 and 4c-d train on it): batches of 10,000 rows of 3x32x32 bytes."""

from __future__ import annotations

import functools
import pickle
from pathlib import Path

import numpy as np

from .image_data import CIFAR10_DIRNAME, IMAGES_HOWTO, ImageData, make_image_data

__all__ = ["load_cifar10", "CIFAR10_FILES", "holds_cifar10"]


CIFAR10_FILES = tuple(f"data_batch_{k}" for k in range(1, 6)) + ("test_batch", "batches.meta")


def _cifar_dir(data_dir: str | Path) -> Path:
    """``data_dir`` itself if it holds CIFAR-10 files, else its ``cifar-10-batches-py``."""
    path = Path(data_dir).expanduser()
    if (path / CIFAR10_DIRNAME).is_dir():
        return path / CIFAR10_DIRNAME
    return path


def holds_cifar10(data_dir: str | Path) -> bool:
    path = Path(data_dir).expanduser()
    return (path / CIFAR10_DIRNAME).is_dir() or any((path / f).exists() for f in CIFAR10_FILES)


# What the CIFAR-10 batches hold: dicts, lists, bytes, str and ints (plain pickle opcodes) and
# uint8 NumPy arrays, which unpickle through exactly these globals. Nothing else is admitted,
# so a planted batch file cannot make the loader run code.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles spell bytes
}


class _BatchUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only :data:`_ALLOWED_GLOBALS`."""

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not part of the CIFAR-10 format")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            obj = _BatchUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"CIFAR-10 file {str(path)!r} is not a valid pickle: {err}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"CIFAR-10 file {str(path)!r} holds {type(obj).__name__}, not a dict")
    return obj


def _get_key(d: dict, key: bytes, path: Path):
    # Python-3 pickles of the same data use str keys; accept both.
    for k in (key, key.decode()):
        if k in d:
            return d[k]
    raise ValueError(f"CIFAR-10 file {str(path)!r} lacks the key {key!r}")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(path)
    data = np.asarray(_get_key(d, b"data", path))
    labels = np.asarray(_get_key(d, b"labels", path), dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(
            f"CIFAR-10 file {str(path)!r}: b'data' has shape {data.shape} and dtype "
            f"{data.dtype}; expected uint8 rows of 3072 = 3x32x32 bytes"
        )
    if labels.shape != (data.shape[0],):
        raise ValueError(f"CIFAR-10 file {str(path)!r}: {labels.size} labels for {data.shape[0]} images")
    # Rows are channel-major: 1024 red, 1024 green, 1024 blue bytes, each row-major 32x32.
    return data.reshape(-1, 3, 32, 32), labels


@functools.lru_cache(maxsize=2)
def _load_cifar10_cached(resolved: str) -> ImageData:
    path = Path(resolved)
    if not path.is_dir():
        raise FileNotFoundError(
            f"CIFAR-10 directory {resolved!r} does not exist; expected a "
            f"'{CIFAR10_DIRNAME}' directory with {', '.join(CIFAR10_FILES)}. " + IMAGES_HOWTO
        )
    missing = [f for f in CIFAR10_FILES if not (path / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 directory {resolved!r} lacks {', '.join(missing)} (expected "
            f"{', '.join(CIFAR10_FILES)}). " + IMAGES_HOWTO
        )
    train = [_read_cifar_batch(path / f"data_batch_{k}") for k in range(1, 6)]
    test_x, test_y = _read_cifar_batch(path / "test_batch")
    meta = _unpickle(path / "batches.meta")
    classes = [
        c.decode() if isinstance(c, bytes) else str(c)
        for c in _get_key(meta, b"label_names", path / "batches.meta")
    ]
    return make_image_data(
        "CIFAR-10",
        False,
        np.concatenate([x for x, _ in train]),
        np.concatenate([y for _, y in train]),
        test_x,
        test_y,
        classes,
        resolved,
    )


def load_cifar10(data_dir: str | Path) -> ImageData:
    """CIFAR-10 from the python-pickle directory ``cifar-10-batches-py`` (or its parent).

    Reads ``data_batch_1..5`` (train, in that order), ``test_batch`` and ``batches.meta``
    with ``pickle.load(..., encoding="bytes")``. Cached in-process on the resolved path.
    """
    if data_dir is None:
        raise ValueError("load_cifar10 needs data_dir. " + IMAGES_HOWTO)
    return _load_cifar10_cached(str(_cifar_dir(data_dir).resolve()))
