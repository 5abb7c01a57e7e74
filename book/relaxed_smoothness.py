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
# # Relaxed smoothness
#
# The standard assumption behind gradient-descent rates is **L-smoothness**,
# $\|\nabla f(x) - \nabla f(y)\| \le L\|x - y\|$, which for twice-differentiable $f$ means
# $\|\nabla^2 f(x)\| \le L$ everywhere. {cite:t}`zhang2020why` observe that along real
# training trajectories the local smoothness grows with the gradient norm, and relax the
# assumption:
#
# ```{admonition} Definition 1 ((L0, L1)-smoothness)
# A twice-differentiable $f$ is $(L_0, L_1)$-smooth if
# $\|\nabla^2 f(x)\| \le L_0 + L_1\|\nabla f(x)\|$ for all $x$.
# An L-smooth function is $(L, 0)$-smooth.
# ```
#
# **Lemma 2** says that every univariate polynomial of degree at least 3 is
# $(L_0, L_1)$-smooth for suitable constants but is not L-smooth. This page checks it in two
# ways. First, on **random polynomials** of several degrees with every lower-order term present,
# it finds the constants numerically and checks them where they were not fitted. Second, it
# checks the certified constants derived for this book for $x^3$, $x^4$ and $e^x$: for every
# $L_1 > 0$, $x^p$ is $(p((p-2)/L_1)^{p-2}, L_1)$-smooth (so $x^3$ is $(3/L_1, L_1)$-smooth and
# $x^4$ is $(16/L_1^2, L_1)$-smooth), and $e^{ax}$ is $(\delta, |a|)$-smooth for any $\delta > 0$
# because $f'' = a f'$. The constants and their proofs live in `clipcore.scalar_problems`.

# %% tags=["parameters"]
profile = "ci"  # smoke, ci or paper: the scale of every grid below (book/params.yml)
device = "auto"  # unused: this page runs on NumPy
seed = 0  # seeds the random polynomials
data_dir = None  # unused: no data set
results_dir = "results"  # unused: nothing is trained
n_grid = 200001  # > 1: grid points per function and grid
x_max = 20.0  # > 0: monomial grids span [-x_max, x_max] (e^x: [-x_max, x_max / 4], to stay in float range)
L1 = 1.0  # > 0: the L1 of every certificate
degrees = [3, 4, 5, 6]  # > 2: degrees of the random polynomials
n_poly = 20  # > 0: random polynomials per degree
coef_scale = 3.0  # > 0: standard deviation of the lower-order coefficients (the leading one is +1 or -1)
wide = 10.0  # > 1: the check grid spans this many times the fitting grid
rtol = 1e-3  # > 0: largest relative resolution of the fitting grid that can decide the check
growing_slope = 0.5  # > 0: the largest curvature on [-r, r] grows if its log-log slope in r is above this

# %% tags=["hide-cell"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from clipcore.claims import decide
from clipcore.pages import glue_claim, glue_number, show_figure, show_table
from clipcore.plots import thin, use_book_style
from clipcore.polynomials import envelope_check, max_curvature, random_polynomial
from clipcore.profiles import check_profile
from clipcore.runtime import seed_everything
from clipcore.scalar_problems import Exponential, Power, max_envelope_ratio
from clipcore.stats import loglog_slope

check_profile(profile)
use_book_style()
rng = seed_everything(seed)
TOL = 1e-12  # relative: floating-point rounding, where a bound is met with equality

