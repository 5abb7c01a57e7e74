r"""The chapter *Clipping today*: the runs of :mod:`clipcore.training.comparison`, the threshold
search, and the three verdicts with their intervals.

**Search.** Each method's grid (:data:`clipcore.training.comparison.METHODS`) is trained on
the first seed; the value with the lowest *final* training loss (the mean per-step loss over
the last ``tail`` of the steps) is chosen, and trained on every seed. A run whose loss or
gradient becomes non-finite has *diverged*: it is recorded as such (a marker in its folder of
the run store, so it is not retrained) and never chosen.

**Time to a target** (:func:`steps_to_target`). The step at which the running mean of the
training loss (``window`` steps) first reaches the target; a run that never does is
*censored* at T + 1 (T steps), a lower bound on its time. The target is fixed by a rule
stated before the numbers: :math:`\ell_0 - q(\ell_0 - \ell_{\min})`, with :math:`\ell_0` the
mean first-step loss and :math:`\ell_{\min}` the lowest final loss among the chosen methods
(mean over seeds).

**Comparisons** (:func:`paired_difference`). Differences between two methods are paired by
seed; their mean gets a percentile-bootstrap interval over the seeds
(:func:`clipcore.stats.mean_interval`).

**Tracking the envelope** (:func:`envelope_tracking`). The effective step factor
:math:`c_t = \|x_{t+1} - x_t\| / (\eta_t\|g_t\|)` of a run (1 for plain SGD) against the
factor :math:`1/(L_0 + L_1\|g_t\|)` that the :math:`(L_0, L_1)` envelope of the task prescribes
(fitted by :func:`clipcore.envelope.fit_envelope` to the task's step probes): Pearson's
correlation between their logarithms, with a moving-block bootstrap interval over the steps,
averaged over seeds. A rank correlation would not do: any function of :math:`\|g_t\|` alone
has rank correlation one with the envelope's factor, whatever :math:`L_0` and :math:`L_1`.

**Sensitivity** (:func:`sensitivity`). The spread (largest minus smallest) of the final
training loss across a method's grid, with a moving-block bootstrap interval from the
per-step losses of each run's tail; a diverged grid point makes the spread infinite.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .claims import from_interval
from .envelope import fit_envelope
from .smoothness import STEP_PROBE
from .stats import block_counts, default_block_length, mean_interval
from .training import RunStore, train
from .training.comparison import METHODS, SEEDS, comparison_config, grid

__all__ = [
    "DIVERGED_FILE",
    "RunResult",
    "Comparison",
    "run_comparison",
    "final_loss",
    "steps_to_target",
    "target_loss",
    "paired_difference",
    "no_later_status",
    "effective_factor",
    "log_pearson",
    "envelope_tracking",
    "tail_mean_replicates",
    "sensitivity",
    "less_sensitive_status",
    "fit_task_envelope",
    "ADAPTIVE",
    "clipped_fraction",
    "analyse",
]

DIVERGED_FILE = "diverged.json"


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` interval of the finite ``samples`` (nan without any)."""
    ok = np.asarray(samples, float)
    ok = ok[np.isfinite(ok)]
    if ok.size == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(ok, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


@dataclass
class RunResult:
    """One run of the comparison: its ``method``, hyper-parameter ``value`` and ``seed``; its
    ``metrics``, ``evals`` and ``probes`` tables (None when it diverged), ``diverged`` with
    the error, ``trained`` (by this call) and ``seconds`` spent."""

    method: str
    value: float
    seed: int
    metrics: dict | None
    evals: dict | None
    probes: dict | None
    diverged: str | None = None
    trained: bool = False
    seconds: float = 0.0

    @property
    def steps(self) -> int:
        return 0 if self.metrics is None else int(len(self.metrics["loss"]))


def _diverged(cfg, store: RunStore) -> str | None:
    marker = store.run_dir(cfg.experiment, cfg.identity()) / DIVERGED_FILE
    return json.loads(marker.read_text())["error"] if marker.exists() else None


def _train_or_mark(cfg, results_dir) -> float:
    """Train ``cfg`` into the store (one thread); a divergence leaves the marker. Seconds."""
    import torch

    store = RunStore(results_dir)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread each, several runs side by side
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="IProgress not found")
            train(cfg, store, progress=False)
    except FloatingPointError as err:  # a diverged run: recorded, never retrained
        folder = store.run_dir(cfg.experiment, cfg.identity())
        folder.mkdir(parents=True, exist_ok=True)
        (folder / DIVERGED_FILE).write_text(json.dumps({"error": str(err)}))
    finally:
        torch.set_num_threads(threads)
    return time.perf_counter() - t0


