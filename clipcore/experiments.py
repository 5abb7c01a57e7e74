r"""Shared logic of the experiment chapters: the stored runs of a profile, the statistics
their verdicts are computed from, the scatter grids, and the batch-angle measurement.

Zhang, He, Sra, Jadbabaie (ICLR 2020), Figs. 1-5, and Qian et al. (AISTATS 2021), claim C3.

**Runs.** :func:`load_runs` returns the three runs of an experiment at a profile's scale
(:func:`clipcore.train.preset`), training only those not yet in the run store, so the pages
that share runs train them once. Every page asks for the same configs
(:func:`experiment_configs`): the preset plus ``checkpoint_every`` from
:data:`CHECKPOINT_EVERY`, so that the store keeps a checkpoint of each run near its end
(the angle page measures there).

**Correlation statistics** (:func:`correlation_table`). For each run and estimator, the probe
points :math:`(g_t, \hat L_t)` (gradient norm, local smoothness) with both values finite
and positive give Spearman's :math:`\rho` between :math:`\log g` and :math:`\log\hat L` (a
rank statistic, so the logarithm changes nothing but the filtering), a percentile-bootstrap
interval, and the tightest envelope :math:`\hat L \le L_0 + L_1 g`
(:func:`clipcore.smoothness.fit_envelope`). :func:`claim_verdicts` evaluates "strong
positive correlation in run (a), much weaker in the others" with a criterion fixed in
advance: the strong run's lower confidence bound exceeds ``min_lower`` and its
:math:`\rho` exceeds every other run's by at least ``min_gap``.

**Smoothness studies** (:func:`smoothness_study`). What the LSTM and ResNet pages compute
from one experiment's runs, in one :class:`SmoothnessStudy`: the runs with their panel labels,
the probe points of every estimator, the correlation table with its envelopes, the claim's
verdicts, and the ratio of two estimators at the same steps.

**Training curves** (:func:`training_summary`). The *area under the training-loss curve*
is :math:`\mathrm{AUC} = \frac1T\sum_{t=1}^T \ell_t` over the T optimiser steps (per-step
training cross-entropy; the mean, so runs of equal length compare directly): the lower, the
faster the run trained overall. The *final* training loss is the mean over the last
``tail`` fraction of the steps (a smoothed end point).

**Batch angles** (:func:`measure_angles`; Qian et al., "Angle vs batch size"). On N fixed
examples with per-example gradients :math:`g_i` and full gradient
:math:`\bar g = \frac1N\sum_i g_i`, a shuffled split into :math:`\lfloor N/B\rfloor`
disjoint batches gives batch gradients :math:`\bar g_b = \frac1B\sum_{i\in b} g_i` and
angles :math:`\theta_b = \arccos\frac{\langle\bar g_b, \bar g\rangle}{\|\bar g_b\|\|\bar g\|}`;
the prediction for sampling without replacement is
:func:`clipcore.incremental.predicted_cosine` with :math:`\sigma^2 = \frac1N\sum_i\|g_i -
\bar g\|^2`. Per-example gradients come from :func:`torch.func.vmap` over
:func:`torch.func.grad`, in chunks, and are never all held at once: batches are accumulated
as the chunks stream past.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call, grad, vmap

from . import data as D
from . import models as M
from .incremental import predicted_cosine
from .results import Run, RunStore
from .smoothness import ESTIMATORS, bootstrap_ci, fit_envelope, rank_correlation

__all__ = [
    "CHECKPOINT_EVERY",
    "StoredRun",
    "experiment_configs",
    "load_runs",
    "run_label",
    "probe_points",
    "correlation_table",
    "claim_verdicts",
    "format_table",
    "scatter_grid",
    "SmoothnessStudy",
    "smoothness_study",
    "running_mean",
    "training_summary",
    "build_model",
    "checkpoint_model",
    "lstm_examples",
    "image_examples",
    "lstm_lm_forward",
    "ExampleLoss",
    "example_loss",
    "recalibrate_batchnorm",
    "per_example_gradients",
    "full_gradient",
    "AngleMeasurement",
    "measure_angles",
]

# Steps between checkpoints, per profile: the last one is kept by the run store and is the
# trained point the angle page measures at (the store keeps no other parameters).
CHECKPOINT_EVERY = {"smoke": 2, "ci": 10, "paper": 500}


# --------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------


def _train_module():
    from . import train  # deferred: importing train pulls in the whole training stack

    return train


def experiment_configs(experiment: str, profile: str, *, device: str = "auto", data_dir=None,
                       **overrides) -> dict:
    """``{run name: TrainConfig}`` for every run of ``experiment`` at ``profile`` scale.

    The preset (:func:`clipcore.train.preset`) with ``device``, ``data_dir`` and
    ``checkpoint_every = CHECKPOINT_EVERY[profile]``; ``overrides`` win. Runs come in the
    order of :data:`clipcore.train.EXPERIMENTS` (panels (a), (b), (c) of the paper).
    """
    T = _train_module()
    if experiment not in T.EXPERIMENTS:
        raise ValueError(f"Invalid experiment: {experiment!r} (choose from {', '.join(T.EXPERIMENTS)})")
    if profile not in CHECKPOINT_EVERY:
        raise ValueError(f"Invalid profile: {profile!r} (choose from {', '.join(CHECKPOINT_EVERY)})")
    over = dict(checkpoint_every=CHECKPOINT_EVERY[profile], device=device,
                data_dir=None if data_dir is None else str(data_dir))  # fmt: skip
    over.update(overrides)
    return {run: T.preset(experiment, run, profile, **over) for run in T.EXPERIMENTS[experiment]}


@dataclass(frozen=True)
class StoredRun:
    """A finished run of the store: ``trained`` is True when :func:`load_runs` trained it
    (it was not in the store), ``seconds`` the time that call spent on it."""

    name: str
    config: object  # clipcore.train.TrainConfig
    run: Run
    trained: bool
    seconds: float

    @property
    def label(self) -> str:
        return run_label(self.config)


def load_runs(experiment: str, profile: str, results_dir, *, runs: Sequence[str] | None = None,
              device: str = "auto", data_dir=None, train_missing: bool = True, progress: bool = False,
              **overrides) -> dict:
    """``{run name: StoredRun}``: the finished runs of :func:`experiment_configs` (all, or
    those named in ``runs``), loaded from the store at ``results_dir``; a run not there is
    trained (``train_missing``) or is a ``ValueError`` naming it."""
    T = _train_module()
    store = RunStore(results_dir)
    configs = experiment_configs(experiment, profile, device=device, data_dir=data_dir, **overrides)
    if runs is not None:
        unknown = [r for r in runs if r not in configs]
        if unknown or isinstance(runs, str):
            raise ValueError(f"Invalid runs: {runs!r} (choose from {', '.join(configs)})")
        configs = {r: configs[r] for r in runs}
    out = {}
    for name, cfg in configs.items():
        t0 = time.perf_counter()
        run = store.load(cfg.experiment, cfg.to_dict())
        trained = run is None
        if trained:
            if not train_missing:
                raise ValueError(f"run {name!r} of {experiment!r} ({profile}) is not finished in the "
                                 f"store {str(results_dir)!r}")
            with warnings.catch_warnings():
                # tqdm.auto warns in a kernel without ipywidgets, even with the bar disabled.
                warnings.filterwarnings("ignore", message="IProgress not found")
                run = T.train(cfg, store, progress=progress)
        if run.meta.get("finished") is not True:  # pragma: no cover - train returns finished runs
            raise RuntimeError(f"run {name!r} is not finished: {run.path}")
        out[name] = StoredRun(name, cfg, run, trained, time.perf_counter() - t0)
    return out


def run_label(cfg) -> str:
    """``"lr 30, clipped at 0.25"``, ``"lr 0.1, momentum 0.9"``, ``"lr 2, no clipping"``."""
    parts = [f"lr {cfg.lr:g}"]
    if cfg.max_norm is not None:
        parts.append(f"clipped at {cfg.max_norm:g}")
    if cfg.momentum:
        parts.append(f"momentum {cfg.momentum:g}")
    if cfg.max_norm is None and not cfg.momentum:
        parts.append("no clipping")
    return ", ".join(parts)


# --------------------------------------------------------------------------------------
# Correlation statistics
# --------------------------------------------------------------------------------------


def probe_points(run: Run, estimator: str) -> dict:
    """``{step, grad_norm, smoothness}`` arrays of one estimator's probes, keeping the points
    where both values are finite and positive (what a log-log plot can show)."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"Invalid estimator: {estimator!r} (choose from {', '.join(ESTIMATORS)})")
    tab = run.table("probes")
    sel = tab["estimator"] == estimator
    g, L, step = tab["grad_norm"][sel], tab["smoothness"][sel], tab["step"][sel]
    ok = np.isfinite(g) & np.isfinite(L) & (g > 0) & (L > 0)
    return {"step": step[ok], "grad_norm": g[ok], "smoothness": L[ok]}


