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
# # Clipping biases the incremental direction
#
# {cite:t}`qian2021understanding` study clipping inside **incremental gradient
# methods** for a finite sum $F = \sum_{i=1}^n f_i$: one cycle applies
# $x \leftarrow x - \alpha\,\mathrm{clip}_\gamma(\nabla f_i(x))$ for each component in turn, with
# $\mathrm{clip}_\gamma(g) = \min\{1, \gamma/\|g\|\}\,g$. Their first claim (C1) is that clipping
# the *components* biases the descent direction, and that the bias depends on the threshold, on
# the component-gradient norms and on their angles to the full gradient.
#
# To first order in $\alpha$ a cycle moves along
# $d(x) = \sum_i \mathrm{clip}_\gamma(\nabla f_i(x))$. With the clipped set
# $C = \{i : \|\nabla f_i\| > \gamma\}$ and $\theta_i$ the angle between $\nabla f_i$ and
# $\nabla F$, two identities (derived for this book, proved by `tests/test_incremental_bias.py`) make
# the claim precise:
#
# $$
# d - \nabla F = -\sum_{i \in C}\Bigl(1 - \frac{\gamma}{\|\nabla f_i\|}\Bigr)\nabla f_i,
# \qquad
# \langle d, \nabla F\rangle = \|\nabla F\|\sum_i \min\{\|\nabla f_i\|, \gamma\}\cos\theta_i .
# $$
#
# Write $\rho = \langle d, \nabla F\rangle/\|\nabla F\|^2$ (the *effective step multiplier*: the
# part of $d$ along $\nabla F$) and $d_\perp = d - \rho\nabla F$ (the part that does not help).
# Consequences: there is no bias when $\gamma \ge \max_i\|\nabla f_i\|$; $d$ is a descent
# direction iff $\rho > 0$; and if every component is within a right angle of the full gradient,
# $\cos\theta_i \ge \kappa > 0$, then $\langle d, \nabla F\rangle \ge
# \kappa\|\nabla F\|\sum_i\min\{\|\nabla f_i\|, \gamma\} > 0$. All of this lives in
# `clipcore.incremental_bias.clipped_direction`.

# %% tags=["parameters"]
profile = "ci"  # smoke, ci or paper: the scale of every grid below (book/params.yml)
device = "auto"  # unused: this page runs on NumPy
seed = 0  # seeds the random instances and the bootstrap intervals
data_dir = None  # unused: no data set
results_dir = "results"  # unused: nothing is trained
n_instances = 2000  # > 0: random instances on which the identities are checked
n_curves = 60  # > 0: instances drawn as curves against the threshold
n_gamma = 60  # > 1: thresholds per curve, log-spaced up to the largest component norm
cex_steps = 300  # > 0: steps of the counterexample runs
cex_lr = 0.1  # > 0: step size of the counterexample runs
cex_x0 = 3.0  # initial point of the counterexample runs
trend_min = 0.5  # in (0, 1): a relation counts when its whole rank-correlation interval is beyond this
n_spread = 13  # > 1: norm spreads per instance in the norm experiment
max_spread = 3.0  # > 0: the largest spread s of the log norms
level = 0.95  # in (0, 1): confidence level of every interval on this page

# %% tags=["hide-cell"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from clipcore.claims import decide
from clipcore.finite_sums import QianCounterexample
from clipcore.incremental_bias import (
    clipped_direction,
    correlation_check,
    direction_angle,
    norm_spread_angles,
    trend_check,
)
from clipcore.incremental_methods import clipped_full_batch_descent, clipped_incremental
from clipcore.pages import glue_claim, glue_number, glue_text, show_figure, show_table
from clipcore.plots import use_book_style
from clipcore.profiles import check_profile
from clipcore.runtime import seed_everything

check_profile(profile)
use_book_style()
rng = seed_everything(seed)


def random_instance(rng):
    """Random component gradients: two families, drawn with probabilities 2/3 and 1/3.

    (a) scattered around a common mean, with a random angle spread and log-normal norms;
    (b) a few large components along a direction u and many small ones roughly opposite to it:
    the shape of the counterexample below, where clipping the large ones can flip the direction.
    """
    n, dim = rng.integers(2, 40), rng.integers(2, 10)
    if rng.random() < 2 / 3:
        mu = rng.standard_normal(dim)
        spread = rng.uniform(0.05, 4.0)
        G = mu + spread * np.linalg.norm(mu) * rng.standard_normal((n, dim)) / np.sqrt(dim)
        return G * rng.lognormal(0.0, 1.5, (n, 1))
    u = rng.standard_normal(dim)
    u /= np.linalg.norm(u)
    k, m = rng.integers(1, 4), rng.integers(4, 40)
    big = rng.uniform(5, 50) * (u + 0.2 * rng.standard_normal((k, dim)) / np.sqrt(dim))
    small = rng.uniform(0.2, 1.0) * (-u + 0.7 * rng.standard_normal((m, dim)) / np.sqrt(dim))
    return np.concatenate([big, small])


