"""Tests of clipcore.training.presets: every run of every experiment at every profile's
scale, the authors' settings, and the per-profile checkpoint cadence."""

from __future__ import annotations

import pytest

from clipcore import smoothness as S
from clipcore.profiles import PROFILES
from clipcore.training import CHECKPOINT_EVERY, EXPERIMENTS, SCALES, experiment_configs, preset


def test_presets_cover_every_run_and_profile():
    for exp, runs in EXPERIMENTS.items():
        for run in runs:
            for profile in SCALES:
                cfg = preset(exp, run, profile)
                assert cfg.experiment == exp and cfg.name == run
                assert cfg.probe_every and set(cfg.estimators) == set(S.ESTIMATORS)
    clip = preset("lstm_ptb", "clip_lr30", "paper")
    # The authors' released AWD-LSTM setting for the smoothness runs (Zhang et al., ICLR 2020).
    assert (clip.lr, clip.max_norm, clip.optimizer) == (30.0, 0.25, "clipped_sgd")
    assert (clip.emb_size, clip.hidden_size, clip.n_layers, clip.batch_size) == (200, 512, 2, 256)
    assert (clip.bptt, clip.random_bptt, clip.epochs, clip.lr_halve_patience) == (70, True, 150, 5)
    assert (clip.alpha, clip.beta_tar, clip.seed, clip.train_fraction) == (2.0, 1.0, 1111, 1.0)
    noclip = preset("lstm_ptb", "noclip_lr2", "paper")
    assert (noclip.optimizer, noclip.lr, noclip.max_norm) == ("sgd", 2.0, None)
    assert preset("lstm_ptb", "clip_lr2", "ci").max_norm == 0.25
    mom = preset("resnet_images", "momentum", "paper")
    assert (mom.lr, mom.momentum, mom.weight_decay, mom.batch_size, mom.epochs, mom.depth) == (
        0.1,
        0.9,
        5e-4,
        128,
        200,
        20,
    )
    c5 = preset("resnet_images", "clip_lr5", "ci", seed=7)
    assert (c5.lr, c5.max_norm, c5.momentum, c5.seed) == (5.0, 0.25, 0.0, 7)
    with pytest.raises(ValueError, match="nope"):
        preset("lstm_ptb", "nope")
    with pytest.raises(ValueError, match="huge"):
        preset("lstm_ptb", "clip_lr30", "huge")
    with pytest.raises(ValueError, match="bogus"):
        preset("lstm_ptb", "clip_lr30", "ci", bogus=1)


def test_scales_and_checkpoint_cadence_cover_the_profiles():
    assert list(SCALES) == list(CHECKPOINT_EVERY) == list(PROFILES)
    assert CHECKPOINT_EVERY == {"smoke": 2, "ci": 10, "paper": 500}


@pytest.mark.parametrize("profile", ["smoke", "ci", "paper"])
def test_preset_sets_the_profiles_checkpoint_cadence(profile):
    # The command line and the pages both ask preset: they train the same runs.
    for exp, runs in EXPERIMENTS.items():
        for run in runs:
            assert preset(exp, run, profile).checkpoint_every == CHECKPOINT_EVERY[profile]
    assert preset("lstm_ptb", "clip_lr30", profile, checkpoint_every=None).checkpoint_every is None


def test_experiment_configs_share_one_checkpoint_setting():
    cfgs = experiment_configs("resnet_images", "ci", device="cpu")
    assert list(cfgs) == ["momentum", "noclip_lr1", "clip_lr5"]
    assert {c.checkpoint_every for c in cfgs.values()} == {CHECKPOINT_EVERY["ci"]}
    assert all(c.device == "cpu" for c in cfgs.values())
    assert experiment_configs("lstm_ptb", "smoke", epochs=1)["clip_lr30"].epochs == 1
    assert cfgs == {r: preset("resnet_images", r, "ci", device="cpu") for r in cfgs}
    with pytest.raises(ValueError, match="huge"):
        experiment_configs("lstm_ptb", "huge")
    with pytest.raises(ValueError, match="mlp"):
        experiment_configs("mlp", "ci")