def _stats_row(g, L, n_boot, level, seed) -> dict:
    n = int(np.size(g))
    row = dict(n=n, rho=math.nan, lo=math.nan, hi=math.nan, L0=math.nan, L1=math.nan)
    if n >= 3:
        lg, lL = np.log(g), np.log(L)
        row["rho"] = rank_correlation(lg, lL)
        row["lo"], row["hi"] = bootstrap_ci(lg, lL, n_boot=n_boot, level=level, seed=seed)
    if n >= 2:
        row["L0"], row["L1"] = fit_envelope(g, L)
    return row


def correlation_table(points: Mapping[str, Mapping[str, dict]], *, n_boot: int = 2000,
                      level: float = 0.95, seed: int = 0) -> list[dict]:
    r"""One row per run and estimator of ``points[run][estimator]`` (from
    :func:`probe_points`): ``run, estimator, n, rho, lo, hi, L0, L1``.

    ``rho`` is Spearman's :math:`\rho(\log g, \log\hat L)`, ``(lo, hi)`` its ``level``
    percentile-bootstrap interval over ``n_boot`` resamples of the points (nan below 3
    points), ``(L0, L1)`` the tightest envelope :math:`\hat L \le L_0 + L_1 g` over all
    points (nan below 2).
    """
    rows = []
    for run, per_est in points.items():
        for est, p in per_est.items():
            rows.append(dict(run=run, estimator=est,
                             **_stats_row(p["grad_norm"], p["smoothness"], n_boot, level, seed)))
    return rows


