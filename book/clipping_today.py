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
# # Clipping today
#
# The papers of this book clip the gradient at a fixed global norm {cite:p}`zhang2020why`.
# Practitioners now have more choices, each with a threshold or a scale that moves during
# training. This page trains them side by side on the LSTM language model and the ResNet of
# the previous chapters, each with the same budget of steps and a small search over its own
# hyper-parameter:
#
# - **SGD without clipping**, the baseline; its hyper-parameter is the learning rate $\eta$.
# - **clipped SGD**, $x_{t+1} = x_t - \eta\min\{1, \gamma/\|g_t\|\}g_t$, the papers' method,
#   searched over the threshold $\gamma$.
# - **AGC** {cite:p}`brock2021high`: each unit's gradient clipped to $\lambda$ times the norm
#   of its weights, searched over $\lambda$.
# - **AutoClip** {cite:p}`seetharaman2020autoclip`: the threshold is the $p$-th percentile of
#   every gradient norm seen so far, searched over $p$.
# - **ZClip** {cite:p}`kumar2025zclip`: a norm more than $z_{\mathrm{thres}}$ standard
#   deviations above its running mean is a spike and is clipped, searched over
#   $z_{\mathrm{thres}}$ (10 warm-up steps).
# - **smoothed clipping** $x_{t+1} = x_t - \eta g_t/(L_0 + L_1\|g_t\|)$, the step of the
#   $(L_0, L_1)$ theory {cite:p}`gorbunov2024methods,vankov2024optimizing`, with $L_0 = 1$ and
#   searched over $L_1$ (its threshold is $L_0/L_1$).
# - **normalized SGD with momentum** {cite:p}`cutkosky2020momentum`, steps of length exactly
#   $\eta$ along the momentum average ($\beta = 0.9$), searched over $\eta$.
# - **mixed clipping** {cite:p}`zhang2020improved`: half a clipped step along the momentum
#   average ($\beta = 0.9$), half a clipped step along the gradient, searched over $\gamma$.
#
# The clipping methods run at the papers' clipped learning rates (30 for the LSTM, 5 for the
# ResNet); ZClip, which leaves the step unbounded between spikes, at the largest learning rate
# of plain SGD's grid; normalized SGD with momentum at the step length of its search. No
# method uses weight decay or heavy-ball momentum.
#
# **The search, fixed before looking.** Each method's grid of three values is trained on the
# first seed; the value with the lowest *final* training loss (the mean per-step loss over the
# last {glue:text}`ct_tail_pct:.0f`% of the steps) is chosen and trained on every seed. A run
# whose loss becomes non-finite has *diverged* and is never chosen.
#
# **Criteria, fixed before looking.** Three questions, each answered per task with an interval:
#
# 1. *Which method reaches a given loss first?* The target is
#    $\ell_0 - q(\ell_0 - \ell_{\min})$ with $q$ = {glue:text}`ct_target_fraction:.2f`,
#    $\ell_0$ the mean first-step loss and $\ell_{\min}$ the lowest final loss of the chosen
#    methods (mean over seeds); a run reaches it when the running mean of its training loss
#    over {glue:text}`ct_window:.0f` steps first falls to it (a run that never does counts as
#    one step past its end, a lower bound). The claim "an adaptive method reaches the target
#    no later than clipped SGD" **holds** when the {glue:text}`ct_level_pct:.0f`% interval of
#    the per-seed difference of the steps lies below a slack of
#    {glue:text}`ct_slack_pct:.0f`% of the steps, **fails** when it lies at or above it, and
#    is **inconclusive** otherwise; the same rule checks {cite:t}`zhang2020why`'s "clipping
#    trains faster" against SGD without clipping.
# 2. *Do adaptive thresholds track the $(L_0, L_1)$ envelope?* The smoothness chapters fit
#    $L_0 + L_1\|g\|$ above the local smoothness; here it is fitted (the tightest line above
#    {glue:text}`ct_quantile_pct:.0f`% of the points) to the step probes of every chosen run of
#    the task. The envelope prescribes a step factor $1/(L_0 + L_1\|g_t\|)$; a method applies
#    the factor $c_t = \|x_{t+1} - x_t\|/(\eta_t\|g_t\|)$ to the SGD step. The claim holds
#    when Pearson's correlation of $\log c_t$ and $\log 1/(L_0 + L_1\|g_t\|)$ along the runs
#    (averaged over seeds, moving-block bootstrap interval over the steps) has its lower end
#    above {glue:text}`ct_min_track:.2f`, fails when its upper end is at or below it. (A rank
#    correlation cannot tell: any function of $\|g_t\|$ alone has rank correlation one.)
# 3. *How sensitive is each method to its own hyper-parameter?* The spread (largest minus
#    smallest) of the final training loss over its grid, with a moving-block bootstrap interval
#    from each run's tail; "less sensitive than clipped SGD" holds when the interval of the
#    difference of the spreads lies below 0 and fails when it lies at or above 0. A diverged
#    grid point makes a spread infinite. The grids are not equally wide in any common unit:
#    each spans values a user would try (a factor of about 10 in a threshold or a learning
#    rate, AGC's $\lambda$ from 0.01 to 0.16, AutoClip's $p$ from 10 to 50, ZClip's
#    $z_{\mathrm{thres}}$ from 1.5 to 3.5).

