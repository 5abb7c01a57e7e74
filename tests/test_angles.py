"""Angles between batch-mean gradients and the full gradient against batch size, and their
prediction from two moments (Qian et al., AISTATS 2021, claim C3), and their streaming
measurement from per-example gradients against float64 references and known answers."""

import math

import numpy as np
import pytest
import torch

from clipcore import angles
from clipcore import models as M
from clipcore.angles import batch_cosines, gradient_moments, predicted_cosine
from clipcore.incremental_bias import clipped_direction
from clipcore.training.tasks import example_loss


def _gaussian_grads(N, d, mean_norm, sigma, seed):
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal(d)
    return mu / np.linalg.norm(mu) * mean_norm + sigma / math.sqrt(d) * rng.standard_normal((N, d))


def test_prediction_limits_and_monotonicity():
    B = np.arange(1, 101)
    p = predicted_cosine(1.0, 4.0, 100, B)
    assert p[-1] == 1.0 and np.all(np.diff(p) > 0)
    assert predicted_cosine(1.0, 0.0, 100, 1) == 1.0
    # B = 1 is the population formula ‖ḡ‖ / sqrt(‖ḡ‖² + σ²)
    assert predicted_cosine(1.0, 4.0, 100, 1) == pytest.approx(1 / math.sqrt(5))
    with pytest.raises(ValueError, match="batch_size"):
        predicted_cosine(1.0, 1.0, 10, 11)
    with pytest.raises(ValueError, match="N"):
        predicted_cosine(1.0, 1.0, 1, 1)