def _train_missing(cfgs, results_dir, workers: int) -> dict[int, float]:
    """Train the configs not in the store (nor diverged), ``workers`` processes side by side
    on the CPU; ``{index: seconds}`` of those trained."""
    store = RunStore(results_dir)
    todo = [
        i
        for i, c in enumerate(cfgs)
        if store.load(c.experiment, c.identity()) is None and _diverged(c, store) is None
    ]
    if workers > 1 and len(todo) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(workers, len(todo)), mp_context=mp.get_context("spawn")) as pool:
            seconds = list(pool.map(_train_or_mark, [cfgs[i] for i in todo], [str(results_dir)] * len(todo)))
    else:
        seconds = [_train_or_mark(cfgs[i], results_dir) for i in todo]
    return dict(zip(todo, seconds))


def _load(cfg, method: str, value: float, store: RunStore, seconds: float | None) -> RunResult:
    diverged = _diverged(cfg, store)
    if diverged is not None:
        return RunResult(
            method, value, cfg.seed, None, None, None, diverged, seconds is not None, seconds or 0.0
        )
    run = store.load(cfg.experiment, cfg.identity())
    if run is None:  # pragma: no cover - trained above
        raise RuntimeError(f"run {cfg.name!r} (seed {cfg.seed}) is not in the store {store.root}")
    probes = run.table("probes") if "probes" in run.tables else None
    return RunResult(
        method,
        value,
        cfg.seed,
        run.table("metrics"),
        run.table("eval"),
        probes,
        None,
        seconds is not None,
        seconds or 0.0,
    )


@dataclass
class Comparison:
    """Every run of one task: the search (``search[method]``: one :class:`RunResult` per grid
    value, first seed), the ``chosen`` value per method and ``runs[method]``: the chosen
    value on every seed."""

    task: str
    profile: str
    tail: float
    search: dict[str, list[RunResult]] = field(default_factory=dict)
    chosen: dict[str, float] = field(default_factory=dict)
    runs: dict[str, list[RunResult]] = field(default_factory=dict)

    @property
    def trained(self) -> int:
        every = [r for rs in self.search.values() for r in rs] + [
            r for rs in self.runs.values() for r in rs[1:]
        ]
        return sum(r.trained for r in every)

    @property
    def seconds(self) -> float:
        every = [r for rs in self.search.values() for r in rs] + [
            r for rs in self.runs.values() for r in rs[1:]
        ]
        return float(sum(r.seconds for r in every))

    def step_probes(self) -> tuple[np.ndarray, np.ndarray]:
        """Gradient norms and smoothness estimates of every step probe of the chosen runs."""
        g, L = [], []
        for rs in self.runs.values():
            for r in rs:
                if r.probes is None:
                    continue
                sel = r.probes["estimator"] == STEP_PROBE
                g.append(r.probes["grad_norm"][sel])
                L.append(r.probes["smoothness"][sel])
        return (np.concatenate(g), np.concatenate(L)) if g else (np.zeros(0), np.zeros(0))