def claim_verdicts(table: Sequence[dict], strong: str, weak: Sequence[str], *,
                   min_lower: float = 0.5, min_gap: float = 0.2) -> dict:
    r"""Per estimator, whether "strong positive correlation in run ``strong``, much weaker in
    the ``weak`` runs" holds, by the pre-declared criterion

    .. math::
        \mathrm{lo}_{s} > \text{min\_lower} \quad\text{and}\quad
        \rho_{s} - \max_{w}\rho_{w} \ge \text{min\_gap}.

    Returns ``{estimator: {ok, lower_ok, gap_ok, rho, lo, max_weak, gap}}``; a nan anywhere
    makes the part it enters false.
    """
    if not weak:
        raise ValueError("Invalid weak: empty (name at least one run to compare with)")
    by = {(r["run"], r["estimator"]): r for r in table}
    estimators = list(dict.fromkeys(r["estimator"] for r in table))
    out = {}
    for est in estimators:
        missing = [run for run in (strong, *weak) if (run, est) not in by]
        if missing:
            raise ValueError(f"Invalid table: no row for run(s) {missing} with estimator {est!r}")
        s = by[(strong, est)]
        max_weak = max(by[(w, est)]["rho"] for w in weak)
        if any(math.isnan(by[(w, est)]["rho"]) for w in weak):
            max_weak = math.nan
        gap = s["rho"] - max_weak
        lower_ok = bool(s["lo"] > min_lower)  # nan compares false
        gap_ok = bool(gap >= min_gap)
        out[est] = dict(ok=lower_ok and gap_ok, lower_ok=lower_ok, gap_ok=gap_ok, rho=s["rho"],
                        lo=s["lo"], max_weak=max_weak, gap=gap)
    return out


