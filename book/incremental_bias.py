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
# Qian, Wu, Zhuang, Wang and Xiao (AISTATS 2021) study clipping inside **incremental gradient
# methods** for a finite sum $F = \sum_{i=1}^n f_i$: one cycle applies
# $x \leftarrow x - \alpha\,\mathrm{clip}_\gamma(\nabla f_i(x))$ for each component in turn, with
# $\mathrm{clip}_\gamma(g) = \min\{1, \gamma/\|g\|\}\,g$. Their first claim (C1) is that clipping
# the *components* biases the descent direction, and that the bias depends on the threshold, on
# the component-gradient norms and on their angles to the full gradient.
#
# To first order in $\alpha$ a cycle moves along
# $d(x) = \sum_i \mathrm{clip}_\gamma(\nabla f_i(x))$. With the clipped set
# $C = \{i : \|\nabla f_i\| > \gamma\}$ and $\theta_i$ the angle between $\nabla f_i$ and
# $\nabla F$, two identities (derived for this book, proved by `tests/test_incremental.py`) make
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
profile = "ci"
device = "auto"
seed = 0
data_dir = None
results_dir = "results"
n_instances = 2000  # > 0: random instances on which the identities are checked
n_curves = 60  # > 0: instances drawn as curves against the threshold
n_gamma = 60  # > 1: thresholds per curve, log-spaced up to the largest component norm
cex_steps = 300  # > 0: steps of the counterexample runs
cex_lr = 0.1  # > 0: step size of the counterexample runs
cex_x0 = 3.0  # initial point of the counterexample runs

# %%
import matplotlib.pyplot as plt
import numpy as np

from clipcore.finite_sums import QianCounterexample
from clipcore.incremental_bias import clipped_direction
from clipcore.incremental_methods import clipped_full_batch_descent, clipped_incremental
from clipcore.pages import glue_number, glue_text, glue_verdict
from clipcore.profiles import check_profile
from clipcore.runtime import seed_everything

check_profile(profile)
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

# %%
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
print(
    f"{n_instances} instances; largest relative errors: " + ", ".join(f"{k} {v:.1e}" for k, v in err.items())
)
print(f"descent iff rho > 0 on {n_descent_checked} instances: {descent_agree} ({n_reversed} with rho < 0)")
print(f"kappa bound on the {n_kappa} instances with kappa > 0: {kappa_ok}")
ident_ok = max(err.values()) <= TOL
glue_text("ib_n", f"{n_instances}")
glue_number("ib_err", max(err.values()))
glue_verdict(
    "ib_identities",
    ident_ok,
    f"hold to within {TOL:.0e} on every instance",
    f"fail the {TOL:.0e} tolerance on some instance",
)
glue_verdict(
    "ib_descent",
    descent_agree,
    "agrees with the sign of ρ on every instance",
    "disagrees with the sign of ρ on some instance",
)
glue_text("ib_n_reversed", f"{n_reversed}")
glue_text("ib_n_descent", f"{n_descent_checked}")
glue_verdict("ib_kappa", kappa_ok, "holds on all of them", "fails on some of them")
_ = glue_text("ib_n_kappa", f"{n_kappa}")

# %% [markdown]
# **Verdict.** On {glue:md}`ib_n` random instances the bias identity, the inner-product
# identity, $d_\perp \perp \nabla F$ and "no bias at $\gamma = \max_i\|\nabla f_i\|$"
# {glue:md}`ib_identities` (largest relative error {glue:text}`ib_err:.1e`). Whether a small step
# along $-d$ lowers $F$ {glue:md}`ib_descent` ({glue:md}`ib_n_descent` instances checked);
# {glue:md}`ib_n_reversed` of them have $\rho < 0$, where the clipped direction points *uphill*.
# The $\kappa$ lower bound, on the {glue:md}`ib_n_kappa` instances whose components all make an
# acute angle with $\nabla F$, {glue:md}`ib_kappa`.
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

# %%
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
            angle=np.array([np.degrees(np.arctan2(np.linalg.norm(r.perp), r.rho * nF)) for r in rs]),
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
plt.show()

