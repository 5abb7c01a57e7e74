r"""Stored runs and what the experiment chapters compute from them: the smoothness study
and training summaries.

Zhang, He, Sra, Jadbabaie (ICLR 2020), Figs. 1-5.

**Runs.** :func:`load_runs` returns the runs of an experiment at a profile's scale
(:func:`clipcore.training.presets.experiment_configs`), training only those not yet in the
run store, so the pages that share runs train them once, and a run trained by
``python -m clipcore train`` is loaded, not retrained.

**Correlation statistics** (:func:`correlation_table`). For each run and estimator, the probe
points :math:`(g_t, \hat L_t)` (gradient norm, local smoothness) with both values finite
and positive give Spearman's :math:`\rho` between :math:`\log g` and :math:`\log\hat L` (a
rank statistic, so the logarithm changes nothing but the filtering), a percentile-bootstrap
interval, and the tightest envelope :math:`\hat L \le L_0 + L_1 g`
(:func:`clipcore.envelope.fit_envelope`); :func:`clipcore.stats.claim_verdicts` decides the
claim by a criterion fixed in advance.

**Smoothness studies** (:func:`smoothness_study`). What the LSTM and ResNet pages compute
from one experiment's runs, in one :class:`SmoothnessStudy`: the runs with their panel labels,
the probe points of every estimator, the correlation table with its envelopes, the claim's
verdicts, and the ratio of two estimators at the same steps.

**Training curves** (:func:`training_summary`). The *area under the training-loss curve*
is :math:`\mathrm{AUC} = \frac1T\sum_{t=1}^T \ell_t` over the T optimiser steps (per-step
training cross-entropy; the mean, so runs of equal length compare directly): the lower, the
faster the run trained overall. The *final* training loss is the mean over the last
``tail`` fraction of the steps (a smoothed end point).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch

from .envelope import fit_envelope
from .plots import format_table
from .smoothness import HESSIAN_TOL, PROBES, STEP_PROBE
from .stats import claim_verdicts, trajectory_correlation
from .training import Run, RunStore, TrainConfig, experiment_configs, train
from .training.presets import SEEDS
from .training.tasks import build_model
from .validation import check_int

__all__ = [
    "StoredRun",
    "load_runs",
    "run_label",
    "probe_points",
    "hessian_convergence",
    "correlations",
    "correlation_table",
    "SmoothnessStudy",
    "smoothness_study",
    "RecordedStudy",
    "recorded_study",
    "running_mean",
    "training_summary",
    "checkpoint_model",
]


@dataclass(frozen=True)
class StoredRun:
    """A finished run of the store: ``trained`` is True when :func:`load_runs` trained it
    (it was not in the store), ``seconds`` the time that call spent on it."""

    name: str
    config: TrainConfig
    run: Run
    trained: bool
    seconds: float

    @property
    def label(self) -> str:
        return run_label(self.config)


def load_runs(
    experiment: str,
    profile: str,
    results_dir,
    *,
    runs: Sequence[str] | None = None,
    device: str = "auto",
    data_dir=None,
    train_missing: bool = True,
    progress: bool = False,
    **overrides,
) -> dict:
    """``{run name: StoredRun}``: the finished runs of ``experiment`` at ``profile`` scale
    (:func:`clipcore.training.presets.experiment_configs` with ``device``, ``data_dir`` and
    ``overrides``; all runs, or those named in ``runs``), loaded from the store at
    ``results_dir``; a run not there is trained (``train_missing``) or is a ``ValueError``
    naming it. The device is housekeeping: a run trained on any device is found."""
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
        run = store.load(cfg.experiment, cfg.identity())
        trained = run is None
        if trained:
            if not train_missing:
                raise ValueError(
                    f"run {name!r} of {experiment!r} ({profile}) is not finished in the "
                    f"store {str(results_dir)!r}"
                )
            with warnings.catch_warnings():
                # tqdm.auto warns in a kernel without ipywidgets, even with the bar disabled.
                warnings.filterwarnings("ignore", message="IProgress not found")
                run = train(cfg, store, progress=progress)
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


def probe_points(run: Run, estimator: str) -> dict:
    """``{step, grad_norm, smoothness}`` arrays of one estimator's probes, keeping the points
    where both values are finite and positive (what a log-log plot can show) and, where the
    run records it, whose eigenvalue iteration converged (a ``hessian`` value that did not is
    only a lower bound of the norm: :func:`hessian_convergence` counts them)."""
    if estimator not in PROBES:
        raise ValueError(f"Invalid estimator: {estimator!r} (choose from {', '.join(PROBES)})")
    tab = run.table("probes")
    sel = tab["estimator"] == estimator
    g, L, step = tab["grad_norm"][sel], tab["smoothness"][sel], tab["step"][sel]
    ok = np.isfinite(g) & np.isfinite(L) & (g > 0) & (L > 0)
    if "converged" in tab:
        conv = tab["converged"][sel]
        ok &= ~np.isfinite(conv) | (conv == 1)  # no flag recorded (other estimators): kept
    return {"step": step[ok], "grad_norm": g[ok], "smoothness": L[ok]}


def _pooled(group: Sequence[StoredRun], estimator: str) -> dict:
    """:func:`probe_points` of several seeds of one run, concatenated, with their ``seed``."""
    parts = [probe_points(r.run, estimator) for r in group]
    out = {k: np.concatenate([p[k] for p in parts]) for k in ("step", "grad_norm", "smoothness")}
    out["seed"] = np.concatenate([np.full(p["step"].size, r.config.seed) for p, r in zip(parts, group)])
    return out


def hessian_convergence(run: Run) -> tuple[int, int]:
    """(converged, total) ``hessian`` probes of a run (total, total when none is flagged)."""
    tab = run.table("probes")
    sel = tab["estimator"] == "hessian"
    total = int(sel.sum())
    if "converged" not in tab:
        return total, total
    return int(np.sum(tab["converged"][sel] == 1)), total


def correlations(
    points: Mapping[str, Mapping[str, dict]], *, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> dict:
    r"""``{run: {estimator: TrajectoryCorrelation}}`` of :math:`\log g` against :math:`\log\hat L`
    at the probe steps (:func:`clipcore.stats.trajectory_correlation`: moving-block bootstrap,
    raw and detrended on the step). Each run and estimator gets its own bootstrap stream
    (seeded from ``seed`` and its position), so replicates of different runs are independent."""
    out = {}
    for i, (run, per_est) in enumerate(points.items()):
        out[run] = {}
        for j, (est, p) in enumerate(per_est.items()):
            g, L = p["grad_norm"], p["smoothness"]
            out[run][est] = trajectory_correlation(
                np.log(g), np.log(L), p["step"], n_boot=n_boot, level=level, seed=[seed, i, j]
            )
    return out


def correlation_table(
    points: Mapping[str, Mapping[str, dict]], corr: Mapping | None = None, **kw
) -> list[dict]:
    r"""One row per run and estimator of ``points[run][estimator]`` (from
    :func:`probe_points`): ``run, estimator, n, rho, lo, hi, rho_detrended, lo_detrended,
    hi_detrended, block, L0, L1``: Spearman's :math:`\rho(\log g, \log\hat L)` with its
    moving-block bootstrap interval, the same for the partial correlation given the step,
    and the tightest envelope :math:`\hat L \le L_0 + L_1 g` (nan below 2 points).
    ``corr`` is :func:`correlations` of ``points`` (computed with ``kw`` when not given)."""
    corr = correlations(points, **kw) if corr is None else corr
    rows = []
    for run, per_est in points.items():
        for est, p in per_est.items():
            c = corr[run][est]
            L0, L1 = fit_envelope(p["grad_norm"], p["smoothness"]) if p["step"].size >= 2 else (math.nan,) * 2
            rows.append(
                dict(
                    run=run,
                    estimator=est,
                    n=c.n,
                    rho=c.rho,
                    lo=c.lo,
                    hi=c.hi,
                    rho_detrended=c.rho_detrended,
                    lo_detrended=c.lo_detrended,
                    hi_detrended=c.hi_detrended,
                    block=c.block,
                    L0=L0,
                    L1=L1,
                )
            )
    return rows


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
    - ``points[run][estimator]``: the probe points (:func:`probe_points`) of every probe of
      :data:`clipcore.smoothness.PROBES` the runs recorded: the dense ``step`` probe (the
      corrected estimator on each step's own batch) and the sparse pinned-data estimators;
    - ``table``: :func:`correlation_table` of ``points`` (Spearman's :math:`\rho` raw and
      detrended, their block-bootstrap intervals and the envelope :math:`(L_0, L_1)` per run
      and estimator);
    - ``verdicts``: :func:`clipcore.stats.claim_verdicts`, per estimator: a status (holds /
      fails / inconclusive) on the raw and on the detrended correlation, with the gap's interval;
    - ``replicates``: ``{name: [StoredRun, ...]}``, the same runs with further seeds. Their
      points are pooled with the first seed's (``points[run][est]["seed"]`` says which), so
      every correlation and verdict is over all seeds of a run.
    """

    strong: str
    weak: tuple[str, ...]
    runs: dict
    panel: dict
    points: dict
    table: list
    verdicts: dict
    replicates: dict = field(default_factory=dict)

    @classmethod
    def from_runs(
        cls,
        runs: Mapping[str, StoredRun],
        strong: str,
        weak: Sequence[str],
        *,
        n_boot: int = 2000,
        level: float = 0.95,
        min_lower: float = 0.5,
        min_gap: float = 0.2,
        min_points: int = 10,
        seed: int = 0,
        replicates: Mapping[str, Sequence[StoredRun]] | None = None,
    ) -> "SmoothnessStudy":
        """The study of finished runs ``{name: StoredRun}`` (e.g. from :func:`load_runs`);
        their order gives the panels (a), (b), (c). ``replicates`` adds further seeds of the
        same runs, pooled with the first."""
        weak = _check_claim_runs(list(runs), strong, weak)
        replicates = {name: list((replicates or {}).get(name, ())) for name in runs}
        panel = {name: f"({chr(ord('a') + i)}) {r.label}" for i, (name, r) in enumerate(runs.items())}
        every = {name: [r, *replicates[name]] for name, r in runs.items()}
        recorded = set()
        for group in every.values():
            for r in group:
                tab = r.run.table("probes") if "probes" in r.run.tables else {"estimator": np.array([])}
                recorded |= set(tab["estimator"].tolist())
        probes = [e for e in PROBES if e in recorded]
        points = {name: {est: _pooled(group, est) for est in probes} for name, group in every.items()}
        corr = correlations(points, n_boot=n_boot, level=level, seed=seed)
        table = correlation_table(points, corr)
        verdicts = claim_verdicts(
            corr, strong, weak, min_lower=min_lower, min_gap=min_gap, min_points=min_points, level=level
        )
        return cls(strong, weak, dict(runs), panel, points, table, verdicts, replicates)

    def _every(self, name: str) -> list:
        return [self.runs[name], *self.replicates.get(name, ())]

    @property
    def seeds(self) -> list[int]:
        """The seeds of the strong run (the first is the preset's)."""
        return [r.config.seed for r in self._every(self.strong)]

    @property
    def config(self):
        """The strong run's :class:`clipcore.training.config.TrainConfig`."""
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
    def probes(self) -> list[str]:
        """The probes the runs recorded, in :data:`clipcore.smoothness.PROBES` order."""
        return list(next(iter(self.points.values())))

    def n_points(self, estimator: str | None = None) -> int:
        """The fewest probe points of any run, for ``estimator`` (default: of any estimator)."""
        ests = self.probes if estimator is None else [estimator]
        return min(self.points[r][e]["step"].size for r in self.points for e in ests)

    @property
    def n_probes(self) -> int:
        """The fewest probe points of any run and estimator."""
        return self.n_points()

    @property
    def hessian_converged(self) -> dict:
        """``{run: (converged, total)}`` hessian probes (:func:`hessian_convergence`)."""
        out = {}
        for name in self.runs:
            counts = [hessian_convergence(r.run) for r in self._every(name)]
            out[name] = (sum(c for c, _ in counts), sum(t for _, t in counts))
        return out

    def hessian_note(self) -> str:
        """How many ``hessian`` probes converged, and what was done with the others."""
        conv = self.hessian_converged.values()
        return (
            f"{sum(c for c, _ in conv)} of {sum(t for _, t in conv)} `hessian` probes converged "
            f"(Lanczos on Hessian-vector products, relative tolerance {HESSIAN_TOL:g}, at most "
            f"{self.config.power_iters} products); the others are only lower bounds of the norm and are left out"
        )

    def probes_note(self) -> str:
        """How densely the runs were probed and with how many seeds (for the page's prose)."""
        cfg = self.config
        pinned = min(self.n_points(e) for e in ("faithful", "fixed") if e in self.probes)
        dense = (
            f"by the `step` probe every {cfg.step_probe_every} step(s) ({self.n_points(STEP_PROBE)} or more "
            "points per run) and "
            if STEP_PROBE in self.probes
            else ""
        )
        return (
            f"{dense}by the pinned estimators every {cfg.probe_every} steps ({pinned} or more points per run; "
            f"`hessian`: {self.n_points('hessian')} or more converged), each setting trained with "
            f"{len(self.seeds)} seed(s) ({', '.join(map(str, self.seeds))}) whose points are pooled"
        )

    @property
    def envelopes(self) -> dict:
        """``{(run, estimator): (L0, L1)}``, the envelopes of ``table`` (for :func:`scatter_grid`)."""
        return {(r["run"], r["estimator"]): (r["L0"], r["L1"]) for r in self.table}

    def points_rows(self) -> list[dict]:
        """The probe points as tidy rows (run, panel, seed, estimator, step, grad_norm, smoothness):
        the data behind the scatter grids."""
        return [
            dict(
                run=run,
                panel=self.panel[run],
                seed=int(sd),
                estimator=est,
                step=int(t),
                grad_norm=g,
                smoothness=L,
            )
            for run, per in self.points.items()
            for est, p in per.items()
            for sd, t, g, L in zip(p["seed"], p["step"], p["grad_norm"], p["smoothness"])
        ]

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
        cols = ["run", "estimator", "n", "rho", "lo", "hi", "rho_detrended", "lo_detrended", "hi_detrended"]
        return format_table(rows, cols + ["L0", "L1"])

    def verdict_text(self) -> str:
        """One line per estimator: the claim's status, raw and detrended, with the intervals."""
        return "\n".join(
            f"{est}: {v['status']} (rho(a) in [{v['lo']:.3f}, {v['hi']:.3f}], gap in "
            f"[{v['gap_lo']:.3f}, {v['gap_hi']:.3f}]); detrended {v['status_detrended']}"
            for est, v in self.verdicts.items()
        )

    def summary(self, why_weaker: str) -> str:
        """Sentences on what the estimators say about the claim: first the dense ``step``
        probe (when recorded), then the pinned-data estimators; ``why_weaker`` ends the one for
        "the authors' (``faithful``) estimator reproduces it, a corrected one does not"."""
        missing = [e for e in ("faithful", "fixed", "hessian") if e not in self.verdicts]
        if missing:
            raise ValueError(f"Invalid verdicts: no verdict for {missing}")
        st = {est: v["status"] for est, v in self.verdicts.items()}
        lead = ""
        if STEP_PROBE in st:
            lead = (
                f"On the dense `step` probe ({self.n_points(STEP_PROBE)} or more points per run) the claim "
                f"**{st[STEP_PROBE]}**. "
            )

        def names(which):
            return " and ".join(f"`{e}`" for e in ("faithful", "fixed", "hessian") if st[e] == which)

        if st["faithful"] == "holds" and not (st["fixed"] == st["hessian"] == "holds"):
            other = [e for e in ("fixed", "hessian") if st[e] != "holds"]
            return lead + (
                f"The authors' estimator reproduces the claim, but {' and '.join(f'`{e}`' for e in other)} "
                f"does not ({', '.join(st[e] for e in other)}): {why_weaker}"
            )
        if all(st[e] == "holds" for e in ("faithful", "fixed", "hessian")):
            return lead + "All three pinned-data estimators reproduce the claim too."
        parts = [f"{w} for {names(w)}" for w in ("holds", "fails", "inconclusive") if names(w)]
        return lead + "On the pinned data the claim " + "; ".join(parts) + "."

    def ratios(
        self, runs: Sequence[str] | None = None, num: str = "faithful", den: str = "fixed"
    ) -> np.ndarray:
        """Ratios of estimator ``num`` to ``den`` at the steps where both have a point, over
        ``runs`` (default: all), concatenated in run order."""
        out = []
        for name in self.runs if runs is None else runs:
            for r in self._every(name):  # paired within each seed's run
                a, b = probe_points(r.run, num), probe_points(r.run, den)
                _, ia, ib = np.intersect1d(a["step"], b["step"], return_indices=True)
                out.append(a["smoothness"][ia] / b["smoothness"][ib])
        return np.concatenate(out) if out else np.zeros(0)


