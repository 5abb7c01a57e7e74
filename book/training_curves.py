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
# # Training curves
#
# Figure 4 of {cite:t}`zhang2020why` shows what the runs of the two previous pages achieve: (a) the
# LSTM's training loss and (b) its validation loss (the AWD-LSTM of {cite:t}`merity2018regularizing`
# on Penn Treebank {cite:p}`marcus1993building`), (c) the ResNet's {cite:p}`he2016deep` training
# loss and (d) its test accuracy. The paper's claims:
#
# 1. clipping trains fastest;
# 2. the clipped LSTM (learning rate 30, run (a)) reaches the best validation loss;
# 3. clipped SGD on the ResNet (learning rate 5, run (c)) converges fastest in training loss
#    and matches the test accuracy of SGD with momentum (the paper reports 95.2% on CIFAR-10
#    after 200 epochs).
#
# This page retrains nothing: it reads the six runs the two previous pages stored.
#
# **Definitions, fixed before looking at the numbers.** "Trains fastest" means the lowest area
# under the training-loss curve, $\mathrm{AUC} = \frac1T\sum_{t=1}^T \ell_t$ over the $T$
# optimiser steps (the runs of one experiment make the same number of steps), so a run that
# gets low early and stays low wins; the claimed run's AUC minus the lowest AUC of the others
# gets a {glue:text}`tc_level_pct:.0f`% moving-block bootstrap interval over the per-step
# losses, and the claim holds when the whole interval is below 0, fails when it is all above,
# and is inconclusive otherwise. "Best validation loss" compares the mean validation loss of
# the last {glue:text}`tc_last_k:.0f` epochs the same way (an interval from the spread of those
# epochs). "Matches the test accuracy" is two-sided: the difference between the mean test
# accuracies of the last {glue:text}`tc_last_k:.0f` epochs (clipped minus momentum; the interval
# adds the binomial noise of the test set to the epoch-to-epoch spread) must lie within
# ±{glue:text}`tc_acc_tol_pct:.1f` percentage points; a collapse or a spike in one last epoch
# cannot decide it. The paper's 95.2% is compared with only when the data is CIFAR-10.

# %% tags=["parameters"]
profile = "ci"  # smoke, ci or paper: the scale of every grid below (book/params.yml)
device = "auto"  # auto, cpu, cuda, cuda:N or mps: where a run missing from the store is trained
seed = 0  # seeds the bootstrap of the intervals (the runs keep their presets' seeds)
data_dir = None  # a folder with PTB and CIFAR-10 (None: the installed PTB and Fashion-MNIST)
results_dir = "results"  # the run store the two previous pages wrote (and this page reads)
smooth_window = 20  # > 0: steps in the running mean of the plotted training losses
tail = 0.1  # in (0, 1]: fraction of the last steps averaged into the final training loss
acc_tol = 0.02  # in [0, 1): largest accuracy gap between clipped SGD and momentum that is a match
last_k = 3  # > 1: epochs at the end whose mean decides the validation and accuracy claims
level = 0.95  # in (0, 1): confidence level of the intervals
n_boot = 2000  # > 0: bootstrap resamples of the AUC intervals

# %% tags=["hide-cell"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from clipcore.claims import decide, from_interval, within
from clipcore.pages import glue_claim, glue_number, glue_text, show_figure, show_table
from clipcore.plots import thin, use_book_style
from clipcore.profiles import check_profile
from clipcore.runtime import seed_everything
from clipcore.stats import block_mean_difference, tail_mean_difference
from clipcore.studies import load_runs, running_mean, training_summary

check_profile(profile)
use_book_style()
_ = seed_everything(seed)
glue_number("tc_acc_tol_pct", 100 * acc_tol)
glue_number("tc_level_pct", 100 * level)
glue_number("tc_last_k", last_k)

runs = {
    exp: load_runs(exp, profile, results_dir, device=device, data_dir=data_dir)
    for exp in ("lstm_ptb", "resnet_images")
}
panel = {
    exp: {name: f"({'abc'[i]}) {r.label}" for i, (name, r) in enumerate(rs.items())}
    for exp, rs in runs.items()
}
trained = [f"{exp}/{name}" for exp, rs in runs.items() for name, r in rs.items() if r.trained]
# Every run is finished: load_runs serves finished runs only and trains a run only when the
# store does not hold it (never again when it does).
assert all(r.run.meta["finished"] is True for rs in runs.values() for r in rs.values())
if trained:
    glue_text(
        "tc_source",
        f"{len(trained)} of the 6 runs were not in the run store and were "
        f"trained by this page ({', '.join(trained)}); the others were read from it",
    )