def run_comparison(
    task: str,
    profile: str,
    results_dir,
    *,
    methods=None,
    tail: float = 0.2,
    device: str = "auto",
    data_dir=None,
    workers: int = 1,
) -> Comparison:
    """Search each method's grid on the first seed of ``profile``, choose by the final training
    loss (mean over the last ``tail`` of the steps), and train the chosen value on every seed;
    runs already in the store at ``results_dir`` are loaded, not retrained. ``workers``
    training processes run side by side on the CPU (one thread each)."""
    from .runtime import resolve_device

    if not (isinstance(workers, int) and workers >= 1):
        raise ValueError(f"Invalid workers: {workers!r} (an integer >= 1)")
    if resolve_device(device).type != "cpu":
        workers = 1  # one accelerator: one run at a time
    store = RunStore(results_dir)
    seeds = SEEDS[profile]
    names = list(methods or METHODS)
    out = Comparison(task, profile, tail)

    def config(name, value, seed):
        return comparison_config(task, name, value, profile, seed, device=device, data_dir=data_dir)

    points = [(n, v) for n in names for v in grid(n, task, profile)]
    cfgs = [config(n, v, seeds[0]) for n, v in points]
    seconds = _train_missing(cfgs, results_dir, workers)
    for i, ((n, v), c) in enumerate(zip(points, cfgs)):
        out.search.setdefault(n, []).append(_load(c, n, v, store, seconds.get(i)))
    for n in names:
        finite = [(final_loss(r, tail), r.value) for r in out.search[n] if r.diverged is None]
        # Every grid value diverged: keep the first, shown as diverged.
        out.chosen[n] = min(finite)[1] if finite else grid(n, task, profile)[0]
    rest = [(n, s) for n in names for s in seeds[1:]]
    cfgs = [config(n, out.chosen[n], s) for n, s in rest]
    seconds = _train_missing(cfgs, results_dir, workers)
    for n in names:
        out.runs[n] = [next(r for r in out.search[n] if r.value == out.chosen[n])]
    for i, ((n, _), c) in enumerate(zip(rest, cfgs)):
        out.runs[n].append(_load(c, n, out.chosen[n], store, seconds.get(i)))
    return out


# --------------------------------------------------------------------------------------
# Losses and the time to a target
# --------------------------------------------------------------------------------------


def _tail_count(n: int, tail: float) -> int:
    if not 0 < tail <= 1:
        raise ValueError(f"Invalid tail: {tail!r} (must be in (0, 1])")
    return max(1, int(math.ceil(tail * n)))


def final_loss(run: RunResult, tail: float) -> float:
    """Mean per-step training loss over the last ``tail`` of the steps (inf if diverged)."""
    if run.metrics is None:
        return math.inf
    loss = np.asarray(run.metrics["loss"], float)
    return float(loss[-_tail_count(loss.size, tail) :].mean())


def _running_mean(y: np.ndarray, window: int) -> np.ndarray:
    c = np.cumsum(np.r_[0.0, y])
    t = np.arange(1, y.size + 1)
    lo = np.maximum(t - window, 0)
    return (c[t] - c[lo]) / (t - lo)


def steps_to_target(loss, target: float, window: int) -> tuple[int, bool]:
    """``(step, reached)``: the first step (1-based) at which the trailing running mean of
    ``loss`` over ``window`` steps is at or below ``target``; ``(T + 1, False)`` when it never
    is (censored: the true time is later than the run)."""
    if not (isinstance(window, (int, np.integer)) and window >= 1):
        raise ValueError(f"Invalid window: {window!r} (an integer >= 1)")
    y = np.asarray(loss, float).ravel()
    hit = np.flatnonzero(_running_mean(y, int(window)) <= target)
    return (int(hit[0]) + 1, True) if hit.size else (int(y.size) + 1, False)


def target_loss(initial: float, best_final: float, fraction: float) -> float:
    r"""The target :math:`\ell_0 - q(\ell_0 - \ell_{\min})` (``fraction`` = q in (0, 1])."""
    if not 0 < fraction <= 1:
        raise ValueError(f"Invalid fraction: {fraction!r} (must be in (0, 1])")
    return float(initial - fraction * (initial - best_final))


def paired_difference(a, b, *, level: float = 0.95, n_boot: int = 2000, seed: int = 0):
    """``(mean, lo, hi)`` of the per-seed differences ``a - b`` (paired by position), with the
    percentile-bootstrap interval of :func:`clipcore.stats.mean_interval`; one seed gives no
    interval (nan bounds, so a verdict on it is inconclusive), no seed nan throughout."""
    d = np.asarray(a, float) - np.asarray(b, float)
    if d.size == 1:
        return float(d[0]), math.nan, math.nan
    if d.size == 0:
        return math.nan, math.nan, math.nan
    return mean_interval(d, level=level, n_boot=n_boot, seed=seed)


