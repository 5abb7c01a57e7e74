"""Training the runs of the experiment chapters, and storing them.

- :mod:`~clipcore.training.config`: :class:`TrainConfig`, its validation and a run's identity;
- :mod:`~clipcore.training.presets`: the runs of each experiment at each profile's scale;
- :mod:`~clipcore.training.tasks` (:mod:`~clipcore.training.lstm_task`,
  :mod:`~clipcore.training.image_task`): the experiments behind one interface;
- :mod:`~clipcore.training.schedule`: the LSTM's plateau-halving learning rate;
- :mod:`~clipcore.training.loop`: :func:`train`, the one training loop;
- :mod:`~clipcore.training.store` and :mod:`~clipcore.training.tables`: the run store;
- :mod:`~clipcore.training.distributed`: data-parallel training under ``torchrun``;
- :mod:`~clipcore.training.cli`: ``python -m clipcore train``.

The path of a setting, e.g. the clipping threshold: ``presets.EXPERIMENTS`` ->
:func:`preset` -> ``TrainConfig.max_norm`` -> :func:`~clipcore.training.loop.make_optimizer`
-> :class:`clipcore.optim.ClippedSGD` -> :func:`clipcore.functional.scaled_sgd_step_`.
"""

from .config import HOUSEKEEPING, TrainConfig
from .loop import train
from .presets import CHECKPOINT_EVERY, EXPERIMENTS, SCALES, experiment_configs, preset
from .store import Run, RunStore

__all__ = [
    "TrainConfig",
    "HOUSEKEEPING",
    "EXPERIMENTS",
    "SCALES",
    "CHECKPOINT_EVERY",
    "preset",
    "experiment_configs",
    "train",
    "Run",
    "RunStore",
]