# %% [markdown]
# ## Random polynomials: constants found on one grid, checked on a wider one
#
# Each polynomial $f(x) = \pm x^n + \sum_{k<n} c_kx^k$ has independent normal $c_k$ of standard
# deviation `coef_scale`. For the fixed $L_1$, the least $L_0$ is $\max_x(|f''| - L_1|f'|)$: the
# height of the envelope of $|f''|$ against $|f'|$. It is read off a grid of `n_grid` points on
# $[-R, R]$, where $R$ is a Cauchy bound on the real roots of $f'$, $f''$ and
# $f^{(3)} \pm L_1f''$, so that the maximiser lies inside (`Polynomial.critical_radius`). The
# grid can miss the maximum between two points by at most the local slope of $|f''| - L_1|f'|$
# times half a spacing; adding that gives a safe constant $L_0^+$, and the relative gap between
# the two is the grid's **resolution** (`clipcore.polynomials.envelope_check`). The constant
# $L_0^+$ is then checked on a grid `wide` times wider, where it was not fitted: there
# $|f''|/(L_0^+ + L_1|f'|)$ must stay at most 1 (up to {glue:text}`rs_tol:.0e` relatively, for
# rounding). As an independent estimate, $L_0$ is also computed exactly from the roots of those
# polynomials (`Polynomial.L0`): it must lie between the grid's maximum and $L_0^+$. A
# resolution above `rtol` = {glue:text}`rs_rtol:.0e` (a grid too coarse) leaves the check
# inconclusive. The polynomial is not L-smooth if the largest $|f''|$ on $[-r, r]$ keeps growing with $r$: its
# log–log slope over $r \in [R, wR]$ should be close to $n - 2 \ge 1$.

# %% tags=["hide-input"]
polys = [random_polynomial(rng, d, L1, coef_scale) for d in degrees for _ in range(n_poly)]
rows = []
for p in polys:
    R = p.critical_radius()
    e = envelope_check(p, R, wide, n_grid)
    radii = np.geomspace(R, wide * R, 12)
    slope = loglog_slope(radii, max_curvature(p, radii, 4001))
    L0_roots = p.L0
    rows.append(
        dict(
            degree=p.degree,
            R=R,
            L0=e["L0_upper"],
            ratio=e["max_ratio_wide"],
            resolution=e["resolution"],
            bracket=e["L0"] * (1 - TOL) <= L0_roots <= e["L0_upper"] * (1 + TOL),
            agree=abs(e["L0_upper"] - L0_roots) / L0_roots if L0_roots > 0 else e["L0_upper"],
            slope=slope,
            dev=abs(slope - (p.degree - 2)) / (p.degree - 2),
        )
    )
col = {k: np.array([r[k] for r in rows]) for k in rows[0]}


# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(7, 4.2))
curves = []
for d in degrees:
    i = int(np.flatnonzero(col["degree"] == d)[0])
    p, R = polys[i], col["R"][i]
    x = np.linspace(-wide * R, wide * R, 4001)
    g, h = np.abs(p.grad(x)), np.abs(p.hess(x))
    o = np.argsort(g)
    (line,) = ax.loglog(g[o], h[o], ".", ms=2, label=f"degree {d}")
    ax.loglog(g[o], col["L0"][i] + L1 * g[o], "--", lw=1, color=line.get_color())
    curves.append(
        pd.DataFrame(dict(degree=d, abs_grad=g[o], abs_hess=h[o], envelope=col["L0"][i] + L1 * g[o]))
    )
ax.set_xlabel("$|f'(x)|$")
ax.set_ylabel("$|f''(x)|$")
ax.legend()
show_figure("rs_poly_envelopes", fig, pd.concat(curves))

fig, axes = plt.subplots(1, 2, figsize=(10, 4))
jitter = rng.uniform(-0.15, 0.15, len(polys))
margin = np.maximum(1 - col["ratio"], 1e-16)
axes[0].semilogy(col["degree"] + jitter, margin, "o", ms=4)
axes[0].set_xlabel("degree")
axes[0].set_ylabel(r"$1 - \max |f''|/(L_0 + L_1|f'|)$")
axes[0].set_title("(a) margin where the envelope was not fitted")
axes[1].plot(col["degree"] + jitter, col["slope"], "o", ms=4)
axes[1].plot(degrees, np.asarray(degrees) - 2, "k_", ms=20, mew=2, label="$n - 2$")
axes[1].axhline(growing_slope, color="grey", ls=":", label="growth threshold")
axes[1].set_xlabel("degree $n$")
axes[1].set_ylabel(r"slope of $\max_{|x| \leq r}|f''|$ in $r$")
axes[1].set_title("(b) growth of the curvature")
axes[1].legend()
fig.tight_layout()
checks = pd.DataFrame(
    dict(
        degree=col["degree"],
        L0_upper=col["L0"],
        max_ratio_wide=col["ratio"],
        margin=margin,
        slope=col["slope"],
    )
)
show_figure("rs_poly_checks", fig, checks)