# %% tags=["parameters"]
profile = "ci"  # the scale of the runs: smoke | ci | paper
device = "auto"  # where the runs train: auto | cpu | cuda | cuda:N
seed = 0  # seeds the page's bootstrap (the runs have their own seeds, one list per profile)
data_dir = None  # a folder with PTB and CIFAR-10 (None: the installed PTB and Fashion-MNIST)
results_dir = "results"  # the run store (runs are trained once and loaded after)
workers = 2  # > 0: training processes side by side on the CPU (one thread each)
tail = 0.2  # in (0, 1]: fraction of the last steps whose mean training loss is the final loss
target_fraction = 0.8  # in (0, 1]: the target loss lies this fraction of the way from start to best
window = 10  # > 0: steps in the running mean of the training loss (target and curves)
slack = 0.05  # in [0, 1): "no later" allows this fraction of the run's steps
envelope_quantile = 0.95  # in (0, 1]: the envelope lies above this fraction of the step probes
min_track = 0.5  # in (-1, 1): tracking claim needs the correlation's lower end above this
level = 0.95  # in (0, 1): confidence level of the intervals
n_boot = 1000  # > 0: bootstrap resamples per interval

# %% tags=["hide-cell"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter

from clipcore import method_comparison as MC
from clipcore.pages import glue_claim, glue_number, glue_text, show_figure, show_table
from clipcore.plots import thin, use_book_style
from clipcore.profiles import check_profile
from clipcore.runtime import seed_everything
from clipcore.studies import running_mean
from clipcore.training.comparison import METHODS, SCALES, SEEDS, grid

check_profile(profile)
seed_everything(seed)
use_book_style()
glue_number("ct_tail_pct", 100 * tail)
glue_number("ct_target_fraction", target_fraction)
glue_number("ct_window", window)
glue_number("ct_level_pct", 100 * level)
glue_number("ct_slack_pct", 100 * slack)
glue_number("ct_quantile_pct", 100 * envelope_quantile)
glue_number("ct_min_track", min_track)
TASKS = {"lstm_ptb": "lstm", "resnet_images": "img"}
TITLES = {"lstm_ptb": "LSTM on PTB", "resnet_images": "ResNet on images"}
COLORS = {name: f"C{i}" for i, name in enumerate(METHODS)}

comps = {
    task: MC.run_comparison(
        task, profile, results_dir, device=device, data_dir=data_dir, tail=tail, workers=workers
    )
    for task in TASKS
}
results = {
    task: MC.analyse(
        comp,
        target_fraction=target_fraction,
        window=window,
        slack=slack,
        envelope_quantile=envelope_quantile,
        min_track=min_track,
        level=level,
        n_boot=n_boot,
        seed=seed,
    )
    for task, comp in comps.items()
}
for task, short in TASKS.items():
    for c in results[task]["claims"]:
        glue_claim(
            f"ct_{short}_{c['key']}",
            paper=c["paper"],
            where=f"{c['where']}, {TITLES[task]}",
            statement=f"{c['statement']} ({TITLES[task]}, {profile} scale)",
            status=c["status"],
            evidence=c["evidence"],
            profile=profile,
        )