def format_table(rows: Sequence[dict], columns: Sequence[str], fmt: str = ".3g") -> str:
    """A fixed-width text table of ``rows`` (numbers formatted with ``fmt``)."""

    def cell(v):
        if isinstance(v, (float, np.floating)):
            return format(float(v), fmt)
        return str(v)

    cells = [[cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[j]) for row in cells]) for j, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def scatter_grid(points: Mapping[str, Mapping[str, dict]], row_labels: Mapping[str, str], *,
                 log: bool = True, envelopes: Mapping | None = None, title: str = "",
                 panel_size=(3.6, 2.9)):
    """Rows = runs, columns = estimators: gradient norm (x) against smoothness (y), coloured
    by iteration, with the envelope line :math:`L_0 + L_1 g` where ``envelopes[(run, est)]``
    gives ``(L0, L1)``. Log-log axes, or linear ones (``log=False``, Fig. 5). Returns the
    figure."""
    import matplotlib.pyplot as plt

    runs = list(points)
    ests = list(dict.fromkeys(e for r in runs for e in points[r]))
    steps = [p["step"] for r in runs for p in points[r].values() if p["step"].size]
    smax = max((float(s.max()) for s in steps), default=1.0)
    # Fixed margins rather than a layout engine: constrained layout doubles the render time.
    fig, axes = plt.subplots(len(runs), len(ests), squeeze=False,
                             figsize=(panel_size[0] * len(ests), panel_size[1] * len(runs)))
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.08, top=0.9 if title else 0.94,
                        wspace=0.3, hspace=0.3)
    sc = None
    for i, run in enumerate(runs):
        for j, est in enumerate(ests):
            ax = axes[i, j]
            p = points[run].get(est)
            if p is None or p["step"].size == 0:
                ax.text(0.5, 0.5, "no finite points", ha="center", transform=ax.transAxes)
                continue
            sc = ax.scatter(p["grad_norm"], p["smoothness"], c=p["step"], cmap="viridis", s=14,
                            vmin=0, vmax=smax)
            env = (envelopes or {}).get((run, est))
            if env is not None and np.all(np.isfinite(env)):
                g = p["grad_norm"]
                gx = np.geomspace(g.min(), g.max(), 100) if log else np.linspace(0, g.max(), 100)
                ax.plot(gx, env[0] + env[1] * gx, "r-", lw=1,
                        label=f"$L_0 + L_1 g$: ({env[0]:.2g}, {env[1]:.2g})")
                ax.legend(fontsize=7, loc="upper left")
            if log:
                _log_axes(ax, p["grad_norm"], p["smoothness"])
            if i == 0:
                ax.set_title(est, fontsize=10)
            if i == len(runs) - 1:
                ax.set_xlabel("gradient norm")
            if j == 0:
                ax.set_ylabel(f"{row_labels.get(run, run)}\nsmoothness", fontsize=9)
    if sc is not None:
        fig.colorbar(sc, ax=axes, label="iteration", shrink=0.6)
    if title:
        fig.suptitle(title)
    return fig