# %% [markdown]
# ## The identities on random instances
#
# Each instance has 2 to 42 components in 2 to 9 dimensions, drawn from two families (see
# `random_instance`): gradients scattered around a common mean with log-normal norms, or a few
# large components against many small ones pointing the other way. The threshold is drawn
# between 5% and 120% of the largest component norm. Errors are relative to the scale
# $\sum_i\|\nabla f_i\|$ (squared for inner products). "Descent iff $\rho > 0$" is checked on
# the quadratic
# $F(x) = \sum_i \tfrac12\|x - c_i\|^2$ with $c_i = -\nabla f_i$, so the instance's gradients are
# those at $x = 0$: a tiny step along $-d$ must lower $F$ exactly when $\rho > 0$.

# %% tags=["hide-input"]
err = dict(bias=0.0, inner=0.0, perp=0.0, nobias=0.0)
descent_agree, n_descent_checked, n_reversed = True, 0, 0
kappa_ok, n_kappa = True, 0
for _ in range(n_instances):
    G = random_instance(rng)
    norms = np.linalg.norm(G, axis=1)
    gamma = rng.uniform(0.05, 1.2) * norms.max()
    r = clipped_direction(G, gamma)
    scale = norms.sum()
    C = r.clipped
    rhs = -((1 - gamma / norms[C])[:, None] * G[C]).sum(0)
    err["bias"] = max(err["bias"], np.linalg.norm(r.bias - rhs) / scale)
    nF = np.linalg.norm(r.full_grad)
    inner = nF * np.sum(np.minimum(norms, gamma) * r.cos)
    err["inner"] = max(err["inner"], abs(r.direction @ r.full_grad - inner) / scale**2)
    err["perp"] = max(err["perp"], abs(r.perp @ r.full_grad) / scale**2)
    r_top = clipped_direction(G, norms.max())
    err["nobias"] = max(err["nobias"], np.linalg.norm(r_top.direction - r_top.full_grad) / scale)
    if abs(r.rho) > 1e-8:
        F = lambda x: 0.5 * np.sum((x + G) ** 2)
        t = 1e-7 / max(1.0, np.linalg.norm(r.direction))
        descent_agree &= (F(-t * r.direction) < F(np.zeros(G.shape[1]))) == (r.rho > 0)
        n_descent_checked += 1
        n_reversed += r.rho < 0
    if r.kappa > 0:
        n_kappa += 1
        kappa_ok &= (
            r.direction @ r.full_grad >= (1 - 1e-12) * r.kappa * nF * np.minimum(norms, gamma).sum() > 0
        )