n_runs = sum(len(rs) for comp in comps.values() for rs in comp.search.values()) + sum(
    len(rs) - 1 for comp in comps.values() for rs in comp.runs.values()
)
trained = sum(comp.trained for comp in comps.values())
minutes = sum(comp.seconds for comp in comps.values()) / 60
lstm, img = SCALES[profile]["lstm_ptb"], SCALES[profile]["resnet_images"]
glue_text(
    "ct_scale",
    f"{n_runs} runs in all ({len(grid('sgd', 'lstm_ptb', profile))} values per grid, "
    f"{len(SEEDS[profile])} seed(s)): the LSTM has {lstm['n_layers']} layers of "
    f"{lstm['hidden_size']} units and embedding {lstm['emb_size']} and trains for "
    f"{results['lstm_ptb']['steps']} steps of batch {lstm['batch_size']} (BPTT {lstm['bptt']}); "
    f"the ResNet-{img['depth']} of width {img['width']} trains for {results['resnet_images']['steps']} "
    f"steps of batch {img['batch_size']}; step probes every {lstm['step_probe_every']} steps. "
    + (
        f"This execution trained {trained} of them ({minutes:.1f} min); the others came from the run store"
        if trained
        else "All were read from the run store"
    ),
)
for task, short in TASKS.items():
    r = results[task]
    glue_number(f"ct_{short}_target", r["target"])
    glue_number(f"ct_{short}_L0", r["envelope"]["L0"])
    glue_number(f"ct_{short}_L1", r["envelope"]["L1"])
    glue_number(f"ct_{short}_nprobes", r["envelope"]["n"])
    norms = [x.metrics["grad_norm"] for rs in comps[task].runs.values() for x in rs if x.metrics is not None]
    glue_number(f"ct_{short}_gnorm", np.median(np.concatenate(norms)) if norms else np.nan)


def label(name):
    return METHODS[name].label


# %% [markdown]
# At this profile's scale: {glue:md}`ct_scale`.
#
# **What this scale can and cannot show.** At `ci` the models are small and the runs short:
# the median gradient norm along the runs is {glue:text}`ct_lstm_gnorm:.2g` for the LSTM and
# {glue:text}`ct_img_gnorm:.2g` for the ResNet, far below the first steps of the smoothness
# chapters' larger LSTM, so the thresholds of the grids are small too; a hundred-odd steps
# measure how a method starts, not where it ends, and the validation curves have one point
# per epoch. Few seeds give wide intervals; a verdict they cannot decide reads
# **inconclusive**. The `paper` profile of this page trains the smoothness chapters' paper
# scale (a GPU's work); no recording of it is kept in `recorded/`, so this page shows the
# profile it was executed at only.
#
# ## The search
#
# Final training loss of every grid value on the first seed, the fraction of its steps that
# its rule clipped, and the value chosen:

# %% tags=["remove-input"]
for task in TASKS:
    show_table(
        results[task]["search"],
        {
            "method": "method",
            "parameter": "hyper-parameter",
            "value": "value",
            "final_loss": "final training loss",
            "clipped": "steps clipped",
            "status": "note",
        },
        formats={"final_loss": ".3f", "clipped": ".0%"},
        caption=f"{TITLES[task]}: the search (first seed).",
    )

# %% [markdown]
# ## Training and validation curves
#
# :::{glue:figure} ct_curves
# :name: fig-ct-curves
#
# Top: the running mean of the training loss of each method at its chosen value (mean over
# seeds; the band spans the seeds), with the target loss dashed. Bottom: the validation loss
# (LSTM) and the test loss (ResNet) at each epoch's end, mean over seeds. {glue:md}`ct_curves_csv:myst`
# :::