else:
    glue_text("tc_source", "all 6 runs were read from the run store; none was retrained")
summary = {
    exp: {name: training_summary(r.run, tail=tail) for name, r in rs.items()} for exp, rs in runs.items()
}
dataset = runs["resnet_images"]["clip_lr5"].run.meta["dataset"]
ptb = runs["lstm_ptb"]["clip_lr30"].run.meta["dataset"]

# %% [markdown]
# Here {glue:md}`tc_source`:

# %% tags=["remove-input"]
show_table(
    [
        dict(
            experiment=exp,
            run=panel[exp][name],
            source="trained by this page" if r.trained else "run store",
            path=str(r.run.path),
        )
        for exp, rs in runs.items()
        for name, r in rs.items()
    ],
    caption="The six runs and where they came from.",
)

# %% [markdown]
# ## Figure 4

# %% tags=["hide-input"]
fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), layout="constrained")
curves = []
for exp, row in (("lstm_ptb", 0), ("resnet_images", 1)):
    ax = axes[row, 0]
    for i, (name, r) in enumerate(runs[exp].items()):
        m = r.run.table("metrics")
        ax.plot(m["step"], m["loss"], color=f"C{i}", alpha=0.2, lw=0.6)
        ax.plot(m["step"], running_mean(m["loss"], smooth_window), color=f"C{i}", label=panel[exp][name])
        keep = thin(len(m["step"]))
        curves.append(
            pd.DataFrame(
                dict(
                    experiment=exp,
                    run=name,
                    panel="training",
                    step=np.asarray(m["step"])[keep],
                    loss=np.asarray(m["loss"])[keep],
                    loss_running_mean=running_mean(m["loss"], smooth_window)[keep],
                )
            )
        )
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=8)
    ax = axes[row, 1]
    split, col = ("valid", "loss") if exp == "lstm_ptb" else ("test", "accuracy")
    for i, (name, r) in enumerate(runs[exp].items()):
        ev = r.run.table("eval")
        sel = ev["split"] == split
        ax.plot(ev["epoch"][sel], ev[col][sel], "o-", color=f"C{i}", label=panel[exp][name])
        curves.append(
            pd.DataFrame(
                {
                    "experiment": exp,
                    "run": name,
                    "panel": split,
                    "epoch": np.asarray(ev["epoch"][sel]),
                    col: np.asarray(ev[col][sel]),
                }
            )
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss" if exp == "lstm_ptb" else "test accuracy")
    ax.legend(fontsize=8)
axes[0, 0].set_title(f"(a) LSTM on {ptb}: training loss", fontsize=10)
axes[0, 1].set_title(f"(b) LSTM on {ptb}: validation loss", fontsize=10)
axes[1, 0].set_title(f"(c) ResNet on {dataset}: training loss", fontsize=10)
axes[1, 1].set_title(f"(d) ResNet on {dataset}: test accuracy", fontsize=10)
show_figure("tc_fig4", fig, pd.concat(curves))
_ = glue_number("tc_window", smooth_window)

# %% [markdown]
# :::{glue:figure} tc_fig4
# :name: fig-tc-fig4
#
# Figure 4 of the paper at this profile's scale: training loss (left; faint: per step, solid: the
# running mean over {glue:text}`tc_window:.0f` steps) and validation loss or test accuracy
# (right) of the three LSTM runs (top) and the three ResNet runs (bottom).
# {glue:md}`tc_fig4_csv:myst`
# :::
#
# The numbers behind the verdicts:

# %% tags=["remove-input"]
for exp in runs:
    rows = [dict(run=panel[exp][name], **s) for name, s in summary[exp].items()]
    cols = ["run", "steps", "auc", "final_train"] + (
        ["best_valid", "final_valid", "final_test"]
        if exp == "lstm_ptb"
        else ["best_test_accuracy", "final_test_accuracy"]
    )
    show_table(
        rows,
        {c: c.replace("_", " ") for c in cols},
        formats={c: ".4g" for c in cols if c not in ("run", "steps")},
        caption=("LSTM on " + ptb) if exp == "lstm_ptb" else ("ResNet on " + dataset),
    )

# %% [markdown]
# ## Verdicts

# %% tags=["hide-cell"]
L, R = summary["lstm_ptb"], summary["resnet_images"]


def series(exp, name, split=None, col="loss"):
    """Per-step training losses of a run, or one column of its evaluations on ``split``."""
    r = runs[exp][name].run
    if split is None:
        return r.table("metrics")["loss"]
    ev = r.table("eval")
    return ev[col][ev["split"] == split]


def fastest_claim(exp, claimed, cid, where, statement):
    """AUC of ``claimed`` minus the lowest AUC of the others, with its interval."""
    rival = min((n for n in runs[exp] if n != claimed), key=lambda n: summary[exp][n]["auc"])
    d, lo, hi = block_mean_difference(
        series(exp, claimed), series(exp, rival), n_boot=n_boot, level=level, seed=seed
    )
    status = from_interval(lo, hi, 0.0, above=False)
    glue_claim(
        cid,
        paper="zhang2020",
        where=where,
        statement=statement,
        status=status,
        evidence={"auc_difference": d, "lo": lo, "hi": hi, "rival": rival},
        profile=profile,
    )
    for k, v in (("diff", d), ("lo", lo), ("hi", hi)):
        glue_number(f"{cid}_{k}", v)
    return status


fastest_claim(
    "lstm_ptb",
    "clip_lr30",
    "tc_lstm_fast",
    "Fig. 4a",
    "the clipped LSTM (lr 30) trains fastest: lowest area under its training-loss curve",
)
fastest_claim(
    "resnet_images",
    "clip_lr5",
    "tc_res_fast",
    "Fig. 4c",
    "clipped SGD (lr 5) on the ResNet converges fastest in training loss",
)

rival = min((n for n in L if n != "clip_lr30"), key=lambda n: L[n]["best_valid"])
d, lo, hi = tail_mean_difference(
    series("lstm_ptb", "clip_lr30", "valid"), series("lstm_ptb", rival, "valid"), last_k, level=level
)
glue_claim(
    "tc_lstm_valid",
    paper="zhang2020",
    where="Fig. 4b",
    statement="the clipped LSTM (lr 30) has the best validation loss",
    status=from_interval(lo, hi, 0.0, above=False),
    evidence={"valid_difference": d, "lo": lo, "hi": hi, "rival": rival, "last_k": last_k},
    profile=profile,
)
for k, v in (("diff", d), ("lo", lo), ("hi", hi)):
    glue_number(f"tc_lstm_valid_{k}", v)

n_test = runs["resnet_images"]["clip_lr5"].config.n_test or 10000
accuracy = {n: series("resnet_images", n, "test", "accuracy") for n in R}
p = float(np.mean(accuracy["momentum"][-last_k:]))
d, lo, hi = tail_mean_difference(
    accuracy["clip_lr5"],
    accuracy["momentum"],
    last_k,
    level=level,
    noise_x=p * (1 - p) / n_test,
    noise_y=p * (1 - p) / n_test,
)
glue_claim(
    "tc_res_acc",
    paper="zhang2020",
    where="Fig. 4d",
    statement="clipped SGD on the ResNet matches momentum SGD's test accuracy",
    status=within(lo, hi, acc_tol),
    evidence={"accuracy_difference": d, "lo": lo, "hi": hi, "tolerance": acc_tol, "last_k": last_k},
    profile=profile,
)
for k, v in (("diff", d), ("lo", lo), ("hi", hi)):
    glue_number(f"tc_res_acc_{k}_pct", 100 * v)
for name in L:
    glue_number(f"tc_lstm_auc_{name}", L[name]["auc"])
    glue_number(f"tc_lstm_valid_{name}", L[name]["best_valid"])
    glue_number(f"tc_lstm_ppl_{name}", np.exp(L[name]["best_valid"]))
for name in R:
    glue_number(f"tc_res_auc_{name}", R[name]["auc"])
    glue_number(f"tc_res_acc_{name}", 100 * R[name]["final_test_accuracy"])
swing = 0.0
for r in runs["resnet_images"].values():
    ev = r.run.table("eval")
    acc = ev["accuracy"][ev["split"] == "test"]
    if acc.size > 1:
        swing = max(swing, float(np.max(np.abs(np.diff(acc)))))
glue_number("tc_swing", 100 * swing)
glue_text("tc_dataset", dataset)
glue_number("tc_epochs", runs["resnet_images"]["clip_lr5"].config.epochs)
best_acc = glue_number("tc_best_acc", 100 * max(float(np.mean(a[-last_k:])) for a in accuracy.values()))
on_cifar = dataset == "CIFAR-10"
paper_acc = 95.2
glue_number("tc_paper_acc", paper_acc)
glue_claim(
    "tc_vs_paper",
    paper="zhang2020",
    where="Sec. 5 (ResNet on CIFAR-10, 95.2%)",
    statement="momentum and clipped SGD reach the paper's 95.2% test accuracy on CIFAR-10",
    status=decide(best_acc >= paper_acc - 100 * acc_tol, testable=on_cifar),
    evidence={
        "best_last_k_accuracy_pct": best_acc,
        "dataset": dataset,
        "epochs": runs["resnet_images"]["clip_lr5"].config.epochs,
    },
    profile=profile,
)

# %% [markdown]
# - **LSTM, training speed.** "Run (a) (learning rate 30, clipped) trains fastest":
#   {glue:md}`tc_lstm_fast`. Its training-loss AUC is {glue:text}`tc_lstm_auc_clip_lr30:.3f`,
#   against {glue:text}`tc_lstm_auc_noclip_lr2:.3f` for (b) and
#   {glue:text}`tc_lstm_auc_clip_lr2:.3f` for (c); the difference to the best other run is
#   {glue:text}`tc_lstm_fast_diff:.3f` [{glue:text}`tc_lstm_fast_lo:.3f`, {glue:text}`tc_lstm_fast_hi:.3f`].
# - **LSTM, validation.** "Run (a) has the best validation loss": {glue:md}`tc_lstm_valid`. Best
#   validation losses {glue:text}`tc_lstm_valid_clip_lr30:.3f` (perplexity
#   {glue:text}`tc_lstm_ppl_clip_lr30:.0f`), {glue:text}`tc_lstm_valid_noclip_lr2:.3f`
#   ({glue:text}`tc_lstm_ppl_noclip_lr2:.0f`) for (b), {glue:text}`tc_lstm_valid_clip_lr2:.3f`
#   ({glue:text}`tc_lstm_ppl_clip_lr2:.0f`) for (c); over the last epochs (a) minus the best
#   other is {glue:text}`tc_lstm_valid_diff:.3f` [{glue:text}`tc_lstm_valid_lo:.3f`, {glue:text}`tc_lstm_valid_hi:.3f`].
# - **ResNet, training speed.** "Clipped SGD (c) converges fastest": {glue:md}`tc_res_fast`. AUC
#   {glue:text}`tc_res_auc_clip_lr5:.3f`, against {glue:text}`tc_res_auc_momentum:.3f` with
#   momentum (a) and {glue:text}`tc_res_auc_noclip_lr1:.3f` for (b); difference to the best other
#   {glue:text}`tc_res_fast_diff:.3f` [{glue:text}`tc_res_fast_lo:.3f`, {glue:text}`tc_res_fast_hi:.3f`].
# - **ResNet, test accuracy.** "Clipped SGD matches momentum SGD": {glue:md}`tc_res_acc`. Final
#   accuracies {glue:text}`tc_res_acc_clip_lr5:.1f`% (clipped) and
#   {glue:text}`tc_res_acc_momentum:.1f`% (momentum), unclipped (b) {glue:text}`tc_res_acc_noclip_lr1:.1f`%;
#   the difference of the last-epoch means is {glue:text}`tc_res_acc_diff_pct:.1f` points
#   [{glue:text}`tc_res_acc_lo_pct:.1f`, {glue:text}`tc_res_acc_hi_pct:.1f`]. For scale: the largest
#   change of a run's test accuracy from one epoch to the next is {glue:text}`tc_swing:.1f` points.
#
# These are the numbers of this profile, {glue:text}`tc_epochs:.0f` epochs on
# {glue:md}`tc_dataset`. The paper's {glue:text}`tc_paper_acc:.1f`% after 200 CIFAR-10 epochs is
# {glue:md}`tc_vs_paper` here (only CIFAR-10 can test it; the best mean accuracy of the last
# epochs here is {glue:text}`tc_best_acc:.1f`%). The `paper` profile runs the authors' setting.