TOL = 1e-10
show_table(
    [
        dict(check="bias identity", n=n_instances, result=f"largest relative error {err['bias']:.1e}"),
        dict(
            check="inner-product identity", n=n_instances, result=f"largest relative error {err['inner']:.1e}"
        ),
        dict(
            check="$d_\\perp \\perp \\nabla F$",
            n=n_instances,
            result=f"largest relative error {err['perp']:.1e}",
        ),
        dict(
            check="no bias at the largest norm",
            n=n_instances,
            result=f"largest relative error {err['nobias']:.1e}",
        ),
        dict(
            check="descent iff $\\rho > 0$",
            n=n_descent_checked,
            result=("holds" if descent_agree else "fails") + f" ({n_reversed} with $\\rho < 0$)",
        ),
        dict(check="the $\\kappa$ bound", n=n_kappa, result="holds" if kappa_ok else "fails"),
    ],
    {"check": "identity", "n": "instances", "result": "result"},
    caption="The identities of claims C1 and C2 on random instances.",
)
ident_ok = max(err.values()) <= TOL
Q = dict(paper="qian2021", kind="identity", profile=profile)
glue_text("ib_n", f"{n_instances}")
glue_number("ib_err", max(err.values()))
glue_number("ib_tol", TOL)
glue_claim(
    "ib_identities",
    where="claim C1 (bias identities)",
    statement="d - grad F = -sum over the clipped set of (1 - gamma/|grad f_i|) grad f_i; <d, grad F> = "
    "|grad F| sum_i min(|grad f_i|, gamma) cos(theta_i); d_perp is orthogonal to grad F; no bias when gamma "
    ">= max_i |grad f_i| (to a relative error of 1e-10 on random instances)",
    status=decide(ident_ok),
    evidence={**err, "tol": TOL, "n_instances": n_instances},
    **Q,
)
glue_claim(
    "ib_descent",
    where="claim C1 (bias identities)",
    statement="The clipped direction d is a descent direction for F exactly when rho > 0",
    status=decide(descent_agree, testable=n_descent_checked > 0),
    evidence=dict(n_checked=n_descent_checked, n_reversed=n_reversed),
    **Q,
)
glue_text("ib_n_reversed", f"{n_reversed}")
glue_text("ib_n_descent", f"{n_descent_checked}")
glue_claim(
    "ib_kappa",
    where="claim C2 (the kappa bound)",
    statement="If cos(theta_i) >= kappa > 0 for all i, then <d, grad F> >= kappa |grad F| sum_i min(|grad f_i|, gamma) > 0",
    status=decide(kappa_ok, testable=n_kappa > 0),
    evidence=dict(n_instances=n_kappa),
    **Q,
)
_ = glue_text("ib_n_kappa", f"{n_kappa}")

# %% [markdown]
# **Identity checks.** These are algebra, proved by the tests; the page shows them on data.
# On {glue:md}`ib_n` random instances the bias identity, the inner-product identity,
# $d_\perp \perp \nabla F$ and "no bias at $\gamma = \max_i\|\nabla f_i\|$" are checked to a
# relative error of {glue:text}`ib_tol:.0e`: {glue:md}`ib_identities` (largest error
# {glue:text}`ib_err:.1e`). "A small step along $-d$ lowers $F$ exactly when $\rho > 0$",
# on {glue:md}`ib_n_descent` instances: {glue:md}`ib_descent`; {glue:md}`ib_n_reversed` of them
# have $\rho < 0$, where the clipped direction points *uphill*. The $\kappa$ lower bound, on the
# {glue:md}`ib_n_kappa` instances whose components all make an acute angle with $\nabla F$:
# {glue:md}`ib_kappa`.
#
# ## How the bias depends on the threshold and the angles
#
# Dividing the inner-product identity by $\|\nabla F\|\sum_i\min\{\|\nabla f_i\|, \gamma\}$
# gives a normalised multiplier that is a weighted mean of the cosines,
#
# $$
# \hat\rho(\gamma) = \frac{\rho\,\|\nabla F\|}{\sum_i \min\{\|\nabla f_i\|, \gamma\}}
# = \frac{\sum_i \min\{\|\nabla f_i\|, \gamma\}\cos\theta_i}{\sum_i \min\{\|\nabla f_i\|, \gamma\}},
# $$
#
# with weights $\min\{\|\nabla f_i\|, \gamma\}$. Without clipping the weights are the norms and
# $\hat\rho = \|\nabla F\|/\sum_i\|\nabla f_i\|$; once every component is clipped
# ($\gamma \le \min_i\|\nabla f_i\|$) they are equal and $\hat\rho = \bar c$, the *plain*
# mean of the $\cos\theta_i$. Clipping moves weight from the large components to the small
# ones: the bias is large exactly when the small components point elsewhere. Each curve below is
# one instance, swept over thresholds up to its largest component norm, coloured by $\bar c$.

# %% tags=["hide-input"]
ratios = np.geomspace(1e-3, 1.0, n_gamma)
curves = []
for _ in range(n_curves):
    G = random_instance(rng)
    norms = np.linalg.norm(G, axis=1)
    rs = [clipped_direction(G, q * norms.max()) for q in ratios]
    nF = np.linalg.norm(rs[0].full_grad)
    r_min = clipped_direction(G, norms.min())  # every component clipped (or at the threshold)
    curves.append(
        dict(
            cbar=np.mean(r_min.cos),
            kappa=rs[0].kappa,
            rho=np.array([r.rho for r in rs]),
            rho_n=np.array([r.rho * nF / np.minimum(norms, r.gamma).sum() for r in rs]),
            rho_n_min=r_min.rho * nF / (len(G) * norms.min()),
            rho_n_top=rs[-1].rho * nF / norms.sum(),
            cbar_w=nF / norms.sum(),
            bias=np.array([r.relative_bias for r in rs]),
            # angle between d and ∇F: the part of the bias that no step size can undo
            angle=direction_angle(G, ratios * norms.max()),
            # the thresholds between the smallest and the largest norm, where the clipped set changes
            inside=(ratios * norms.max() >= norms.min()) & (ratios <= 1.0),
            gammas=ratios * norms.max(),
            angle_all_clipped=float(direction_angle(G, norms.min())),
        )
    )

