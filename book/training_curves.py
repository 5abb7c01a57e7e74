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
# Figure 4 of Zhang et al. shows what the runs of the two previous pages achieve: (a) the
# LSTM's training loss and (b) its validation loss, (c) the ResNet's training loss and (d) its
# test accuracy. The paper's claims:
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
# gets low early and stays low wins. "Best validation loss" is the lowest validation loss over
# the epochs. "Matches the test accuracy" means a final test accuracy at most
# {glue:text}`tc_acc_tol_pct:.1f` percentage points below momentum SGD's.

# %% tags=["parameters"]
profile = "ci"
device = "auto"
seed = 0
data_dir = None
results_dir = "results"
smooth_window = 20  # > 0: steps in the running mean of the plotted training losses
tail = 0.1  # in (0, 1]: fraction of the last steps averaged into the final training loss
acc_tol = 0.02  # in [0, 1): largest accuracy deficit of clipped SGD against momentum that counts as a match

# %%
import matplotlib.pyplot as plt
import numpy as np

from clipcore.pages import glue_number, glue_text, glue_verdict
from clipcore.plots import format_table
from clipcore.profiles import check_profile
from clipcore.runtime import seed_everything
from clipcore.studies import load_runs, running_mean, training_summary

check_profile(profile)
seed_everything(seed)
glue_number("tc_acc_tol_pct", 100 * acc_tol)

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
for exp, rs in runs.items():
    for name, r in rs.items():
        print(
            f"{exp}/{name}: {'trained by this page' if r.trained else 'loaded from the store'}, {r.run.path}"
        )
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
# Here {glue:md}`tc_source`.
#
# ## Figure 4

# %%
fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), layout="constrained")
for exp, row in (("lstm_ptb", 0), ("resnet_images", 1)):
    ax = axes[row, 0]
    for i, (name, r) in enumerate(runs[exp].items()):
        m = r.run.table("metrics")
        ax.plot(m["step"], m["loss"], color=f"C{i}", alpha=0.2, lw=0.6)
        ax.plot(m["step"], running_mean(m["loss"], smooth_window), color=f"C{i}", label=panel[exp][name])
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=8)
    ax = axes[row, 1]
    split, col = ("valid", "loss") if exp == "lstm_ptb" else ("test", "accuracy")
    for i, (name, r) in enumerate(runs[exp].items()):
        ev = r.run.table("eval")
        sel = ev["split"] == split
        ax.plot(ev["epoch"][sel], ev[col][sel], "o-", color=f"C{i}", label=panel[exp][name])
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss" if exp == "lstm_ptb" else "test accuracy")
    ax.legend(fontsize=8)
axes[0, 0].set_title(f"(a) LSTM on {ptb}: training loss", fontsize=10)
axes[0, 1].set_title(f"(b) LSTM on {ptb}: validation loss", fontsize=10)
axes[1, 0].set_title(f"(c) ResNet on {dataset}: training loss", fontsize=10)
axes[1, 1].set_title(f"(d) ResNet on {dataset}: test accuracy", fontsize=10)
plt.show()

# %% [markdown]
# Faint lines are the per-step losses, solid lines their running mean over
# {glue:text}`tc_window:.0f` steps. The numbers behind the verdicts:

# %%
glue_number("tc_window", smooth_window)
for exp in runs:
    rows = [dict(run=panel[exp][name], **s) for name, s in summary[exp].items()]
    cols = ["run", "steps", "auc", "final_train"] + (
        ["best_valid", "final_valid", "final_test"]
        if exp == "lstm_ptb"
        else ["best_test_accuracy", "final_test_accuracy"]
    )
    print(f"--- {exp}")
    print(format_table(rows, cols, fmt=".4g"))

# %% [markdown]
# ## Verdicts