# %% tags=["remove-input"]
by_degree = []
for d in degrees:
    m = col["degree"] == d
    by_degree.append(
        dict(
            degree=d,
            n=int(m.sum()),
            ratio=col["ratio"][m].max(),
            res=col["resolution"][m].max(),
            agree=col["agree"][m].max(),
            bracket=bool(col["bracket"][m].all()),
            slope=col["slope"][m].min(),
        )
    )
show_table(
    by_degree,
    {
        "degree": "degree",
        "n": "polynomials",
        "ratio": "max ratio on the wide grid",
        "res": "worst resolution",
        "agree": "max $|L_0^+ - L_0|/L_0$",
        "bracket": "exact $L_0$ bracketed",
        "slope": "min curvature slope",
    },
    formats={"ratio": ".9f", "res": ".1e", "agree": ".1e", "slope": ".2f"},
    caption="Random polynomials by degree: the fitted envelope checked where it was not fitted, "
    "against the exact $L_0$, and the growth of the largest curvature.",
)

# %% tags=["hide-cell"]
glue_number("rs_rtol", rtol)
glue_number("rs_n_poly", len(polys))
glue_number("rs_deg_min", min(degrees))
glue_number("rs_deg_max", max(degrees))
glue_number("rs_wide", wide)
glue_number("rs_L1", L1)
worst_ratio = float(col["ratio"].max())
worst_agree = float(col["agree"].max())
glue_number("rs_poly_ratio", worst_ratio)
glue_number("rs_poly_agree", worst_agree)
worst_res = float(col["resolution"].max())
glue_number("rs_poly_res", worst_res)
bracketed = bool(col["bracket"].all())
glue_number("rs_L0_min", col["L0"].min())
glue_number("rs_L0_max", col["L0"].max())
env_ok = worst_ratio <= 1 + TOL and bracketed
glue_claim(
    "rs_lemma2_envelope",
    paper="zhang2020",
    where="Lemma 2",
    statement="a univariate polynomial of degree >= 3 is (L0, L1)-smooth for some constants: constants found "
    "on one grid hold on a wider grid (random polynomials of several degrees, with lower-order terms)",
    status=decide(env_ok, decidable=not env_ok or worst_res <= rtol),
    evidence={
        "n_polynomials": len(polys),
        "max_resolution": worst_res,
        "roots_bracketed": bracketed,
        "degrees": list(degrees),
        "L1": L1,
        "max_ratio_wide": worst_ratio,
        "max_rel_L0_gap_to_roots": worst_agree,
        "rtol": rtol,
        "tol": TOL,
        "wide": wide,
    },
    profile=profile,
)
min_slope = float(col["slope"].min())
glue_number("rs_poly_slope_min", min_slope)
glue_number("rs_poly_slope_dev", float(col["dev"].max()))
glue_number("rs_growing", growing_slope)
glue_claim(
    "rs_lemma2_not_L_smooth",
    paper="zhang2020",
    where="Lemma 2",
    statement="a univariate polynomial of degree >= 3 is not L-smooth: the largest |f''| on [-r, r] grows "
    f"with r (log-log slope above {growing_slope:g}) for every random polynomial",
    status=decide(min_slope > growing_slope),
    evidence={"min_slope": min_slope, "max_rel_deviation_from_n_minus_2": float(col["dev"].max())},
    profile=profile,
)

