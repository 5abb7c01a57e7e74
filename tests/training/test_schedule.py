"""Tests of clipcore.training.schedule: the LSTM's plateau-halving learning rate."""

from __future__ import annotations

from clipcore.training.schedule import PlateauHalver


def test_plateau_halver():
    h = PlateauHalver(lr=8.0, patience=2)
    halved = [h.update(v) for v in [5.0, 4.0, 4.5, 4.0, 3.0, 3.5, 3.5, 3.5, 3.5]]
    # 4.5 and 4.0 do not beat 4.0 (two bad epochs -> halve); 3.0 improves; then two bad -> halve,
    # and the count restarts, so two more bad epochs halve again.
    assert halved == [False, False, False, True, False, False, True, False, True]
    assert h.lr == 1.0 and h.best == 3.0
    never = PlateauHalver(lr=1.0, patience=None)
    assert not any(never.update(v) for v in [1.0, 2.0, 3.0, 4.0])
    assert never.lr == 1.0