@pytest.mark.parametrize("B", [1, 4, 16, 64, 128])
def test_second_moment_of_batch_means_without_replacement(B):
    # E‖ḡ_B‖² = ‖ḡ‖² + σ²(N − B)/(B(N − 1)): the denominator of the prediction is exact
    G = _gaussian_grads(256, 30, 1.0, 3.0, seed=B)
    m2, s2 = gradient_moments(G)
    rng = np.random.default_rng(0)
    sq = []
    for _ in range(400):
        perm = rng.permutation(256)[: (256 // B) * B]
        sq.append((G[perm].reshape(-1, B, 30).mean(1) ** 2).sum(1))
    sq = np.concatenate(sq)
    want = m2 + s2 * (256 - B) / (B * 255)
    assert abs(sq.mean() - want) <= 4 * sq.std() / math.sqrt(len(sq) / (256 // B)) + 1e-12


@pytest.mark.parametrize("sigma", [1.0, 5.0])
def test_mean_cosine_matches_prediction_in_high_dimension(sigma):
    N, d = 512, 400  # in high dimension the batch-mean norms concentrate and the ratio of means is accurate
    G = _gaussian_grads(N, d, 1.0, sigma, seed=1)
    m2, s2 = gradient_moments(G)
    for B in (1, 4, 16, 64, 256):
        cos = batch_cosines(G, B, n_splits=max(1, 4 * B), seed=B)
        assert abs(cos.mean() - predicted_cosine(m2, s2, N, B)) < 0.03


def test_batch_cosines_numpy_and_torch_agree():
    G = _gaussian_grads(100, 7, 1.0, 2.0, seed=3)
    for B in (1, 3, 10, 100):
        a = batch_cosines(G, B, n_splits=3, seed=5)
        b = batch_cosines(torch.tensor(G, dtype=torch.float32), B, n_splits=3, seed=5)
        assert a.shape == b.shape == (3 * (100 // B),)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batch_cosines(G, 100), 1.0, rtol=1e-12)
    m_np = gradient_moments(G)
    np.testing.assert_allclose(gradient_moments(torch.tensor(G)), m_np, rtol=1e-12)
    np.testing.assert_allclose(gradient_moments(G, chunk=7), m_np, rtol=1e-12)
    centred = np.mean(np.sum((G - G.mean(0)) ** 2, axis=1))
    assert m_np[1] == pytest.approx(centred, rel=1e-12)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_angles_on_cuda_match_cpu():
    G = _gaussian_grads(200, 9, 1.0, 2.0, seed=4)
    Gc = torch.tensor(G, device="cuda")
    np.testing.assert_allclose(
        batch_cosines(Gc, 8, n_splits=2, seed=1),
        batch_cosines(G, 8, n_splits=2, seed=1),
        rtol=1e-10,
        atol=1e-12,
    )
    np.testing.assert_allclose(gradient_moments(Gc), gradient_moments(G), rtol=1e-10)
    r = clipped_direction(Gc[:20], 1.0)  # torch input on any device is decomposed in float64 on the host
    np.testing.assert_allclose(r.direction, clipped_direction(G[:20], 1.0).direction, rtol=1e-12)


def test_angle_validation():
    with pytest.raises(ValueError, match="batch_size"):
        batch_cosines(np.ones((10, 2)), 0)
    with pytest.raises(ValueError, match="shape"):
        batch_cosines(np.ones(10), 1)
    with pytest.raises(ValueError, match="n_splits"):
        batch_cosines(np.ones((10, 2)), 2, n_splits=0)


# ------------------------------------------------------------------ measured from per-example gradients

DT = torch.float64

# the measurement code, each test fails on its own instead of the whole file failing to collect.


def _tiny_lstm(seed=0):
    torch.manual_seed(seed)
    return M.LSTMLanguageModel(23, emb_size=5, hidden_size=7, n_layers=2).to(DT)


class _Cfg:
    def __init__(self, experiment, alpha=2.0, beta_tar=1.0):
        self.experiment, self.alpha, self.beta_tar = experiment, alpha, beta_tar


# ------------------------------------------------------------------------ full gradients


def test_lstm_full_gradient_is_the_mean_of_the_per_example_gradients():
    # (that the per-example gradients match autograd: tests/training/test_tasks.py)
    model = _tiny_lstm(1)
    cfg = _Cfg("lstm_ptb")
    xs, ys = torch.randint(0, 23, (7, 6)), torch.randint(0, 23, (7, 6))
    ex = example_loss(cfg, model)
    G = torch.cat(list(angles.per_example_gradients(ex.loss, ex.params, xs, ys, chunk_size=3)))
    full = angles.full_gradient(ex.loss, ex.params, xs, ys, chunk_size=4)
    torch.testing.assert_close(full, G.mean(0), rtol=1e-10, atol=1e-13)
    batched = angles.full_gradient(ex.loss, ex.params, xs, ys, chunk_size=4, batch_loss=ex.batch_loss)
    torch.testing.assert_close(batched, G.mean(0), rtol=1e-10, atol=1e-13)


def test_resnet_full_gradient_is_the_mean_of_the_per_example_gradients():
    torch.manual_seed(2)
    model = M.ResNetCifar(8, 4, widths=(2, 4, 4)).to(DT)
    xs, ys = torch.randn(6, 3, 8, 8, dtype=DT), torch.randint(0, 4, (6,))
    M.recalibrate_batchnorm(model, xs, batch_size=4)
    ex = example_loss(_Cfg("resnet_images"), model)
    G = torch.cat(list(angles.per_example_gradients(ex.loss, ex.params, xs, ys, chunk_size=4)))
    batched = angles.full_gradient(ex.loss, ex.params, xs, ys, chunk_size=4, batch_loss=ex.batch_loss)
    torch.testing.assert_close(batched, G.mean(0), rtol=1e-10, atol=1e-13)


# ------------------------------------------------------------------------ streaming batch angles


def _linear_problem(N=60, d=5, seed=0):
    """Least squares: l_i(w) = (a_i.w - b_i)^2 / 2, so g_i = (a_i.w - b_i) a_i in closed form."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(N, d, generator=g, dtype=DT)
    b = torch.randn(N, generator=g, dtype=DT) + 3.0
    w = torch.randn(d, generator=g, dtype=DT) * 0.1

    def loss(p, x, y):
        return 0.5 * (x @ p["w"] - y) ** 2

    G = (A @ w - b)[:, None] * A
    return loss, {"w": w}, A, b, G


def _brute_cosines(G, Bs, min_batches, seed):
    """The same shuffles as measure_angles, from the whole gradient matrix."""
    N = G.shape[0]
    rng = np.random.default_rng(seed)
    order = rng.permutation(N)
    extra = {}
    for B in Bs:
        n = N // B
        extra[B] = [rng.permutation(N) for _ in range(max(1, math.ceil(min_batches / n)) - 1)]
    gbar = G.mean(0)
    out = {}
    for B in Bs:
        n = N // B
        parts = []
        for perm in [order] + extra[B]:
            S = G[perm[: n * B]].reshape(n, B, -1).mean(1)
            parts.append((S @ gbar / (S.norm(dim=1) * gbar.norm())).numpy())
        out[B] = np.concatenate(parts)
    return out


@pytest.mark.parametrize("chunk_size", [1, 7, 16, 64])
def test_measure_angles_matches_the_whole_matrix_computation(chunk_size):
    loss, params, A, b, G = _linear_problem(N=60)
    Bs = [1, 4, 16, 25]
    r = angles.measure_angles(loss, params, A, b, Bs, min_batches=6, chunk_size=chunk_size, seed=3)
    ref = _brute_cosines(G, Bs, 6, 3)
    for B in Bs:
        np.testing.assert_allclose(r.cosines[B], ref[B], rtol=1e-12, atol=1e-12)
    assert [r.cosines[B].size for B in Bs] == [60, 15, 6, 6]  # extra shuffles up to min_batches
    m2, s2 = angles.gradient_moments(G)
    assert r.mean_sq_norm == pytest.approx(m2, rel=1e-12) and r.sigma2 == pytest.approx(s2, rel=1e-12)
    assert r.n_examples == 60 and r.n_params == 5 and r.mean_check < 1e-13
    np.testing.assert_allclose(r.predicted(), angles.predicted_cosine(m2, s2, 60, np.array(Bs, float)))
    np.testing.assert_allclose(r.angles(1), np.degrees(np.arccos(np.clip(ref[1], -1, 1))))


def test_float32_gradients_agree_with_the_float64_computation():
    loss, params, A, b, G = _linear_problem(N=60, seed=2)
    Bs = [1, 4, 16, 25]
    r32 = angles.measure_angles(
        loss, {"w": params["w"].float()}, A.float(), b.float(), Bs, min_batches=6, chunk_size=7, seed=3
    )
    ref = _brute_cosines(G, Bs, 6, 3)
    for B in Bs:
        np.testing.assert_allclose(r32.cosines[B], ref[B], rtol=0, atol=1e-5)
    m2, s2 = angles.gradient_moments(G)
    assert r32.mean_sq_norm == pytest.approx(m2, rel=1e-5) and r32.sigma2 == pytest.approx(s2, rel=1e-5)


def test_angles_shrink_with_batch_size_as_predicted():
    """Gaussian per-example gradients: the prediction is close for every B (it is exact for
    the root mean square; the mean of the cosine is within a few hundredths here)."""
    N, d = 2048, 50
    g = torch.Generator().manual_seed(7)
    mu = torch.zeros(d, dtype=DT)
    mu[0] = 1.0
    G = mu + 0.7 * torch.randn(N, d, generator=g, dtype=DT)

    def loss(p, x, y):  # gradient of <p, x> is x: the per-example gradient is the row itself
        return p["w"] @ x + 0 * y

    r = angles.measure_angles(
        loss,
        {"w": torch.zeros(d, dtype=DT)},
        G,
        torch.zeros(N, dtype=DT),
        [1, 4, 16, 64, 256],
        min_batches=32,
        chunk_size=256,
    )
    med = r.median_angles()
    assert np.all(np.diff(med) < 0)
    assert np.max(np.abs(r.mean_cosines() - r.predicted())) < 0.03


def test_measure_angles_rejects_bad_input():
    loss, params, A, b, _ = _linear_problem(N=20)
    for bad in ([20], [0, 2], [], [2, 2]):
        with pytest.raises(ValueError, match="batch_sizes"):
            angles.measure_angles(loss, params, A, b, bad)
    with pytest.raises(ValueError, match="min_batches"):
        angles.measure_angles(loss, params, A, b, [2], min_batches=0)
    with pytest.raises(ValueError, match="chunk_size"):
        angles.measure_angles(loss, params, A, b, [2], chunk_size=0)
    with pytest.raises(ValueError, match="labels"):
        angles.measure_angles(loss, params, A, b[:5], [2])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_measure_angles_on_cuda_matches_cpu():
    model = _tiny_lstm(3)
    cfg = _Cfg("lstm_ptb")
    xs, ys = torch.randint(0, 23, (24, 6)), torch.randint(0, 23, (24, 6))
    ex = example_loss(cfg, model)
    cpu = angles.measure_angles(ex.loss, ex.params, xs, ys, [1, 4, 16], min_batches=4, chunk_size=5)
    ex = example_loss(cfg, model.cuda())
    gpu = angles.measure_angles(
        ex.loss,
        ex.params,
        xs.cuda(),
        ys.cuda(),
        [1, 4, 16],
        min_batches=4,
        chunk_size=5,
        batch_loss=ex.batch_loss,
    )
    for B in (1, 4, 16):
        np.testing.assert_allclose(gpu.cosines[B], cpu.cosines[B], rtol=1e-9, atol=1e-10)
    assert gpu.sigma2 == pytest.approx(cpu.sigma2, rel=1e-9)
