r"""Word-level Penn Treebank with the reduced AWD-LSTM (Zhang et al., ICLR 2020, Figs. 1, 2, 4a-b).

Each step draws a random BPTT length :math:`\ell` (:func:`clipcore.data.sample_bptt`), uses
the learning rate :math:`\eta\,\ell/\text{bptt}`, carries the (detached) hidden state from
chunk to chunk within an epoch and minimises

.. math::
    \underbrace{\tfrac{1}{TB}\textstyle\sum_{t,b} -\log p(w_{t+1,b} \mid w_{\le t,b})}_{\text{loss}}
    + \alpha\,\operatorname{mean}(o_t^2) + \beta_\text{TAR}\,\operatorname{mean}((h_t - h_{t-1})^2),

halving :math:`\eta` when the validation loss has not improved for ``lr_halve_patience``
epochs. Validation loss and perplexity every epoch, test at the end.

**Probe data**: the first ``probe_fraction`` of the (used) training stream, batchified with
the training batch size, capped at ``probe_chunks`` x ``bptt`` rows, cut into consecutive
chunks evaluated from a zero hidden state that is carried from chunk to chunk (as the
authors' code). ``fixed`` and ``hessian`` use pinned chunks of length ``bptt``, weighted by
their number of tokens; ``faithful`` redraws random lengths at every draw (a NumPy generator
seeded by ``(seed, draw)``, so it is reproducible). The probe loss includes the AR/TAR
penalties: the probed function is the objective the optimiser follows.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .. import data as D
from .. import models as M
from ..smoothness import ProbeData
from .tasks import Batch, Chunk, ExampleLoss

__all__ = ["LSTMTask", "TASK", "build_model", "example_loss", "examples"]


def build_model(cfg, corpus=None) -> M.LSTMLanguageModel:
    """The run's LSTM (tied decoder) for ``corpus``'s vocabulary (loaded from ``cfg.data_dir``
    when not given)."""
    corpus = D.load_ptb(cfg.data_dir) if corpus is None else corpus
    return M.LSTMLanguageModel(
        corpus.vocab_size, cfg.emb_size, cfg.hidden_size, cfg.n_layers, tie_weights=True
    )


class LSTMTask:
    """Word-level PTB with the reduced AWD-LSTM."""

    def __init__(self, cfg, device: torch.device):
        self.cfg, self.device = cfg, device
        corpus = D.load_ptb(cfg.data_dir)
        n_tok = max(2 * cfg.batch_size, int(corpus.train.numel() * cfg.train_fraction))
        self.train_data = D.batchify(corpus.train[:n_tok], cfg.batch_size, device)
        self.whole_train_data = self.train_data
        if self.train_data.size(0) < 3:
            raise ValueError(
                f"Invalid train_fraction: {cfg.train_fraction!r} (leaves fewer than 3 rows of "
                f"batch_size {cfg.batch_size})"
            )

        def split(tokens):
            n = max(2 * cfg.eval_batch_size, int(tokens.numel() * cfg.eval_fraction))
            return D.batchify(tokens[:n], cfg.eval_batch_size, device)

        self.eval_data = {"valid": split(corpus.valid), "test": split(corpus.test)}
        self.model = build_model(cfg, corpus).to(device)
        self.sampler = np.random.default_rng(cfg.seed)  # the BPTT-length sampler
        self.pos, self.hidden = 0, None
        self.dataset_name = f"Penn Treebank ({corpus.source})"

    # The loop's questions (see clipcore.training.tasks).
    eval_split = "valid"
    final_split = "test"

    @property
    def lr_patience(self) -> int | None:
        return self.cfg.lr_halve_patience

    def epoch_extras(self, train_loss: float) -> dict:
        return {"ppl": math.exp(min(train_loss, 700.0))}

    def step_extras(self, batch: Batch, result: dict) -> dict:
        return {"seq_len": batch.seq_len, "penalty": result["penalty"]}

    def steps_per_epoch(self) -> int:
        return max(1, math.ceil((self.train_data.size(0) - 2) / self.cfg.bptt))

    def start_epoch(self) -> None:
        # AWD-LSTM: a fresh zero hidden state at the start of every epoch.
        self.pos, self.hidden = 0, self.model.init_hidden(self.train_data.size(1))

    def epoch_done(self) -> bool:
        # AWD-LSTM: ``while i < train_data.size(0) - 1 - 1``.
        return self.pos >= self.train_data.size(0) - 2

    def next_batch(self) -> Batch:
        cfg = self.cfg
        # max_delta=None: the authors' fork has no upper cap on the length.
        seq_len = D.sample_bptt(self.sampler, cfg.bptt, max_delta=None) if cfg.random_bptt else cfg.bptt
        x, y = D.get_batch(self.train_data, self.pos, seq_len)
        self.pos += seq_len
        return Batch(x, y, seq_len / cfg.bptt, seq_len)

    def loss(self, batch: Batch):
        """(objective, cross-entropy, number of targets, AR + TAR) for one training chunk."""
        # The state the step starts from, kept for step_probe_data (detached: no copy).
        self.hidden_in = M.detach_hidden(self.hidden)
        logits, hidden, out, raw = self.model(batch.x, self.hidden_in, return_raw=True)
        # Stored detached: the next chunk starts a new graph (AWD-LSTM repackage_hidden).
        self.hidden = M.detach_hidden(hidden)
        ce = F.cross_entropy(logits.float(), batch.y)
        pen = _lstm_penalty(out, raw, self.cfg)
        return ce + pen, ce, batch.y.numel(), pen

    @torch.no_grad()
    def evaluate(self, split: str, autocast) -> dict:
        """Token-weighted mean cross-entropy over ``split`` in bptt chunks, hidden carried."""
        src, cfg = self.eval_data[split], self.cfg
        self.model.eval()
        hidden = self.model.init_hidden(cfg.eval_batch_size)
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        count = 0
        for i in range(0, src.size(0) - 1, cfg.bptt):
            x, y = D.get_batch(src, i, cfg.bptt)
            with autocast():
                logits, hidden, _ = self.model(x, hidden)
            total += F.cross_entropy(logits.float(), y, reduction="sum").double()
            count += y.numel()
        self.model.train()
        loss = float(total) / count
        return {"loss": loss, "ppl": math.exp(min(loss, 700.0))}

    def probe_data(self) -> dict[str, ProbeData]:
        cfg = self.cfg
        n_tok = self.whole_train_data.numel()
        # The first probe_fraction of the token stream, batchified with the training batch
        # size (the authors' "first 10% of the training data"), capped at probe_chunks chunks.
        stream = self.whole_train_data.t().reshape(-1)[
            : max(2 * cfg.batch_size, int(n_tok * cfg.probe_fraction))
        ]
        src = D.batchify(stream, cfg.batch_size)
        rows = src.size(0)
        if cfg.probe_chunks is not None:
            rows = min(rows, cfg.probe_chunks * cfg.bptt + 1)
        src = src[:rows]

        def chunks_of(lengths):
            out, i = [], 0
            for L in lengths:
                if i >= rows - 1:
                    break
                x, y = D.get_batch(src, i, int(L))
                out.append(Chunk(i == 0, x, y))
                i += int(L)
            return out

        pinned = chunks_of([cfg.bptt] * rows)

        def faithful_chunks(draw: int):
            # Fresh random lengths at every draw, reproducibly (seed, draw).
            rng = np.random.default_rng([cfg.seed, int(draw)])
            lengths = (D.sample_bptt(rng, cfg.bptt, max_delta=None) for _ in range(rows))
            return chunks_of(lengths)

        def weights(c):
            return float(c.y.numel())

        out = {}
        for name in cfg.estimators:
            loss = _LSTMProbeLoss(cfg)
            if name == "faithful":
                out[name] = ProbeData(chunks=faithful_chunks, loss=loss)
            else:
                out[name] = ProbeData.pinned(pinned, loss, weights)
        return out

    def shard(self, group) -> None:
        """Train on this process's columns of the batchified stream (torchrun: see
        :mod:`clipcore.training.distributed`); each column is an independent token stream."""
        # The pinned probes keep reading whole_train_data: the same data on every rank.
        self.train_data = self.train_data[:, group.shard(self.cfg.batch_size, "batch_size")].contiguous()

    def step_probe_data(self, batch: Batch) -> ProbeData:
        """The objective of the step just taken on ``batch``: the chunk from the hidden state
        that step started from (no dropout in these runs, so the function is deterministic)."""
        chunk = Chunk(False, batch.x, batch.y, self.hidden_in)
        return ProbeData.pinned([chunk], _LSTMProbeLoss(self.cfg), lambda c: float(c.y.numel()))

    def probe_chunk(self, batch: Batch) -> Chunk:
        """A training batch as a probe chunk (from a zero hidden state: equal to the step's
        objective only for a batch that starts an epoch)."""
        return Chunk(True, batch.x, batch.y)

    def state_dict(self) -> dict:
        return {
            "pos": self.pos,
            "hidden": [(h.detach().cpu(), c.detach().cpu()) for h, c in self.hidden],
            "sampler": self.sampler.bit_generator.state,
        }

    def load_state_dict(self, st: dict) -> None:
        self.pos = int(st["pos"])
        self.hidden = [(h.to(self.device), c.to(self.device)) for h, c in st["hidden"]]
        self.sampler.bit_generator.state = st["sampler"]


def _lstm_penalty(out: Tensor, raw: Tensor, cfg) -> Tensor:
    r"""AR :math:`\alpha\,\mathrm{mean}(o^2)` on the last layer's output + TAR on its raw output."""
    pen = out.new_zeros((), dtype=torch.float32)
    if cfg.alpha:
        pen = pen + M.activation_penalty(out.float(), cfg.alpha)
    if cfg.beta_tar and raw.size(0) > 1:
        pen = pen + M.temporal_penalty(raw.float(), cfg.beta_tar)
    return pen


