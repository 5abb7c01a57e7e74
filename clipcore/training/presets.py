"""The runs of the experiment chapters at three scales: the one table that pages and the
command line both ask for a run (:func:`preset`).

:data:`EXPERIMENTS` names the runs of each experiment (the panels of Figs. 2-4 of Zhang, He,
Sra, Jadbabaie, ICLR 2020); :data:`SCALES` sets each experiment's size per profile
(:data:`clipcore.profiles.PROFILES`); :data:`CHECKPOINT_EVERY` is the per-profile checkpoint
cadence, housekeeping that keeps a checkpoint near each run's end (the angle page measures at
it) and never enters a run's identity.
"""

from __future__ import annotations

from typing import Any

from ..profiles import DEFAULT_PROFILE, PROFILES, check_profile
from .config import TrainConfig

__all__ = ["EXPERIMENTS", "SCALES", "SEEDS", "CHECKPOINT_EVERY", "preset", "experiment_configs"]

# The runs of Figs. 2-4 of Zhang et al. (ICLR 2020). ResNet: weight decay 5e-4 of the baseline is kept in all
# three runs; only the momentum run uses momentum.
EXPERIMENTS: dict[str, dict[str, dict[str, Any]]] = {
    "lstm_ptb": {
        "clip_lr30": dict(optimizer="clipped_sgd", lr=30.0, max_norm=0.25),
        "noclip_lr2": dict(optimizer="sgd", lr=2.0, max_norm=None),
        "clip_lr2": dict(optimizer="clipped_sgd", lr=2.0, max_norm=0.25),
    },
    "resnet_images": {
        "momentum": dict(optimizer="sgd", lr=0.1, max_norm=None, momentum=0.9, weight_decay=5e-4),
        "noclip_lr1": dict(optimizer="sgd", lr=1.0, max_norm=None, weight_decay=5e-4),
        "clip_lr5": dict(optimizer="clipped_sgd", lr=5.0, max_norm=0.25, weight_decay=5e-4),
    },
}

# Scale of each experiment per profile. Two kinds of probes (clipcore.training.loop): the cheap
# `step` probe (the corrected estimator on the step's own batch, reusing its gradient: one more
# gradient evaluation) densely, and the pinned-data `faithful`, `fixed` and `hessian` probes
# sparsely (a converged Lanczos estimate costs 7-15 Hessian-vector products, each several steps).
# `paper` is the authors' setting (their released AWD-LSTM fork reduced for the smoothness runs;
# ResNet-20, batch 128, 200 epochs), step probes every step (LSTM; every 5th for the 78,000 ResNet
# steps), pinned probes every 100 steps. `ci` (real PTB and images) covers each run from
# initialisation on, where the gradient norm moves most, with a step probe at every one of its
# ~280 steps and 6 pinned probes; the LSTM's gradient norm falls from ~3.5 to ~0.1 in its first
# 40 steps. `smoke` takes a few seconds per run. The ResNet runs of `ci` probe one batch, so
# there `faithful` (no random lengths, one chunk) equals `fixed`.
SCALES: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "lstm_ptb": dict(
            emb_size=16,
            hidden_size=32,
            n_layers=2,
            bptt=10,
            batch_size=8,
            eval_batch_size=10,
            train_fraction=0.001,
            eval_fraction=0.01,
            epochs=2,
            lr_halve_patience=1,
            alpha=2.0,
            beta_tar=1.0,
            seed=1111,
            probe_every=4,
            step_probe_every=1,
            probe_fraction=0.1,
            probe_chunks=1,
            power_iters=2,
        ),
        "resnet_images": dict(
            dataset="digits",
            depth=8,
            width=4,
            n_train=128,
            n_test=64,
            batch_size=32,
            eval_batch_size=64,
            epochs=2,
            augment=True,
            seed=0,
            probe_every=2,
            step_probe_every=1,
            probe_fraction=0.1,
            probe_chunks=1,
            power_iters=2,
        ),
    },
    "ci": {
        "lstm_ptb": dict(
            emb_size=64,
            hidden_size=128,
            n_layers=2,
            bptt=35,
            batch_size=16,
            eval_batch_size=32,
            train_fraction=0.02,
            eval_fraction=0.1,
            epochs=8,
            lr_halve_patience=2,
            alpha=2.0,
            beta_tar=1.0,
            seed=1111,
            probe_every=50,
            step_probe_every=1,
            probe_fraction=0.1,
            probe_chunks=1,
            power_iters=16,
        ),
        "resnet_images": dict(
            dataset="auto",
            depth=8,
            width=16,
            n_train=1792,
            n_test=1000,
            batch_size=32,
            eval_batch_size=500,
            epochs=5,
            augment=True,
            seed=0,
            probe_every=50,
            step_probe_every=1,
            probe_fraction=0.1,
            probe_chunks=1,
            power_iters=16,
        ),
    },
    "paper": {
        "lstm_ptb": dict(
            emb_size=200,
            hidden_size=512,
            n_layers=2,
            bptt=70,
            batch_size=256,
            eval_batch_size=10,
            train_fraction=1.0,
            eval_fraction=1.0,
            epochs=150,
            lr_halve_patience=5,
            alpha=2.0,
            beta_tar=1.0,
            seed=1111,
            # Pinned probes on the first 2 chunks (35,840 tokens, 3.9% of train; the authors used
            # 10%) every 100 steps: cuDNN has no double backward, so a Hessian-vector product runs
            # on the native LSTM kernels at ~16 steps per chunk (H100, benchmarks/). With 5
            # products a run took 432-449 s on one H100 (before step probes); up to 20 products,
            # so that the Lanczos estimate converges, and a step probe at every step roughly
            # double that.
            probe_every=100,
            step_probe_every=1,
            probe_fraction=0.1,
            probe_chunks=2,
            power_iters=20,
        ),
        "resnet_images": dict(
            dataset="auto",
            depth=20,
            width=16,
            n_train=None,
            n_test=None,
            batch_size=128,
            eval_batch_size=1000,
            epochs=200,
            augment=True,
            seed=0,
            probe_every=100,
            step_probe_every=5,
            probe_fraction=0.1,
            probe_chunks=4,
            power_iters=20,
        ),
    },
}


