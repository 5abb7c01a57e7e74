"""Tests for clipcore.plots: the scatter grid and the text tables of the experiment pages."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np

from clipcore.plots import format_table, scatter_grid


def _pts(g, L, step=None):
    g, L = np.asarray(g, float), np.asarray(L, float)
    return {"step": np.arange(g.size, dtype=float) if step is None else step, "grad_norm": g, "smoothness": L}


def test_format_table_aligns_columns():
    s = format_table([dict(run="a", rho=0.123456), dict(run="bbb", rho=float("nan"))], ["run", "rho"])
    lines = s.splitlines()
    assert len(lines) == 3 and len({len(line) for line in lines}) == 1 and "0.123" in s and "nan" in s


def test_scatter_grid_draws_one_panel_per_run_and_estimator():
    import matplotlib.pyplot as plt

    pts = {
        r: {e: _pts([1.0, 2.0, 3.0], [1.0, 3.0, 2.0]) for e in ("faithful", "fixed")} for r in ("a", "b", "c")
    }
    fig = scatter_grid(pts, {"a": "(a)"}, envelopes={("a", "fixed"): (0.5, 1.0)}, title="t")
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 6 and panels[0].get_xscale() == "log"
    plt.close(fig)
    fig = scatter_grid(pts, {}, log=False)
    assert fig.axes[0].get_xscale() == "linear"
    plt.close(fig)