def _log_axes(ax, x, y) -> None:
    """Log scales with three readable ticks per axis (default log ticks pile up unreadably
    when the data span less than a decade)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    for axis, v, set_scale in ((ax.xaxis, x, ax.set_xscale), (ax.yaxis, y, ax.set_yscale)):
        set_scale("log")
        lo, hi = float(np.min(v)), float(np.max(v))
        ticks = np.unique([float(f"{t:.2g}") for t in np.geomspace(lo, hi, 3)]) if hi > lo else [lo]
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(FuncFormatter(lambda t, _: f"{t:.2g}"))
        axis.set_minor_formatter(NullFormatter())


# --------------------------------------------------------------------------------------
# Smoothness studies: what the two experiment pages compute
# --------------------------------------------------------------------------------------


def _check_claim_runs(names: Sequence[str], strong: str, weak: Sequence[str]) -> tuple[str, ...]:
    if strong not in names:
        raise ValueError(f"Invalid strong: {strong!r} (choose from {', '.join(names)})")
    if isinstance(weak, str) or not weak:
        raise ValueError(f"Invalid weak: {weak!r} (a non-empty list of run names)")
    bad = [w for w in weak if w not in names or w == strong]
    if bad:
        raise ValueError(f"Invalid weak: {bad!r} (runs other than {strong!r} among {', '.join(names)})")
    return tuple(weak)


@dataclass(frozen=True)
class SmoothnessStudy:
    r"""Gradient norm against smoothness along the runs of one experiment, and the verdict
    on the claim "strong positive correlation in run ``strong``, much weaker in the ``weak``
    runs" (built by :func:`smoothness_study`).

    - ``runs``: ``{name: StoredRun}`` in panel order (a), (b), (c);
    - ``panel``: ``{name: "(a) lr 30, clipped at 0.25"}``, the row labels of the figures;
    - ``points[run][estimator]``: the probe points (:func:`probe_points`) of every estimator
      of :data:`clipcore.smoothness.ESTIMATORS`;
    - ``table``: :func:`correlation_table` of ``points`` (Spearman's :math:`\rho`, its
      bootstrap interval and the envelope :math:`(L_0, L_1)` per run and estimator);
    - ``verdicts``: :func:`claim_verdicts` of ``table``, per estimator.
    """

    strong: str
    weak: tuple[str, ...]
    runs: dict
    panel: dict
    points: dict
    table: list
    verdicts: dict

    @classmethod
    def from_runs(cls, runs: Mapping[str, StoredRun], strong: str, weak: Sequence[str], *,
                  n_boot: int = 2000, level: float = 0.95, min_lower: float = 0.5,
                  min_gap: float = 0.2, seed: int = 0) -> "SmoothnessStudy":
        """The study of finished runs ``{name: StoredRun}`` (e.g. from :func:`load_runs`);
        their order gives the panels (a), (b), (c)."""
        weak = _check_claim_runs(list(runs), strong, weak)
        panel = {name: f"({chr(ord('a') + i)}) {r.label}" for i, (name, r) in enumerate(runs.items())}
        points = {name: {est: probe_points(r.run, est) for est in ESTIMATORS} for name, r in runs.items()}
        table = correlation_table(points, n_boot=n_boot, level=level, seed=seed)
        verdicts = claim_verdicts(table, strong, weak, min_lower=min_lower, min_gap=min_gap)
        return cls(strong, weak, dict(runs), panel, points, table, verdicts)

    @property
    def config(self):
        """The strong run's :class:`clipcore.train.TrainConfig`."""
        return self.runs[self.strong].config

    @property
    def meta(self) -> dict:
        """The strong run's stored ``meta`` (``dataset``, ``n_parameters``, ...)."""
        return self.runs[self.strong].run.meta

    @property
    def steps(self) -> int:
        """Optimiser steps of the strong run (the last step of its metrics)."""
        return int(self.runs[self.strong].run.table("metrics")["step"].max())

    @property
    def n_probes(self) -> int:
        """The fewest probe points of any run and estimator."""
        return min(p["step"].size for per in self.points.values() for p in per.values())

    @property
    def envelopes(self) -> dict:
        """``{(run, estimator): (L0, L1)}``, the envelopes of ``table`` (for :func:`scatter_grid`)."""
        return {(r["run"], r["estimator"]): (r["L0"], r["L1"]) for r in self.table}

    def run_sources(self) -> str:
        """One line per run: its panel, whether it was trained now or loaded, its directory."""
        lines = []
        for name, r in self.runs.items():
            how = f"trained now in {r.seconds:.0f} s" if r.trained else "loaded from the run store"
            lines.append(f"{self.panel[name]:<30} {how}; {r.run.path}")
        return "\n".join(lines)

    def table_text(self) -> str:
        """``table`` as text, runs named by their panels."""
        rows = [dict(r, run=self.panel[r["run"]]) for r in self.table]
        return format_table(rows, ["run", "estimator", "n", "rho", "lo", "hi", "L0", "L1"])

    def verdict_text(self) -> str:
        """One line per estimator: whether the claim holds, the lower end and the gap."""
        return "\n".join(f"{est}: claim {'holds' if v['ok'] else 'fails'} (lower end {v['lo']:.3f}, "
                         f"gap {v['gap']:.3f})" for est, v in self.verdicts.items())  # fmt: skip

    def summary(self, why_weaker: str) -> str:
        """A sentence on which estimators reproduce the claim; ``why_weaker`` ends the one for
        "the authors' (``faithful``) estimator reproduces it, a corrected one does not"."""
        missing = [e for e in ("faithful", "fixed", "hessian") if e not in self.verdicts]
        if missing:
            raise ValueError(f"Invalid verdicts: no verdict for {missing}")
        ok = {est: v["ok"] for est, v in self.verdicts.items()}
        if ok["faithful"] and not (ok["fixed"] and ok["hessian"]):
            weaker = " and ".join(f"`{e}`" for e in ("fixed", "hessian") if not ok[e])
            return f"The authors' estimator reproduces the claim, but {weaker} does not: {why_weaker}"
        if ok["faithful"]:
            return "All three estimators reproduce the claim: the corrected ones do not weaken it here."
        if any(ok.values()):
            return (f"The authors' estimator does not reproduce the claim at this scale, but "
                    f"{' and '.join(f'`{e}`' for e, v in ok.items() if v)} does.")
        return ("No estimator reproduces the claim at this scale by the criterion above; the "
                "numbers in the table say how far each one is from it.")

    def ratios(self, runs: Sequence[str] | None = None, num: str = "faithful",
               den: str = "fixed") -> np.ndarray:
        """Ratios of estimator ``num`` to ``den`` at the steps where both have a point, over
        ``runs`` (default: all), concatenated in run order."""
        out = []
        for name in self.runs if runs is None else runs:
            a, b = self.points[name][num], self.points[name][den]
            _, ia, ib = np.intersect1d(a["step"], b["step"], return_indices=True)
            out.append(a["smoothness"][ia] / b["smoothness"][ib])
        return np.concatenate(out) if out else np.zeros(0)