def smoothness_study(
    experiment: str,
    profile: str,
    results_dir,
    strong: str,
    weak: Sequence[str],
    *,
    device: str = "auto",
    data_dir=None,
    n_boot: int = 2000,
    level: float = 0.95,
    min_lower: float = 0.5,
    min_gap: float = 0.2,
    min_points: int = 10,
    seed: int = 0,
    train_missing: bool = True,
    seeds: int | None = None,
) -> SmoothnessStudy:
    """The :class:`SmoothnessStudy` of ``experiment``'s runs at ``profile`` scale:
    :func:`load_runs` (training the runs the store lacks, unless not ``train_missing``),
    then :meth:`SmoothnessStudy.from_runs` with the claim's ``strong`` and ``weak`` runs, the
    bootstrap's ``n_boot``, ``level`` and ``seed``, and the criterion's ``min_lower``,
    ``min_gap`` and ``min_points``. ``seeds`` (default: the profile's
    :data:`clipcore.training.presets.SEEDS`) runs of each setting are pooled: the preset's
    seed, then the next ones. The run names are checked before anything is trained."""
    configs = experiment_configs(experiment, profile, device=device, data_dir=data_dir)
    _check_claim_runs(list(configs), strong, weak)
    seeds = SEEDS[profile] if seeds is None else check_int("seeds", seeds, 1)
    base = next(iter(configs.values())).seed
    runs = load_runs(
        experiment, profile, results_dir, device=device, data_dir=data_dir, train_missing=train_missing
    )
    replicates = {name: [] for name in runs}
    for k in range(1, seeds):
        more = load_runs(
            experiment,
            profile,
            results_dir,
            device=device,
            data_dir=data_dir,
            train_missing=train_missing,
            seed=base + k,
        )
        for name, r in more.items():
            replicates[name].append(r)
    return SmoothnessStudy.from_runs(
        runs,
        strong,
        weak,
        n_boot=n_boot,
        level=level,
        min_lower=min_lower,
        min_gap=min_gap,
        min_points=min_points,
        seed=seed,
        replicates=replicates,
    )