cmap = plt.get_cmap("viridis")
fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained")
for c in curves:
    col = cmap((c["cbar"] + 1) / 2)
    axes[0].semilogx(ratios, c["rho_n"], color=col, lw=1)
    axes[1].semilogx(ratios, c["bias"], color=col, lw=1)
    axes[2].semilogx(ratios, c["angle"], color=col, lw=1)
axes[0].axhline(0, color="k", lw=0.8)
axes[0].set_ylabel(r"$\hat\rho = \rho\,\|\nabla F\| / \sum_i \min\{\|\nabla f_i\|, \gamma\}$")
axes[1].set_ylabel(r"relative bias $\|d - \nabla F\| / \|\nabla F\|$")
axes[2].set_ylabel(r"angle between $d$ and $\nabla F$ (degrees)")
axes[2].axhline(90, color="k", lw=0.8)
for ax in axes:
    ax.set_xlabel(r"$\gamma / \max_i \|\nabla f_i\|$")
sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(-1, 1))
fig.colorbar(sm, ax=axes, label=r"plain mean cosine $\bar c$")
show_figure(
    "ib_curves",
    fig,
    pd.concat(
        [
            pd.DataFrame(
                dict(
                    curve=k,
                    mean_cos=c["cbar"],
                    gamma_over_max=ratios,
                    rho_hat=c["rho_n"],
                    rel_bias=c["bias"],
                    angle_deg=c["angle"],
                )
            )
            for k, c in enumerate(curves)
        ]
    ),
)

# %% [markdown]
# :::{glue:figure} ib_curves
# :name: fig-ib-curves
#
# Against the threshold $\gamma$ (relative to the largest component norm), for random
# instances coloured by their plain mean cosine $\bar c$: the normalised multiplier $\hat\rho$
# (left), the relative bias (middle) and the angle between $d$ and $\nabla F$ (right).
# {glue:md}`ib_curves_csv:myst`
# :::

# %% tags=["hide-cell"]
neg = [c for c in curves if np.any(c["rho"] < 0)]
acute = [c for c in curves if c["kappa"] > 0]
top_ok = all(abs(c["rho"][-1] - 1) < 1e-12 and c["bias"][-1] < 1e-12 for c in curves)
acute_ok = all(np.all(c["rho"] > 0) for c in acute)
neg_obtuse = all(c["kappa"] < 0 for c in neg)
ends_err = max(max(abs(c["rho_n_min"] - c["cbar"]), abs(c["rho_n_top"] - c["cbar_w"])) for c in curves)
bias_low = np.array([c["bias"][0] for c in curves])  # at the smallest threshold
bias_peak = max(c["bias"].max() for c in curves)
glue_claim(
    "ib_top",
    where="claim C1 (bias identities)",
    statement="At gamma = max_i |grad f_i| every curve has rho = 1 and no bias",
    status=decide(top_ok),
    evidence=dict(n_curves=len(curves)),
    **Q,
)
glue_claim(
    "ib_acute",
    where="claim C2 (the kappa bound)",
    statement="When every component makes an acute angle with grad F, rho stays positive at every threshold",
    status=decide(acute_ok, testable=bool(acute)),
    evidence=dict(n_acute=len(acute)),
    **Q,
)
glue_text("ib_n_acute", f"{len(acute)}")
glue_text("ib_n_curves", f"{len(curves)}")
glue_text("ib_n_neg", f"{len(neg)}")
glue_claim(
    "ib_neg_obtuse",
    where="claim C2 (the kappa bound)",
    statement="Every curve with rho < 0 at some threshold has a component at an obtuse angle to grad F",
    status=decide(neg_obtuse, testable=bool(neg)),
    evidence=dict(n_negative=len(neg)),
    **Q,
)
glue_number("ib_bias_low_min", bias_low.min())
glue_number("ib_bias_low_max", bias_low.max())
glue_number("ib_bias_peak", bias_peak)
_ = glue_number("ib_ends_err", ends_err)

