r"""The two networks of the experiments: the reduced AWD-LSTM and ResNet-20.

**LSTM language model** (Zhang et al. 2020, Figs. 1, 2, 4a-b; the authors' fork of AWD-LSTM,
Merity et al. 2018): an embedding of size ``emb_size``, ``n_layers`` single-layer
``nn.LSTM`` modules (one per layer, so each layer's output is available for AR/TAR), the last
one of width ``emb_size`` when the decoder is tied to the embedding (Press & Wolf 2017), and a
linear decoder to vocabulary logits. The authors' setting is 2 layers x 512, embedding 200,
tied, every dropout 0: 4,043,472 parameters for the 10,000-word PTB vocabulary.

**ResNet-20** (He et al. 2016, Sec. 4.2): 3x3 conv to 16 channels, three stages of three
basic blocks with 16/32/64 channels (stride 2 at the start of stages 2 and 3), global average
pooling and a linear classifier; BatchNorm after every conv; option-A (parameter-free)
shortcuts. 269,722 parameters for 10 classes.

:func:`lstm_lm_forward` is the LSTM's functional twin in plain tensor operations (so
:func:`torch.func.vmap` can batch it over examples); :func:`recalibrate_batchnorm` resets a
ResNet's BatchNorm statistics to the average over given batches.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from .validation import check_int

__all__ = [
    "LSTMLanguageModel",
    "Hidden",
    "detach_hidden",
    "activation_penalty",
    "temporal_penalty",
    "locked_dropout",
    "embedded_dropout",
    "lstm_lm_num_parameters",
    "ResNetCifar",
    "resnet20",
    "resnet_cifar_num_parameters",
    "count_parameters",
    "lstm_lm_forward",
    "recalibrate_batchnorm",
]

# One (h, c) pair per layer, each [1, batch, width of that layer].
Hidden = list[tuple[Tensor, Tensor]]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters; a tensor shared by several modules counts once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# --------------------------------------------------------------------------------------
# AWD-LSTM pieces
# --------------------------------------------------------------------------------------


def locked_dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    r"""Variational ("locked") dropout of Gal & Ghahramani (2016) on a ``[T, B, D]`` sequence.

    One mask :math:`m \in \{0, 1/(1-p)\}^{B \times D}` per sequence, shared over time:
    ``out[t] = x[t] * m``. Identity when ``p == 0`` or not training.
    """
    if not training or p == 0.0:
        return x
    mask = x.new_empty(1, x.size(1), x.size(2)).bernoulli_(1.0 - p) / (1.0 - p)
    return x * mask


def embedded_dropout(embed: nn.Embedding, words: Tensor, p: float, training: bool = True) -> Tensor:
    r"""Embedding dropout (Gal & Ghahramani 2016; AWD-LSTM ``embedded_dropout``).

    Whole rows of the embedding matrix are dropped: :math:`E' = \operatorname{diag}(m) E`
    with :math:`m_w \in \{0, 1/(1-p)\}` i.i.d. per vocabulary word, so every occurrence of a
    dropped word in the batch is zeroed. Identity when ``p == 0`` or not training.
    """
    weight = embed.weight
    if training and p > 0.0:
        mask = weight.new_empty(weight.size(0), 1).bernoulli_(1.0 - p) / (1.0 - p)
        weight = weight * mask
    return F.embedding(
        words,
        weight,
        embed.padding_idx,
        embed.max_norm,
        embed.norm_type,
        embed.scale_grad_by_freq,
        embed.sparse,
    )


def detach_hidden(hidden: Hidden) -> Hidden:
    """Cut the graph at a BPTT boundary (AWD-LSTM ``repackage_hidden``)."""
    return [(h.detach(), c.detach()) for h, c in hidden]


def activation_penalty(output: Tensor, alpha: float) -> Tensor:
    r"""AR (Merity et al. 2017): :math:`\alpha\,\operatorname{mean}(o_t^2)` of the last layer."""
    return alpha * output.pow(2).mean()


def temporal_penalty(raw_output: Tensor, beta: float) -> Tensor:
    r"""TAR: :math:`\beta\,\operatorname{mean}((h_t - h_{t-1})^2)` over time of ``[T, B, D]``."""
    return beta * (raw_output[1:] - raw_output[:-1]).pow(2).mean()


def lstm_lm_num_parameters(
    vocab_size: int,
    emb_size: int = 200,
    hidden_size: int = 512,
    n_layers: int = 2,
    tie_weights: bool = True,
) -> int:
    r"""Closed-form parameter count of :class:`LSTMLanguageModel`.

    An LSTM layer from :math:`i` to :math:`h` units has :math:`4h(i + h) + 8h` parameters
    (two bias vectors, as in cuDNN). With widths :math:`d_0 = E`, :math:`d_l = H`
    (:math:`l < L`), :math:`d_L = E` if tied else :math:`H`:
    :math:`VE + \sum_l [4d_l(d_{l-1} + d_l) + 8d_l] + V + [\text{untied}]\,V d_L`.
    """
    widths = [emb_size] + [hidden_size] * (n_layers - 1) + [emb_size if tie_weights else hidden_size]
    lstm = sum(4 * h * (i + h) + 8 * h for i, h in zip(widths[:-1], widths[1:]))
    decoder = vocab_size + (0 if tie_weights else vocab_size * widths[-1])
    return vocab_size * emb_size + lstm + decoder


class LSTMLanguageModel(nn.Module):
    r"""Reduced AWD-LSTM: embedding -> ``n_layers`` LSTMs -> linear decoder (tied by default).

    .. math::
        e_t = E[w_t],\quad h^{(l)}_t = \mathrm{LSTM}_l(h^{(l-1)}_t, h^{(l)}_{t-1}),\quad
        \text{logits}_t = W h^{(L)}_t + b,\quad W = E \text{ when tied}

    Dropouts, all 0 in the paper's runs and active only in ``train()`` mode: ``dropoute``
    (embedding rows), ``dropouti`` (locked, on the embedding output), ``dropouth`` (locked,
    between LSTM layers), ``dropout`` (locked, on the last layer's output), ``wdrop``
    (DropConnect on each layer's hidden-to-hidden matrix ``weight_hh_l0``, a fresh mask per
    forward call, as AWD-LSTM's ``WeightDrop``).

    Initialisation as AWD-LSTM: embedding and decoder weight ~ U(-0.1, 0.1), decoder bias 0,
    LSTM weights PyTorch's default U(-1/sqrt(h), 1/sqrt(h)).
    """

    def __init__(
        self,
        vocab_size: int,
        emb_size: int = 200,
        hidden_size: int = 512,
        n_layers: int = 2,
        tie_weights: bool = True,
        dropout: float = 0.0,
        dropouth: float = 0.0,
        dropouti: float = 0.0,
        dropoute: float = 0.0,
        wdrop: float = 0.0,
    ):
        super().__init__()
        for name, v in (
            ("vocab_size", vocab_size),
            ("emb_size", emb_size),
            ("hidden_size", hidden_size),
            ("n_layers", n_layers),
        ):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"Invalid {name}: {v!r} (must be an integer >= 1)")
        for name, v in (
            ("dropout", dropout),
            ("dropouth", dropouth),
            ("dropouti", dropouti),
            ("dropoute", dropoute),
            ("wdrop", wdrop),
        ):
            if not (isinstance(v, (int, float)) and 0.0 <= v < 1.0):
                raise ValueError(f"Invalid {name}: {v!r} (must be in [0, 1))")
        self.vocab_size, self.emb_size, self.hidden_size = vocab_size, emb_size, hidden_size
        self.n_layers, self.tie_weights = n_layers, bool(tie_weights)
        self.dropout, self.dropouth, self.dropouti = float(dropout), float(dropouth), float(dropouti)
        self.dropoute, self.wdrop = float(dropoute), float(wdrop)

        last = emb_size if tie_weights else hidden_size
        self.widths = [emb_size] + [hidden_size] * (n_layers - 1) + [last]
        self.encoder = nn.Embedding(vocab_size, emb_size)
        self.rnns = nn.ModuleList(
            nn.LSTM(self.widths[k], self.widths[k + 1], num_layers=1) for k in range(n_layers)
        )
        self.decoder = nn.Linear(last, vocab_size)
        if tie_weights:
            # Same Parameter object: one storage, gradients of both uses accumulate into it.
            self.decoder.weight = self.encoder.weight
        self.init_weights()

    def init_weights(self) -> None:
        """AWD-LSTM initialisation of the embedding and decoder.

        Same calls in the same order as AWD-LSTM's ``init_weights`` (when tied, the shared
        matrix is drawn twice), so a seeded model consumes the RNG exactly as the original.
        """
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def init_hidden(self, batch_size: int) -> Hidden:
        """Zero ``(h, c)`` for every layer, on the model's device and dtype."""
        check_int("batch_size", batch_size, 1)
        w = self.encoder.weight
        return [(w.new_zeros(1, batch_size, h), w.new_zeros(1, batch_size, h)) for h in self.widths[1:]]

    def _run_layer(self, k: int, x: Tensor, state: tuple[Tensor, Tensor]):
        rnn = self.rnns[k]
        if not (self.training and self.wdrop > 0.0):
            return rnn(x, state)
        params = dict(rnn.named_parameters())
        params["weight_hh_l0"] = F.dropout(params["weight_hh_l0"], p=self.wdrop, training=True)
        with warnings.catch_warnings():
            # The substituted weight is not in cuDNN's flat buffer: expected, only slower.
            warnings.filterwarnings("ignore", message=".*contiguous chunk of memory.*")
            return functional_call(rnn, params, (x, state))

    def forward(self, input: Tensor, hidden: Hidden, return_raw: bool = False):
        """Logits for the next token at every position.

        ``input`` ``[T, B]`` int64, ``hidden`` from :meth:`init_hidden` or a previous call.
        Returns ``(logits [T*B, V], new_hidden, output [T, B, D])`` where ``output`` is the
        last layer's output after ``dropout`` (what the decoder sees and AR penalises;
        ``D = emb_size`` when tied). With ``return_raw=True`` a fourth element, the last
        layer's output before dropout (what TAR penalises), is appended; with zero dropout
        the two are the same tensor.
        """
        if input.dim() != 2:
            raise ValueError(f"input must be [seq_len, batch], got shape {tuple(input.shape)}")
        if len(hidden) != self.n_layers:
            raise ValueError(f"hidden has {len(hidden)} layers, the model {self.n_layers}")
        x = embedded_dropout(self.encoder, input, self.dropoute, self.training)
        x = locked_dropout(x, self.dropouti, self.training)
        new_hidden = []
        for k in range(self.n_layers):
            x, state = self._run_layer(k, x, hidden[k])
            new_hidden.append(state)
            if k < self.n_layers - 1:
                x = locked_dropout(x, self.dropouth, self.training)
        raw = x
        output = locked_dropout(raw, self.dropout, self.training)
        logits = self.decoder(output.reshape(-1, output.size(2)))
        if return_raw:
            return logits, new_hidden, output, raw
        return logits, new_hidden, output


# --------------------------------------------------------------------------------------
# ResNet for CIFAR
# --------------------------------------------------------------------------------------


class _BasicBlock(nn.Module):
    r""":math:`y = \mathrm{relu}(\mathrm{BN}(W_2 * \mathrm{relu}(\mathrm{BN}(W_1 * x))) + s(x))`.

    Option-A shortcut :math:`s`: identity, or (when the block halves the resolution and
    widens) subsampling by 2 and zero-padding the new channels -- no parameters.
    """

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride = stride
        self.extra = planes - in_planes

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x
        if self.stride != 1:
            shortcut = shortcut[:, :, :: self.stride, :: self.stride]
        if self.extra:
            half = self.extra // 2
            shortcut = F.pad(shortcut, (0, 0, 0, 0, half, self.extra - half))
        return F.relu(out + shortcut)


class ResNetCifar(nn.Module):
    """CIFAR ResNet of depth ``6 n + 2`` (He et al. 2016, Sec. 4.2), option-A shortcuts.

    Kaiming (He et al. 2015) initialisation: conv weights ~ N(0, 2 / fan_out) as in the
    ResNet reference code, BatchNorm scale 1 and shift 0, the final linear layer PyTorch's
    default (Kaiming-uniform).
    """

    def __init__(self, depth: int = 20, num_classes: int = 10, widths: tuple[int, int, int] = (16, 32, 64)):
        super().__init__()
        if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(f"Invalid depth: {depth!r} (must be 6n + 2 with n >= 1)")
        check_int("num_classes", num_classes, 1)
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        blocks, in_planes = [], widths[0]
        for stage, planes in enumerate(widths):
            for b in range(n):
                stride = 2 if (stage > 0 and b == 0) else 1
                blocks.append(_BasicBlock(in_planes, planes, stride))
                in_planes = planes
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(widths[-1], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``[N, 3, H, W]`` float -> logits ``[N, num_classes]``."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.blocks(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


def resnet_cifar_num_parameters(
    depth: int = 20, num_classes: int = 10, widths: tuple[int, int, int] = (16, 32, 64)
) -> int:
    r"""Closed-form parameter count of :class:`ResNetCifar` (option A: shortcuts are free).

    Stem :math:`27w_1 + 2w_1`; stage :math:`s` with :math:`n` blocks:
    :math:`9w_{s-1}w_s + (2n - 1)\,9w_s^2 + 2n\cdot 2w_s` (:math:`w_0 = w_1`); head
    :math:`w_3 K + K`.
    """
    n = (depth - 2) // 6
    total = 27 * widths[0] + 2 * widths[0]
    prev = widths[0]
    for w in widths:
        total += 9 * prev * w + (2 * n - 1) * 9 * w * w + 2 * n * 2 * w
        prev = w
    return total + widths[-1] * num_classes + num_classes


def resnet20(num_classes: int = 10) -> ResNetCifar:
    """ResNet-20 for 32x32 images: 3 stages x 3 basic blocks, 16/32/64 channels, option A."""
    return ResNetCifar(depth=20, num_classes=num_classes)


def lstm_lm_forward(params: dict[str, Tensor], x: Tensor, n_layers: int):
    r"""Functional twin of :class:`clipcore.models.LSTMLanguageModel` (no dropout, zero
    initial state): ``x`` ``[T, B]`` -> ``(logits [T, B, V], output [T, B, D])``.

    Each layer runs the LSTM recursion (gate order i, f, g, o as ``nn.LSTM``)

    .. math::
        (i, f, \tilde c, o) = W_{ih}x_t + b_{ih} + W_{hh}h_{t-1} + b_{hh},\quad
        c_t = \sigma(f)\odot c_{t-1} + \sigma(i)\odot\tanh(\tilde c),\quad
        h_t = \sigma(o)\odot\tanh(c_t)

    with plain tensor operations, so :func:`torch.func.vmap` can batch it over examples
    (``nn.LSTM``'s fused kernels have no batching rule). The decoder is tied to the embedding
    unless ``params`` holds ``decoder.weight``.
    """
    h = params["encoder.weight"][x]
    for k in range(n_layers):
        p = f"rnns.{k}."
        w_ih, w_hh = params[p + "weight_ih_l0"], params[p + "weight_hh_l0"]
        pre = h @ w_ih.T + params[p + "bias_ih_l0"] + params[p + "bias_hh_l0"]
        width = w_hh.shape[1]
        ht = h.new_zeros(h.shape[1], width)
        ct = h.new_zeros(h.shape[1], width)
        outs = []
        for t in range(pre.shape[0]):
            i, f, g, o = (pre[t] + ht @ w_hh.T).chunk(4, dim=-1)
            ct = torch.sigmoid(f) * ct + torch.sigmoid(i) * torch.tanh(g)
            ht = torch.sigmoid(o) * torch.tanh(ct)
            outs.append(ht)
        h = torch.stack(outs)
    w_dec = params.get("decoder.weight", params["encoder.weight"])
    return h @ w_dec.T + params["decoder.bias"], h


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, x: Tensor, batch_size: int = 256) -> nn.Module:
    """Reset every BatchNorm's running statistics to the average over the batches of ``x``
    (``batch_size`` at a time, in train mode) of the batch statistics (``momentum=None``:
    cumulative average), then restore the momentum; returns the model in eval mode. Used at
    initialisation, where the running statistics are still 0 and 1."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    for s in range(0, x.size(0), batch_size):
        model(x[s : s + batch_size])
    for bn, mom in zip(bns, saved):
        bn.momentum = mom
    return model.eval()