# %%
neg = [c for c in curves if np.any(c["rho"] < 0)]
acute = [c for c in curves if c["kappa"] > 0]
top_ok = all(abs(c["rho"][-1] - 1) < 1e-12 and c["bias"][-1] < 1e-12 for c in curves)
acute_ok = all(np.all(c["rho"] > 0) for c in acute)
neg_obtuse = all(c["kappa"] < 0 for c in neg)
ends_err = max(max(abs(c["rho_n_min"] - c["cbar"]), abs(c["rho_n_top"] - c["cbar_w"])) for c in curves)
bias_low = np.array([c["bias"][0] for c in curves])  # at the smallest threshold
bias_peak = max(c["bias"].max() for c in curves)
print(
    f"rho = 1 and no bias at the largest norm: {top_ok}; rho > 0 throughout for the {len(acute)} "
    f"acute instances: {acute_ok}; {len(neg)} instances with rho < 0 somewhere, all with an obtuse "
    f"component: {neg_obtuse}; end points of the normalised multiplier off by at most {ends_err:.1e}"
)
glue_verdict(
    "ib_top",
    top_ok,
    "every curve reaches ρ = 1 with zero bias",
    "some curve does not reach ρ = 1 with zero bias",
)
glue_verdict("ib_acute", acute_ok, "stays positive for every threshold", "turns negative for some threshold")
glue_text("ib_n_acute", f"{len(acute)}")
glue_text("ib_n_curves", f"{len(curves)}")
glue_text("ib_n_neg", f"{len(neg)}")
glue_verdict(
    "ib_neg_obtuse",
    neg_obtuse,
    "each of them has a component at an obtuse angle to ∇F",
    "some of them have all components at acute angles (a contradiction of the κ bound)",
)
glue_number("ib_bias_low_min", bias_low.min())
glue_number("ib_bias_low_max", bias_low.max())
glue_number("ib_bias_peak", bias_peak)
_ = glue_number("ib_ends_err", ends_err)

# %% [markdown]
# At $\gamma = \max_i\|\nabla f_i\|$ {glue:md}`ib_top`. Below it the normalised multiplier
# (left) slides from the norm-weighted mean cosine to the plain mean $\bar c$ (both end points
# agree with the formula to {glue:text}`ib_ends_err:.1e`). Instances whose small components
# point away from $\nabla F$ (dark) lose the most and can even reverse:
# {glue:md}`ib_n_neg` of the {glue:md}`ib_n_curves` curves have $\rho < 0$ at some threshold, and
# {glue:md}`ib_neg_obtuse`. For the {glue:md}`ib_n_acute` instances whose components all make
# acute angles with $\nabla F$ the multiplier {glue:md}`ib_acute`, as the $\kappa$ bound
# guarantees. The relative bias (middle) is zero above the largest norm; at the smallest
# threshold it lies between {glue:text}`ib_bias_low_min:.2f` and {glue:text}`ib_bias_low_max:.2f`,
# close to 1 largely because $d$ gets *shorter* ($\|d\| \le n\gamma$): a loss of length that a
# larger step could undo. In between it peaks at {glue:text}`ib_bias_peak:.2f`; above 1, $d$ is
# farther from $\nabla F$ than the zero vector is. The angle between $d$ and $\nabla F$ (right;
# $\tan\angle = \|d_\perp\|/(\rho\|\nabla F\|)$) is the part that no step can undo; above
# 90° the direction points uphill.
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

# %%
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
plt.show()

# %%
d_final = clipped_direction(q.example_grads(np.array([x_clip[-1]])), 1.0)
stall_ok = abs(d_final.direction[0]) < 1e-5 and abs(abs(Fp(x_clip[-1])) - 9) < 1e-5
gd_ok = abs(Fp(x_gd[-1])) < 1e-5
inc_stall = abs(Fp(x_inc)) > 8
print(
    f"clipped: x = {x_clip[-1]:.3e}, F' = {Fp(x_clip[-1]):.6f}, d = {d_final.direction[0]:.1e}; "
    f"GD: x = {x_gd[-1]:.6f}, F' = {Fp(x_gd[-1]):.1e}; cyclic incremental: x = {x_inc:.4f}, F' = {Fp(x_inc):.4f}"
)
glue_number("ib_cex_x", x_clip[-1])
glue_number("ib_cex_Fp", Fp(x_clip[-1]))
glue_number("ib_cex_gd_x", x_gd[-1])
glue_number("ib_cex_inc_Fp", Fp(x_inc))
glue_verdict(
    "ib_cex_stall", stall_ok, "stalls at a non-stationary point with |F'| = 9", "does not stall with |F'| = 9"
)
glue_verdict("ib_cex_gd", gd_ok, "converges to the minimiser", "does not converge to the minimiser")
_ = glue_verdict("ib_cex_inc", inc_stall, "stalls as well", "does not stall")

# %% [markdown]
# **Verdict.** Clipped full-batch descent {glue:md}`ib_cex_stall`: it ends at
# $x$ = {glue:text}`ib_cex_x:.2g` with $F'(x)$ = {glue:text}`ib_cex_Fp:.6g`, where the clipped
# direction vanishes. Gradient descent with the same step {glue:md}`ib_cex_gd`
# ($x$ = {glue:text}`ib_cex_gd_x:.6g`). The clipped cyclic incremental method
# {glue:md}`ib_cex_inc`, with $F'$ = {glue:text}`ib_cex_inc_Fp:.4g` after the last cycle. Small
# steps do not help: the fixed points of the clipped dynamics are the zeros of $d$, and here
# they are not zeros of $F'$. The next page asks when clipped incremental methods do converge,
# and how much bias is left with mini-batches.