def smoothness_study(experiment: str, profile: str, results_dir, strong: str, weak: Sequence[str], *,
                     device: str = "auto", data_dir=None, n_boot: int = 2000, level: float = 0.95,
                     min_lower: float = 0.5, min_gap: float = 0.2, seed: int = 0,
                     train_missing: bool = True) -> SmoothnessStudy:
    """The :class:`SmoothnessStudy` of ``experiment``'s runs at ``profile`` scale:
    :func:`load_runs` (training the runs the store lacks, unless not ``train_missing``),
    then :meth:`SmoothnessStudy.from_runs` with the claim's ``strong`` and ``weak`` runs, the
    bootstrap's ``n_boot``, ``level`` and ``seed``, and the criterion's ``min_lower`` and
    ``min_gap``. The run names are checked before anything is trained."""
    names = list(experiment_configs(experiment, profile, device=device, data_dir=data_dir))
    _check_claim_runs(names, strong, weak)
    runs = load_runs(experiment, profile, results_dir, device=device, data_dir=data_dir,
                     train_missing=train_missing)  # fmt: skip
    return SmoothnessStudy.from_runs(runs, strong, weak, n_boot=n_boot, level=level,
                                     min_lower=min_lower, min_gap=min_gap, seed=seed)  # fmt: skip


# --------------------------------------------------------------------------------------
# Training curves
# --------------------------------------------------------------------------------------


def running_mean(y, window: int) -> np.ndarray:
    r"""Trailing moving average :math:`\frac{1}{\min(t, w)}\sum_{s=\max(1, t-w+1)}^{t} y_s`
    (shorter at the start, so the output has the input's length)."""
    if not (isinstance(window, (int, np.integer)) and window >= 1):
        raise ValueError(f"Invalid window: {window!r} (must be an integer >= 1)")
    y = np.asarray(y, dtype=float)
    c = np.cumsum(np.r_[0.0, y])
    t = np.arange(1, y.size + 1)
    lo = np.maximum(t - window, 0)
    return (c[t] - c[lo]) / (t - lo)


def training_summary(run: Run, tail: float = 0.1) -> dict:
    """Numbers of one run's curves: ``steps``, ``auc`` (mean per-step training loss),
    ``final_train`` (mean over the last ``tail`` of the steps), per evaluation split
    ``best_<split>``/``final_<split>`` losses and, where logged, ``best_<split>_accuracy`` /
    ``final_<split>_accuracy`` (splits: ``valid``, ``test``; the LSTM's end-of-run test row
    counts as its final test loss)."""
    if not (0 < tail <= 1):
        raise ValueError(f"Invalid tail: {tail!r} (must be in (0, 1])")
    m = run.table("metrics")
    loss = m["loss"]
    if loss.size == 0 or not np.all(np.isfinite(loss)):
        raise ValueError(f"run {run.path.name!r} has no (or non-finite) training losses")
    k = max(1, int(math.ceil(tail * loss.size)))
    out = dict(steps=int(loss.size), auc=float(loss.mean()), final_train=float(loss[-k:].mean()))
    ev = run.table("eval")
    for split in ("valid", "test"):
        sel = ev["split"] == split
        if not np.any(sel):
            continue
        out[f"best_{split}"] = float(np.min(ev["loss"][sel]))
        out[f"final_{split}"] = float(ev["loss"][sel][-1])
        if "accuracy" in ev and np.any(np.isfinite(ev["accuracy"][sel])):
            acc = ev["accuracy"][sel]
            out[f"best_{split}_accuracy"] = float(np.nanmax(acc))
            out[f"final_{split}_accuracy"] = float(acc[-1])
    return out


