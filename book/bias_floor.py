# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The stochastic bias floor of clipped SGD
#
# The incremental pages found a *deterministic* bias: clipping the components of a finite sum
# moves the fixed point. {cite:t}`koloskova2023revisiting` show the same for clipped SGD
# with stochastic gradients: with noise of variance $\sigma^2$ and threshold $c$, clipped SGD
# need not converge to a stationary point, however small its steps; it can stall at a gradient
# norm of order $\min\{\sigma, \sigma^2/c\}$. The reason fits in one line: for
# $g = \nabla f(x) + \xi$ with $E\xi = 0$, $E\,\mathrm{clip}_c(g) \ne \nabla f(x)$ when the noise
# is asymmetric, so the iterates settle where $E\,\mathrm{clip}_c(g) = 0$ instead.
#
# **The demonstration.** Take $f(x) = x^2/2$ in one dimension (so $|f'(x)| = |x|$) and
# two-point noise: $\xi = a$ with probability p and $\xi = -b$ otherwise, with
# $a = \sigma\sqrt{(1-p)/p}$ and $b = \sigma\sqrt{p/(1-p)}$, so $E\xi = 0$ and
# $E\xi^2 = \sigma^2$. After their lower-bound construction, the law depends on the threshold:
# $p = \min\{1/4, \sigma^2/(4c^2)\}$ (`clipcore.bias_floor.floor_noise`; the specific law is
# derived for this book). For $c \ge \sigma$ the rare value $a \approx 2c$ is clipped while
# the frequent one is not, and the fixed point of $x \mapsto E\,\mathrm{clip}_c(x + \xi)$ is
# $\bar x = \frac{p}{1-p}(a - c) \approx \sigma^2/(4c)$; for $c \le \sigma$ it is
# $\sigma/\sqrt3 - c/3$. Both are $\Theta(\min\{\sigma, \sigma^2/c\})$.
#
# Clipped SGD $x \leftarrow x - \eta_t\,\mathrm{clip}_c(x + \xi_t)$ runs with shrinking steps
# $\eta_t = \eta_0/(1 + t/t_0)$, vectorised over thresholds and independent runs
# (`clipped_sgd_quadratic`), next to plain SGD with the same steps and the $p = 1/4$ law.

# %% tags=["parameters"]
profile = "ci"  # smoke, ci or paper: the scale of every grid below (book/params.yml)
device = "auto"  # unused: this page runs on NumPy
seed = 0  # seeds the noise of the runs
data_dir = None  # unused: no data set
results_dir = "results"  # unused: nothing is trained
sigma = 1.0  # > 0: noise standard deviation
c_grid = [0.1, 0.178, 0.316, 0.562, 1.0, 1.78, 3.16, 5.62, 10.0]  # > 0: thresholds, in units of sigma
steps = 20000  # > 0: SGD iterations per run
runs = 200  # > 0: independent runs per threshold
lr = 0.5  # > 0: eta_0
t0 = 100.0  # > 0: the step halves after t0 iterations
lr_ratio = 0.25  # in (0, 1): a second pass with eta_0 times lr_ratio checks that smaller steps keep the floor
tail = 0.5  # in (0, 1]: the plateau averages the last half of the iterates
x0 = 1.0  # initial point
tol_sigma = 0.01  # > 0: a plateau matches the exact fixed point when within tol_sigma times sigma
sgd_tol = 0.01  # > 0: unclipped SGD has no floor if its plateau is below sgd_tol times sigma
persist_min = 0.5  # in (0, 1): the floor persists if the smaller steps keep more than this fraction of it
order_band = 10.0  # > 1: "of order min{sigma, sigma^2/c}": the ratio to it within a factor order_band
slope_tol = 0.1  # > 0: the slope in the sigma^2/c regime matches -1 when within slope_tol
level = 0.95  # in (0, 1): confidence level of every interval on this page
n_boot = 1000  # > 0: bootstrap replicates (over runs) of the slope

