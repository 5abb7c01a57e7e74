"""Figures and tables the experiment pages show: the gradient-norm-against-smoothness scatter
grid (Zhang et al., ICLR 2020, Figs. 1-3 and 5) and fixed-width result tables."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

__all__ = ["scatter_grid", "format_table"]


def scatter_grid(
    points: Mapping[str, Mapping[str, dict]],
    row_labels: Mapping[str, str],
    *,
    log: bool = True,
    envelopes: Mapping | None = None,
    title: str = "",
    panel_size=(3.6, 2.9),
):
    """Rows = runs, columns = estimators: gradient norm (x) against smoothness (y), coloured
    by iteration, with the envelope line :math:`L_0 + L_1 g` where ``envelopes[(run, est)]``
    gives ``(L0, L1)``. Log-log axes, or linear ones (``log=False``, Fig. 5). Returns the
    figure."""
    import matplotlib.pyplot as plt

    runs = list(points)
    ests = list(dict.fromkeys(e for r in runs for e in points[r]))
    steps = [p["step"] for r in runs for p in points[r].values() if p["step"].size]
    smax = max((float(s.max()) for s in steps), default=1.0)
    # Fixed margins rather than a layout engine: constrained layout doubles the render time.
    fig, axes = plt.subplots(
        len(runs), len(ests), squeeze=False, figsize=(panel_size[0] * len(ests), panel_size[1] * len(runs))
    )
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.08, top=0.9 if title else 0.94, wspace=0.3, hspace=0.3)
    sc = None
    for i, run in enumerate(runs):
        for j, est in enumerate(ests):
            ax = axes[i, j]
            p = points[run].get(est)
            if p is None or p["step"].size == 0:
                ax.text(0.5, 0.5, "no finite points", ha="center", transform=ax.transAxes)
                continue
            sc = ax.scatter(
                p["grad_norm"], p["smoothness"], c=p["step"], cmap="viridis", s=14, vmin=0, vmax=smax
            )
            env = (envelopes or {}).get((run, est))
            if env is not None and np.all(np.isfinite(env)):
                g = p["grad_norm"]
                gx = np.geomspace(g.min(), g.max(), 100) if log else np.linspace(0, g.max(), 100)
                ax.plot(
                    gx, env[0] + env[1] * gx, "r-", lw=1, label=f"$L_0 + L_1 g$: ({env[0]:.2g}, {env[1]:.2g})"
                )
                ax.legend(fontsize=7, loc="upper left")
            if log:
                _log_axes(ax, p["grad_norm"], p["smoothness"])
            if i == 0:
                ax.set_title(est, fontsize=10)
            if i == len(runs) - 1:
                ax.set_xlabel("gradient norm")
            if j == 0:
                ax.set_ylabel(f"{row_labels.get(run, run)}\nsmoothness", fontsize=9)
    if sc is not None:
        fig.colorbar(sc, ax=axes, label="iteration", shrink=0.6)
    if title:
        fig.suptitle(title)
    return fig


def _log_axes(ax, x, y) -> None:
    """Log scales with three readable ticks per axis (default log ticks pile up unreadably
    when the data span less than a decade)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    for axis, v, set_scale in ((ax.xaxis, x, ax.set_xscale), (ax.yaxis, y, ax.set_yscale)):
        set_scale("log")
        lo, hi = float(np.min(v)), float(np.max(v))
        ticks = np.unique([float(f"{t:.2g}") for t in np.geomspace(lo, hi, 3)]) if hi > lo else [lo]
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(FuncFormatter(lambda t, _: f"{t:.2g}"))
        axis.set_minor_formatter(NullFormatter())


def format_table(rows: Sequence[dict], columns: Sequence[str], fmt: str = ".3g") -> str:
    """A fixed-width text table of ``rows`` (numbers formatted with ``fmt``)."""

    def cell(v):
        if isinstance(v, (float, np.floating)):
            return format(float(v), fmt)
        return str(v)

    cells = [[cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[j]) for row in cells]) for j, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)