# %% [markdown]
# :::{glue:figure} rs_poly_envelopes
# :name: fig-rs-poly-envelopes
#
# $|f''|$ against $|f'|$ for one random polynomial of each degree (dots), over the wide check
# grid, with its fitted envelope $L_0^+ + L_1|f'|$ (dashed). {glue:md}`rs_poly_envelopes_csv:myst`
# :::
#
# :::{glue:figure} rs_poly_checks
# :name: fig-rs-poly-checks
#
# Every random polynomial: (a) how far below the envelope the curvature stays on the grid
# {glue:text}`rs_wide:.0f` times wider than the fitting grid (a margin of $10^{-16}$ means the
# envelope is touched); (b) the log–log slope of the largest curvature on $[-r, r]$, against
# $n - 2$. {glue:md}`rs_poly_checks_csv:myst`
# :::
#
# **Random polynomials.** For {glue:text}`rs_n_poly:.0f` polynomials of degrees
# {glue:text}`rs_deg_min:.0f` to {glue:text}`rs_deg_max:.0f` ($L_1 =$ {glue:text}`rs_L1:.3g`; the
# fitted $L_0^+$ ranges from {glue:text}`rs_L0_min:.3g` to {glue:text}`rs_L0_max:.3g`), the largest
# ratio $|f''|/(L_0^+ + L_1|f'|)$ on the grid {glue:text}`rs_wide:.0f` times wider than the
# fitting grid is {glue:text}`rs_poly_ratio:.12f`; the grids' resolution is at most
# {glue:text}`rs_poly_res:.1e` (allowed: {glue:text}`rs_rtol:.0e`), and $L_0^+$ exceeds the
# exact $L_0$ from the roots by at most {glue:text}`rs_poly_agree:.1e` relatively
# ({numref}`fig-rs-poly-envelopes` and {numref}`fig-rs-poly-checks`). So the first half of
# Lemma 2, $(L_0, L_1)$-smoothness, {glue:md}`rs_lemma2_envelope`. The
# second half, no single $L$, {glue:md}`rs_lemma2_not_L_smooth`: the largest curvature on
# $[-r, r]$ grows with log–log slope at least {glue:text}`rs_poly_slope_min:.2f` (threshold
# {glue:text}`rs_growing:.2g`), within {glue:text}`rs_poly_slope_dev:.0%` of $n - 2$ for every
# polynomial (over $[R, wR]$ the lower-order terms still bend the curve).
#
# ## The certified constants: $|f''|$ against $|f'|$
#
# {numref}`fig-rs-certified` traces each function over its grid against its certified envelope.

# %% tags=["hide-input"]
problems = [Power(3, L1), Power(4, L1), Exponential(1.0, delta=1e-3)]
grids = {
    "x^3": np.linspace(0.0, x_max, n_grid),  # x^3 is odd: |f'| and |f''| are even in x
    "x^4": np.linspace(-x_max, x_max, n_grid),
    "e^x": np.linspace(-x_max, x_max / 4, n_grid),
}
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
ratios, curves = {}, []
for ax, prob in zip(axes, problems):
    x = grids[prob.name]
    g, h = np.abs(prob.grad(x)), np.abs(prob.hess(x))
    order = np.argsort(g)[thin(len(x))]  # every point is checked below; about 2000 are drawn
    ax.loglog(g[order], h[order], lw=2, label="$|f''|$")
    ax.loglog(g[order], prob.envelope(g[order]), "k--", label="$L_0 + L_1|f'|$")
    ax.set_xlabel("$|f'(x)|$")
    ax.set_ylabel("$|f''(x)|$")
    ax.set_title(f"${prob.name}$: $(L_0, L_1) = ({prob.L0:.3g}, {prob.L1:.3g})$")
    ax.legend()
    ratios[prob.name] = max_envelope_ratio(prob, x)
    curves.append(
        pd.DataFrame(
            dict(function=prob.name, abs_grad=g[order], abs_hess=h[order], envelope=prob.envelope(g[order]))
        )
    )
fig.tight_layout()
show_figure("rs_certified", fig, pd.concat(curves))