# %% tags=["hide-cell"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from clipcore.bias_floor import (
    clipped_fixed_point,
    clipped_sgd_quadratic,
    floor_noise,
    plateau_interval,
    plateau_ratio,
    slope_interval,
)
from clipcore.claims import band_status, combine_statuses, from_interval
from clipcore.pages import glue_claim, glue_number, glue_verdict, show_figure, show_table
from clipcore.plots import thin, use_book_style
from clipcore.profiles import check_profile
from clipcore.runtime import seed_everything
from clipcore.stats import increase_check

check_profile(profile)
use_book_style()
_ = seed_everything(seed)
cs = sigma * np.asarray(c_grid, dtype=float)
laws = [floor_noise(sigma, c) for c in cs] + [floor_noise(sigma, sigma)]  # the last one: unclipped run
thresholds = np.append(cs, np.inf)
exact = np.array([clipped_fixed_point(c, nz) for c, nz in zip(cs, laws)])
shape = np.minimum(sigma, sigma**2 / cs)
kw = dict(x0=x0, t0=t0, steps=steps, runs=runs, tail=tail, seed=seed)
run = clipped_sgd_quadratic(laws, thresholds, lr=lr, **kw)
small = clipped_sgd_quadratic(laws, thresholds, lr=lr * lr_ratio, **{**kw, "seed": seed + 1})

# %% [markdown]
# ## $|f'(x_t)|$ along the runs
#
# Solid: the mean over runs of $|f'(x_t)|$, what one run sees. The dotted lines mark the exact
# floors $|\bar x|$. The step size falls by a factor {glue:text}`bf_lr_drop:.0f` over the run.

# %% tags=["hide-input"]
cmap = plt.get_cmap("plasma")
fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), layout="constrained")
ax = axes[0]
for k, c in enumerate(cs):
    col = cmap(k / max(1, len(cs) - 1) * 0.85)
    ax.loglog(run.t + 1, run.mean_abs_grad[k], color=col, label=f"$c = {c / sigma:.3g}\\sigma$")
    ax.axhline(exact[k], color=col, ls=":", lw=0.8)
ax.loglog(run.t + 1, run.mean_abs_grad[-1], color="k", lw=2, label="SGD, unclipped")
ax.set_xlabel("iteration t + 1")
ax.set_ylabel(r"$E\,|f'(x_t)|$")
ax.legend(fontsize=7, ncol=2)

ax = axes[1]
ax.errorbar(
    cs / sigma,
    run.plateau[:-1] / sigma,
    yerr=2 * run.plateau_se[:-1] / sigma,
    fmt="o",
    ms=4,
    capsize=2,
    label=f"measured plateau, $\\eta_0 = {lr:g}$",
)
ax.plot(
    cs / sigma,
    small.plateau[:-1] / sigma,
    "x",
    ms=7,
    label=f"measured plateau, $\\eta_0 = {lr * lr_ratio:g}$",
)
cf = np.geomspace(cs.min(), cs.max(), 200)
ax.loglog(
    cf / sigma,
    [clipped_fixed_point(c, floor_noise(sigma, c)) / sigma for c in cf],
    "k-",
    lw=1,
    label=r"exact fixed point $|\bar x|$",
)
ax.loglog(
    cf / sigma, np.minimum(sigma, sigma**2 / cf) / sigma, "k--", lw=1, label=r"$\min\{\sigma, \sigma^2/c\}$"
)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel(r"threshold $c / \sigma$")
ax.set_ylabel(r"plateau $|f'|$ / $\sigma$")
ax.legend(fontsize=8)
keep = thin(len(run.t), 1000)
plateaus = pd.DataFrame(
    dict(
        c_over_sigma=list(cs / sigma) + [np.inf],
        plateau=run.plateau,
        two_se=2 * run.plateau_se,
        exact=list(exact) + [0.0],
        plateau_small_step=small.plateau,
        min_sigma_sigma2_over_c=list(shape) + [np.nan],
    )
)
plateaus["ratio"] = plateaus["plateau"] / plateaus["min_sigma_sigma2_over_c"]
curves = pd.DataFrame(
    {
        "t": run.t[keep] + 1,
        **{f"c={c / sigma:.3g}sigma": run.mean_abs_grad[k][keep] for k, c in enumerate(cs)},
        "unclipped": run.mean_abs_grad[-1][keep],
    }
)
show_figure("bf_floor", fig, pd.concat([curves.assign(panel="a"), plateaus.assign(panel="b")]))