# %% tags=["remove-cell"]
fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), layout="constrained")
rows = []
for col, task in enumerate(TASKS):
    comp, ax = comps[task], axes[0, col]
    for name, rs in comp.runs.items():
        ok = [r for r in rs if r.metrics is not None]
        if not ok:
            continue
        n = min(r.steps for r in ok)
        curves = np.stack([running_mean(r.metrics["loss"][:n], window) for r in ok])
        steps = np.arange(1, n + 1)
        ax.plot(steps, curves.mean(0), color=COLORS[name], label=label(name))
        ax.fill_between(steps, curves.min(0), curves.max(0), color=COLORS[name], alpha=0.15, lw=0)
        keep = thin(n)
        rows.append(
            pd.DataFrame(
                dict(task=task, method=name, curve="training", step=steps[keep], loss=curves.mean(0)[keep])
            )
        )
    ax.axhline(results[task]["target"], color="k", ls="--", lw=0.8)
    ax.set(title=TITLES[task], xlabel="step", ylabel="training loss (running mean)")
    ax = axes[1, col]
    for name, rs in comp.runs.items():
        ok = [r for r in rs if r.evals is not None]
        if not ok:
            continue
        split = "valid" if task == "lstm_ptb" else "test"
        per = [r.evals for r in ok]
        sel = [(e["split"] == split) & (e["epoch"] <= max(e["epoch"])) for e in per]
        n = min(s.sum() for s in sel)
        losses = np.stack([e["loss"][s][:n] for e, s in zip(per, sel)])
        epochs = per[0]["epoch"][sel[0]][:n]
        ax.plot(epochs, losses.mean(0), "o-", color=COLORS[name], label=label(name))
        rows.append(pd.DataFrame(dict(task=task, method=name, curve=split, step=epochs, loss=losses.mean(0))))
    ax.set(xlabel="epoch", ylabel=f"{'validation' if task == 'lstm_ptb' else 'test'} loss")
axes[0, 1].legend(fontsize=7)
show_figure("ct_curves", fig, pd.concat(rows))

# %% [markdown]
# ## Which method reaches the target first
#
# Steps to the target training loss ({glue:text}`ct_lstm_target:.3f` for the LSTM,
# {glue:text}`ct_img_target:.3f` for the ResNet), mean over seeds with its
# {glue:text}`ct_level_pct:.0f`% interval, and how many seeds reached it:

# %% tags=["remove-input"]
for task in TASKS:
    show_table(
        sorted(results[task]["first"], key=lambda r: r["steps"]),
        {
            "method": "method",
            "steps": "steps to target",
            "lo": "lower",
            "hi": "upper",
            "reached": "seeds reaching it",
        },
        formats={"steps": ".1f", "lo": ".1f", "hi": ".1f"},
        caption=f"{TITLES[task]}: steps to the target loss.",
    )
    show_table(
        [c | {"claim": c["statement"]} for c in results[task]["claims"] if c["key"].startswith("first_")],
        {"claim": "claim", "status": "verdict"},
        caption=f"{TITLES[task]}: the time-to-target claims (difference of steps, paired by seed).",
    )

# %% [markdown]
# Clipping against no clipping, the claim of {cite:t}`zhang2020why`: LSTM
# {glue:md}`ct_lstm_first_clipped`, ResNet {glue:md}`ct_img_first_clipped`.
#
# ## How often each rule clips, and its threshold along the run
#
# :::{glue:figure} ct_clipped
# :name: fig-ct-clipped
#
# Top: the fraction of steps whose update each method's rule clipped (mean over seeds, bars
# span the seeds); normalized SGD with momentum rescales every step. Bottom: the threshold each
# rule used at each step (first seed), beside the gradient norm (grey); AGC's thresholds are
# per unit and not shown. {glue:md}`ct_clipped_csv:myst`
# :::

# %% tags=["remove-cell"]
fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), layout="constrained")
rows = []
for col, task in enumerate(TASKS):
    comp = comps[task]
    names = list(comp.runs)
    frac = [[MC.clipped_fraction(r) for r in comp.runs[n]] for n in names]
    mean = [np.nanmean(f) if np.isfinite(f).any() else np.nan for f in frac]
    lo = [m - np.nanmin(f) if np.isfinite(f).any() else 0 for m, f in zip(mean, frac)]
    hi = [np.nanmax(f) - m if np.isfinite(f).any() else 0 for m, f in zip(mean, frac)]
    ax = axes[0, col]
    ax.bar(range(len(names)), mean, yerr=[lo, hi], color=[COLORS[n] for n in names])
    ax.set_xticks(range(len(names)), [n for n in names], rotation=30, fontsize=8)
    ax.set(title=TITLES[task], ylabel="fraction of steps clipped", ylim=(0, 1.05))
    rows += [
        dict(task=task, method=n, what="fraction clipped", step=np.nan, value=m) for n, m in zip(names, mean)
    ]
    ax = axes[1, col]
    first = comp.runs["sgd"][0]
    if first.metrics is not None:
        ax.plot(
            first.metrics["step"],
            first.metrics["grad_norm"],
            color="0.6",
            lw=0.8,
            label="gradient norm (SGD)",
        )
    for n in ("clipped", "autoclip", "zclip", "smoothed", "mixed"):
        r = comp.runs[n][0]
        if r.metrics is None:
            continue
        thr = r.metrics["clip_threshold"]
        ax.plot(r.metrics["step"], thr, color=COLORS[n], label=label(n))
        keep = thin(len(thr))
        rows.append(
            pd.DataFrame(
                dict(task=task, method=n, what="threshold", step=r.metrics["step"][keep], value=thr[keep])
            )
        )
    ax.set_yscale("log")
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel="step", ylabel="threshold on the norm")
axes[1, 1].legend(fontsize=7)
show_figure(
    "ct_clipped",
    fig,
    pd.concat([pd.DataFrame(r) if isinstance(r, pd.DataFrame) else pd.DataFrame([r]) for r in rows]),
)

