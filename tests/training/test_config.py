"""Tests of clipcore.training.config: TrainConfig's validation, canonical types and the run's
identity (the config without the housekeeping keys)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from clipcore.training import HOUSEKEEPING, TrainConfig
from clipcore.training.store import config_hash

from .tiny import TINY_LSTM, TINY_RESNET, lstm_cfg, resnet_cfg


def test_from_dict_round_trip_and_canonical_types():
    cfg = lstm_cfg(lr=30, estimators=["fixed", "hessian"], probe_points=[0.25, 1])
    assert cfg.lr == 30.0 and isinstance(cfg.lr, float)
    assert cfg.estimators == ("fixed", "hessian") and cfg.probe_points == (0.25, 1.0)
    d = cfg.to_dict()
    assert d["estimators"] == ["fixed", "hessian"]
    assert TrainConfig.from_dict(d) == cfg
    assert set(d) == set(TrainConfig.keys())
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0


def test_unknown_keys_are_named():
    with pytest.raises(ValueError, match="bogus.*learning_rate|learning_rate.*bogus"):
        TrainConfig.from_dict({**TINY_LSTM, "learning_rate": 1.0, "bogus": 2})
    with pytest.raises(ValueError, match="lrr"):
        lstm_cfg().replace(lrr=1.0)


@pytest.mark.parametrize(
    "key, value",
    [
        ("lr", 0.0),
        ("lr", -1.0),
        ("lr", math.inf),
        ("lr", "fast"),
        ("max_norm", 0.0),
        ("max_norm", -0.25),
        ("momentum", 1.0),
        ("momentum", -0.1),
        ("weight_decay", -1e-4),
        ("batch_size", 0),
        ("batch_size", 2.5),
        ("eval_batch_size", 0),
        ("epochs", 0),
        ("max_steps", -3),
        ("seed", -1),
        ("estimators", ("fixed", "nope")),
        ("estimators", ("fixed", "fixed")),
        ("estimators", "fixed"),
        ("probe_points", (0.0,)),
        ("probe_points", (1.5,)),
        ("optimizer", "adam"),
        ("experiment", "mnist"),
        ("train_fraction", 0.0),
        ("train_fraction", 1.5),
        ("depth", 10),
        ("bptt", 1),
        ("device", "gpu"),
        ("amp", "yes"),
        ("random_bptt", 1),
        ("name", "a b"),
        ("power_iters", 0),
        ("probe_every", 0),
        ("amp_dtype", "float8"),
        ("dataset", "mnist"),
    ],
)
def test_bad_values_raise_naming_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        lstm_cfg(**{key: value})


def test_cross_field_rules():
    with pytest.raises(ValueError, match="max_norm"):
        lstm_cfg(optimizer="sgd", max_norm=0.25)
    with pytest.raises(ValueError, match="max_norm"):
        lstm_cfg(optimizer="clipped_sgd", max_norm=None)
    with pytest.raises(ValueError, match="epochs"):
        lstm_cfg(epochs=None, max_steps=None)
    with pytest.raises(ValueError, match="momentum"):
        lstm_cfg(optimizer="normalized_sgd", max_norm=None, momentum=0.9)
    lstm_cfg(optimizer="normalized_sgd", max_norm=None, beta=0.25)  # valid


# --------------------------------------------------------------------------------------
# Identity: what the run store hashes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [lstm_cfg, resnet_cfg])
def test_identity_is_the_config_without_exactly_the_housekeeping_keys(make):
    assert set(HOUSEKEEPING) == {"device", "checkpoint_every"}
    cfg = make(checkpoint_every=4)
    full, ident = cfg.to_dict(), cfg.identity()
    assert set(full) - set(ident) == set(HOUSEKEEPING)
    assert ident == {k: v for k, v in full.items() if k not in HOUSEKEEPING}
    assert set(ident) | set(HOUSEKEEPING) == set(TrainConfig.keys())


@pytest.mark.parametrize(
    "a, b",
    [
        (dict(device="auto"), dict(device="cpu")),
        (dict(checkpoint_every=None), dict(checkpoint_every=3)),
        (dict(device="cpu", checkpoint_every=2), dict(device="auto", checkpoint_every=500)),
    ],
)
@pytest.mark.parametrize("base", [TINY_LSTM, TINY_RESNET], ids=["lstm", "resnet"])
def test_housekeeping_does_not_change_the_identity(base, a, b):
    ca, cb = TrainConfig.from_dict({**base, **a}), TrainConfig.from_dict({**base, **b})
    assert ca != cb and ca.to_dict() != cb.to_dict()
    assert ca.identity() == cb.identity()
    assert config_hash(ca.identity()) == config_hash(cb.identity())


@pytest.mark.parametrize("change", [dict(lr=21.0), dict(seed=4), dict(max_norm=0.5), dict(data_dir="/x")])
def test_the_science_and_the_seed_change_the_identity(change):
    cfg = lstm_cfg()
    other = cfg.replace(**change)
    assert other.identity() != cfg.identity()
    assert config_hash(other.identity()) != config_hash(cfg.identity())