class _LSTMProbeLoss:
    """Training objective on one probe chunk; the hidden state is carried between chunks
    (detached) and reset to zero at a chunk marked ``first``, or set to a chunk's own ``hidden``."""

    def __init__(self, cfg):
        self.cfg, self.hidden = cfg, None

    def __call__(self, model, chunk: Chunk) -> Tensor:
        if chunk.hidden is not None:
            self.hidden = chunk.hidden
        elif chunk.first or self.hidden is None:
            self.hidden = model.init_hidden(chunk.x.size(1))
        logits, hidden, out, raw = model(chunk.x, self.hidden, return_raw=True)
        self.hidden = M.detach_hidden(hidden)
        return F.cross_entropy(logits, chunk.y) + _lstm_penalty(out, raw, self.cfg)


TASK = LSTMTask


def example_loss(cfg, model: torch.nn.Module) -> ExampleLoss:
    r"""One sequence ``x, y`` ``[T]`` from a zero hidden state: mean cross-entropy over its T
    targets plus AR :math:`\alpha\,\mathrm{mean}(o^2)` and TAR
    :math:`\beta\,\mathrm{mean}((h_t - h_{t-1})^2)`, as in training (no dropout). Every
    sequence has the same length, so the batched means equal the mean of the examples'."""
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    if getattr(model, "dropout", 0) or getattr(model, "wdrop", 0):
        raise ValueError("Invalid model: example_loss supports the LSTM without dropout only")
    n_layers = model.n_layers

    def objective(p, x, y):  # x, y: [T, B]; all means over time and batch
        logits, out = M.lstm_lm_forward(p, x, n_layers)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        pen = cfg.alpha * out.pow(2).mean() if cfg.alpha else 0.0
        if cfg.beta_tar and out.shape[0] > 1:
            pen = pen + cfg.beta_tar * (out[1:] - out[:-1]).pow(2).mean()
        return ce + pen

    return ExampleLoss(
        lambda p, x, y: objective(p, x[:, None], y[:, None]), lambda p, X, Y: objective(p, X.T, Y.T), params
    )


def examples(cfg, n: int, device="cpu") -> tuple[Tensor, Tensor]:
    """``n`` consecutive, non-overlapping windows of ``cfg.bptt`` tokens from the start of the
    run's training stream (the tokens train uses): inputs and next-token targets, ``[n, T]``."""
    corpus = D.load_ptb(cfg.data_dir)
    n_tok = max(2 * cfg.batch_size, int(corpus.train.numel() * cfg.train_fraction))
    n_tok = (n_tok // cfg.batch_size) * cfg.batch_size  # batchify drops the rest
    stream, T = corpus.train[:n_tok], cfg.bptt
    avail = (stream.numel() - 1) // T
    if not (isinstance(n, (int, np.integer)) and 2 <= n <= avail):
        raise ValueError(
            f"Invalid n: {n!r} (the training stream holds {avail} windows of {T} tokens; need >= 2)"
        )
    x = stream[: n * T].view(n, T)
    y = stream[1 : n * T + 1].view(n, T)
    return x.to(device), y.to(device)