# %% [markdown]
# Identity checks on the curves: "$\rho = 1$ and no bias at $\gamma = \max_i\|\nabla f_i\|$"
# {glue:md}`ib_top`. Below it the normalised multiplier (left) slides from the norm-weighted
# mean cosine to the plain mean $\bar c$ (both end points agree with the formula to
# {glue:text}`ib_ends_err:.1e`). Instances whose small components point away from $\nabla F$
# (dark) lose the most and can even reverse: {glue:md}`ib_n_neg` of the {glue:md}`ib_n_curves`
# curves have $\rho < 0$ at some threshold, and "each of them has a component at an obtuse angle
# to $\nabla F$" {glue:md}`ib_neg_obtuse`. For the {glue:md}`ib_n_acute` instances whose
# components all make acute angles with $\nabla F$, "the multiplier stays positive at every
# threshold" {glue:md}`ib_acute`, as the $\kappa$ bound guarantees.
#
# The relative bias (middle) is zero above the largest norm; at the smallest threshold it lies between {glue:text}`ib_bias_low_min:.2f` and {glue:text}`ib_bias_low_max:.2f`,
# close to 1 largely because $d$ gets *shorter* ($\|d\| \le n\gamma$): a loss of length that a
# larger step could undo. In between it peaks at {glue:text}`ib_bias_peak:.2f`; above 1, $d$ is
# farther from $\nabla F$ than the zero vector is. The angle between $d$ and $\nabla F$ (right;
# $\tan\angle = \|d_\perp\|/(\rho\|\nabla F\|)$) is the part that no step can undo; above
# 90° the direction points uphill.
#
# ## Claim C1 as measured relations
#
# The identities say *how* the bias is built; C1's claim is that it *depends* on the threshold,
# on the component norms and on their angles. Each dependence is a relation between two
# measured quantities, and each gets a criterion fixed before the numbers: the rank
# (Spearman) correlation must lie beyond $\pm$ {glue:text}`ib_trend_min:.2g` by its whole
# {glue:text}`ib_level_pct:.0f`% bootstrap interval (**holds**); an interval wholly on the other
# side **fails**; one that straddles the threshold is **inconclusive**. The measure of bias is
# the angle between $d$ and $\nabla F$ (`direction_angle`), the part no step size can undo.
#
# - *Threshold*: within each curve, the angle against $\gamma$ over the thresholds between the
#   smallest and the largest component norm, where the clipped set changes; the mean of the
#   per-curve correlations must be below $-$ {glue:text}`ib_trend_min:.2g` (the bias grows as
#   $\gamma$ drops).
# - *Angles*: across curves, the angle once every component is clipped
#   ($\gamma = \min_i\|\nabla f_i\|$) against the plain mean cosine $\bar c$; the correlation
#   must be below $-$ {glue:text}`ib_trend_min:.2g` (components spread in direction, more bias).
# - *Norms*: fix random directions $u_i$ and a log-norm profile $z_i$, and set
#   $\nabla f_i = e^{s z_i}u_i$ for {glue:text}`ib_n_spread:.0f` spreads $s$ from 0 to
#   {glue:text}`ib_max_spread:.2g`, clipped at the smallest norm (`norm_spread_angles`): $d$ is the
#   same for every s, while $\nabla F$ leans towards the large components. Within each instance
#   the angle against s; the mean correlation must be above {glue:text}`ib_trend_min:.2g` (unequal
#   norms, more bias). At s = 0 the norms are equal and there is no bias at all.

# %% tags=["hide-input"]
spreads = np.linspace(0.0, max_spread, n_spread)
spread_angles = []
for _ in range(n_curves):
    n, dim = rng.integers(2, 40), rng.integers(2, 10)
    mu = rng.standard_normal(dim)
    U = mu + rng.uniform(0.05, 4.0) * np.linalg.norm(mu) * rng.standard_normal((n, dim)) / np.sqrt(dim)
    spread_angles.append(norm_spread_angles(U, rng.standard_normal(n), spreads))
spread_angles = np.array(spread_angles)