# %% [markdown]
# ## The effective step against the gradient norm, and the envelope
#
# The envelope fitted to the step probes of each task: $L_0$ = {glue:text}`ct_lstm_L0:.3g`,
# $L_1$ = {glue:text}`ct_lstm_L1:.3g` for the LSTM ({glue:text}`ct_lstm_nprobes:.0f` probes),
# $L_0$ = {glue:text}`ct_img_L0:.3g`, $L_1$ = {glue:text}`ct_img_L1:.3g` for the ResNet
# ({glue:text}`ct_img_nprobes:.0f` probes). The black curve has the shape of the step the
# envelope prescribes, $\|g\|/(L_0 + L_1\|g\|)$, scaled to pass through the median of the
# points (only its shape is prescribed; $L_0 = 0$ makes it a normalised step of constant
# length).
#
# :::{glue:figure} ct_steps
# :name: fig-ct-steps
#
# The step length per unit learning rate, $\|x_{t+1} - x_t\|/\eta_t$, against the gradient
# norm $\|g_t\|$ at every step of each method's first seed, log–log. {glue:md}`ct_steps_csv:myst`
# :::

# %% tags=["remove-cell"]
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
rows = []
for ax, task in zip(axes, TASKS):
    comp, env = comps[task], results[task]["envelope"]
    allg, alls = [], []
    for n, rs in comp.runs.items():
        r = rs[0]
        if r.metrics is None:
            continue
        g, step = r.metrics["grad_norm"], r.metrics["step_length"] / r.metrics["lr"]
        allg.append(g)
        alls.append(step)
        ax.scatter(g, step, s=5, alpha=0.5, color=COLORS[n], label=label(n))
        keep = thin(len(g))
        rows.append(pd.DataFrame(dict(task=task, method=n, grad_norm=g[keep], step_per_lr=step[keep])))
    if allg and np.isfinite(env["L0"]) and np.isfinite(env["L1"]) and env["L0"] + env["L1"] > 0:
        g, step = np.concatenate(allg), np.concatenate(alls)
        gg = np.geomspace(np.quantile(g, 0.01), np.quantile(g, 0.99), 100)
        # The envelope's step has the shape |g| / (L0 + L1 |g|); scaled through the points' median.
        scale = np.median(step) / np.median(g / (env["L0"] + env["L1"] * g))
        ax.plot(gg, scale * gg / (env["L0"] + env["L1"] * gg), "k-", lw=1.2, label="envelope's step (shape)")
    ax.set(
        xscale="log",
        yscale="log",
        title=TITLES[task],
        xlabel=r"$\|g_t\|$",
        ylabel=r"$\|x_{t+1}-x_t\|/\eta_t$",
    )
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
axes[1].legend(fontsize=7, markerscale=3)
show_figure("ct_steps", fig, pd.concat(rows))

# %% [markdown]
# Do the adaptive factors follow the envelope? The log-correlation of each method's step
# factor with the envelope's, with its interval (fixed clipping and smoothed clipping follow it
# by construction when their threshold sits near $L_0/L_1$):

