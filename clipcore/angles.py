r"""Angles between batch gradients and the full gradient (Qian et al., AISTATS 2021, claim C3).

Qian, Wu, Zhuang, Wang, Xiao claim that the angles between mini-batch gradients and the full
gradient shrink as the batch size grows, so that clipping larger batches biases the direction
less. For per-example gradients :math:`g_1, \dots, g_N` (NumPy or torch, on their device) this
module measures the cosines between batch-mean gradients and the full mean gradient
(:func:`batch_cosines`) and predicts them from two moments (:func:`gradient_moments`,
:func:`predicted_cosine`).

**Measured along a training run** (:func:`measure_angles`). On N fixed examples with
per-example gradients :math:`g_i` and full gradient :math:`\bar g = \frac1N\sum_i g_i`, a
shuffled split into :math:`\lfloor N/B\rfloor` disjoint batches gives batch gradients
:math:`\bar g_b = \frac1B\sum_{i\in b} g_i` and angles :math:`\theta_b =
\arccos\frac{\langle\bar g_b, \bar g\rangle}{\|\bar g_b\|\|\bar g\|}`; the prediction for sampling
without replacement is :func:`predicted_cosine` with :math:`\sigma^2 = \frac1N\sum_i\|g_i -
\bar g\|^2`. Per-example gradients come from :func:`torch.func.vmap` over
:func:`torch.func.grad`, in chunks, and are never all held at once: batches are accumulated
as the chunks stream past.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.func import grad, vmap

from .claims import band_status, combine_statuses
from .validation import check_int, check_nonnegative, check_number, check_positive, invalid

__all__ = [
    "gradient_moments",
    "predicted_cosine",
    "batch_cosines",
    "per_example_gradients",
    "full_gradient",
    "AngleMeasurement",
    "measure_angles",
    "BatchAngles",
    "batch_angles",
    "PredictionCheck",
    "prediction_check",
]


def _as_matrix(example_grads):
    G = example_grads
    if not isinstance(G, torch.Tensor):
        G = np.asarray(G, np.float64)
    if G.ndim != 2 or G.shape[0] < 2 or G.shape[1] < 1:
        raise invalid("example_grads shape", tuple(G.shape), "expected [N, d] with N >= 2")
    return G


def gradient_moments(example_grads, chunk: int = 4096) -> tuple[float, float]:
    r""":math:`(\|\bar g\|^2, \sigma^2)` of per-example gradients ``[N, d]`` (NumPy or torch, on
    its own device): :math:`\bar g = \frac1N\sum_i g_i` and
    :math:`\sigma^2 = \frac1N\sum_i\|g_i - \bar g\|^2` (trace of the population covariance),
    computed centred, in row chunks, so no copy of the matrix is made."""
    G = _as_matrix(example_grads)
    N = G.shape[0]
    if isinstance(G, torch.Tensor):
        Gd = G.double() if G.dtype != torch.float64 else G
        mean = Gd.mean(0)
        var = sum(float(((Gd[s : s + chunk] - mean) ** 2).sum()) for s in range(0, N, chunk)) / N
        return float(mean @ mean), var
    mean = G.mean(0)
    var = sum(float(((G[s : s + chunk] - mean) ** 2).sum()) for s in range(0, N, chunk)) / N
    return float(mean @ mean), var


def predicted_cosine(mean_sq_norm, sigma2, N: int, batch_size):
    r"""Predicted cosine between a batch-mean gradient (B examples drawn without replacement)
    and the full mean gradient :math:`\bar g`:

    .. math::
        \cos\theta \approx \frac{\|\bar g\|}{\sqrt{\|\bar g\|^2 + \sigma^2\frac{N-B}{B(N-1)}}}.

    The denominator is exact for the root mean square: :math:`E\|\bar g_B\|^2 = \|\bar g\|^2
    + \sigma^2 (N-B)/(B(N-1))` and :math:`E\langle\bar g_B, \bar g\rangle = \|\bar g\|^2`; the
    cosine replaces a mean of ratios by a ratio of means. ``batch_size`` may be an array."""
    B = np.asarray(batch_size, np.float64)
    check_int("N", N, 2)
    if np.any(B < 1) or np.any(B > N):
        raise invalid("batch_size", batch_size, f"must be in [1, N = {N}]")
    check_nonnegative("mean_sq_norm", mean_sq_norm)
    check_nonnegative("sigma2", sigma2)
    var_B = sigma2 * (N - B) / (B * (N - 1))
    return np.sqrt(mean_sq_norm) / np.sqrt(mean_sq_norm + var_B)


def batch_cosines(example_grads, batch_size: int, *, n_splits: int = 1, seed=0) -> np.ndarray:
    r"""Cosines between batch-mean gradients and the full mean gradient.

    The N examples are shuffled and split into :math:`\lfloor N/B\rfloor` disjoint batches of
    size B (sampling without replacement; a remainder is left out of the batches but not of the
    full gradient), ``n_splits`` times with fresh shuffles. Works on NumPy arrays and on torch
    tensors (on their device, e.g. per-example gradients of a network). Returns a float64 array
    of ``n_splits * (N // B)`` cosines.
    """
    G = _as_matrix(example_grads)
    N = G.shape[0]
    if check_int("batch_size", batch_size, 1) > N:
        raise invalid("batch_size", batch_size, f"must be an integer in [1, N = {N}]")
    check_int("n_splits", n_splits, 1)
    rng = np.random.default_rng(seed)
    n = N // batch_size
    out = []
    is_torch = isinstance(G, torch.Tensor)
    mean = G.mean(0)
    for _ in range(n_splits):
        perm = rng.permutation(N)[: n * batch_size]
        if is_torch:
            idx = torch.as_tensor(perm, device=G.device)
            Gb = G.index_select(0, idx).reshape(n, batch_size, -1).mean(1).double()
            m = mean.double()
            cos = (Gb @ m) / (torch.linalg.vector_norm(Gb, dim=1) * torch.linalg.vector_norm(m))
            out.append(cos.cpu().numpy())
        else:
            Gb = G[perm].reshape(n, batch_size, -1).mean(1)
            out.append((Gb @ mean) / (np.linalg.norm(Gb, axis=1) * np.linalg.norm(mean)))
    return np.concatenate(out)


def _flat(grads: Mapping[str, Tensor], names: Sequence[str], lead: int | None) -> Tensor:
    if lead is None:
        return torch.cat([grads[k].reshape(-1) for k in names])
    return torch.cat([grads[k].reshape(lead, -1) for k in names], dim=1)


def per_example_gradients(
    loss: Callable, params: Mapping[str, Tensor], x: Tensor, y: Tensor, chunk_size: int = 32
) -> Iterable[Tensor]:
    r"""Yield the flattened per-example gradients :math:`\nabla_\theta\ell(\theta; x_i, y_i)`
    as ``[c, P]`` chunks, in the order of ``x`` (``vmap(grad(loss))`` per chunk)."""
    check_int("chunk_size", chunk_size, 1)
    names = list(params)
    g = vmap(grad(loss), in_dims=(None, 0, 0))
    for s in range(0, x.size(0), chunk_size):
        xs, ys = x[s : s + chunk_size], y[s : s + chunk_size]
        yield _flat(g(params, xs, ys), names, xs.size(0))


def full_gradient(
    loss: Callable,
    params: Mapping[str, Tensor],
    x: Tensor,
    y: Tensor,
    chunk_size: int = 256,
    batch_loss: Callable | None = None,
) -> Tensor:
    r""":math:`\bar g = \nabla_\theta \frac1N\sum_i \ell(\theta; x_i, y_i)`, flattened
    (float64), from batched backward passes over chunks of the N examples: through
    ``batch_loss`` (the mean over a chunk) when given, else through ``vmap(loss)``."""
    names = list(params)
    N = x.size(0)

    def chunk_sum(p, xs, ys):
        if batch_loss is not None:
            return batch_loss(p, xs, ys) * xs.size(0)
        return vmap(loss, in_dims=(None, 0, 0))(p, xs, ys).sum()

    total = None
    for s in range(0, N, chunk_size):
        gs = _flat(grad(chunk_sum)(params, x[s : s + chunk_size], y[s : s + chunk_size]), names, None)
        total = gs.double() if total is None else total + gs.double()
    return total / N


class _StreamingBatches:
    """Batch sums of one batch size B as the examples stream past, for ``1 + E`` splits.

    Split 0 is the order the examples arrive in: consecutive blocks of B, so whole blocks
    inside a chunk are summed at once and at most one batch is open across chunks. Each of
    the E extra splits is an independent random partition (used only when there are few
    batches, so ``E * (N // B)`` accumulators stay few); a chunk adds into them with one
    product by its 0/1 membership matrix. Examples past the last whole batch of a split are
    left out of that split. Sums across chunks are accumulated in float64.
    """

    def __init__(self, B: int, N: int, P: int, extra_perms: Sequence[np.ndarray], device):
        self.B, self.n = B, N // B
        self.acc = torch.zeros(P, dtype=torch.float64, device=device)
        self.filled = self.seen = 0
        self.rows = None
        if extra_perms:
            # rows[e, i]: accumulator row of example i in extra split e, or -1 (left out).
            rows = np.full((len(extra_perms), N), -1, dtype=np.int64)
            for e, perm in enumerate(extra_perms):
                rows[e, perm[: self.n * B]] = e * self.n + np.arange(self.n * B) // B
            self.rows = torch.as_tensor(rows, device=device)
            self.extra = torch.zeros(len(extra_perms) * self.n, P, dtype=torch.float64, device=device)

    def add(self, idx: Tensor, G: Tensor, gbar: Tensor, cos_out: list) -> None:
        B, c = self.B, G.size(0)
        if self.rows is not None:
            r = self.rows[:, idx]  # [E, c]
            dump = self.extra.size(0)  # left-out examples land in a row that is dropped
            M = torch.zeros(dump + 1, c, dtype=G.dtype, device=G.device)
            M[r.where(r >= 0, dump), torch.arange(c, device=G.device).expand_as(r)] = 1
            self.extra += (M[:dump] @ G).double()
        j = 0
        limit = self.n * B  # split 0 stops after its whole batches
        while j < c and self.seen < limit:
            k = min((c - j) // B, (limit - self.seen) // B) if self.filled == 0 else 0
            if k > 0:  # whole batches inside the chunk
                blocks = G[j : j + k * B]
                cos_out.append(_cosines(blocks if B == 1 else blocks.reshape(k, B, -1).sum(1), gbar))
                j += k * B
                self.seen += k * B
                continue
            take = min(B - self.filled, c - j, limit - self.seen)
            self.acc += G[j : j + take].sum(0).double()
            self.filled += take
            self.seen += take
            j += take
            if self.filled == B:
                cos_out.append(_cosines(self.acc[None], gbar))
                self.acc.zero_()
                self.filled = 0

    def extra_cosines(self, gbar: Tensor) -> list[np.ndarray]:
        return [] if self.rows is None else [_cosines(self.extra, gbar)]


def _cosines(S: Tensor, gbar: Tensor) -> np.ndarray:
    """Cosines between the rows of S and gbar (in S's dtype; float64 on the host)."""
    g = gbar.to(S.dtype)
    num = S @ g
    den = torch.linalg.vector_norm(S, dim=1) * torch.linalg.vector_norm(g)
    return (num / den).double().cpu().numpy()


@dataclass(frozen=True)
class AngleMeasurement:
    r"""Cosines between batch gradients and the full gradient, per batch size.

    ``cosines[B]`` holds one value per batch (all splits); ``mean_sq_norm`` is
    :math:`\|\bar g\|^2`, ``sigma2`` :math:`\frac1N\sum_i\|g_i - \bar g\|^2`, ``n_examples``
    N, ``n_params`` P. ``mean_check`` is :math:`\|\frac1N\sum_i g_i - \bar g\|/\|\bar g\|`,
    the agreement of the per-example gradients with the batched full gradient (rounding
    only)."""

    batch_sizes: tuple[int, ...]
    cosines: dict
    mean_sq_norm: float
    sigma2: float
    n_examples: int
    n_params: int
    mean_check: float
    seconds: float

    def angles(self, B: int) -> np.ndarray:
        """Angles in degrees of batch size B."""
        return np.degrees(np.arccos(np.clip(self.cosines[B], -1.0, 1.0)))

    def mean_cosines(self) -> np.ndarray:
        return np.array([self.cosines[B].mean() for B in self.batch_sizes])

    def median_angles(self) -> np.ndarray:
        return np.array([np.median(self.angles(B)) for B in self.batch_sizes])

    def predicted(self, batch_sizes=None) -> np.ndarray:
        """Predicted cosine (sampling without replacement) at ``batch_sizes`` (default: ours)."""
        Bs = self.batch_sizes if batch_sizes is None else batch_sizes
        return predicted_cosine(self.mean_sq_norm, self.sigma2, self.n_examples, np.asarray(Bs, float))


def measure_angles(
    loss: Callable,
    params: Mapping[str, Tensor],
    x: Tensor,
    y: Tensor,
    batch_sizes: Sequence[int],
    *,
    min_batches: int = 16,
    chunk_size: int = 32,
    seed: int = 0,
    batch_loss: Callable | None = None,
) -> AngleMeasurement:
    r"""Angles between batch gradients and the full gradient on the N examples ``x, y``.

    The examples are shuffled (``seed``) and cut into :math:`\lfloor N/B\rfloor` consecutive
    batches per B (sampling without replacement); when that gives fewer than ``min_batches``
    batches, further independent shuffles are added until it does not. One pass computes
    :math:`\bar g` (:func:`full_gradient`, through ``batch_loss`` when given, e.g.
    :attr:`ExampleLoss.batch_loss`), a second streams the per-example gradients
    (:func:`per_example_gradients`) into the batch sums and :math:`\sigma^2`.
    """
    N = int(x.size(0))
    Bs = tuple(int(b) for b in batch_sizes)
    if not Bs or any(b < 1 or b >= N for b in Bs) or len(set(Bs)) != len(Bs):
        raise ValueError(f"Invalid batch_sizes: {batch_sizes!r} (distinct integers in [1, N) with N = {N})")
    check_int("min_batches", min_batches, 1)
    if y.size(0) != N:
        raise ValueError(f"Invalid y: {y.size(0)} labels for {N} examples")
    t0 = time.perf_counter()
    device = x.device
    rng = np.random.default_rng(seed)
    order = rng.permutation(N)
    gbar = full_gradient(loss, params, x, y, chunk_size=max(chunk_size, 64), batch_loss=batch_loss)
    P = gbar.numel()
    streams = {}
    for B in Bs:
        n = N // B
        extra = max(1, math.ceil(min_batches / n)) - 1
        streams[B] = _StreamingBatches(B, N, P, [rng.permutation(N) for _ in range(extra)], device)
    cos_parts = {B: [] for B in Bs}
    total = torch.zeros(P, dtype=torch.float64, device=device)
    sq_dev = 0.0
    order_t = torch.as_tensor(order, device=device)
    xs, ys = x[order_t], y[order_t]
    start = 0
    for G in per_example_gradients(loss, params, xs, ys, chunk_size):
        # G stays in the model's dtype (a float64 copy of a chunk of a large model is costly);
        # sums over a chunk's rows are formed in that dtype, everything beyond in float64.
        idx = order_t[start : start + G.size(0)]
        start += G.size(0)
        total += G.sum(0).double()
        sq_dev += float(torch.linalg.vector_norm(G - gbar.to(G.dtype), dtype=torch.float64)) ** 2
        for B in Bs:
            streams[B].add(idx, G, gbar, cos_parts[B])
    cosines = {B: np.concatenate(cos_parts[B] + streams[B].extra_cosines(gbar)) for B in Bs}
    m2 = float(gbar @ gbar)
    check = float(torch.linalg.vector_norm(total / N - gbar)) / math.sqrt(m2) if m2 > 0 else math.nan
    return AngleMeasurement(Bs, cosines, m2, sq_dev / N, N, P, check, time.perf_counter() - t0)


# ---------------------------------------------------------------- claim C3 on finite sums: the verdicts


@dataclass(frozen=True, eq=False)
class BatchAngles:
    r"""Cosines and angles between batch-mean and full gradients, per batch size
    (:func:`batch_angles`); all arrays ``[K]``. ``*_se`` are standard errors of the means over
    independent shuffles (0 at B = 1, where every shuffle holds every example, so the mean is
    exact); angles are in degrees, ``pred_angle`` is :math:`\arccos` of ``pred_cos``."""

    batch_sizes: np.ndarray
    n_splits: np.ndarray
    mean_cos: np.ndarray
    se_cos: np.ndarray
    pred_cos: np.ndarray
    mean_angle: np.ndarray
    se_angle: np.ndarray
    pred_angle: np.ndarray
    cosines: tuple  # the measured cosines of each batch size, for plotting


def batch_angles(
    example_grads, batch_sizes, *, min_batches: int, min_splits: int = 2, seed: int = 0
) -> BatchAngles:
    r"""For each batch size B, :func:`clipcore.angles.batch_cosines` over
    :math:`s = \max\{\text{min\_splits}, \lceil \text{min\_batches}\,B/N\rceil\}`
    independent shuffles (so at least ``min_batches`` cosines), the mean cosine and mean angle with their standard errors
    over the shuffles (each shuffle's mean is one independent draw), and the prediction
    :func:`clipcore.angles.predicted_cosine` from the per-example moments. Seeded (batch size k
    uses seed ``[seed, k]``)."""
    G = np.asarray(example_grads, np.float64)
    check_int("min_batches", min_batches, 1)
    check_int("min_splits", min_splits, 2)
    if G.ndim != 2 or G.shape[0] < 2:
        raise invalid("example_grads shape", G.shape, "expected [N, d] with N >= 2")
    N = G.shape[0]
    m2, s2 = gradient_moments(G)
    sizes = [check_int("batch_size", B, 1) for B in batch_sizes]
    out = {k: [] for k in ("n_splits", "mean_cos", "se_cos", "mean_angle", "se_angle")}
    cosines = []
    for k, B in enumerate(sizes):
        n_splits = max(min_splits, math.ceil(min_batches * B / N))
        ss = np.random.SeedSequence([seed, k]).generate_state(1)[0]
        cos = batch_cosines(G, B, n_splits=n_splits, seed=int(ss)).reshape(n_splits, N // B)
        ang = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
        cosines.append(cos.ravel())
        out["n_splits"].append(n_splits)
        for name, v in (("cos", cos), ("angle", ang)):
            split_means = v.mean(1)
            out["mean_" + name].append(split_means.mean())
            out["se_" + name].append(split_means.std(ddof=1) / math.sqrt(n_splits))
    pred = predicted_cosine(m2, s2, N, np.asarray(sizes, np.float64))
    return BatchAngles(
        batch_sizes=np.asarray(sizes),
        **{k: np.asarray(v) for k, v in out.items()},
        pred_cos=pred,
        pred_angle=np.degrees(np.arccos(np.clip(pred, -1.0, 1.0))),
        cosines=tuple(cosines),
    )


@dataclass(frozen=True, eq=False)
class PredictionCheck:
    """Measured means against a prediction by relative error (:func:`prediction_check`)."""

    rel_error: np.ndarray  # |measured − predicted| / |predicted|, [K]
    spread: np.ndarray  # z · se / |predicted|: the sampling spread of the relative error, [K]
    statuses: tuple  # per entry
    status: str  # all entries together (fails if one fails, holds if all hold)
    worst: int  # index of the largest relative error


def prediction_check(measured, se, predicted, *, tol: float, level: float = 0.95) -> PredictionCheck:
    r"""Does each measured mean match its prediction to a relative error of at most ``tol``?

    Per entry the relative error :math:`r = |m - p|/|p|` has the sampling spread
    :math:`\delta = z\,\mathrm{se}/|p|` (z the two-sided normal quantile of ``level``). The
    entry is ``inconclusive`` when :math:`\delta > \text{tol}` (the data cannot resolve the
    tolerance), else ``holds`` when :math:`r + \delta < \text{tol}`, ``fails`` when
    :math:`r - \delta \ge \text{tol}`, ``inconclusive`` in between; the claim
    combines the entries (:func:`clipcore.claims.combine_statuses`)."""
    check_positive("tol", tol)
    if not 0 < check_number("level", level) < 1:
        raise invalid("level", level, "must be in (0, 1)")
    m, e, p = (np.asarray(a, np.float64).ravel() for a in (measured, se, predicted))
    if not (m.shape == e.shape == p.shape) or m.size < 1:
        raise invalid("shapes", (m.shape, e.shape, p.shape), "measured, se and predicted must match")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(m - p) / np.abs(p)
        spread = z * e / np.abs(p)
    statuses = tuple(
        "inconclusive" if not (d <= tol) else band_status(r - d, r + d, -math.inf, tol)
        for r, d in zip(rel, spread)
    )
    worst = int(np.nanargmax(rel)) if np.isfinite(rel).any() else 0
    return PredictionCheck(
        rel_error=rel, spread=spread, statuses=statuses, status=combine_statuses(statuses), worst=worst
    )
