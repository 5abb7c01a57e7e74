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
# # Angles between batch gradients and the full gradient
#
# {cite:t}`qian2021understanding` explain the bias of clipped incremental methods through the
# angles between component gradients and the full gradient (the chapter on incremental
# methods), and state (claim C3) that **these angles shrink as the batch size grows**. This
# page measures them on the real networks of the previous pages, at two points of the clipped
# runs: the LSTM trained with learning rate 30 and clipping, and the ResNet trained with
# learning rate 5 and clipping.
#
# **Measurement.** Take N fixed training examples with per-example gradients $g_i$ and the
# full gradient $\bar g = \frac1N\sum_i g_i$. Shuffle them, cut them into
# $\lfloor N/B\rfloor$ disjoint batches of size B (sampling without replacement; more
# shuffles are added while there are fewer than `min_batches` batches), and record, for each
# batch gradient $\bar g_b = \frac1B\sum_{i\in b} g_i$, the angle
# $\theta_b = \arccos\bigl(\langle\bar g_b, \bar g\rangle/(\|\bar g_b\|\|\bar g\|)\bigr)$.
# Per-example gradients come from `torch.func` (`vmap` over `grad`) and are streamed into the
# batch sums, never held all at once.
#
# **Prediction** (derived for this project): sampling without replacement gives
# $\mathbb E\|\bar g_b\|^2 = \|\bar g\|^2 + \sigma^2\frac{N-B}{B(N-1)}$ with
# $\sigma^2 = \frac1N\sum_i\|g_i - \bar g\|^2$, hence
#
# $$\cos\theta \approx \frac{\|\bar g\|}{\sqrt{\|\bar g\|^2 + \sigma^2\frac{N-B}{B(N-1)}}},$$
#
# a ratio of means standing in for a mean of ratios.
#
# **Examples and checkpoints.** For the LSTM an example is one sequence of BPTT length from
# the start of the training stream, run from a zero hidden state, with the training objective
# (cross-entropy plus the AR/TAR penalties). For the ResNet it is one training image without
# augmentation, with BatchNorm in evaluation mode (fixed statistics, so that the objective is a
# sum over examples). The two points are the initial parameters, re-created from the run's seed
# (BatchNorm statistics recomputed on the examples), and the last checkpoint the run store
# keeps.

# %% tags=["parameters"]
profile = "ci"  # smoke, ci or paper: the scale of the runs and of every count below (book/params.yml)
device = "auto"  # auto, cpu, cuda, cuda:N or mps: where the gradients are computed
seed = 0  # seeds the shuffles into batches
data_dir = None  # a folder with PTB and CIFAR-10 (None: the installed PTB and Fashion-MNIST)
results_dir = "results"  # the run store of the smoothness pages (a missing run is trained)
n_sequences = 256  # > 0: LSTM examples (sequences of BPTT length)
n_images = 1024  # > 0: ResNet examples
batch_sizes = [1, 4, 16, 64, 128]  # > 0: each must be smaller than both example counts
min_batches = 16  # > 0: shuffle again until every batch size has at least this many batches
chunk_size = 32  # > 0: examples per vmap call (memory knob)
angle_tol = 0.1  # > 0: largest acceptable relative error of the measured mean cosine against the prediction

# %% tags=["hide-cell"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from clipcore.angles import measure_angles
from clipcore.claims import decide
from clipcore.models import recalibrate_batchnorm
from clipcore.pages import glue_claim, glue_number, glue_text, glue_verdict, show_figure, show_table
from clipcore.plots import use_book_style
from clipcore.profiles import check_profile
from clipcore.runtime import resolve_device, seed_everything
from clipcore.studies import checkpoint_model, load_runs
from clipcore.training.tasks import build_model, example_loss, examples

check_profile(profile)
use_book_style()
_ = seed_everything(seed)
dev = resolve_device(device)
lstm = load_runs("lstm_ptb", profile, results_dir, runs=["clip_lr30"], device=device, data_dir=data_dir)[
    "clip_lr30"
]
resnet = load_runs(
    "resnet_images", profile, results_dir, runs=["clip_lr5"], device=device, data_dir=data_dir
)["clip_lr5"]

x_seq, y_seq = examples(lstm.config, n_sequences, dev)
x_img, y_img = examples(resnet.config, n_images, dev)
dataset = resnet.run.meta["dataset"]  # clipcore.data.ImageData.name: says when it is a stand-in
total_steps = {r.name: int(r.run.table("metrics")["step"].max()) for r in (lstm, resnet)}