# %% [markdown]
# :::{glue:figure} bf_floor
# :name: fig-bf-floor
#
# Left: the mean over runs of $|f'(x_t)|$ for each threshold $c$ (dotted: the exact floor) and for
# unclipped SGD. Right: the measured plateau against $c/\sigma$ at two initial steps, with the
# exact fixed point of the clipped mean field and the shape $\min\{\sigma, \sigma^2/c\}$.
# {glue:md}`bf_floor_csv:myst`
# :::

# %% tags=["remove-input"]
show_table(
    plateaus,
    {
        "c_over_sigma": "$c/\\sigma$",
        "plateau": "plateau",
        "two_se": "± 2 s.e.",
        "exact": "exact floor",
        "plateau_small_step": "plateau, smaller step",
        "min_sigma_sigma2_over_c": "$\\min\\{\\sigma, \\sigma^2/c\\}$",
        "ratio": "plateau / shape",
    },
    formats={"plateau": ".4f", "two_se": ".4f", "exact": ".4f", "plateau_small_step": ".4f", "ratio": ".3f"},
    caption="The plateau of each threshold (∞: unclipped SGD).",
)

# %% [markdown]
# The plateau is $|f'|$ at the average of the last half of the iterates over all runs (error
# bars: two standard errors over runs); averaging removes the noise of the iterates, not their
# bias.

# %% [markdown]
# ## Criteria
#
# Every interval is over the independent runs, at {glue:text}`bf_level_pct:.0f`% (normal
# intervals from the standard errors; the slope by a bootstrap over runs). A claim **holds** when
# every interval is on the claimed side, **fails** when one is wholly on the other side, and is
# **inconclusive** otherwise.
#
# - *The floor persists as the step shrinks*: at every threshold the ratio of the plateau with
#   $\eta_0$ × {glue:text}`bf_lr_ratio:.2g` to the plateau with $\eta_0$ is above
#   {glue:text}`bf_persist_min:.2g` (a floor that a step size could remove would shrink with it).
# - *It scales as predicted*: (i) the plateau over $\min\{\sigma, \sigma^2/c\}$ stays within a factor
#   {glue:text}`bf_order_band:.0f` at every threshold ("of order"), and (ii) for $c \ge \sigma$ the
#   log–log slope of the plateau in c is $-1$ within {glue:text}`bf_slope_tol:.2g`.
# - *It grows as the threshold shrinks*: the plateau rises at every step down the grid of c.
# - *It is the fixed point of the clipped mean field*: the plateau minus $|\bar x|$ lies within
#   $\pm$ {glue:text}`bf_tol_sigma:.2g` σ at every threshold.
# - *Unclipped SGD has no floor*: its plateau is below {glue:text}`bf_sgd_tol:.2g` σ.

# %% tags=["hide-cell"]
K = len(cs)
r_small, r_lo, r_hi = (v[:K] for v in plateau_ratio(small, run, level))
p_lo, p_hi = (v[:K] for v in plateau_interval(run, level))
s_lo, s_hi = plateau_interval(small, level)
half = run.plateau[:K] - p_lo  # z * se
persist = combine_statuses(from_interval(lo, hi, persist_min) for lo, hi in zip(r_lo, r_hi))
ratio = run.plateau[:K] / shape
order = combine_statuses(
    band_status(lo / sh, hi / sh, 1 / order_band, order_band) for lo, hi, sh in zip(p_lo, p_hi, shape)
)
big = np.flatnonzero(cs >= sigma)
if big.size >= 2:
    slope, sl_lo, sl_hi = slope_interval(run, big, level=level, n_boot=n_boot, seed=seed)
    slope_status = band_status(sl_lo, sl_hi, -1 - slope_tol, -1 + slope_tol)