def no_later_status(lo: float, hi: float, slack: float, both_censored: bool) -> str:
    """ "A reaches the target no later than B (within ``slack`` steps)" from the interval of
    steps(A) - steps(B): ``holds`` when it lies below ``slack``, ``fails`` when it lies at or
    above it; ``inconclusive`` when it straddles, or when neither reached it (both censored)."""
    if both_censored:
        return "inconclusive"
    return from_interval(lo, hi, slack, above=False)


# --------------------------------------------------------------------------------------
# Tracking the (L0, L1) envelope
# --------------------------------------------------------------------------------------


def effective_factor(metrics: dict) -> np.ndarray:
    r""":math:`c_t = \|x_{t+1} - x_t\|/(\eta_t\|g_t\|)`, the factor the method applied to the
    SGD step at each step (1: not clipped)."""
    return np.asarray(metrics["step_length"], float) / (
        np.asarray(metrics["lr"], float) * np.asarray(metrics["grad_norm"], float)
    )


def log_pearson(x, y) -> float:
    """Pearson's correlation of log x and log y over the finite, positive pairs; 0 when either
    side is constant (a factor that never changes tracks nothing), nan below 3 pairs."""
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if ok.sum() < 3:
        return math.nan
    lx, ly = np.log(x[ok]), np.log(y[ok])
    sx, sy = lx.std(), ly.std()
    if sx <= 1e-12 * max(1.0, abs(lx.mean())) or sy <= 1e-12 * max(1.0, abs(ly.mean())):
        return 0.0
    return float(np.mean((lx - lx.mean()) * (ly - ly.mean())) / (sx * sy))


def _block_pearson(lx: np.ndarray, ly: np.ndarray, n_boot: int, rng) -> np.ndarray:
    """Moving-block bootstrap replicates of Pearson's correlation of two centred-or-not series."""
    n = lx.size
    c = block_counts(n, n_boot, default_block_length(n), rng).astype(float)
    w = c / c.sum(1, keepdims=True)
    mx, my = w @ lx, w @ ly
    vx = w @ lx**2 - mx**2
    vy = w @ ly**2 - my**2
    cov = w @ (lx * ly) - mx * my
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cov / np.sqrt(vx * vy)
    r[(vx <= 1e-24) | (vy <= 1e-24)] = 0.0
    return r