# %% [markdown]
# :::{glue:figure} rs_certified
# :name: fig-rs-certified
#
# $|f''|$ against $|f'|$ over the grid (solid) and the certified envelope $L_0 + L_1|f'|$
# (dashed): below the envelope, Definition 1 holds at that point.
# {glue:md}`rs_certified_csv:myst`
# :::
#
# %% [markdown]
# The largest ratio $|f''| / (L_0 + L_1|f'|)$ over the grid is what certifies the constants (a
# value at most 1, allowing {glue:text}`rs_tol:.0e` relatively for rounding where the bound is
# tight):

# %% tags=["remove-input"]
show_table(
    [dict(f=f"${p.name}$", L0=p.L0, L1=p.L1, ratio=ratios[p.name]) for p in problems],
    {"f": "function", "L0": "$L_0$", "L1": "$L_1$", "ratio": "max $|f''|/(L_0 + L_1|f'|)$"},
    formats={"L0": ".4g", "L1": ".4g", "ratio": ".12f"},
    caption="The certified constants and the largest ratio over the grid.",
)

# %% tags=["hide-cell"]
glue_number("rs_tol", TOL)
glue_number("rs_ratio_x3", ratios["x^3"])
glue_number("rs_ratio_x4", ratios["x^4"])
glue_number("rs_ratio_exp", ratios["e^x"])
glue_claim(
    "rs_certified_constants",
    paper="zhang2020",
    where="Lemma 2 (the book's certified constants)",
    statement="x^p is (p((p-2)/L1)^(p-2), L1)-smooth and e^x is (delta, 1)-smooth, on a dense grid",
    status=decide(all(r <= 1 + TOL for r in ratios.values())),
    evidence={"max_ratio": dict(ratios), "tol": TOL},
    kind="identity",
    profile=profile,
)

# %% [markdown]
# The largest ratios are {glue:text}`rs_ratio_x3:.6f` for $x^3$, {glue:text}`rs_ratio_x4:.6f`
# for $x^4$ and {glue:text}`rs_ratio_exp:.6f` for $e^x$: this identity check (the constants are
# proved in `clipcore.scalar_problems`) {glue:md}`rs_certified_constants`. For $x^p$ the ratio
# reaches 1 at $|x| = (p-2)/L_1$, where the certificate is tight; for $e^x$ it approaches 1 as
# $x$ grows, since $f'' = f'$ exactly.
#
# ## No single L works
#
# An L-smooth function has $|f''| \le L$ everywhere. The largest curvature on $[-R, R]$
# keeps growing with $R$ for all three functions ({numref}`fig-rs-no-L`), so no finite $L$
# bounds them.

# %% tags=["hide-input"]
R = np.logspace(0, np.log10(x_max), 25)
fig, ax = plt.subplots(figsize=(6, 4))
slopes, sups = {}, {}
for prob in problems:
    sups[prob.name] = max_curvature(prob, R, 4001)
    ax.loglog(R, sups[prob.name], marker=".", label=f"${prob.name}$")
    slopes[prob.name] = loglog_slope(R[len(R) // 2 :], sups[prob.name][len(R) // 2 :])
ax.set_xlabel("$R$")
ax.set_ylabel(r"$\max_{|x| \leq R} |f''(x)|$")
ax.legend()
fig.tight_layout()
show_figure("rs_no_L", fig, pd.DataFrame(dict(R=R, **{f"max_hess_{k}": v for k, v in sups.items()})))
glue_number("rs_slope_x3", slopes["x^3"])
_ = glue_number("rs_slope_x4", slopes["x^4"])

# %% [markdown]
# :::{glue:figure} rs_no_L
# :name: fig-rs-no-L
#
# The largest curvature on $[-R, R]$ keeps growing with $R$: no finite $L$ bounds it.
# {glue:md}`rs_no_L_csv:myst`
# :::
#
# %% [markdown]
# On the upper half of the range the log–log slope in $R$ is {glue:text}`rs_slope_x3:.2f` for
# $x^3$ (theory: 1) and {glue:text}`rs_slope_x4:.2f` for $x^4$ (theory: 2), and the growth is
# exponential for $e^x$. These functions are therefore $(L_0, L_1)$-smooth but not L-smooth, as
# Lemma 2 states; the next page shows what this means for the speed of gradient descent with and
# without clipping.