# --------------------------------------------------------------------------------------
# Models and data at a run's checkpoints
# --------------------------------------------------------------------------------------


def build_model(cfg, device="cpu", seed: bool = True) -> torch.nn.Module:
    """The model ``clipcore.train`` builds for ``cfg``; with ``seed`` it is the run's
    *initial* model (every generator seeded from ``cfg.seed`` first, as train does, and no
    random draw between the seeding and the model's construction)."""
    T = _train_module()
    if seed:
        T.seed_everything(cfg.seed)
    if cfg.experiment == "lstm_ptb":
        vocab = D.load_ptb(cfg.data_dir).vocab_size
        model = M.LSTMLanguageModel(vocab, cfg.emb_size, cfg.hidden_size, cfg.n_layers, tie_weights=True)
    elif cfg.experiment == "resnet_images":
        n_classes = _image_data(cfg).num_classes
        w = cfg.width
        model = M.ResNetCifar(cfg.depth, n_classes, widths=(w, 2 * w, 4 * w))
    else:
        raise ValueError(f"Invalid experiment: {cfg.experiment!r}")
    return model.to(device)


def checkpoint_model(run: Run, cfg, device="cpu") -> tuple[torch.nn.Module, int]:
    """The model of the run's last stored checkpoint, and the step it was taken at."""
    ckpt = run.load_checkpoint(map_location=torch.device(device))
    if ckpt is None:
        raise ValueError(f"run {run.path.name!r} has no checkpoint (train it with checkpoint_every set)")
    model = build_model(cfg, device, seed=False)
    model.load_state_dict(ckpt["model"])
    return model, int(ckpt["loop"]["step"])


def _image_data(cfg) -> D.ImageData:
    return D.load_digits_images() if cfg.dataset == "digits" else D.load_image_data(cfg.data_dir)