tr = trend_check(
    [c["gammas"][c["inside"]] for c in curves],
    [c["angle"][c["inside"]] for c in curves],
    min_corr=trend_min,
    direction="decreasing",
    level=level,
    seed=seed,
)
an = correlation_check(
    [c["cbar"] for c in curves],
    [c["angle_all_clipped"] for c in curves],
    min_corr=trend_min,
    direction="decreasing",
    level=level,
    seed=seed,
)
nm = trend_check(
    [spreads] * len(spread_angles), list(spread_angles), min_corr=trend_min, level=level, seed=seed
)

fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
axes[0].scatter([c["cbar"] for c in curves], [c["angle_all_clipped"] for c in curves], s=10)
axes[0].set_xlabel(r"plain mean cosine $\bar c$")
axes[0].set_ylabel(r"angle between $d$ and $\nabla F$ at $\gamma = \min_i\|\nabla f_i\|$ (degrees)")
for a in spread_angles:
    axes[1].plot(spreads, a, color="C0", lw=0.8, alpha=0.5)
axes[1].plot(spreads, np.nanmedian(spread_angles, 0), "k-", lw=2, label="median")
axes[1].set_xlabel(r"spread $s$ of the log norms")
axes[1].set_ylabel("angle between $d$ and $\\nabla F$ (degrees)")
axes[1].legend(fontsize=8)
show_figure(
    "ib_angles",
    fig,
    pd.concat(
        [
            pd.DataFrame(
                dict(
                    panel="a",
                    mean_cos=[c["cbar"] for c in curves],
                    angle_deg=[c["angle_all_clipped"] for c in curves],
                )
            ),
            pd.DataFrame(
                [
                    dict(panel="b", instance=k, spread=s, angle_deg=a)
                    for k, row in enumerate(spread_angles)
                    for s, a in zip(spreads, row)
                ]
            ),
        ]
    ),
)
show_table(
    [
        dict(
            relation="angle falls as $\\gamma$ rises",
            statistic="mean per-curve $\\rho_s$",
            value=tr.mean,
            lo=tr.lo,
            hi=tr.hi,
            n=tr.n,
            status=tr.status,
        ),
        dict(
            relation="angle falls as $\\bar c$ rises",
            statistic="$\\rho_s$",
            value=an.rho,
            lo=an.lo,
            hi=an.hi,
            n=an.n,
            status=an.status,
        ),
        dict(
            relation="angle grows with the norm spread",
            statistic="mean per-instance $\\rho_s$",
            value=nm.mean,
            lo=nm.lo,
            hi=nm.hi,
            n=nm.n,
            status=nm.status,
        ),
    ],
    {
        "relation": "relation",
        "statistic": "statistic",
        "value": "value",
        "lo": "interval from",
        "hi": "to",
        "n": "curves",
        "status": "status",
    },
    formats={"value": ".3f", "lo": ".3f", "hi": ".3f"},
    caption=f"The three relations of claim C1, with {100 * level:.0f}% bootstrap intervals.",
)
C1 = dict(paper="qian2021", where="claim C1", profile=profile)
for key, chk in (("thr", tr), ("ang", an), ("nrm", nm)):
    for name in ("lo", "hi"):
        glue_number(f"ib_{key}_{name}", getattr(chk, name))
    glue_number(f"ib_{key}_rho", chk.mean if key != "ang" else chk.rho)
    glue_number(f"ib_{key}_n", chk.n)
glue_number("ib_trend_min", trend_min)
glue_number("ib_level_pct", 100 * level)
glue_number("ib_n_spread", n_spread)
glue_number("ib_max_spread", max_spread)
glue_claim(
    "ib_c1_threshold",
    statement="Clipping biases the direction more as the threshold drops below the component norms (the angle "
    "between d and grad F falls as gamma rises, within each instance)",
    status=tr.status,
    evidence=dict(mean_rho=tr.mean, lo=tr.lo, hi=tr.hi, n=tr.n, min_corr=trend_min),
    **C1,
)
glue_claim(
    "ib_c1_angles",
    statement="The bias depends on the angles: instances whose components are more spread in direction (a "
    "lower mean cosine to grad F) have a larger angle between d and grad F once all are clipped",
    status=an.status,
    evidence=dict(rho=an.rho, lo=an.lo, hi=an.hi, n=an.n, min_corr=trend_min),
    **C1,
)
_ = glue_claim(
    "ib_c1_norms",
    statement="The bias depends on the norms: with directions fixed, the more unequal the component norms, the "
    "larger the angle between d and grad F",
    status=nm.status,
    evidence=dict(mean_rho=nm.mean, lo=nm.lo, hi=nm.hi, n=nm.n, min_corr=trend_min),
    **C1,
)