@dataclass(frozen=True)
class RecordedStudy:
    """The smoothness study of an experiment's recorded runs (:mod:`clipcore.recordings`):
    ``status`` is ``current`` (every run recorded, each matching today's presets), ``stale``
    (recorded, but some preset changed since, or a run is missing) or ``absent``; ``note``
    says which in a Markdown sentence (with the provenance, or the command that records);
    ``study`` is None only when absent."""

    status: str
    note: str
    study: SmoothnessStudy | None
    recordings: tuple = ()


def recorded_study(
    experiment: str, profile: str, recorded_dir, strong: str, weak: Sequence[str], **kw
) -> RecordedStudy:
    """:class:`RecordedStudy` of the recordings of ``experiment`` at ``profile`` in
    ``recorded_dir``; ``kw`` go to :meth:`SmoothnessStudy.from_runs` (the criterion and the
    bootstrap). A damaged recording is a :class:`clipcore.recordings.RecordingError`."""
    from .recordings import load_recorded, wall_hours

    loaded = load_recorded(experiment, profile, recorded_dir)
    make = f"`make record PROFILE={profile} EXPERIMENT={experiment}` on a GPU machine"
    names = list(experiment_configs(experiment, profile))
    have = [n for n in names if n in loaded and loaded[n][2] is not None]
    if not loaded or strong not in have or not any(w in have for w in weak):
        return RecordedStudy(
            "absent",
            f"No {profile}-scale recording of this experiment is in `{recorded_dir}/` yet: {make} trains "
            f"the runs (resuming across commands) and records them; commit `{recorded_dir}/` to show them here.",
            None,
        )
    recs = tuple(loaded[n][0] for n in loaded)
    runs = {n: StoredRun(n, loaded[n][2], loaded[n][1], False, 0.0) for n in have}
    study = SmoothnessStudy.from_runs(runs, strong, [w for w in weak if w in have], **kw)
    stale = [r for r in recs if r.status == "stale"]
    first = recs[0]
    if stale or len(have) < len(names):
        why = "; ".join(f"{r.entry['run']}: {r.reason}" for r in stale) or "not every run is recorded"
        return RecordedStudy(
            "stale",
            f"**Stale recording** ({first.label}): it no longer matches today's `{profile}` presets ({why}). "
            f"It is shown as it was recorded, not as today's result; {make} records it again.",
            study,
            recs,
        )
    hours = wall_hours(recs)
    trained = "training time unknown" if math.isnan(hours) else f"{hours:.1f} h of training in all"
    return RecordedStudy(
        "current",
        f"Recorded `{profile}`-scale runs, {first.label}; {trained}; they match today's presets.",
        study,
        recs,
    )


def running_mean(y, window: int) -> np.ndarray:
    r"""Trailing moving average :math:`\frac{1}{\min(t, w)}\sum_{s=\max(1, t-w+1)}^{t} y_s`
    (shorter at the start, so the output has the input's length)."""
    check_int("window", window, 1)
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


def checkpoint_model(run: Run, cfg, device="cpu") -> tuple[torch.nn.Module, int]:
    """The model of the run's last stored checkpoint, and the step it was taken at."""
    ckpt = run.load_checkpoint(map_location=torch.device(device))
    if ckpt is None:
        raise ValueError(f"run {run.path.name!r} has no checkpoint (train it with checkpoint_every set)")
    model = build_model(cfg, device, seed=False)
    model.load_state_dict(ckpt["model"])
    return model, int(ckpt["loop"]["step"])