# Seeds per setting of the smoothness chapters (clipcore.studies.smoothness_study): the preset's
# seed, then the next ones; their probe points are pooled. Two at ci (a run takes ~30-40 s on 2
# cores); one at paper scale, where a run takes GPU time.
SEEDS = {"smoke": 1, "ci": 2, "paper": 1}

# Steps between checkpoints, per profile. The store keeps the last checkpoint only; it is the
# trained point the angle page measures at.
CHECKPOINT_EVERY = {"smoke": 2, "ci": 10, "paper": 500}
assert set(SCALES) == set(CHECKPOINT_EVERY) == set(SEEDS) == set(PROFILES)


def preset(experiment: str, run: str, profile: str = DEFAULT_PROFILE, **overrides) -> TrainConfig:
    """The config of run ``run`` of ``experiment`` at ``profile`` scale: the profile's scale,
    then the run's settings, the profile's checkpoint cadence, then ``overrides``.

    >>> preset("lstm_ptb", "clip_lr30", "smoke").lr
    30.0
    """
    if experiment not in EXPERIMENTS:
        raise ValueError(f"Invalid experiment: {experiment!r} (choose from {', '.join(EXPERIMENTS)})")
    if run not in EXPERIMENTS[experiment]:
        raise ValueError(
            f"Invalid run: {run!r} for {experiment} (choose from {', '.join(EXPERIMENTS[experiment])})"
        )
    check_profile(profile)
    d = dict(experiment=experiment, name=run, checkpoint_every=CHECKPOINT_EVERY[profile])
    d.update(SCALES[profile][experiment])
    d.update(EXPERIMENTS[experiment][run])
    d.update(overrides)
    return TrainConfig.from_dict(d)


def experiment_configs(
    experiment: str, profile: str = DEFAULT_PROFILE, **overrides
) -> dict[str, TrainConfig]:
    """``{run name: TrainConfig}`` for every run of ``experiment`` at ``profile`` scale
    (:func:`preset` with ``overrides``), in the order of :data:`EXPERIMENTS` (panels (a), (b),
    (c) of the paper). ``data_dir`` may be a path; it is stored as a string."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"Invalid experiment: {experiment!r} (choose from {', '.join(EXPERIMENTS)})")
    if overrides.get("data_dir") is not None:
        overrides["data_dir"] = str(overrides["data_dir"])
    return {run: preset(experiment, run, profile, **overrides) for run in EXPERIMENTS[experiment]}
