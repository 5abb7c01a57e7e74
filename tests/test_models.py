"""Tests for clipcore.models: the reduced AWD-LSTM, its functional twin, ResNet-20 and the
BatchNorm recalibration."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clipcore.models import (
    LSTMLanguageModel,
    ResNetCifar,
    activation_penalty,
    count_parameters,
    detach_hidden,
    embedded_dropout,
    locked_dropout,
    lstm_lm_forward,
    lstm_lm_num_parameters,
    recalibrate_batchnorm,
    resnet20,
    resnet_cifar_num_parameters,
    temporal_penalty,
)

cuda = pytest.mark.cuda
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

SMALL = dict(vocab_size=23, emb_size=6, hidden_size=9, n_layers=2)


def _small(seed=0, dtype=torch.float64, **kw):
    torch.manual_seed(seed)
    return LSTMLanguageModel(**{**SMALL, **kw}).to(dtype)


def _tokens(T, B, V=23, seed=1):
    return torch.randint(0, V, (T, B), generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------------------
# parameter counts
# --------------------------------------------------------------------------------------


def test_lstm_parameter_count_paper_setting():
    model = LSTMLanguageModel(10_000)
    # Written out: embedding 10000*200; LSTM 200->512 and 512->200 with two biases; decoder
    # bias only (the weight is the embedding).
    lstm1 = 4 * 512 * (200 + 512) + 8 * 512
    lstm2 = 4 * 200 * (512 + 200) + 8 * 200
    by_hand = 10_000 * 200 + lstm1 + lstm2 + 10_000
    assert by_hand == 4_043_472
    assert count_parameters(model) == lstm_lm_num_parameters(10_000) == by_hand
    assert model.rnns[-1].hidden_size == 200 and model.rnns[0].hidden_size == 512
    assert len(model.rnns) == 2 and all(r.num_layers == 1 for r in model.rnns)


@pytest.mark.parametrize(
    "kw",
    [dict(n_layers=1), dict(n_layers=3), dict(tie_weights=False), dict(n_layers=3, tie_weights=False)],
)
def test_lstm_parameter_count_formula(kw):
    m = LSTMLanguageModel(**{**SMALL, **kw})
    assert count_parameters(m) == lstm_lm_num_parameters(**{**SMALL, **kw})
    # Direct sum over the modules' own tensors, the tied matrix counted once.
    unique = {id(p): p.numel() for p in m.parameters()}
    assert count_parameters(m) == sum(unique.values())


def test_resnet20_parameter_count():
    m = resnet20()
    stem = 3 * 16 * 9 + 2 * 16
    stage1 = 6 * (16 * 16 * 9 + 2 * 16)
    stage2 = 16 * 32 * 9 + 5 * 32 * 32 * 9 + 6 * 2 * 32
    stage3 = 32 * 64 * 9 + 5 * 64 * 64 * 9 + 6 * 2 * 64
    head = 64 * 10 + 10
    assert stem + stage1 + stage2 + stage3 + head == 269_722
    assert count_parameters(m) == resnet_cifar_num_parameters(20) == 269_722
    assert count_parameters(ResNetCifar(32, 100)) == resnet_cifar_num_parameters(32, 100)
    assert len(m.blocks) == 9
    m.fc.weight.requires_grad_(False)
    assert count_parameters(m, trainable_only=True) == 269_722 - 640


# --------------------------------------------------------------------------------------
# LSTM forward against a float64 NumPy reference
# --------------------------------------------------------------------------------------


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _ref_lm(model: LSTMLanguageModel, tokens: np.ndarray, hidden):
    """Float64 NumPy LSTM LM: gates (i, f, g, o) in PyTorch's order, tied decoder."""
    E = model.encoder.weight.detach().numpy()
    x = E[tokens]  # [T, B, E]
    states = [(h.numpy()[0].copy(), c.numpy()[0].copy()) for h, c in hidden]
    for k, rnn in enumerate(model.rnns):
        W_ih, W_hh = rnn.weight_ih_l0.detach().numpy(), rnn.weight_hh_l0.detach().numpy()
        b = rnn.bias_ih_l0.detach().numpy() + rnn.bias_hh_l0.detach().numpy()
        h, c = states[k]
        outs = []
        for t in range(x.shape[0]):
            z = x[t] @ W_ih.T + h @ W_hh.T + b
            i, f, g, o = np.split(z, 4, axis=1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
            outs.append(h)
        states[k] = (h, c)
        x = np.stack(outs)
    W, bd = model.decoder.weight.detach().numpy(), model.decoder.bias.detach().numpy()
    logits = x.reshape(-1, x.shape[2]) @ W.T + bd
    return logits, states, x


def test_lstm_forward_matches_numpy_reference():
    m = _small()
    with torch.no_grad():
        m.decoder.bias.uniform_(-1, 1)  # non-zero, so the bias path is checked too
    m.eval()
    x = _tokens(7, 3)
    h0 = [
        (torch.randn(1, 3, w, dtype=torch.float64), torch.randn(1, 3, w, dtype=torch.float64))
        for w in m.widths[1:]
    ]
    logits, hidden, out = m(x, h0)
    assert logits.shape == (21, 23) and out.shape == (7, 3, 6)
    assert [tuple(h.shape) for h, _ in hidden] == [(1, 3, 9), (1, 3, 6)]
    ref_logits, ref_states, ref_out = _ref_lm(m, x.numpy(), h0)
    np.testing.assert_allclose(logits.detach().numpy(), ref_logits, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.detach().numpy(), ref_out, rtol=0, atol=1e-12)
    for (h, c), (rh, rc) in zip(hidden, ref_states):
        np.testing.assert_allclose(h[0].detach().numpy(), rh, rtol=0, atol=1e-12)
        np.testing.assert_allclose(c[0].detach().numpy(), rc, rtol=0, atol=1e-12)


def test_lstm_untied_shapes():
    m = _small(tie_weights=False)
    x = _tokens(4, 2)
    logits, hidden, out = m(x, m.init_hidden(2))
    assert logits.shape == (8, 23) and out.shape == (4, 2, 9)
    assert m.decoder.weight is not m.encoder.weight and m.decoder.weight.shape == (23, 9)


def test_hidden_state_is_carried():
    m = _small()
    x = _tokens(10, 4)
    full, h_full, _ = m(x, m.init_hidden(4))
    a, h_a, _ = m(x[:6], m.init_hidden(4))
    b, h_b, _ = m(x[6:], detach_hidden(h_a))
    torch.testing.assert_close(torch.cat([a, b]), full, rtol=0, atol=1e-12)
    for (h1, c1), (h2, c2) in zip(h_b, h_full):
        torch.testing.assert_close(h1, h2, rtol=0, atol=1e-12)
        torch.testing.assert_close(c1, c2, rtol=0, atol=1e-12)
    fresh, _, _ = m(x[6:], m.init_hidden(4))  # dropping the state changes the prediction
    assert (fresh - b).abs().max() > 1e-3
    assert all(not h.requires_grad and not c.requires_grad for h, c in detach_hidden(h_b))


def test_init_hidden_zero_on_model_device_and_dtype():
    m = _small(dtype=torch.float32)
    h = m.init_hidden(5)
    assert len(h) == 2 and all(t.dtype == torch.float32 and not t.any() for p in h for t in p)
    m.double()
    assert m.init_hidden(1)[0][0].dtype == torch.float64
    with pytest.raises(ValueError, match="batch_size"):
        m.init_hidden(0)


# --------------------------------------------------------------------------------------
# tying, gradients, initialisation, determinism
# --------------------------------------------------------------------------------------


def test_tied_weights_share_storage_and_gradients_add():
    kw = dict(hidden_size=6)  # untied twin with the same layer widths
    m = _small(**kw)
    assert m.decoder.weight is m.encoder.weight
    assert m.decoder.weight.data_ptr() == m.encoder.weight.data_ptr()
    assert "decoder.weight" in m.state_dict()
    # Untied twin holding identical values: the tied gradient is the sum of both uses.
    u = _small(tie_weights=False, **kw)
    u.load_state_dict({k: v.clone() for k, v in m.state_dict().items()})
    assert u.decoder.weight is not u.encoder.weight
    x = _tokens(5, 3)
    target = _tokens(5, 3, seed=2).view(-1)
    for model in (m, u):
        logits, _, _ = model(x, model.init_hidden(3))
        F.cross_entropy(logits, target).backward()
    torch.testing.assert_close(
        m.encoder.weight.grad, u.encoder.weight.grad + u.decoder.weight.grad, rtol=0, atol=1e-12
    )
    opt = torch.optim.SGD(m.parameters(), lr=1.0)
    opt.step()
    assert m.decoder.weight is m.encoder.weight


def test_gradients_reach_every_parameter_with_ar_tar():
    m = _small(dropout=0.2, dropouth=0.2, dropouti=0.2, dropoute=0.1, wdrop=0.3)
    m.train()
    x = _tokens(8, 4)
    logits, _, out, raw = m(x, m.init_hidden(4), return_raw=True)
    loss = F.cross_entropy(logits, _tokens(8, 4, seed=3).view(-1))
    loss = loss + activation_penalty(out, 2.0) + temporal_penalty(raw, 1.0)
    loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        assert torch.isfinite(p.grad).all(), name


def test_ar_tar_values():
    torch.manual_seed(0)
    o = torch.randn(6, 3, 4, dtype=torch.float64)
    on = o.numpy()
    assert math.isclose(activation_penalty(o, 2.0).item(), 2.0 * (on**2).mean(), rel_tol=1e-13)
    ref = 0.5 * ((on[1:] - on[:-1]) ** 2).mean()
    assert math.isclose(temporal_penalty(o, 0.5).item(), ref, rel_tol=1e-13)


def test_awd_initialisation():
    torch.manual_seed(0)
    m = LSTMLanguageModel(10_000)
    w = m.encoder.weight.detach()
    assert w.abs().max() <= 0.1 and not m.decoder.bias.any()
    # U(-0.1, 0.1): sd 0.2/sqrt(12) = 0.0577; 2M draws put the sample sd within 0.1%.
    assert abs(w.std().item() - 0.2 / math.sqrt(12)) < 5e-4
    bound = 1 / math.sqrt(512)
    assert m.rnns[0].weight_hh_l0.abs().max() <= bound  # PyTorch's LSTM default


def test_seeded_construction_and_forward_are_deterministic():
    a, b, c = _small(seed=3), _small(seed=3), _small(seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)
    x = _tokens(6, 2)
    assert torch.equal(a(x, a.init_hidden(2))[0], b(x, b.init_hidden(2))[0])
    # Stochastic regularisers are reproducible under the global seed, too.
    d = _small(seed=3, dropout=0.3, dropoute=0.2, wdrop=0.4)
    torch.manual_seed(9)
    r1 = d(x, d.init_hidden(2))[0]
    torch.manual_seed(9)
    r2 = d(x, d.init_hidden(2))[0]
    assert torch.equal(r1, r2)


# --------------------------------------------------------------------------------------
# dropouts
# --------------------------------------------------------------------------------------


def test_dropouts_only_in_train_mode():
    kw = dict(dropout=0.4, dropouth=0.3, dropouti=0.5, dropoute=0.2, wdrop=0.5)
    noisy, plain = _small(seed=2, **kw), _small(seed=2)
    x = _tokens(6, 3)
    noisy.eval()
    torch.testing.assert_close(
        noisy(x, noisy.init_hidden(3))[0], plain(x, plain.init_hidden(3))[0], rtol=0, atol=0
    )
    noisy.train()
    r1 = noisy(x, noisy.init_hidden(3))[0]
    r2 = noisy(x, noisy.init_hidden(3))[0]
    assert (r1 - r2).abs().max() > 1e-3
    logits, _, out, raw = noisy(x, noisy.init_hidden(3), return_raw=True)
    assert out.shape == raw.shape and not torch.equal(out, raw)
    plain.train()
    _, _, out0, raw0 = plain(x, plain.init_hidden(3), return_raw=True)
    assert out0 is raw0  # zero dropout: AR and TAR see the same tensor


@pytest.mark.parametrize("wd", [0.5])
def test_weight_drop_alone_changes_training_output(wd):
    m, plain = _small(seed=5, wdrop=wd), _small(seed=5)
    m.train()
    x = _tokens(6, 3)
    torch.manual_seed(0)
    r = m(x, m.init_hidden(3))[0]
    assert (r - plain(x, plain.init_hidden(3))[0]).abs().max() > 1e-4
    # The module's own weight is never overwritten by the dropped copy.
    assert torch.equal(m.rnns[0].weight_hh_l0, plain.rnns[0].weight_hh_l0)


def test_locked_and_embedding_dropout_masks():
    torch.manual_seed(0)
    x = torch.ones(20, 4, 50, dtype=torch.float64)
    y = locked_dropout(x, 0.5)
    assert torch.equal(y, y[:1].expand_as(y))  # one mask for every time step
    assert set(torch.unique(y).tolist()) <= {0.0, 2.0}
    assert 0.35 < y.eq(0).double().mean().item() < 0.65
    assert locked_dropout(x, 0.5, training=False) is x
    emb = torch.nn.Embedding(30, 8).double()
    words = torch.arange(30).repeat(5).view(15, 10)
    e = embedded_dropout(emb, words, 0.5)
    dropped = e.eq(0).all(-1)  # a dropped word is zero wherever it occurs
    per_word = torch.zeros(30, dtype=torch.long).index_add_(0, words.view(-1), dropped.view(-1).long())
    assert set(per_word.tolist()) <= {0, 5} and 0 < per_word.sum() < 150
    kept = ~dropped
    torch.testing.assert_close(e[kept], 2.0 * emb.weight[words][kept], rtol=0, atol=1e-15)


def test_invalid_arguments():
    for kw in (
        dict(vocab_size=0),
        dict(emb_size=-1),
        dict(n_layers=0),
        dict(hidden_size=2.5),
        dict(dropout=1.0),
        dict(wdrop=-0.1),
        dict(dropoute=1.5),
    ):
        with pytest.raises(ValueError, match=next(iter(kw))):
            LSTMLanguageModel(**{**SMALL, **kw})
    m = _small()
    with pytest.raises(ValueError, match="seq_len, batch"):
        m(torch.zeros(5, dtype=torch.long), m.init_hidden(1))
    with pytest.raises(ValueError, match="layers"):
        m(_tokens(3, 1), m.init_hidden(1)[:1])
    with pytest.raises(ValueError, match="depth"):
        ResNetCifar(depth=21)
    with pytest.raises(ValueError, match="num_classes"):
        resnet20(num_classes=0)


# --------------------------------------------------------------------------------------
# ResNet-20
# --------------------------------------------------------------------------------------


def test_resnet20_forward_and_gradients():
    torch.manual_seed(0)
    m = resnet20()
    x = torch.randn(2, 3, 32, 32)
    out = m(x)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    F.cross_entropy(out, torch.tensor([3, 7])).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    m.eval()
    with torch.no_grad():
        assert m(x).shape == (2, 10)
        assert resnet20(num_classes=100)(x).shape == (2, 100)


def test_resnet20_seeded_and_kaiming_init():
    torch.manual_seed(1)
    a = resnet20()
    torch.manual_seed(1)
    b = resnet20()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    w = a.blocks[-1].conv2.weight  # 64x64x3x3: 36,864 draws
    target = math.sqrt(2.0 / (64 * 9))  # N(0, 2 / fan_out)
    assert abs(w.std().item() / target - 1) < 0.03
    assert abs(w.mean().item()) < 3 * target / math.sqrt(w.numel())
    bn = a.blocks[0].bn1
    assert torch.equal(bn.weight, torch.ones(16)) and not bn.bias.any()


def test_resnet_option_a_shortcut():
    """With the residual branch silenced, a downsampling block is relu(pad(subsample(x)))."""
    block = resnet20().blocks[3]  # first block of stage 2: 16 -> 32 channels, stride 2
    with torch.no_grad():
        block.bn2.weight.zero_()
        block.bn2.bias.zero_()
    block.eval()
    x = torch.randn(2, 16, 32, 32, dtype=torch.float32)
    y = block(x)
    assert y.shape == (2, 32, 16, 16)
    assert not y[:, :8].any() and not y[:, 24:].any()
    torch.testing.assert_close(y[:, 8:24], F.relu(x[:, :, ::2, ::2]), rtol=0, atol=0)
    # Option A: the shortcut has no parameters, only the two convs and BNs do.
    assert count_parameters(block) == 16 * 32 * 9 + 32 * 32 * 9 + 4 * 32


# --------------------------------------------------------------------------------------
# Functional LSTM and BatchNorm recalibration
# --------------------------------------------------------------------------------------


def _tiny_lstm(seed=0):
    torch.manual_seed(seed)
    return LSTMLanguageModel(23, emb_size=5, hidden_size=7, n_layers=2).to(torch.float64)


def test_functional_lstm_matches_the_model_in_float64():
    model = _tiny_lstm()
    x = torch.randint(0, 23, (9, 4))
    logits, _, out = model(x, model.init_hidden(4))
    params = dict(model.named_parameters())
    f_logits, f_out = lstm_lm_forward(params, x, model.n_layers)
    torch.testing.assert_close(f_logits.reshape(-1, 23), logits, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(f_out, out, rtol=1e-12, atol=1e-12)


def test_recalibrated_batchnorm_holds_the_average_batch_statistics():
    torch.manual_seed(4)
    model = ResNetCifar(8, 3, widths=(3, 4, 4)).to(torch.float64)
    x = torch.randn(10, 3, 8, 8, dtype=torch.float64)
    recalibrate_batchnorm(model, x, batch_size=5)  # two equal batches, cumulative average
    h = model.conv1(x)
    torch.testing.assert_close(model.bn1.running_mean, h.mean((0, 2, 3)), rtol=1e-12, atol=1e-12)
    var = 0.5 * (h[:5].var((0, 2, 3)) + h[5:].var((0, 2, 3)))  # BatchNorm stores unbiased variances
    torch.testing.assert_close(model.bn1.running_var, var, rtol=1e-12, atol=1e-12)
    assert model.bn1.momentum == 0.1 and not model.training  # momentum restored, eval mode


# --------------------------------------------------------------------------------------
# CUDA
# --------------------------------------------------------------------------------------


@cuda
@needs_cuda
def test_models_on_cuda_match_cpu():
    m = _small(dtype=torch.float32, seed=0)
    x = _tokens(6, 3)
    cpu_logits = m(x, m.init_hidden(3))[0]
    g = m.to("cuda")
    h = g.init_hidden(3)
    assert h[0][0].is_cuda
    gpu_logits = g(x.cuda(), h)[0]
    torch.testing.assert_close(gpu_logits.cpu(), cpu_logits, rtol=1e-4, atol=1e-5)
    d = _small(dtype=torch.float32, wdrop=0.5, dropout=0.3).cuda().train()
    logits, _, out, raw = d(x.cuda(), d.init_hidden(3), return_raw=True)
    (logits.sum() + activation_penalty(out, 2.0) + temporal_penalty(raw, 1.0)).backward()
    assert all(p.grad is not None for p in d.parameters())
    torch.manual_seed(0)
    r = resnet20()
    xi = torch.randn(2, 3, 32, 32)
    r.eval()
    cpu = r(xi)
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):  # cuDNN convs default to TF32
        torch.testing.assert_close(r.cuda()(xi.cuda()).cpu(), cpu, rtol=1e-3, atol=1e-4)