results, measured = {}, []
for key, r, x, y in (("LSTM", lstm, x_seq, y_seq), ("ResNet", resnet, x_img, y_img)):
    final, step = checkpoint_model(r.run, r.config, dev)
    init = build_model(r.config, dev)
    if key == "ResNet":
        recalibrate_batchnorm(init, x)
    for point, model in (("initial", init), (f"step {step} of {total_steps[r.name]}", final)):
        ex = example_loss(r.config, model)
        m = measure_angles(
            ex.loss,
            ex.params,
            x,
            y,
            batch_sizes,
            min_batches=min_batches,
            chunk_size=chunk_size,
            seed=seed,
            batch_loss=ex.batch_loss,
        )
        results[(key, point)] = m
        measured.append(
            dict(
                model=key,
                point=point,
                source="trained now" if r.trained else "run store",
                N=m.n_examples,
                P=m.n_params,
                g=np.sqrt(m.mean_sq_norm),
                sigma=np.sqrt(m.sigma2),
                check=m.mean_check,
                seconds=m.seconds,
            )
        )

# %% tags=["remove-input"]
show_table(
    measured,
    {
        "model": "model",
        "point": "point",
        "source": "run",
        "N": "examples",
        "P": "parameters",
        "g": "$\\|\\nabla F\\|$",
        "sigma": "$\\sigma$",
        "check": "mean check",
        "seconds": "seconds",
    },
    formats={"check": ".1e", "seconds": ".1f"},
    caption="Where the angles were measured: the per-example gradients of each model.",
)

# %% [markdown]
# ## Angle distributions against the batch size
#
# Boxes show the quartiles and whiskers the 5th–95th percentiles of the angles at each B; the
# dashed line is the predicted angle $\arccos$ of the formula above.

# %% tags=["hide-input"]
fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), layout="constrained", sharex=True)
Bs = np.asarray(batch_sizes, float)
Bf = np.geomspace(Bs.min(), Bs.max(), 200)
for ax, ((key, point), m) in zip(axes.ravel(), results.items()):
    ax.boxplot(
        [m.angles(B) for B in batch_sizes],
        positions=Bs,
        widths=Bs * 0.35,
        whis=(5, 95),
        showfliers=False,
        manage_ticks=False,
    )
    ax.plot(Bs, m.median_angles(), "o", color="C0", ms=4, label="median angle")
    ax.plot(Bf, np.degrees(np.arccos(m.predicted(Bf))), "k--", label="prediction")
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    name = f"LSTM on {lstm.run.meta['dataset']}" if key == "LSTM" else f"ResNet on {dataset}"
    ax.set_title(f"{name}, {point}", fontsize=9)
    ax.set_ylabel("angle to the full gradient (degrees)")
for ax in axes[1]:
    ax.set_xlabel("batch size B")
axes[0, 0].legend(fontsize=8)
angle_rows = pd.DataFrame(
    [
        dict(model=key, point=point, B=B, median_angle_deg=a, mean_cos=c, predicted_cos=p)
        for (key, point), m in results.items()
        for B, a, c, p in zip(batch_sizes, m.median_angles(), m.mean_cosines(), m.predicted())
    ]
)
show_figure("ab_angles", fig, angle_rows)

# %% [markdown]
# :::{glue:figure} ab_angles
# :name: fig-ab-angles
#
# Angles between mini-batch gradients and the full gradient against the batch size, for the
# LSTM (top) and the ResNet (bottom), at initialisation (left) and at the end of the clipped run
# (right): quartile boxes, 5–95% whiskers, medians (dots) and the prediction (dashed).
# {glue:md}`ab_angles_csv:myst`
# :::

# %% tags=["remove-input"]
show_table(
    angle_rows,
    {
        "model": "model",
        "point": "point",
        "B": "$B$",
        "median_angle_deg": "median angle (°)",
        "mean_cos": "mean cosine",
        "predicted_cos": "predicted cosine",
    },
    formats={"median_angle_deg": ".1f", "mean_cos": ".3f", "predicted_cos": ".3f"},
    caption="The angles of the figure above, per model, point and batch size.",
)

# %% [markdown]
# ## Verdicts

