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
# $\|\nabla^2 f(x)\| \le L$ everywhere. Zhang et al. (ICLR 2020) observe that along real
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
# $(L_0, L_1)$-smooth for suitable constants but is not L-smooth. This page checks certified
# constants for $x^3$, $x^4$ and $e^x$ on a dense grid: for every $L_1 > 0$, $x^p$ is
# $(p((p-2)/L_1)^{p-2}, L_1)$-smooth (so $x^3$ is $(3/L_1, L_1)$-smooth and $x^4$ is
# $(16/L_1^2, L_1)$-smooth), and $e^{ax}$ is $(\delta, |a|)$-smooth for any $\delta > 0$ because
# $f'' = a f'$. The constants and their proofs live in `clipcore.scalar_problems`.

# %% tags=["parameters"]
profile = "ci"
device = "auto"
seed = 0
data_dir = None
results_dir = "results"
n_grid = 200001  # > 1: grid points per function
x_max = 20.0  # > 0: grid spans [-x_max, x_max] (e^x: [-x_max, x_max / 4], to stay in float range)
L1 = 1.0  # > 0: the L1 used for the polynomial certificates

# %%
import matplotlib.pyplot as plt
import numpy as np

from clipcore.pages import glue_number, glue_verdict
from clipcore.profiles import check_profile
from clipcore.runtime import seed_everything
from clipcore.scalar_problems import Exponential, Power, max_envelope_ratio
from clipcore.stats import loglog_slope

check_profile(profile)
seed_everything(seed)
problems = [Power(3, L1), Power(4, L1), Exponential(1.0, delta=1e-3)]
grids = {
    "x^3": np.linspace(0.0, x_max, n_grid),  # x^3 is odd: |f'| and |f''| are even in x
    "x^4": np.linspace(-x_max, x_max, n_grid),
    "e^x": np.linspace(-x_max, x_max / 4, n_grid),
}

# %% [markdown]
# ## $|f''|$ against $|f'|$
#
# Each curve is traced over the grid; the dashed line is the certified envelope
# $L_0 + L_1|f'|$. Below the envelope means Definition 1 holds at that point.

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 4))
ratios = {}
for ax, prob in zip(axes, problems):
    x = grids[prob.name]
    g, h = np.abs(prob.grad(x)), np.abs(prob.hess(x))
    order = np.argsort(g)
    ax.loglog(g[order], h[order], lw=2, label=f"$|f''|$ of ${prob.name}$")
    ax.loglog(
        g[order],
        prob.envelope(g[order]),
        "k--",
        label=f"$L_0 + L_1|f'|$, $(L_0, L_1) = ({prob.L0:.3g}, {prob.L1:.3g})$",
    )
    ax.set_xlabel("$|f'(x)|$")
    ax.set_ylabel("$|f''(x)|$")
    ax.set_title(f"${prob.name}$")
    ax.legend(fontsize=8)
    ratios[prob.name] = max_envelope_ratio(prob, x)
fig.tight_layout()
plt.show()

# %% [markdown]
# The largest ratio $|f''| / (L_0 + L_1|f'|)$ over the grid is what certifies the
# constants (a value at most 1, allowing {glue:text}`rs_tol:.0e` for rounding where the bound is tight):

# %%
TOL = 1e-12
for prob in problems:
    print(f"{prob.name}: L0 = {prob.L0:.4g}, L1 = {prob.L1:.4g}, max ratio = {ratios[prob.name]:.12f}")
glue_number("rs_tol", TOL)
glue_number("rs_ratio_x3", ratios["x^3"])
glue_number("rs_ratio_x4", ratios["x^4"])
glue_number("rs_ratio_exp", ratios["e^x"])
all_hold = all(r <= 1 + TOL for r in ratios.values())
glue_verdict(
    "rs_verdict",
    all_hold,
    "holds at every grid point for all three functions",
    "is violated on the grid: the certified constants are wrong",
)

# %% [markdown]
# **Verdict.** The largest ratios are {glue:text}`rs_ratio_x3:.6f` for $x^3$,
# {glue:text}`rs_ratio_x4:.6f` for $x^4$ and {glue:text}`rs_ratio_exp:.6f` for $e^x$: the
# $(L_0, L_1)$ bound {glue:md}`rs_verdict`. For $x^p$ the ratio reaches 1 at
# $|x| = (p-2)/L_1$, where the certificate is tight; for $e^x$ it approaches 1 as $x$ grows,
# since $f'' = f'$ exactly.
#
# ## No single L works
#
# An L-smooth function has $|f''| \le L$ everywhere. The largest curvature on $[-R, R]$
# keeps growing with $R$ for all three functions, so no finite $L$ bounds them:

# %%
R = np.logspace(0, np.log10(x_max), 25)
fig, ax = plt.subplots(figsize=(5.5, 4))
slopes = {}
for prob in problems:
    sup_h = np.array([np.max(np.abs(prob.hess(np.linspace(-r, r, 4001)))) for r in R])
    ax.loglog(R, sup_h, marker=".", label=f"${prob.name}$")
    slopes[prob.name] = loglog_slope(R[len(R) // 2 :], sup_h[len(R) // 2 :])
ax.set_xlabel("$R$")
ax.set_ylabel(r"$\max_{|x| \leq R} |f''(x)|$")
ax.legend()
fig.tight_layout()
plt.show()
glue_number("rs_slope_x3", slopes["x^3"])
glue_number("rs_slope_x4", slopes["x^4"])
grows = all(s > 0.5 for s in slopes.values())
glue_verdict("rs_unbounded", grows, "grows without bound", "does not grow: check the grid")

# %% [markdown]
# The maximal curvature {glue:md}`rs_unbounded`: on the upper half of the range its
# log–log slope in $R$ is {glue:text}`rs_slope_x3:.2f` for $x^3$ (theory: 1) and
# {glue:text}`rs_slope_x4:.2f` for $x^4$ (theory: 2), and it is exponential for $e^x$.
# These functions are therefore $(L_0, L_1)$-smooth but not L-smooth, as Lemma 2 states; the
# next page shows what this means for the speed of gradient descent with and without clipping.