# %% [markdown]
# **Verdicts (C1).** *Threshold*: {glue:md}`ib_c1_threshold`; the mean per-curve rank
# correlation between $\gamma$ and the angle is {glue:text}`ib_thr_rho:.2f`
# ({glue:text}`ib_thr_lo:.2f` to {glue:text}`ib_thr_hi:.2f`, {glue:text}`ib_thr_n:.0f` curves).
# *Angles* (left): {glue:md}`ib_c1_angles`; the rank correlation between $\bar c$ and the angle is
# {glue:text}`ib_ang_rho:.2f` ({glue:text}`ib_ang_lo:.2f` to {glue:text}`ib_ang_hi:.2f`,
# {glue:text}`ib_ang_n:.0f` curves). *Norms* (right): {glue:md}`ib_c1_norms`; the mean
# per-instance correlation between the spread and the angle is {glue:text}`ib_nrm_rho:.2f`
# ({glue:text}`ib_nrm_lo:.2f` to {glue:text}`ib_nrm_hi:.2f`, {glue:text}`ib_nrm_n:.0f` instances).
#
# ## The counterexample: stalling at a non-stationary point
#
# Take $f_1(x) = 10x + x^2/2$ and $f_2(x) = -x + x^2/2$ with $\gamma = 1$. Then
# $F'(x) = 9 + 2x$, so the minimiser is $x^* = -4.5$, but at $x = 0$ the components are $10$ and
# $-1$, clipped to $1$ and $-1$: $d(0) = 0$ while $F'(0) = 9$. In fact $d = 0$ on the whole
# interval $[-9, 0]$ and $d(x) = x$ on $[0, 2]$, so clipped full-batch descent
# $x \leftarrow x - \alpha d(x)$ started at $x_0 > 0$ converges to 0 and stops there. Below:
# that run, plain gradient descent on $F$ with the same step, and the cyclic clipped incremental
# method (one step per component).

# %% [markdown]
# :::{glue:figure} ib_angles
# :name: fig-ib-angles
#
# Left: the angle between $d$ and $\nabla F$ once every component is clipped, against the plain
# mean cosine of the instance. Right: with directions fixed, the angle against the spread $s$ of
# the log norms (one line per instance; black: the median). {glue:md}`ib_angles_csv:myst`
# :::

# %% tags=["hide-input"]
q = QianCounterexample()
x_clip = clipped_full_batch_descent(q, [cex_x0], gamma=1.0, lr=cex_lr, steps=cex_steps)[:, 0]
x_gd = clipped_full_batch_descent(q, [cex_x0], gamma=np.inf, lr=cex_lr, steps=cex_steps)[:, 0]
inc = clipped_incremental(q, [cex_x0], gamma=1.0, lr=cex_lr, order="cyclic", epochs=cex_steps)
x_inc = inc.x[0, 0]
Fp = lambda x: 9 + 2 * np.asarray(x)

xs = np.linspace(-12, 4, 801)
d_of_x = np.array([clipped_direction(q.example_grads(np.array([v])), 1.0).direction[0] for v in xs])
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
axes[0].plot(xs, Fp(xs), label=r"$F'(x) = 9 + 2x$")
axes[0].plot(xs, d_of_x, label=r"$d(x) = \mathrm{clip}_1(10 + x) + \mathrm{clip}_1(x - 1)$")
axes[0].axhline(0, color="k", lw=0.8)
axes[0].axvspan(-9, 0, color="C1", alpha=0.12, label="$d = 0$")
axes[0].set_xlabel("$x$")
axes[0].legend(fontsize=8)
t = np.arange(cex_steps + 1)
axes[1].plot(t, np.abs(Fp(x_clip)), label="clipped full-batch descent, $\\gamma = 1$")
axes[1].plot(t, np.abs(Fp(x_gd)), label="gradient descent on $F$")
axes[1].plot(inc.epochs, inc.grad_norm[0] * q.N, "--", label="clipped cyclic incremental, $\\gamma = 1$")
axes[1].set_yscale("log")
axes[1].set_xlabel("step (cycle for the incremental method)")
axes[1].set_ylabel("$|F'(x_t)|$")
axes[1].legend(fontsize=8)
fig.tight_layout()
show_figure(
    "ib_cex",
    fig,
    pd.concat(
        [
            pd.DataFrame(dict(panel="a", x=xs, F_prime=Fp(xs), d=d_of_x)),
            pd.DataFrame(
                dict(panel="b", t=t, clipped_abs_F_prime=np.abs(Fp(x_clip)), gd_abs_F_prime=np.abs(Fp(x_gd)))
            ),
            pd.DataFrame(dict(panel="b", t=inc.epochs, incremental_abs_F_prime=inc.grad_norm[0] * q.N)),
        ]
    ),
)