# %% tags=["hide-cell"]
decreasing = {k: bool(np.all(np.diff(m.median_angles()) < 0)) for k, m in results.items()}
rho = {k: spearmanr(batch_sizes, m.median_angles())[0] for k, m in results.items()}
# Relative error of the mean cosine against the prediction, and the relative standard error
# of that mean (its sampling spread over the batches): the tolerance is decidable only when
# the spread is below it.
rel_err = {k: np.abs(m.mean_cosines() / m.predicted() - 1) for k, m in results.items()}
rel_se = {
    k: np.array([np.std(m.cosines[B], ddof=1) / np.sqrt(m.cosines[B].size) for B in m.batch_sizes])
    / np.abs(m.predicted())
    for k, m in results.items()
}
dev_pred = {k: float(np.max(v)) for k, v in rel_err.items()}
worst = max(dev_pred, key=dev_pred.get)
spread = float(max(np.max(v) for v in rel_se.values()))
glue_verdict(
    "ab_decrease",
    all(decreasing.values()),
    "decreases strictly with B at all four points (Spearman correlation of B and the median angle: -1)",
    "does not decrease strictly with B at every point",
)
glue_claim(
    "ab_c3_angles_shrink",
    paper="qian2021",
    where="claim C3",
    statement="the angles between mini-batch gradients and the full gradient shrink as the batch size grows"
    " (LSTM and ResNet, at initialisation and after training)",
    status=decide(all(decreasing.values())),
    evidence={
        "points_decreasing": sum(decreasing.values()),
        "points": len(decreasing),
        "max_spearman_B_vs_median_angle": max(rho.values()),
    },
    profile=profile,
)
glue_number("ab_spread", spread)
glue_claim(
    "ab_c3_prediction",
    paper="qian2021",
    where="claim C3 (without-replacement prediction)",
    statement="the mean cosine at each batch size matches the prediction from the per-example variance",
    status=decide(dev_pred[worst] <= angle_tol, decidable=spread < angle_tol),
    evidence={
        "max_relative_error": dev_pred[worst],
        "tolerance": angle_tol,
        "max_relative_standard_error": spread,
    },
    profile=profile,
)
glue_number("ab_n_decrease", sum(decreasing.values()))
glue_number("ab_rho_max", max(rho.values()))
glue_number("ab_dev", dev_pred[worst])
glue_text("ab_worst", f"{worst[0]}, {worst[1]}")
glue_number("ab_tol", angle_tol)
glue_verdict("ab_match", dev_pred[worst] <= angle_tol, "within", "outside")
m_small = {k: m.median_angles()[0] for k, m in results.items()}
m_large = {k: m.median_angles()[-1] for k, m in results.items()}
glue_number("ab_min_small", min(m_small.values()))
glue_number("ab_max_large", max(m_large.values()))
glue_text("ab_Bmin", f"{batch_sizes[0]}")
glue_text("ab_Bmax", f"{batch_sizes[-1]}")
glue_number("ab_N_seq", n_sequences)
glue_number("ab_N_img", n_images)
var_ratio = glue_number("ab_var_ratio", min(m.sigma2 / m.mean_sq_norm for m in results.values()))
_ = glue_verdict(
    "ab_var_big",
    var_ratio > 1,
    "single examples say little about the full gradient",
    "single examples already point roughly along the full gradient",
)

# %% [markdown]
# - **Claim C3** ({glue:md}`ab_c3_angles_shrink`). The median angle {glue:md}`ab_decrease` ({glue:text}`ab_n_decrease:.0f` of 4
#   points decrease strictly; the largest Spearman correlation between B and the median angle
#   is {glue:text}`ab_rho_max:.2f`). At B = {glue:md}`ab_Bmin` the median angles are at least
#   {glue:text}`ab_min_small:.0f`°; at B = {glue:md}`ab_Bmax` at most
#   {glue:text}`ab_max_large:.0f`°, with N = {glue:text}`ab_N_seq:.0f` sequences and
#   N = {glue:text}`ab_N_img:.0f` images.
# - **Prediction** ({glue:md}`ab_c3_prediction`). The largest relative error of the measured mean
#   cosine against the prediction is {glue:text}`ab_dev:.3f` (at {glue:md}`ab_worst`),
#   {glue:md}`ab_match` the stated tolerance of {glue:text}`ab_tol:.2f`; the largest relative
#   standard error of a measured mean cosine is {glue:text}`ab_spread:.3f` (the verdict is
#   inconclusive when that spread is not below the tolerance).
#
# At every point the per-example variance $\sigma^2$ is at least {glue:text}`ab_var_ratio:.3g`
# times $\|\bar g\|^2$: {glue:md}`ab_var_big`. The larger that ratio, the more clipping each
# component (Qian et al.'s incremental setting) can distort the direction, and the more larger
# batches help.