# %% tags=["remove-input"]
for task in TASKS:
    show_table(
        results[task]["tracking"],
        {"method": "method", "r": "log-correlation", "lo": "lower", "hi": "upper"},
        formats={"r": ".2f", "lo": ".2f", "hi": ".2f"},
        caption=f"{TITLES[task]}: the step factor against the envelope's.",
    )
    show_table(
        [c | {"claim": c["statement"]} for c in results[task]["claims"] if c["key"].startswith("track_")],
        {"claim": "claim", "status": "verdict"},
        caption=f"{TITLES[task]}: the tracking claims.",
    )

# %% [markdown]
# ## The smoothness along each trajectory
#
# :::{glue:figure} ct_smooth
# :name: fig-ct-smooth
#
# The corrected smoothness estimate on each step's own batch (the `step` probe of the
# smoothness chapters) along the first seed of each method, log scale. {glue:md}`ct_smooth_csv:myst`
# :::

# %% tags=["remove-cell"]
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
rows = []
for ax, task in zip(axes, TASKS):
    for n, rs in comps[task].runs.items():
        p = rs[0].probes
        if p is None:
            continue
        sel = p["estimator"] == "step"
        ok = sel & np.isfinite(p["smoothness"]) & (p["smoothness"] > 0)
        ax.plot(p["step"][ok], p["smoothness"][ok], ".-", ms=3, lw=0.6, color=COLORS[n], label=label(n))
        rows.append(
            pd.DataFrame(dict(task=task, method=n, step=p["step"][ok], smoothness=p["smoothness"][ok]))
        )
    ax.set(yscale="log", title=TITLES[task], xlabel="step", ylabel=r"$\hat L$ (step probe)")
axes[1].legend(fontsize=7)
show_figure("ct_smooth", fig, pd.concat(rows))

# %% [markdown]
# ## Sensitivity to the hyper-parameter
#
# The spread of the final training loss over each method's grid (first seed), with its
# interval; "inf" marks a grid with a diverged run:

# %% tags=["remove-input"]
for task in TASKS:
    show_table(
        sorted(results[task]["sensitivity"], key=lambda r: r["spread"]),
        {
            "method": "method",
            "parameter": "hyper-parameter",
            "spread": "spread",
            "lo": "lower",
            "hi": "upper",
        },
        formats={"spread": ".3f", "lo": ".3f", "hi": ".3f"},
        caption=f"{TITLES[task]}: spread of the final loss over the grid.",
    )
    show_table(
        [c | {"claim": c["statement"]} for c in results[task]["claims"] if c["key"].startswith("sens_")],
        {"claim": "claim", "status": "verdict"},
        caption=f"{TITLES[task]}: the sensitivity claims.",
    )

# %% [markdown]
# ## Verdicts
#
# | claim | LSTM | ResNet |
# |---|---|---|
# | clipped SGD reaches the target no later than SGD {cite:p}`zhang2020why` | {glue:md}`ct_lstm_first_clipped` | {glue:md}`ct_img_first_clipped` |
# | AGC reaches the target no later than clipped SGD | {glue:md}`ct_lstm_first_agc` | {glue:md}`ct_img_first_agc` |
# | AutoClip reaches the target no later than clipped SGD | {glue:md}`ct_lstm_first_autoclip` | {glue:md}`ct_img_first_autoclip` |
# | ZClip reaches the target no later than clipped SGD | {glue:md}`ct_lstm_first_zclip` | {glue:md}`ct_img_first_zclip` |
# | AGC's step factor tracks the envelope | {glue:md}`ct_lstm_track_agc` | {glue:md}`ct_img_track_agc` |
# | AutoClip's step factor tracks the envelope | {glue:md}`ct_lstm_track_autoclip` | {glue:md}`ct_img_track_autoclip` |
# | ZClip's step factor tracks the envelope | {glue:md}`ct_lstm_track_zclip` | {glue:md}`ct_img_track_zclip` |
# | AGC is less sensitive to $\lambda$ than clipped SGD to $\gamma$ | {glue:md}`ct_lstm_sens_agc` | {glue:md}`ct_img_sens_agc` |
# | AutoClip is less sensitive to $p$ than clipped SGD to $\gamma$ | {glue:md}`ct_lstm_sens_autoclip` | {glue:md}`ct_img_sens_autoclip` |
# | ZClip is less sensitive to $z_{\mathrm{thres}}$ than clipped SGD to $\gamma$ | {glue:md}`ct_lstm_sens_zclip` | {glue:md}`ct_img_sens_zclip` |
#
# Every verdict is also on the scorecard.