def envelope_tracking(
    runs, L0: float, L1: float, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    r"""``(r, lo, hi)``: Pearson's correlation between :math:`\log c_t` (:func:`effective_factor`)
    and :math:`\log 1/(L_0 + L_1\|g_t\|)` along each run, averaged over ``runs`` (seeds), and
    the interval of that average from independent moving-block bootstraps of each run."""
    rng = np.random.default_rng(seed)
    point, reps = [], []
    for m in runs:
        c = effective_factor(m)
        env = 1.0 / (L0 + L1 * np.asarray(m["grad_norm"], float))
        ok = np.isfinite(c) & np.isfinite(env) & (c > 0) & (env > 0)
        if ok.sum() < 3:
            continue
        lx, ly = np.log(c[ok]), np.log(env[ok])
        point.append(log_pearson(c[ok], env[ok]))
        reps.append(_block_pearson(lx, ly, n_boot, rng))
    if not point:
        return math.nan, math.nan, math.nan
    lo, hi = _interval(np.mean(reps, axis=0), level)
    return float(np.mean(point)), lo, hi


# --------------------------------------------------------------------------------------
# Sensitivity to the hyper-parameter
# --------------------------------------------------------------------------------------


def tail_mean_replicates(run: RunResult, tail: float, n_boot: int, rng) -> np.ndarray:
    """Moving-block bootstrap replicates of :func:`final_loss` (inf for a diverged run)."""
    if run.metrics is None:
        return np.full(n_boot, math.inf)
    loss = np.asarray(run.metrics["loss"], float)
    y = loss[-_tail_count(loss.size, tail) :]
    if y.size < 2:
        return np.full(n_boot, float(y.mean()))
    c = block_counts(y.size, n_boot, default_block_length(y.size), rng)
    return c @ y / y.size


def sensitivity(
    results, tail: float, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float, np.ndarray]:
    """``(spread, lo, hi, replicates)``: the largest minus the smallest final loss over the
    grid's runs ``results`` and its interval (inf when a grid point diverged)."""
    rng = np.random.default_rng(seed)
    finals = np.array([final_loss(r, tail) for r in results])
    reps = np.stack([tail_mean_replicates(r, tail, n_boot, rng) for r in results])
    if not np.all(np.isfinite(finals)):
        inf = np.full(n_boot, math.inf)
        return math.inf, math.inf, math.inf, inf
    spread_reps = reps.max(0) - reps.min(0)
    lo, hi = _interval(spread_reps, level)
    return float(finals.max() - finals.min()), lo, hi, spread_reps


def less_sensitive_status(
    reps_a: np.ndarray, reps_b: np.ndarray, level: float
) -> tuple[float, float, float, str]:
    """ "A is less sensitive than B": ``(diff, lo, hi, status)`` for spread(A) - spread(B) from
    their bootstrap replicates; ``holds`` when the interval is below 0, ``fails`` when at or
    above it. A diverged grid point (an infinite spread) of A alone fails, of B alone holds,
    of both is inconclusive."""
    inf_a, inf_b = not np.all(np.isfinite(reps_a)), not np.all(np.isfinite(reps_b))
    if inf_a or inf_b:
        status = "inconclusive" if inf_a and inf_b else "fails" if inf_a else "holds"
        diff = math.nan if inf_a and inf_b else math.inf if inf_a else -math.inf
        return diff, diff, diff, status
    d = np.asarray(reps_a) - np.asarray(reps_b)
    lo, hi = _interval(d, level)
    return float(np.median(d)), lo, hi, from_interval(lo, hi, 0.0, above=False)


def fit_task_envelope(comparison: Comparison, quantile: float) -> tuple[float, float, int]:
    """``(L0, L1, n)``: the (L0, L1) envelope of the task's step probes (every chosen run)."""
    g, L = comparison.step_probes()
    ok = np.isfinite(g) & np.isfinite(L) & (g > 0) & (L > 0)
    if ok.sum() < 2:
        return math.nan, math.nan, int(ok.sum())
    L0, L1 = fit_envelope(g[ok], L[ok], quantile=quantile)
    return float(L0), float(L1), int(ok.sum())


# --------------------------------------------------------------------------------------
# The chapter's verdicts for one task
# --------------------------------------------------------------------------------------

# The adaptive methods whose claims the chapter checks, and the paper each comes from.
ADAPTIVE = {"agc": "brock2021", "autoclip": "seetharaman2020", "zclip": "kumar2025"}


def clipped_fraction(run: RunResult) -> float:
    """Fraction of the run's steps whose update its rule clipped (nan if diverged)."""
    return math.nan if run.metrics is None else float(np.mean(run.metrics["clipped"]))


def analyse(
    comp: Comparison,
    *,
    target_fraction: float,
    window: int,
    slack: float,
    envelope_quantile: float,
    min_track: float,
    level: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """Everything the chapter shows for one task: ``search`` rows, the ``target`` and the
    ``first`` rows (steps to it per method), the fitted ``envelope`` and the ``tracking``
    rows, the ``sensitivity`` rows, and ``claims`` (dicts for :func:`clipcore.pages.glue_claim`
    without the id prefix: ``key``, ``paper``, ``statement``, ``status``, ``evidence``)."""
    out: dict = {"claims": []}
    tail = comp.tail
    out["search"] = [
        dict(
            method=METHODS[n].label,
            parameter=METHODS[n].param,
            value=r.value,
            final_loss=final_loss(r, tail),
            clipped=clipped_fraction(r),
            status="diverged" if r.diverged else "chosen" if r.value == comp.chosen[n] else "",
        )
        for n, rs in comp.search.items()
        for r in rs
    ]
    ok = {n: rs for n, rs in comp.runs.items() if all(r.diverged is None for r in rs)}
    T = max((r.steps for rs in ok.values() for r in rs), default=0)
    initial = float(np.mean([r.metrics["loss"][0] for rs in ok.values() for r in rs])) if ok else math.nan
    best = min((np.mean([final_loss(r, tail) for r in rs]) for rs in ok.values()), default=math.nan)
    target = target_loss(initial, best, target_fraction) if ok else math.nan
    out.update(initial=initial, best=float(best), target=target, steps=T)
    hits = {}
    for n, rs in comp.runs.items():
        hits[n] = [
            steps_to_target(r.metrics["loss"], target, window) if r.metrics is not None else (T + 1, False)
            for r in rs
        ]
    out["first"] = []
    for n, h in hits.items():
        s = np.array([x for x, _ in h], float)
        mean, lo, hi = (
            mean_interval(s, level=level, n_boot=n_boot, seed=seed)
            if s.size > 1
            else (s[0], math.nan, math.nan)
        )
        out["first"].append(
            dict(
                method=METHODS[n].label,
                steps=mean,
                lo=lo,
                hi=hi,
                reached=f"{sum(r for _, r in h)} of {len(h)}",
            )
        )
    first_pairs = [(m, "clipped", ADAPTIVE[m]) for m in ADAPTIVE if m in hits and "clipped" in hits]
    if "clipped" in hits and "sgd" in hits:
        first_pairs.append(("clipped", "sgd", "zhang2020"))
    for a, b, paper in first_pairs:
        sa = [x for x, _ in hits[a]]
        sb = [x for x, _ in hits[b]]
        diff, lo, hi = paired_difference(sa, sb, level=level, n_boot=n_boot, seed=seed)
        censored = not any(r for _, r in hits[a]) and not any(r for _, r in hits[b])
        status = no_later_status(lo, hi, slack * T, censored)
        other = "clipped SGD with a fixed threshold" if b == "clipped" else "SGD without clipping"
        out["claims"].append(
            dict(
                key=f"first_{a}",
                paper=paper,
                where="time to a target training loss",
                statement=f"{METHODS[a].label} reaches the target training loss no later than {other}",
                status=status,
                evidence=dict(diff=diff, lo=lo, hi=hi, slack=slack * T, target=target),
            )
        )
    L0, L1, n_probes = fit_task_envelope(comp, envelope_quantile)
    out["envelope"] = dict(L0=L0, L1=L1, n=n_probes)
    out["tracking"] = []
    for n, rs in ok.items():
        if math.isfinite(L0) and math.isfinite(L1) and (L0 > 0 or L1 > 0):
            r, lo, hi = envelope_tracking(
                [x.metrics for x in rs], L0, L1, n_boot=n_boot, level=level, seed=seed
            )
        else:
            r = lo = hi = math.nan
        out["tracking"].append(dict(method=METHODS[n].label, name=n, r=r, lo=lo, hi=hi))
    for m, paper in ADAPTIVE.items():
        row = next((t for t in out["tracking"] if t["name"] == m), None)
        r, lo, hi = (row["r"], row["lo"], row["hi"]) if row else (math.nan, math.nan, math.nan)
        out["claims"].append(
            dict(
                key=f"track_{m}",
                paper=paper,
                where="adaptive thresholds and the (L0, L1) envelope",
                statement=f"the effective step factor of {METHODS[m].label} tracks the factor "
                f"1/(L0 + L1 |g|) of the task's (L0, L1) envelope (log-correlation above {min_track:g})",
                status=from_interval(lo, hi, min_track, above=True),
                evidence=dict(r=r, lo=lo, hi=hi, L0=L0, L1=L1),
            )
        )
    out["sensitivity"], reps = [], {}
    for n, rs in comp.search.items():
        spread, lo, hi, reps[n] = sensitivity(rs, tail, n_boot=n_boot, level=level, seed=seed)
        out["sensitivity"].append(
            dict(method=METHODS[n].label, parameter=METHODS[n].param, spread=spread, lo=lo, hi=hi)
        )
    for m, paper in ADAPTIVE.items():
        if m not in reps or "clipped" not in reps:
            continue
        diff, lo, hi, status = less_sensitive_status(reps[m], reps["clipped"], level)
        out["claims"].append(
            dict(
                key=f"sens_{m}",
                paper=paper,
                where="sensitivity to the hyper-parameter",
                statement=f"{METHODS[m].label} is less sensitive to its {METHODS[m].param} than clipped "
                "SGD to its threshold (spread of the final training loss over each grid)",
                status=status,
                evidence=dict(diff=diff, lo=lo, hi=hi),
            )
        )
    return out
