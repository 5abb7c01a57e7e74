r"""The configuration of one training run: :class:`TrainConfig`, its validation, and the
run's identity.

A run's **identity** (:meth:`TrainConfig.identity`) is what changes its numbers: the science
config and the seed. How and where it is made -- the device string and the checkpoint
cadence (:data:`HOUSEKEEPING`) -- is not part of it, so a run trained with ``--device cpu`` by
the command line is the run a page asks for with ``device: auto``. ``data_dir`` stays in the
identity: it selects the data (CIFAR-10 or the Fashion-MNIST stand-in, a user's PTB copy).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field

from ..runtime import DEVICE_PATTERN
from ..smoothness import ESTIMATORS
from ..validation import (
    check_choice,
    check_fraction,
    check_int,
    check_nonnegative,
    check_positive,
    check_unit_interval,
    invalid,
    is_number,
)

__all__ = ["TrainConfig", "EXPERIMENT_NAMES", "OPTIMIZERS", "CLIPPERS", "HOUSEKEEPING"]

EXPERIMENT_NAMES = ("lstm_ptb", "resnet_images")
OPTIMIZERS = (
    "sgd",
    "clipped_sgd",
    "normalized_sgd",
    "smoothed_clipped_sgd",
    "normalized_momentum_sgd",
    "mixed_clipped_sgd",
)
# Optimizers that clip on the norm max_norm (a threshold on the gradient or momentum norm).
CLIPPING_OPTIMIZERS = ("clipped_sgd", "mixed_clipped_sgd")
# Optimizers with a momentum average of their own (avg_beta): no momentum, no weight decay.
AVERAGING_OPTIMIZERS = ("normalized_momentum_sgd", "mixed_clipped_sgd")
# Clippers applied between backward and step (clipcore.clipping), with optimizer sgd only.
CLIPPERS = ("agc", "autoclip", "zclip")
AMP_DTYPES = ("bfloat16", "float16")
DATASETS = ("auto", "digits")
# Keys that say how and where a run is made; they never enter its identity.
HOUSEKEEPING = ("device", "checkpoint_every")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _f(default, help, kind):
    return field(default=default, metadata={"help": help, "kind": kind})


@dataclass(frozen=True)
class TrainConfig:
    """Everything about a training run: its identity (what changes the numbers) plus the
    :data:`HOUSEKEEPING` keys.

    Build it with :meth:`from_dict` (rejects unknown keys) or
    :func:`clipcore.training.presets.preset`; every value is validated on construction and a
    bad one raises ``ValueError`` naming it. Knobs of the other experiment are ignored (but
    still part of the identity).
    """

    experiment: str = _f("lstm_ptb", "experiment: " + " | ".join(EXPERIMENT_NAMES), "choice")
    name: str = _f("run", "run label, e.g. clip_lr30 (letters, digits, _ . -)", "name")
    # optimiser
    optimizer: str = _f(
        "clipped_sgd",
        "sgd (momentum SGD = sgd with momentum) | clipped_sgd | normalized_sgd | smoothed_clipped_sgd "
        "| normalized_momentum_sgd | mixed_clipped_sgd",
        "choice",
    )
    lr: float = _f(30.0, "learning rate eta (> 0)", "pos_float")
    max_norm: float | None = _f(
        0.25,
        "clipping threshold gamma on the global L2 norm (clipped_sgd: of the gradient; "
        "mixed_clipped_sgd: of the gradient and of its momentum average; null otherwise)",
        "pos_float?",
    )
    momentum: float = _f(0.0, "heavy-ball momentum in [0, 1) (sgd / clipped_sgd)", "unit_float")
    weight_decay: float = _f(0.0, "L2 weight decay >= 0 (sgd / clipped_sgd)", "nonneg_float")
    beta: float = _f(1.0, "normalized_sgd: step lr / (||g|| + beta), beta > 0", "pos_float")
    L0: float = _f(1.0, "smoothed_clipped_sgd: step lr * g / (L0 + L1 ||g||), L0 >= 0", "nonneg_float")
    L1: float = _f(1.0, "smoothed_clipped_sgd: L1 >= 0 (L0 and L1 not both 0)", "nonneg_float")
    avg_beta: float = _f(
        0.9,
        "normalized_momentum_sgd / mixed_clipped_sgd: average m <- avg_beta m + (1 - avg_beta) g, in [0, 1)",
        "unit_float",
    )
    nu: float = _f(
        1.0,
        "mixed_clipped_sgd: weight of the clipped momentum step in [0, 1] (1: momentum clipping, "
        "0: clipped SGD)",
        "closed_unit_float",
    )
    clipper: str | None = _f(
        None, "clipper before the step (optimizer sgd only): null | " + " | ".join(CLIPPERS), "choice?"
    )
    agc_clipping: float = _f(
        0.01, "agc: lambda > 0, each unit's gradient norm clipped to lambda max(||W_i||, 1e-3)", "pos_float"
    )
    autoclip_percentile: float = _f(
        10.0, "autoclip: clip to this percentile of every gradient norm so far, in [0, 100]", "percentile"
    )
    zclip_z: float = _f(2.5, "zclip: z-score above which a gradient norm is a spike, > 0", "pos_float")
    zclip_alpha: float = _f(
        0.97, "zclip: EMA weight of the norm's mean and variance, in [0, 1)", "unit_float"
    )
    zclip_warmup: int = _f(25, "zclip: warm-up steps before any clipping", "pos_int")
    # length, batches, device
    epochs: int | None = _f(1, "number of epochs (null: until max_steps)", "pos_int?")
    max_steps: int | None = _f(None, "stop after this many optimiser steps (null: after epochs)", "pos_int?")
    batch_size: int = _f(32, "training batch size", "pos_int")
    eval_batch_size: int = _f(10, "evaluation batch size", "pos_int")
    seed: int = _f(0, "seed of every random number generator, in [0, 2**63)", "seed")
    device: str = _f("auto", "auto (CUDA when present, else CPU) | cpu | cuda | cuda:N", "device")
    amp: bool = _f(False, "automatic mixed precision (CUDA only)", "bool")
    amp_dtype: str = _f(
        "bfloat16", "autocast dtype: bfloat16 | float16 (float16 uses a GradScaler)", "choice"
    )
    # LSTM (lstm_ptb)
    emb_size: int = _f(200, "LSTM: embedding size (= last layer width, tied decoder)", "pos_int")
    hidden_size: int = _f(512, "LSTM: hidden size of the inner layers", "pos_int")
    n_layers: int = _f(2, "LSTM: number of layers", "pos_int")
    bptt: int = _f(70, "LSTM: (mean) BPTT length", "bptt")
    random_bptt: bool = _f(True, "LSTM: random BPTT length per step, lr scaled by seq_len / bptt", "bool")
    alpha: float = _f(2.0, "LSTM: activation regularisation (AR) weight", "nonneg_float")
    beta_tar: float = _f(1.0, "LSTM: temporal activation regularisation (TAR) weight", "nonneg_float")
    lr_halve_patience: int | None = _f(
        5, "LSTM: halve lr after this many epochs without a better validation loss (null: never)", "pos_int?"
    )
    train_fraction: float = _f(1.0, "LSTM: use only this leading fraction of the training tokens", "fraction")
    eval_fraction: float = _f(
        1.0, "LSTM: use only this leading fraction of the valid/test tokens", "fraction"
    )
    # ResNet (resnet_images)
    dataset: str = _f(
        "auto", "images: auto (CIFAR-10 in data_dir, else Fashion-MNIST stand-in) | digits", "choice"
    )
    depth: int = _f(20, "ResNet depth 6n+2 (20: ResNet-20)", "depth")
    width: int = _f(16, "ResNet base width (stages width, 2 width, 4 width)", "pos_int")
    n_train: int | None = _f(
        None, "images: use only the first n_train training images (null: all)", "pos_int?"
    )
    n_test: int | None = _f(None, "images: evaluate on the first n_test test images (null: all)", "pos_int?")
    augment: bool = _f(True, "images: random crop (pad 4) + horizontal flip", "bool")
    # smoothness probes
    probe_every: int | None = _f(
        None, "probe the smoothness on the pinned probe data every k steps (null: never)", "pos_int?"
    )
    step_probe_every: int | None = _f(
        None,
        "probe with the fixed estimator on the step's own batch, reusing its gradient, every k steps "
        "(null: never)",
        "pos_int?",
    )
    estimators: tuple[str, ...] = _f(
        ESTIMATORS, "estimators to probe with: " + ", ".join(ESTIMATORS), "estimators"
    )
    probe_points: tuple[float, ...] = _f((0.5,), "fixed: points s in (0, 1] on the segment", "points")
    probe_fraction: float = _f(0.1, "probe data: this leading fraction of the training stream", "fraction")
    probe_chunks: int | None = _f(
        None, "probe data: at most this many chunks / batches (null: no cap)", "pos_int?"
    )
    power_iters: int = _f(
        20, "hessian: largest number of Hessian-vector products of the Lanczos iteration", "pos_int"
    )
    # data
    data_dir: str | None = _f(None, "data directory (PTB files / CIFAR-10); null: installed defaults", "str?")
    # housekeeping: how the run is made, never part of its identity (HOUSEKEEPING; device above)
    checkpoint_every: int | None = _f(None, "checkpoint every k steps (null: never)", "pos_int?")

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = _coerce(f.name, f.metadata["kind"], getattr(self, f.name))
            object.__setattr__(self, f.name, value)
        if self.epochs is None and self.max_steps is None:
            raise ValueError("Invalid epochs/max_steps: both are None (set at least one)")
        if self.optimizer in CLIPPING_OPTIMIZERS and self.max_norm is None:
            raise ValueError(
                f"Invalid max_norm: None with optimizer {self.optimizer!r} (use optimizer 'sgd')"
            )
        if self.optimizer not in CLIPPING_OPTIMIZERS and self.max_norm is not None:
            raise ValueError(
                f"Invalid max_norm: {self.max_norm!r} with optimizer {self.optimizer!r} "
                "(only clipped_sgd and mixed_clipped_sgd clip; set max_norm to null or use clipped_sgd)"
            )
        if self.optimizer in ("normalized_sgd", *AVERAGING_OPTIMIZERS) and (
            self.momentum or self.weight_decay
        ):
            raise ValueError(
                f"Invalid momentum/weight_decay: {self.momentum!r}/{self.weight_decay!r} "
                f"({self.optimizer} takes neither)"
            )
        if self.optimizer == "smoothed_clipped_sgd" and self.L0 == 0 and self.L1 == 0:
            raise ValueError("Invalid L0/L1: both 0 (smoothed_clipped_sgd needs L0 > 0 or L1 > 0)")
        if self.clipper is not None and self.optimizer != "sgd":
            raise ValueError(
                f"Invalid clipper: {self.clipper!r} with optimizer {self.optimizer!r} (clippers run with sgd)"
            )

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Build from a plain dict (e.g. YAML/JSON); unknown keys raise ``ValueError``."""
        if not isinstance(d, dict):
            raise ValueError(f"config must be a dict, got {type(d).__name__}")
        unknown = sorted(set(d) - set(cls.keys()))
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(unknown)}")
        return cls(**d)

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists); ``from_dict(to_dict())`` round-trips."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def identity(self) -> dict:
        """The run's identity: :meth:`to_dict` without the :data:`HOUSEKEEPING` keys. The run
        store hashes this dict, so two configs that differ only in housekeeping are one run."""
        return {k: v for k, v in self.to_dict().items() if k not in HOUSEKEEPING}

    def replace(self, **changes) -> "TrainConfig":
        unknown = sorted(set(changes) - set(self.keys()))
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)