else:
    slope, sl_lo, sl_hi, slope_status = float("nan"), float("nan"), float("nan"), "not-testable"
order_c = np.argsort(cs)[::-1]  # from the largest threshold down
incr = increase_check(run.plateau[:K][order_c], run.plateau_se[:K][order_c], level=level)
dev = run.plateau[:K] - exact
match = combine_statuses(
    band_status(d - h, d + h, -tol_sigma * sigma, tol_sigma * sigma) for d, h in zip(dev, half)
)
u_lo, u_hi = plateau_interval(run, level)
sgd = from_interval(u_lo[-1], u_hi[-1], sgd_tol * sigma, above=False)

glue_number("bf_level_pct", 100 * level)
glue_number("bf_lr_ratio", lr_ratio)
glue_number("bf_persist_min", persist_min)
glue_number("bf_order_band", order_band)
glue_number("bf_slope_tol", slope_tol)
glue_number("bf_lr_drop", (1 + (steps - 1) / t0))
glue_number("bf_tol_sigma", tol_sigma)
glue_number("bf_sgd_tol", sgd_tol)
glue_number("bf_max_dev", np.max(np.abs(dev)))
glue_number("bf_lr_small", lr * lr_ratio)
glue_number("bf_persist_lo", np.min(r_lo))
glue_number("bf_persist_ratio_min", np.min(r_small))
glue_number("bf_persist_ratio_max", np.max(r_small))
glue_number("bf_ratio_min", ratio.min())
glue_number("bf_ratio_max", ratio.max())
glue_number("bf_slope_value", slope)
glue_number("bf_slope_lo", sl_lo)
glue_number("bf_slope_hi", sl_hi)
glue_number("bf_plateau_small_c", run.plateau[0] / sigma)
glue_number("bf_c_min", cs[0] / sigma)
glue_number("bf_sgd_plateau", run.plateau[-1] / sigma)
glue_number("bf_sgd_hi", u_hi[-1] / sigma)
glue_number("bf_sgd_final", run.mean_abs_grad[-1, -1] / sigma)
glue_number("bf_c_range", cs.max() / cs.min())
i10 = int(np.searchsorted(run.t, steps // 10))
glue_number("bf_sgd_t10", run.t[i10])
glue_number("bf_sgd_at_t10", run.mean_abs_grad[-1, i10] / sigma)
glue_verdict(
    "bf_sgd_falls",
    run.mean_abs_grad[-1, -1] < run.mean_abs_grad[-1, i10],
    "keeps falling with the step size",
    "does not fall with the step size",
)
KHS = dict(paper="koloskova2023", profile=profile)
glue_claim(
    "bf_persists",
    where="lower bound on clipped SGD (the bias floor)",
    statement="Smaller steps do not remove the bias floor of clipped SGD: with a smaller initial step the plateau "
    "keeps more than the stated fraction of its size at every threshold",
    status=persist,
    evidence=dict(
        ratio_min=r_small.min(),
        ratio_max=r_small.max(),
        lower_min=r_lo.min(),
        persist_min=persist_min,
        lr_ratio=lr_ratio,
    ),
    **KHS,
)
glue_claim(
    "bf_order",
    where="lower bound on clipped SGD (the bias floor)",
    statement="The floor is of order min{sigma, sigma^2/c}: its ratio to it stays within the stated factor at "
    "every threshold",
    status=order,
    evidence=dict(ratio_min=ratio.min(), ratio_max=ratio.max(), band=order_band),
    **KHS,
)
glue_claim(
    "bf_slope",
    where="lower bound on clipped SGD (the bias floor)",
    statement="For c >= sigma the floor scales as sigma^2/c: its log-log slope in c is -1 within the stated "
    "tolerance",
    status=slope_status,
    evidence=dict(slope=slope, lo=sl_lo, hi=sl_hi, tol=slope_tol, n_thresholds=int(big.size)),
    **KHS,
)
glue_claim(
    "bf_incr",
    where="lower bound on clipped SGD (the bias floor)",
    statement="The floor grows as the threshold shrinks (at every step down the grid of thresholds)",
    status=incr,
    evidence=dict(plateau_small_c=run.plateau[0], plateau_large_c=run.plateau[K - 1]),
    **KHS,
)
glue_claim(
    "bf_match",
    where="this book's construction (two-point noise law)",
    statement="The simulated plateau is the fixed point of the clipped mean field x -> E clip_c(x + xi), within "
    "the stated tolerance at every threshold",
    status=match,
    evidence=dict(max_dev=np.max(np.abs(dev)), tol=tol_sigma * sigma),
    **KHS,
)
_ = glue_claim(
    "bf_sgd",
    where="lower bound on clipped SGD (the control)",
    statement="Unclipped SGD with the same steps has no floor: its plateau is below the stated fraction of sigma",
    status=sgd,
    evidence=dict(plateau=run.plateau[-1], hi=u_hi[-1], tol=sgd_tol * sigma),
    **KHS,
)

# %% [markdown]
# ## Verdicts
#
# - **Smaller steps do not remove it.** Verdict: {glue:md}`bf_persists`. The steps shrink by a
#   factor {glue:text}`bf_lr_drop:.0f` along each run, and a second pass with
#   $\eta_0$ = {glue:text}`bf_lr_small:.3g` keeps between {glue:text}`bf_persist_ratio_min:.3f`
#   and {glue:text}`bf_persist_ratio_max:.3f` of the plateau (lowest interval bound
#   {glue:text}`bf_persist_lo:.3f`).
# - **Of order $\min\{\sigma, \sigma^2/c\}$.** Verdict: {glue:md}`bf_order`. The ratio of the
#   plateau to $\min\{\sigma, \sigma^2/c\}$ stays between {glue:text}`bf_ratio_min:.2f` and
#   {glue:text}`bf_ratio_max:.2f` over a {glue:text}`bf_c_range:.0f`-fold range of thresholds.
# - **The $\sigma^2/c$ regime.** Verdict: {glue:md}`bf_slope`. For $c \ge \sigma$ the log–log
#   slope is {glue:text}`bf_slope_value:.3f` ({glue:text}`bf_slope_lo:.3f` to
#   {glue:text}`bf_slope_hi:.3f`).
# - **A floor that grows as the threshold shrinks.** Verdict: {glue:md}`bf_incr`; it reaches
#   {glue:text}`bf_plateau_small_c:.3f` σ at $c$ = {glue:text}`bf_c_min:.2g` σ.
# - **It is the fixed point of the mean field.** Verdict: {glue:md}`bf_match` (largest deviation
#   {glue:text}`bf_max_dev:.1e`).
# - **Unclipped SGD has no floor.** Verdict: {glue:md}`bf_sgd`. Its plateau is
#   {glue:text}`bf_sgd_plateau:.1e` σ (upper bound {glue:text}`bf_sgd_hi:.1e` σ), and the mean
#   $|f'(x_t)|$ of a single run is {glue:text}`bf_sgd_final:.3f` σ at the end and
#   {glue:text}`bf_sgd_at_t10:.3f` σ at $t$ = {glue:text}`bf_sgd_t10:.0f`: it
#   {glue:md}`bf_sgd_falls`.
#
# The floor is a property of the clipped *mean field* $E\,\mathrm{clip}_c(\nabla f + \xi)$, not of
# the step size: the same mechanism as the deterministic bias of clipped incremental methods,
# where the role of the noise is played by the spread of the component gradients.