# %% [markdown]
# :::{glue:figure} ib_cex
# :name: fig-ib-cex
#
# The counterexample: left, $F'$ and the clipped direction $d$ against $x$ ($d = 0$ on the shaded
# interval, where $F' \ne 0$); right, $|F'|$ along clipped full-batch descent, gradient descent
# and the clipped cyclic incremental method. {glue:md}`ib_cex_csv:myst`
# :::

# %% tags=["hide-cell"]
d_final = clipped_direction(q.example_grads(np.array([x_clip[-1]])), 1.0)
CEX_TOL = (
    1e-5  # |d| and | |F'| - 9 | below this: stalled at the non-stationary zero of d; |F'| below it: converged
)
stall_ok = abs(d_final.direction[0]) < CEX_TOL and abs(abs(Fp(x_clip[-1])) - 9) < CEX_TOL
gd_ok = abs(Fp(x_gd[-1])) < CEX_TOL
INC_STALL = 8.0  # |F'| above this after the last cycle: stalled (the minimiser has F' = 0, the start 15)
inc_stall = abs(Fp(x_inc)) > INC_STALL
glue_number("ib_cex_x", x_clip[-1])
glue_number("ib_cex_Fp", Fp(x_clip[-1]))
glue_number("ib_cex_gd_x", x_gd[-1])
glue_number("ib_cex_inc_Fp", Fp(x_inc))
glue_number("ib_cex_tol", CEX_TOL)
glue_number("ib_cex_inc_min", INC_STALL)
glue_number("ib_cex_steps", cex_steps)
# The control: plain gradient descent with the same step must reach the minimiser, or the run is
# too short (or the step too large) to tell a stall from slow progress.
cex_common = dict(paper="qian2021", where="claim C1 (the counterexample)", profile=profile)
cex_ev = dict(x_end=x_clip[-1], Fp_end=Fp(x_clip[-1]), d_end=d_final.direction[0], gd_Fp_end=Fp(x_gd[-1]))
glue_claim(
    "ib_cex_stall",
    statement="On f1 = 10x + x^2/2, f2 = -x + x^2/2 with gamma = 1, clipped full-batch descent stalls where d = 0 "
    "at a non-stationary point (|F'| = 9), while gradient descent with the same step converges",
    status=decide(stall_ok, decidable=gd_ok),
    evidence=cex_ev,
    **cex_common,
)
_ = glue_claim(
    "ib_cex_inc",
    statement=f"On the same counterexample the clipped cyclic incremental method stalls too (|F'| > {INC_STALL:g} "
    "after the last cycle)",
    status=decide(inc_stall, decidable=gd_ok),
    evidence={**cex_ev, "inc_Fp_end": Fp(x_inc)},
    **cex_common,
)

# %% [markdown]
# **Verdict.** The criterion: after {glue:text}`ib_cex_steps:.0f` steps clipped full-batch
# descent has $|d| < $ {glue:text}`ib_cex_tol:.0e` and $|F'| = 9$ to the same tolerance, while
# gradient descent with the same step (the control) has $|F'| <$ {glue:text}`ib_cex_tol:.0e`; if
# the control fails, the run cannot tell a stall from slow progress and the verdict is
# inconclusive. The stall: {glue:md}`ib_cex_stall`. Clipped descent ends at
# $x$ = {glue:text}`ib_cex_x:.2g` with $F'(x)$ = {glue:text}`ib_cex_Fp:.6g`, where the clipped
# direction vanishes; gradient descent ends at $x$ = {glue:text}`ib_cex_gd_x:.6g`. The clipped
# cyclic incremental method, with the criterion $|F'| >$ {glue:text}`ib_cex_inc_min:.0f` after the last cycle:
# {glue:md}`ib_cex_inc` ($F'$ = {glue:text}`ib_cex_inc_Fp:.4g`). Small
# steps do not help: the fixed points of the clipped dynamics are the zeros of $d$, and here
# they are not zeros of $F'$. The next page asks when clipped incremental methods do converge,
# and how much bias is left with mini-batches.