_NUMBER_CHECKS = {
    "pos_float": check_positive,
    "nonneg_float": check_nonnegative,
    "unit_float": check_unit_interval,
    "fraction": check_fraction,
}
_CHOICES = {
    "experiment": EXPERIMENT_NAMES,
    "optimizer": OPTIMIZERS,
    "amp_dtype": AMP_DTYPES,
    "dataset": DATASETS,
    "clipper": CLIPPERS,
}


def _coerce(name: str, kind: str, v):
    """Validate one config value of ``kind`` and return its canonical form (floats, ints,
    tuples); ``kind`` ending in ``?`` also admits None."""
    if kind.endswith("?"):
        if v is None:
            return None
        kind = kind[:-1]
    if kind in _NUMBER_CHECKS:
        return _NUMBER_CHECKS[kind](name, v)
    if kind in ("closed_unit_float", "percentile"):
        v = check_nonnegative(name, v)
        top = 1.0 if kind == "closed_unit_float" else 100.0
        if v > top:
            raise invalid(name, v, f"must be in [0, {top:g}]")
        return v
    if kind in ("pos_int", "nonneg_int"):
        return check_int(name, v, 1 if kind == "pos_int" else 0)
    if kind == "seed":
        v = check_int(name, v, 0)
        if v >= 2**63:  # torch.manual_seed takes a signed 64-bit seed
            raise invalid(name, v, "must be below 2**63")
        return v
    if kind == "bptt":
        return check_int(name, v, 2)
    if kind == "depth":
        v = check_int(name, v)
        if v < 8 or (v - 2) % 6:
            raise invalid(name, v, "must be 6n + 2 with n >= 1")
        return v
    if kind == "bool":
        if not isinstance(v, bool):
            raise invalid(name, v, "must be true or false")
        return v
    if kind in ("str", "name", "device", "choice"):
        if not isinstance(v, str):
            raise invalid(name, v, "must be a string")
        if kind == "name" and not _NAME_RE.match(v):
            raise invalid(name, v, "letters, digits, '_', '.', '-' only")
        if kind == "device" and not DEVICE_PATTERN.match(v):
            raise invalid(name, v, "auto, cpu, cuda, cuda:N or mps")
        if kind == "choice":
            check_choice(name, v, _CHOICES[name])
        return v
    if kind == "estimators":
        if isinstance(v, str) or not isinstance(v, (list, tuple)):
            raise invalid(name, v, "must be a list of estimator names")
        if any(e not in ESTIMATORS for e in v) or len(set(v)) != len(v):
            raise invalid(name, tuple(v), "names from " + ", ".join(ESTIMATORS) + ", no repeats")
        return tuple(v)
    if kind == "points":
        if isinstance(v, str) or not isinstance(v, (list, tuple)) or not v:
            raise invalid(name, v, "must be a non-empty list of numbers in (0, 1]")
        if not all(is_number(s) and math.isfinite(s) and 0 < s <= 1 for s in v):
            raise invalid(name, tuple(v), "every point must be in (0, 1]")
        return tuple(float(s) for s in v)
    raise AssertionError(kind)  # pragma: no cover