def lstm_examples(cfg, n: int, device="cpu") -> tuple[Tensor, Tensor]:
    """``n`` consecutive, non-overlapping windows of ``cfg.bptt`` tokens from the start of the
    run's training stream (the tokens train uses): inputs and next-token targets, ``[n, T]``."""
    corpus = D.load_ptb(cfg.data_dir)
    n_tok = max(2 * cfg.batch_size, int(corpus.train.numel() * cfg.train_fraction))
    n_tok = (n_tok // cfg.batch_size) * cfg.batch_size  # batchify drops the rest
    stream, T = corpus.train[:n_tok], cfg.bptt
    avail = (stream.numel() - 1) // T
    if not (isinstance(n, (int, np.integer)) and 2 <= n <= avail):
        raise ValueError(f"Invalid n: {n!r} (the training stream holds {avail} windows of {T} tokens; need >= 2)")
    x = stream[: n * T].view(n, T)
    y = stream[1 : n * T + 1].view(n, T)
    return x.to(device), y.to(device)


def image_examples(cfg, n: int, device="cpu") -> tuple[Tensor, Tensor, str]:
    """The first ``n`` training images of the run (normalised, not augmented), their labels,
    and the data set's name (:attr:`clipcore.data.ImageData.name`)."""
    ds = _image_data(cfg)
    avail = ds.train_x.size(0) if cfg.n_train is None else min(cfg.n_train, ds.train_x.size(0))
    if not (isinstance(n, (int, np.integer)) and 2 <= n <= avail):
        raise ValueError(f"Invalid n: {n!r} (the run trains on {avail} images; need >= 2)")
    x = D.normalize(ds.train_x[:n], ds.mean, ds.std).to(device)
    return x, ds.train_y[:n].to(device), ds.name


def lstm_lm_forward(params: Mapping[str, Tensor], x: Tensor, n_layers: int):
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
    for l in range(n_layers):
        p = f"rnns.{l}."
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


@dataclass(frozen=True)
class ExampleLoss:
    r"""The training objective split over examples.

    ``loss(params, x, y)`` is the loss of *one* example, written so :func:`torch.func.vmap`
    can batch it; ``batch_loss(params, X, Y)`` is the mean of ``loss`` over a batch computed
    in one batched forward pass (the same number, much cheaper to differentiate than a
    vmapped sum); ``params`` are the model's trainable parameters (detached).
    """

    loss: Callable
    batch_loss: Callable
    params: dict


def example_loss(cfg, model: torch.nn.Module) -> ExampleLoss:
    r"""The per-example training objective of ``cfg``'s experiment at ``model``'s parameters.

    - LSTM: one sequence ``x, y`` ``[T]`` from a zero hidden state, mean cross-entropy over
      its T targets plus AR :math:`\alpha\,\mathrm{mean}(o^2)` and TAR
      :math:`\beta\,\mathrm{mean}((h_t - h_{t-1})^2)`, as in training (no dropout). Every
      sequence has the same length, so the batched means equal the mean of the examples'.
    - ResNet: one image ``x`` ``[3, H, W]``, label ``y``; the model in **eval** mode, so
      BatchNorm uses fixed statistics and the objective is a sum over examples (train-mode
      batch statistics would couple the examples of a batch).
    """
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    if cfg.experiment == "lstm_ptb":
        if getattr(model, "dropout", 0) or getattr(model, "wdrop", 0):
            raise ValueError("Invalid model: example_loss supports the LSTM without dropout only")
        n_layers = model.n_layers

        def objective(p, x, y):  # x, y: [T, B]; all means over time and batch
            logits, out = lstm_lm_forward(p, x, n_layers)
            ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            pen = cfg.alpha * out.pow(2).mean() if cfg.alpha else 0.0
            if cfg.beta_tar and out.shape[0] > 1:
                pen = pen + cfg.beta_tar * (out[1:] - out[:-1]).pow(2).mean()
            return ce + pen

        return ExampleLoss(lambda p, x, y: objective(p, x[:, None], y[:, None]),
                           lambda p, X, Y: objective(p, X.T, Y.T), params)  # fmt: skip
    if cfg.experiment == "resnet_images":
        model.eval()
        buffers = {k: v.detach() for k, v in model.named_buffers()}

        def batch_loss(p, X, Y):
            return F.cross_entropy(functional_call(model, (p, buffers), (X,)), Y)

        return ExampleLoss(lambda p, x, y: batch_loss(p, x[None], y[None]), batch_loss, params)
    raise ValueError(f"Invalid experiment: {cfg.experiment!r}")


@torch.no_grad()
def recalibrate_batchnorm(model: torch.nn.Module, x: Tensor, batch_size: int = 256) -> torch.nn.Module:
    """Reset every BatchNorm's running statistics to the average over the batches of ``x``
    (``batch_size`` at a time, in train mode) of the batch statistics (``momentum=None``:
    cumulative average), then restore the momentum; returns the model in eval mode. Used at
    initialisation, where the running statistics are still 0 and 1."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
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


def _flat(grads: Mapping[str, Tensor], names: Sequence[str], lead: int | None) -> Tensor:
    if lead is None:
        return torch.cat([grads[k].reshape(-1) for k in names])
    return torch.cat([grads[k].reshape(lead, -1) for k in names], dim=1)


def per_example_gradients(loss: Callable, params: Mapping[str, Tensor], x: Tensor, y: Tensor,
                          chunk_size: int = 32) -> Iterable[Tensor]:
    r"""Yield the flattened per-example gradients :math:`\nabla_\theta\ell(\theta; x_i, y_i)`
    as ``[c, P]`` chunks, in the order of ``x`` (``vmap(grad(loss))`` per chunk)."""
    if not (isinstance(chunk_size, (int, np.integer)) and chunk_size >= 1):
        raise ValueError(f"Invalid chunk_size: {chunk_size!r} (must be an integer >= 1)")
    names = list(params)
    g = vmap(grad(loss), in_dims=(None, 0, 0))
    for s in range(0, x.size(0), chunk_size):
        xs, ys = x[s : s + chunk_size], y[s : s + chunk_size]
        yield _flat(g(params, xs, ys), names, xs.size(0))


def full_gradient(loss: Callable, params: Mapping[str, Tensor], x: Tensor, y: Tensor,
                  chunk_size: int = 256, batch_loss: Callable | None = None) -> Tensor:
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


def measure_angles(loss: Callable, params: Mapping[str, Tensor], x: Tensor, y: Tensor,
                   batch_sizes: Sequence[int], *, min_batches: int = 16, chunk_size: int = 32,
                   seed: int = 0, batch_loss: Callable | None = None) -> AngleMeasurement:
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
    if not (isinstance(min_batches, (int, np.integer)) and min_batches >= 1):
        raise ValueError(f"Invalid min_batches: {min_batches!r} (must be an integer >= 1)")
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