# %%
L, R = summary["lstm_ptb"], summary["resnet_images"]
lstm_fast = min(L, key=lambda n: L[n]["auc"])
lstm_valid = min(L, key=lambda n: L[n]["best_valid"])
res_fast = min(R, key=lambda n: R[n]["auc"])
acc_clip, acc_mom = R["clip_lr5"]["final_test_accuracy"], R["momentum"]["final_test_accuracy"]
glue_verdict(
    "tc_lstm_fast",
    lstm_fast == "clip_lr30",
    "trains fastest",
    f"does not train fastest (run {panel['lstm_ptb'][lstm_fast]} does)",
)
glue_verdict(
    "tc_lstm_valid",
    lstm_valid == "clip_lr30",
    "reaches the best validation loss",
    f"does not reach the best validation loss (run {panel['lstm_ptb'][lstm_valid]} does)",
)
glue_verdict(
    "tc_res_fast",
    res_fast == "clip_lr5",
    "converges fastest in training loss",
    f"does not converge fastest in training loss (run {panel['resnet_images'][res_fast]} does)",
)
glue_verdict("tc_res_acc", acc_clip >= acc_mom - acc_tol, "matches (or exceeds)", "falls short of")
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
best_acc = glue_number("tc_best_acc", 100 * max(s["final_test_accuracy"] for s in R.values()))
glue_verdict(
    "tc_vs_paper",
    best_acc >= 95.2 - 100 * acc_tol,
    "within the tolerance of the paper's number",
    "far below the paper's number",
)
print(
    f"LSTM fastest: {lstm_fast}; best validation: {lstm_valid}; ResNet fastest: {res_fast}; "
    f"accuracy clip {acc_clip:.3f} vs momentum {acc_mom:.3f}"
)

# %% [markdown]
# - **LSTM, training speed.** Run (a) (learning rate 30, clipped) {glue:md}`tc_lstm_fast`:
#   its training-loss AUC is {glue:text}`tc_lstm_auc_clip_lr30:.3f`, against
#   {glue:text}`tc_lstm_auc_noclip_lr2:.3f` for (b) and {glue:text}`tc_lstm_auc_clip_lr2:.3f`
#   for (c).
# - **LSTM, validation.** Run (a) {glue:md}`tc_lstm_valid`: best validation loss
#   {glue:text}`tc_lstm_valid_clip_lr30:.3f` (perplexity {glue:text}`tc_lstm_ppl_clip_lr30:.0f`),
#   against {glue:text}`tc_lstm_valid_noclip_lr2:.3f` ({glue:text}`tc_lstm_ppl_noclip_lr2:.0f`)
#   for (b) and {glue:text}`tc_lstm_valid_clip_lr2:.3f` ({glue:text}`tc_lstm_ppl_clip_lr2:.0f`)
#   for (c).
# - **ResNet, training speed.** Clipped SGD (c) {glue:md}`tc_res_fast`: AUC
#   {glue:text}`tc_res_auc_clip_lr5:.3f`, against {glue:text}`tc_res_auc_momentum:.3f` with
#   momentum (a) and {glue:text}`tc_res_auc_noclip_lr1:.3f` for (b).
# - **ResNet, test accuracy.** Clipped SGD's final test accuracy,
#   {glue:text}`tc_res_acc_clip_lr5:.1f`%, {glue:md}`tc_res_acc` momentum SGD's
#   {glue:text}`tc_res_acc_momentum:.1f`% by the stated criterion (at most
#   {glue:text}`tc_acc_tol_pct:.1f` points below it); unclipped (b) ends at
#   {glue:text}`tc_res_acc_noclip_lr1:.1f`%. For scale: the largest change of a run's test
#   accuracy from one epoch to the next is {glue:text}`tc_swing:.1f` points.
#
# These are the numbers of this profile, {glue:text}`tc_epochs:.0f` epochs on
# {glue:md}`tc_dataset`, not the 200 CIFAR-10 epochs behind the paper's 95.2%: the best final
# accuracy here, {glue:text}`tc_best_acc:.1f`%, is {glue:md}`tc_vs_paper`, and the comparison
# is between the runs of this profile. The `paper` profile runs the authors' setting.
