"""The learning-rate rule of the LSTM runs: halve when the validation loss stalls (AWD-LSTM,
Merity et al. 2018, as the authors' fork of Zhang et al., ICLR 2020, trains)."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["PlateauHalver"]


@dataclass
class PlateauHalver:
    r"""Halve the learning rate when the validation loss stalls (the authors' LSTM schedule).

    After each epoch's validation loss :math:`v`: if :math:`v < v^*` then :math:`v^* \leftarrow v`
    and the count of bad epochs resets; otherwise the count grows and, once it reaches
    ``patience``, the learning rate is halved and the count resets. ``patience=None`` never
    halves.
    """

    lr: float
    patience: int | None
    best: float = math.inf
    bad_epochs: int = 0

    def update(self, val_loss: float) -> bool:
        """Record one epoch's validation loss; True when this call halved ``lr``."""
        if val_loss < self.best:
            self.best, self.bad_epochs = float(val_loss), 0
            return False
        self.bad_epochs += 1
        if self.patience is not None and self.bad_epochs >= self.patience:
            self.lr /= 2.0
            self.bad_epochs = 0
            return True
        return False
