r"""The runs of the chapter *Clipping today*: the clipping methods in use today, side by side
on the LSTM and image tasks, each with a small grid of its own hyper-parameter.

:data:`METHODS` names each method, its settings on each task and the grid of the one
hyper-parameter the chapter searches (the threshold of a clipping rule, the percentile of
AutoClip, the z-score of ZClip, the learning rate of plain SGD and the step length of
normalized SGD with momentum). :data:`SCALES` sets each task's size per profile and
:data:`SEEDS` the seeds: the grid is searched on the first seed, the chosen value is trained
on all of them (:func:`comparison_config` builds one run's config). No momentum and no weight
decay anywhere (two methods keep an average of their own), so the methods differ only in how
they scale the gradient step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..profiles import PROFILES, check_profile
from . import presets
from .config import TrainConfig

__all__ = [
    "Method",
    "METHODS",
    "METHOD_NAMES",
    "TASKS",
    "SCALES",
    "SEEDS",
    "grid",
    "comparison_config",
    "run_name",
]

TASKS = ("lstm_ptb", "resnet_images")


@dataclass(frozen=True)
class Method:
    """One method of the comparison: ``label`` for the page, ``param`` the config key of the
    hyper-parameter searched over ``grid[task]``, ``settings[task]`` the rest of its config,
    ``adaptive`` whether its threshold adapts during training."""

    name: str
    label: str
    param: str
    symbol: str
    grid: dict[str, tuple[float, ...]]
    settings: dict[str, dict[str, Any]]
    adaptive: bool = False


def _both(**kw) -> dict[str, dict[str, Any]]:
    return {task: dict(kw) for task in TASKS}


# Learning rates: the clipping methods run at the papers' clipped learning rates (LSTM 30,
# ResNet 5); ZClip, which does not bound the step between spikes and in its warm-up, at the
# largest learning rate of plain SGD's grid. Thresholds: the small LSTM's gradient norms are
# about 0.15 (the paper-size model's start near 3.5), the ResNet's about 1.
_LR_CLIP = {"lstm_ptb": 30.0, "resnet_images": 5.0}
_LR_SGD = {"lstm_ptb": (3.0, 10.0, 30.0), "resnet_images": (0.1, 0.3, 1.0)}
_GAMMAS = {"lstm_ptb": (0.03, 0.1, 0.3), "resnet_images": (0.1, 0.25, 1.0)}

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "sgd",
            "SGD, no clipping",
            "lr",
            r"\eta",
            _LR_SGD,
            _both(optimizer="sgd", max_norm=None),
        ),
        Method(
            "clipped",
            "clipped SGD (fixed threshold)",
            "max_norm",
            r"\gamma",
            _GAMMAS,
            {t: dict(optimizer="clipped_sgd", lr=_LR_CLIP[t]) for t in TASKS},
        ),
        Method(
            "agc",
            "AGC (unit-wise)",
            "agc_clipping",
            r"\lambda",
            {t: (0.01, 0.04, 0.16) for t in TASKS},
            {t: dict(optimizer="sgd", max_norm=None, clipper="agc", lr=_LR_CLIP[t]) for t in TASKS},
            adaptive=True,
        ),
        Method(
            "autoclip",
            "AutoClip",
            "autoclip_percentile",
            "p",
            {t: (10.0, 25.0, 50.0) for t in TASKS},
            {t: dict(optimizer="sgd", max_norm=None, clipper="autoclip", lr=_LR_CLIP[t]) for t in TASKS},
            adaptive=True,
        ),
        Method(
            "zclip",
            "ZClip",
            "zclip_z",
            r"z_{\mathrm{thres}}",
            {t: (1.5, 2.5, 3.5) for t in TASKS},
            {
                t: dict(optimizer="sgd", max_norm=None, clipper="zclip", lr=_LR_SGD[t][-1], zclip_warmup=10)
                for t in TASKS
            },
            adaptive=True,
        ),
        Method(
            "smoothed",
            "smoothed clipping",
            "L1",
            "L_1",
            # L0 = 1: the step lr g / (1 + L1 |g|) has the two regimes of clipped SGD, lr |g|
            # for small gradients and lr / L1 for large ones; its threshold L0 / L1 is 1 / L1.
            {"lstm_ptb": (3.0, 10.0, 30.0), "resnet_images": (1.0, 4.0, 10.0)},
            {t: dict(optimizer="smoothed_clipped_sgd", max_norm=None, lr=_LR_CLIP[t], L0=1.0) for t in TASKS},
        ),
        Method(
            "nmsgd",
            "normalized SGD with momentum",
            "lr",
            r"\eta",
            {"lstm_ptb": (0.3, 1.0, 3.0), "resnet_images": (0.3, 1.0, 3.0)},
            _both(optimizer="normalized_momentum_sgd", max_norm=None, avg_beta=0.9),
        ),
        Method(
            "mixed",
            "mixed clipping",
            "max_norm",
            r"\gamma",
            _GAMMAS,
            {t: dict(optimizer="mixed_clipped_sgd", lr=_LR_CLIP[t], avg_beta=0.9, nu=0.5) for t in TASKS},
        ),
    )
}
METHOD_NAMES = tuple(METHODS)

# Each task's size per profile. `ci`: the LSTM (2 layers, embedding 16, hidden 32, tied
# decoder) reads 6,400 tokens of PTB three times (40 steps of batch 8 and BPTT 20 an epoch,
# 120 steps); the ResNet-8 of width 8 reads 384 images five times (60 steps of batch 32).
# Step probes (the corrected estimator on the step's own batch) every 3 steps; no pinned
# probes. `paper` keeps the smoothness chapters' paper scale.
_LSTM_CI = dict(
    emb_size=16,
    hidden_size=32,
    n_layers=2,
    bptt=20,
    batch_size=8,
    eval_batch_size=16,
    train_fraction=0.0069,
    eval_fraction=0.02,
    epochs=3,
    lr_halve_patience=None,
    step_probe_every=3,
)
_IMAGES_CI = dict(
    dataset="auto",
    depth=8,
    width=8,
    n_train=384,
    n_test=256,
    batch_size=32,
    eval_batch_size=256,
    epochs=5,
    augment=True,
    step_probe_every=3,
)


def _paper_scale(task: str, step_probe_every: int) -> dict:
    """The smoothness chapters' `paper` scale of ``task`` without their seed and pinned
    probes, with step probes every ``step_probe_every`` steps."""
    drop = ("seed", "probe_every", "step_probe_every", "probe_fraction", "probe_chunks", "power_iters")
    scale = {k: v for k, v in presets.SCALES["paper"][task].items() if k not in drop}
    return dict(scale, step_probe_every=step_probe_every)


SCALES: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "lstm_ptb": dict(
            _LSTM_CI,
            emb_size=8,
            hidden_size=16,
            bptt=8,
            batch_size=4,
            train_fraction=0.0003,
            eval_fraction=0.002,
            epochs=2,
            step_probe_every=2,
        ),
        "resnet_images": dict(
            _IMAGES_CI,
            dataset="digits",
            width=4,
            n_train=64,
            n_test=32,
            batch_size=16,
            eval_batch_size=32,
            epochs=2,
            step_probe_every=2,
        ),
    },
    "ci": {"lstm_ptb": _LSTM_CI, "resnet_images": _IMAGES_CI},
    "paper": {
        "lstm_ptb": _paper_scale("lstm_ptb", step_probe_every=5),
        "resnet_images": _paper_scale("resnet_images", step_probe_every=25),
    },
}
# The grid is searched on the first seed; the chosen value is trained on every seed. `smoke`
# searches the two ends of each grid, on one seed.
SEEDS = {"smoke": (0,), "ci": (0, 1, 2), "paper": (0, 1, 2, 3, 4)}
assert set(SCALES) == set(SEEDS) == set(PROFILES)


def grid(method: str, task: str, profile: str) -> tuple[float, ...]:
    """The values of ``method``'s hyper-parameter searched on ``task`` at ``profile``."""
    values = METHODS[method].grid[task]
    return (values[0], values[-1]) if profile == "smoke" else values


def run_name(method: str, value: float) -> str:
    """``"clipped_max_norm0.25"``: the run's label in the store."""
    return f"{method}_{METHODS[method].param}{value:g}"


def comparison_config(
    task: str, method: str, value: float, profile: str, seed: int = 0, **overrides
) -> TrainConfig:
    """The config of ``method`` on ``task`` with its hyper-parameter at ``value``, at
    ``profile`` scale and ``seed`` (then ``overrides``: device, data_dir, ...)."""
    if task not in TASKS:
        raise ValueError(f"Invalid task: {task!r} (choose from {', '.join(TASKS)})")
    if method not in METHODS:
        raise ValueError(f"Invalid method: {method!r} (choose from {', '.join(METHODS)})")
    check_profile(profile)
    m = METHODS[method]
    d = dict(experiment=task, name=run_name(method, value), seed=seed, probe_every=None)
    d.update(SCALES[profile][task])
    d.update(m.settings[task])
    d[m.param] = value
    if overrides.get("data_dir") is not None:
        overrides["data_dir"] = str(overrides["data_dir"])
    d.update(overrides)
    return TrainConfig.from_dict(d)
