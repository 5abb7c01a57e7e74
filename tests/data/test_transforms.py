"""Tests of clipcore.data.transforms: normalisation and augmentation against float64 and loop references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clipcore.data import (
    augment,
    crop_flip,
    load_digits_images,
    normalize,
)

cuda = pytest.mark.cuda
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

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
    ref = (x.numpy().astype(np.float64) / 255 - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
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
    assert out[1, :, :4].eq(0).all() and out[1, :, :, :4].eq(0).all()  # shifted down-right
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
